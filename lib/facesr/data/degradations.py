"""The course's training degradation (docs/course.md section 3): single ops and the composed pipeline.

Also the blur kernels of the 2024/2025 second-order degradation (docs/course.md section 4): generalized and
plateau kinds of :func:`blur_kernel` and :func:`sinc_kernel`; its pipeline is ``facesr.data.second_order``.

Images are float32 HxWx3 RGB in [0, 1]; randomness comes only from the ``numpy.random.Generator`` the
caller passes in. ``degrade`` is the fast version (separable or FFT blur, float32, OpenCV saturating
casts); ``degrade_reference`` is the straightforward OpenCV version of the same steps. Both consume the
generator identically, so on the same seed they give the same LQ up to float error (and the rare JPEG
rounding flip that float error causes). The torch batch version lives in ``facesr.data.degradations_torch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from facesr.errors import FacesrError

INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "bicubic": cv2.INTER_CUBIC}


@dataclass
class DegradationSettings:
    """Every range of the degradation; the defaults are the course's (docs/course.md section 3).

    Ranges are ``(low, high)`` for a uniform draw. ``noise_sigma_range`` is in 0-255 units. Pass other
    values (e.g. harsher GLEAN-style ranges) to change the distribution without editing code.
    """

    kernel_size: int = 41
    iso_prob: float = 0.5
    sigma_range: tuple[float, float] = (0.2, 5.0)
    angle_range: tuple[float, float] = (-3.1416, 3.1416)
    scale_range: tuple[float, float] = (0.0625, 1.0)
    resize_interpolations: tuple[str, ...] = ("bilinear", "area", "bicubic")
    resize_probs: tuple[float, ...] = field(default=(1 / 3, 1 / 3, 1 / 3))
    noise_sigma_range: tuple[float, float] = (0.0, 25.0)
    jpeg_quality_range: tuple[float, float] = (50.0, 95.0)
    out_size: int = 128
    gt_size: int = 512

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise FacesrError(f"DegradationSettings.kernel_size={self.kernel_size}: use an odd size >= 1")
        for name in ("sigma_range", "angle_range", "scale_range", "noise_sigma_range", "jpeg_quality_range"):
            low, high = getattr(self, name)
            if low > high:
                raise FacesrError(f"DegradationSettings.{name}={(low, high)}: low must not exceed high")
        if self.sigma_range[0] <= 0 or self.scale_range[0] <= 0 or self.scale_range[1] > 1:
            raise FacesrError("DegradationSettings: sigmas must be > 0 and scales in (0, 1]")
        if not (self.jpeg_quality_range[0] >= 0 and self.jpeg_quality_range[1] <= 100):
            raise FacesrError(f"DegradationSettings.jpeg_quality_range={self.jpeg_quality_range}: use 0-100")
        unknown = [n for n in self.resize_interpolations if n not in INTERPOLATIONS]
        if unknown or len(self.resize_probs) != len(self.resize_interpolations):
            raise FacesrError(
                f"DegradationSettings.resize_interpolations={self.resize_interpolations}: use names from "
                f"{sorted(INTERPOLATIONS)} with one probability each in resize_probs"
            )
        if abs(sum(self.resize_probs) - 1) > 1e-6 or min(self.resize_probs) < 0 or not 0 <= self.iso_prob <= 1:
            raise FacesrError("DegradationSettings: resize_probs must sum to 1 and iso_prob lie in [0, 1]")
        if self.out_size < 1 or self.gt_size % self.out_size:
            raise FacesrError(f"DegradationSettings: gt_size {self.gt_size} must be a multiple of out_size")


@dataclass
class DegradationParams:
    """The values sampled for one degradation (angles in radians, noise sigma in 0-255 units)."""

    kernel_kind: str
    sigma_x: float
    sigma_y: float
    angle: float
    scale: float
    down_interpolation: str
    noise_sigma: float
    jpeg_quality: int
    up_interpolation: str

    def __str__(self) -> str:
        blur = f"{self.kernel_kind} blur sx={self.sigma_x:.2f} sy={self.sigma_y:.2f} angle={self.angle:+.2f}"
        return (
            f"{blur}, down x{self.scale:.3f} {self.down_interpolation}, noise sigma={self.noise_sigma:.1f}/255, "
            f"JPEG q={self.jpeg_quality}, back up {self.up_interpolation}"
        )


BLUR_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def blur_kernel(
    kind: str,
    size: int,
    sigma_x: float,
    sigma_y: float | None = None,
    angle: float = 0.0,
    beta: float | None = None,
) -> np.ndarray:
    """Normalised blur kernel, float32 (size, size); x = column offset, y = row offset.

    With ``p = (x, y)``, ``S = R diag(sx^2, sy^2) R^T`` (R the rotation by ``angle``) and
    ``q = p^T S^-1 p`` (docs/course.md sections 3 and 4): Gaussian (``iso``, ``aniso``) ``exp(-q / 2)``;
    generalized Gaussian ``exp(-q^beta / 2)``; plateau ``1 / (q^beta + 1)``; each divided by its sum.
    The ``*_iso`` kinds use sigma_x for both axes and no rotation.

    Args:
        kind: one of ``BLUR_KINDS``.
        size: kernel side (odd).
        sigma_x: sigma along x before the rotation (px).
        sigma_y: sigma along y before the rotation (px); None means sigma_x. Ignored by the iso kinds.
        angle: rotation in radians. Ignored by the iso kinds.
        beta: shape exponent of the generalized and plateau kinds (required there, ignored by the Gaussians).
    """
    if kind not in BLUR_KINDS:
        raise FacesrError(f"blur_kernel kind={kind!r}: use one of {', '.join(BLUR_KINDS)}")
    if kind.startswith(("generalized", "plateau")) and (beta is None or not beta > 0):
        raise FacesrError(f"blur_kernel kind={kind!r} needs beta > 0, got beta={beta!r}")
    if kind in ("iso", "generalized_iso", "plateau_iso"):
        sigma_y, angle = sigma_x, 0.0
    elif sigma_y is None:
        sigma_y = sigma_x
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    cov = rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T
    inv = np.linalg.inv(cov)
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    x, y = np.meshgrid(ax, ax)  # x varies along columns, y along rows
    q = inv[0, 0] * x * x + (inv[0, 1] + inv[1, 0]) * x * y + inv[1, 1] * y * y
    if kind.startswith("generalized"):
        kernel = np.exp(-0.5 * np.power(q, beta))
    elif kind.startswith("plateau"):
        kernel = 1.0 / (np.power(q, beta) + 1.0)
    else:
        kernel = np.exp(-0.5 * q)
    return (kernel / kernel.sum()).astype(np.float32)


def sinc_kernel(size: int, omega_c: float, pad_to: int = 0) -> np.ndarray:
    """Circular low-pass (2-D sinc) kernel, float32, normalised to sum 1 (docs/course.md section 4).

    ``K(x, y) = omega_c J1(omega_c r) / (2 pi r)`` with ``r = sqrt(x^2 + y^2)`` on the centred grid of
    :func:`blur_kernel` and ``K(0, 0) = omega_c^2 / (4 pi)`` (the limit at r = 0).

    Args:
        size: kernel side (odd).
        omega_c: cutoff frequency in radians per pixel, in (0, pi].
        pad_to: when larger than ``size``, zero-pad the normalised kernel to ``pad_to`` x ``pad_to``
            (odd, like ``size``).
    """
    from scipy.special import j1  # scipy comes with scikit-image

    if size < 1 or size % 2 == 0:
        raise FacesrError(f"sinc_kernel size={size}: use an odd size >= 1")
    if pad_to > size and pad_to % 2 == 0:
        raise FacesrError(f"sinc_kernel pad_to={pad_to}: use an odd size (or 0 for no padding)")
    if not 0 < omega_c <= np.pi:
        raise FacesrError(f"sinc_kernel omega_c={omega_c}: use a cutoff in (0, pi]")
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    r = np.hypot(*np.meshgrid(ax, ax))
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = omega_c * j1(omega_c * r) / (2 * np.pi * r)
    kernel[size // 2, size // 2] = omega_c**2 / (4 * np.pi)
    kernel /= kernel.sum()
    if pad_to > size:
        pad = (pad_to - size) // 2
        kernel = np.pad(kernel, pad)
    return kernel.astype(np.float32)


def _trim_zeros(kernel: np.ndarray) -> np.ndarray:
    """Drop outer rows/cols that are exactly zero (float32 underflow), symmetrically; exact."""
    rows, cols = np.nonzero(kernel)
    c = kernel.shape[0] // 2
    r = max(c - rows.min(), rows.max() - c, c - cols.min(), cols.max() - c) if rows.size else 0
    return kernel[c - r : c + r + 1, c - r : c + r + 1]


def fast_len(n: int) -> int:
    """Smallest m >= n whose prime factors are 2, 3, 5, 7 (fast sizes for MKL, pocketfft and cuFFT)."""
    while True:
        m = n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _fft_blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlation with reflect-101 border through one planar float32 FFT (what filter2D does via DFT).

    torch's CPU FFT (MKL where available) is used because it is markedly faster than OpenCV's DFT and
    scipy's pocketfft at these sizes; it runs on torch's intra-op threads (1 in DataLoader workers).
    """
    import torch

    k, (h, w) = kernel.shape[0], img.shape[:2]
    p = k // 2
    fh, fw = fast_len(h + k - 1), fast_len(w + k - 1)
    # Reflect-101 padding beyond the kernel radius (up to the FFT size) is harmless: those outputs are dropped.
    padded = cv2.copyMakeBorder(img, p, fh - h - p, p, fw - w - p, cv2.BORDER_REFLECT_101)
    spec = torch.fft.rfft2(torch.from_numpy(padded).permute(2, 0, 1))
    # Kernel spectrum: row transforms of its k rows only, then the column transform (zero padding implied).
    flipped = torch.from_numpy(np.ascontiguousarray(kernel[::-1, ::-1]))
    spec *= torch.fft.fft(torch.fft.rfft(flipped, n=fw, dim=1), n=fh, dim=0)
    out = torch.fft.irfft2(spec, s=(fh, fw))[:, k - 1 : k - 1 + h, k - 1 : k - 1 + w]
    return out.permute(1, 2, 0).contiguous().numpy()


def blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D(img, -1, kernel)`` (correlation, reflect-101), computed the cheapest exact way.

    Separable kernels (every iso one) take two 1-D passes; others an FFT. Results equal filter2D up to
    float32 rounding.
    """
    k = np.asarray(kernel, dtype=np.float32)
    odd_square = k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    if not odd_square or img.dtype not in (np.float32, np.float64) or img.ndim != 3:
        return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT_101)
    # Subnormal taps (< 1.2e-38) make the filters crawl; as zeros they change no float32 result >= 1e-30.
    k = _trim_zeros(np.where(np.abs(k) < np.finfo(np.float32).tiny, np.float32(0), k))
    c = k.shape[0] // 2
    if k.shape[0] <= 11 or k[c, c] == 0:  # small kernels: OpenCV (direct filter) beats a full-size FFT
        return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT_101)
    col, row = k[:, c].astype(np.float64), k[c, :].astype(np.float64) / float(k[c, c])
    if np.abs(np.outer(col, row) - k).sum() <= 1e-6:  # rank one: filter error below 1e-6 for [0, 1] input
        kx, ky = row.astype(np.float32), col.astype(np.float32)
        return cv2.sepFilter2D(img, -1, kx, ky, borderType=cv2.BORDER_REFLECT_101)
    return _fft_blur(img, k)


def resize(img: np.ndarray, size: tuple[int, int] | int, interpolation: str) -> np.ndarray:
    """OpenCV resize to ``size`` = (height, width) (or one int for a square) with a named interpolation."""
    if interpolation not in INTERPOLATIONS:
        raise FacesrError(f"resize interpolation={interpolation!r}: use one of {sorted(INTERPOLATIONS)}")
    h, w = (size, size) if isinstance(size, int) else size
    return cv2.resize(img, (int(w), int(h)), interpolation=INTERPOLATIONS[interpolation])


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add N(0, (sigma/255)^2) per pixel and channel, not clipped; sigma in 0-255 units."""
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= np.float32(sigma / 255.0)
    return img + noise


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8 ``saturate(round_half_even(img * 255))``; uint8 passes through as is.

    One OpenCV pass (cvRound is half-to-even, like ``np.round``/``np.rint``); the product is taken in the
    image's own precision (float32 or float64), so it equals ``np.clip(np.round(img * 255), 0, 255)``.
    """
    if img.dtype == np.uint8:
        return img
    if img.size == 0:  # OpenCV returns None for an empty array
        return np.zeros(img.shape, np.uint8)
    return cv2.addWeighted(img, 255.0, img, 0.0, 0.0, dtype=cv2.CV_8U)


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 image -> float32 ``img / 255`` in [0, 1]; a float image -> float32 as is (no copy when it
    already is C-contiguous float32). Always C-contiguous."""
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img, dtype=np.float32) / np.float32(255.0)
    return np.ascontiguousarray(img, dtype=np.float32)


def jpeg_roundtrip_uint8(img8: np.ndarray, quality: int) -> np.ndarray:
    """OpenCV JPEG encode + decode of a uint8 HxWx3 array, handed over as if it were BGR -> uint8 HxWx3."""
    ok, buf = cv2.imencode(".jpg", img8, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise FacesrError(f"OpenCV could not JPEG-encode an image of shape {img8.shape} (quality {quality})")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip through OpenCV, the RGB array handed over as if it were BGR (as the course does)."""
    return to_float(jpeg_roundtrip_uint8(to_uint8(img), quality))


def quantize(img: np.ndarray) -> np.ndarray:
    """``clip(round(x * 255), 0, 255) / 255`` in float32."""
    return to_float(to_uint8(img))


def _choose(rng: np.random.Generator, names: tuple[str, ...], probs: tuple[float, ...]) -> str:
    return names[int(rng.choice(len(names), p=np.asarray(probs) / np.sum(probs)))]


def sample_params(rng: np.random.Generator, settings: DegradationSettings | None = None) -> DegradationParams:
    """Draw one degradation; always the same number of draws in the same order (iso draws sigma_y too)."""
    s = settings or DegradationSettings()
    kind = "iso" if rng.random() < s.iso_prob else "aniso"
    sigma_x, sigma_y, angle = rng.uniform(*s.sigma_range), rng.uniform(*s.sigma_range), rng.uniform(*s.angle_range)
    if kind == "iso":
        sigma_y, angle = sigma_x, 0.0
    scale = rng.uniform(*s.scale_range)
    down = _choose(rng, s.resize_interpolations, s.resize_probs)
    noise_sigma = rng.uniform(*s.noise_sigma_range)
    quality = int(round(rng.uniform(*s.jpeg_quality_range)))
    up = _choose(rng, s.resize_interpolations, s.resize_probs)
    return DegradationParams(kind, float(sigma_x), float(sigma_y), float(angle), float(scale), down,
                             float(noise_sigma), quality, up)  # fmt: skip


def params_kernel(params: DegradationParams, settings: DegradationSettings | None = None) -> np.ndarray:
    """The blur kernel of ``params`` (size from ``settings``)."""
    s = settings or DegradationSettings()
    return blur_kernel(params.kernel_kind, s.kernel_size, params.sigma_x, params.sigma_y, params.angle)


def _check_gt(gt: np.ndarray, settings: DegradationSettings) -> tuple[int, int, int]:
    factor = settings.gt_size // settings.out_size
    if not isinstance(gt, np.ndarray) or gt.ndim != 3 or gt.shape[2] != 3 or gt.dtype.kind != "f":
        got = f"{gt.dtype} {gt.shape}" if isinstance(gt, np.ndarray) else type(gt).__name__
        raise FacesrError(f"degrade: expected a float HxWx3 RGB image in [0, 1], got {got}; divide uint8 by 255")
    if gt.shape[0] % factor or gt.shape[1] % factor:
        raise FacesrError(f"degrade: GT size {gt.shape[:2]} is not a multiple of the x{factor} scale")
    return gt.shape[0], gt.shape[1], factor


def apply_degradation(
    gt: np.ndarray, params: DegradationParams, rng: np.random.Generator, settings: DegradationSettings | None = None
) -> np.ndarray:
    """Steps 1-7 of docs/course.md section 3 with fixed ``params``; ``rng`` only draws the noise."""
    settings = settings or DegradationSettings()
    h, w, factor = _check_gt(gt, settings)
    img = np.ascontiguousarray(gt, dtype=np.float32)
    img = blur(img, params_kernel(params, settings))
    img = resize(img, (max(1, int(h * params.scale)), max(1, int(w * params.scale))), params.down_interpolation)
    img = add_gaussian_noise(img, params.noise_sigma, rng)
    img = jpeg_compress(img, params.jpeg_quality)
    img = resize(img, (h, w), params.up_interpolation)
    # Quantize and area-resize in integer units, one division on the small image (float error only).
    lq = cv2.resize(to_uint8(img).astype(np.float32), (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return lq / np.float32(255.0)


def degrade(
    gt: np.ndarray,
    rng: np.random.Generator,
    settings: DegradationSettings | None = None,
    return_params: bool = False,
) -> np.ndarray | tuple[np.ndarray, DegradationParams]:
    """Course degradation of one GT (float32 HxWx3 in [0, 1], 512x512) -> float32 LQ (128x128x3).

    Other GT sizes give an LQ smaller by ``settings.gt_size // settings.out_size`` (4). The LQ is not
    clipped or re-quantized after the final area resize, as in the course. ``return_params`` also
    returns the sampled ``DegradationParams``.
    """
    params = sample_params(rng, settings)
    lq = apply_degradation(gt, params, rng, settings)
    return (lq, params) if return_params else lq


def degrade_reference(
    gt: np.ndarray, rng: np.random.Generator, settings: DegradationSettings | None = None
) -> np.ndarray:
    """The straightforward OpenCV version of ``degrade`` (full float64 kernel, filter2D, numpy rounding)."""
    settings = settings or DegradationSettings()
    h, w, factor = _check_gt(gt, settings)
    p = sample_params(rng, settings)
    cos, sin = np.cos(p.angle), np.sin(p.angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    inv = np.linalg.inv(rot @ np.diag([p.sigma_x**2, p.sigma_y**2]) @ rot.T)
    ax = np.arange(-(settings.kernel_size // 2), settings.kernel_size // 2 + 1, dtype=np.float64)
    grid = np.stack(np.meshgrid(ax, ax), axis=-1)
    kernel = np.exp(-0.5 * np.sum((grid @ inv) * grid, axis=-1))
    img = cv2.filter2D(gt.astype(np.float32), -1, kernel / kernel.sum())
    size = (max(1, int(w * p.scale)), max(1, int(h * p.scale)))
    img = cv2.resize(img, size, interpolation=INTERPOLATIONS[p.down_interpolation])
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(p.noise_sigma / 255.0)
    img8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    _, buf = cv2.imencode(".jpg", img8, [int(cv2.IMWRITE_JPEG_QUALITY), p.jpeg_quality])
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) / 255.0
    img = cv2.resize(img, (w, h), interpolation=INTERPOLATIONS[p.up_interpolation])
    img = (np.clip(np.round(img * 255.0), 0, 255) / 255.0).astype(np.float32)
    return cv2.resize(img, (w // factor, h // factor), interpolation=cv2.INTER_AREA)


def bicubic_psnr_samples(
    gt: np.ndarray,
    n: int,
    rng: np.random.Generator,
    settings: DegradationSettings | None = None,
) -> np.ndarray:
    """PSNR (dB) of bicubic x4 upscaling of ``n`` random ``degrade`` LQs of ``gt`` (the docs/course.md section 3
    distribution check).

    ``gt`` is uint8 or float [0, 1] HxWx3; each LQ is rounded to uint8, upscaled with OpenCV INTER_CUBIC and
    compared with the uint8 GT.
    """
    gt_f = to_float(gt)
    gt8 = to_uint8(gt_f)
    return np.array([lq_bicubic_psnr(degrade(gt_f, rng, settings), gt8) for _ in range(n)])


def lq_bicubic_psnr(lq: np.ndarray, gt8: np.ndarray) -> float:
    """PSNR of ``bicubic_x(round(lq))`` against the uint8 GT (scale from the sizes)."""
    lq8 = to_uint8(np.ascontiguousarray(lq, dtype=np.float32))
    sr = cv2.resize(lq8, (gt8.shape[1], gt8.shape[0]), interpolation=cv2.INTER_CUBIC)
    mse = np.mean((sr.astype(np.float64) - gt8.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf")
