"""The 2024/2025 training degradation: Real-ESRGAN's second-order pipeline, per sample, on any device.

docs/course.md section 4 gives every step and value. The randomness and the computation are split so that
the trainer can draw where it is cheap and compute where it is fast:

- :func:`sample_second_order_params` draws ONE sample's choices on the CPU from a ``numpy.random.Generator``
  (the kernels as the course's dataset made them, every resize, noise, JPEG and order choice) and returns
  a dict of fixed-shape CPU tensors (:data:`PARAM_KEYS`) that ``torch.utils.data.default_collate`` stacks.
- :func:`apply_second_order` applies a batch of such params to a (B, 3, H, W) GT on any device. Only the
  noise is drawn there, from one ``torch.Generator`` per sample (None: the device's default RNG). It reads
  the params on the host and never reads a device value back (no ``.item()``, ``.cpu()``, ``unique``...).
- :func:`degrade_second_order` does both for a GT batch and per-sample torch generators.

The CPU path filters with OpenCV (cv2 releases the GIL and is the fastest single-thread filter); other
devices use grouped convolutions. Images whose sizes differ (each sample has its own resize scales) are
handled one by one; steps on a shared size run batched, and JPEG batches every 8x8 block of every sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from facesr.data.degradations import BLUR_KINDS, blur, blur_kernel, sinc_kernel
from facesr.data.jpeg_torch import jpeg_torch, jpeg_torch_list
from facesr.errors import FacesrError

__all__ = [
    "KERNEL_KINDS", "KERNEL_SHAPE", "PARAM_KEYS", "RESIZE_KINDS", "RESIZE_MODES", "SecondOrderSettings",
    "apply_second_order", "degrade_second_order", "describe_params", "filter2d", "jpeg_torch", "kernel_from_shape",
    "pulse_kernel", "sample_second_order_params", "usm_sharpen",
]  # fmt: skip

KERNEL_KINDS = (*BLUR_KINDS, "sinc")
KERNEL_SHAPE = ("sigma_x", "sigma_y", "angle", "beta", "omega")
RESIZE_KINDS = ("up", "down", "keep")
RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass
class SecondOrderSettings:
    """Every value of the course's second-order degradation; the defaults are the course's (docs/course.md section 4).

    The ``*2`` fields are the second stage's. Ranges are ``(low, high)`` for a uniform draw; noise sigmas
    are in 0-255 units. ``resize_probs`` are the probabilities of up / down / keep; ``resize_range`` is
    (lowest down scale, highest up scale). ``scale`` is the SR factor: stage 2 resizes to ``H / scale * s``.
    """

    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    kernel_pad: int = 21
    kernel_kinds: tuple[str, ...] = BLUR_KINDS
    kernel_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    kernel_probs2: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    betag_range2: tuple[float, float] = (0.5, 4.0)
    betap_range2: tuple[float, float] = (1.0, 2.0)
    final_sinc_prob: float = 0.8
    gt_usm: bool = True
    usm_weight: float = 0.5
    usm_radius: int = 50
    usm_threshold: float = 10.0
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.2, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 20.0)
    poisson_scale_range: tuple[float, float] = (0.05, 2.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (50.0, 95.0)
    second_blur_prob: float = 0.8
    resize_probs2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 15.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 1.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[float, float] = (70.0, 95.0)
    resize_mode_probs: tuple[float, float, float] = field(default=(1 / 3, 1 / 3, 1 / 3))
    final_sinc_first_prob: float = 0.5
    scale: int = 4

    def __post_init__(self) -> None:
        if any(k < 1 or k % 2 == 0 or k > self.kernel_pad for k in self.kernel_sizes) or self.kernel_pad % 2 == 0:
            raise FacesrError(
                f"SecondOrderSettings.kernel_sizes={self.kernel_sizes}: use odd sizes <= kernel_pad (odd)"
            )
        unknown = [k for k in self.kernel_kinds if k not in BLUR_KINDS]
        if unknown:
            raise FacesrError(f"SecondOrderSettings.kernel_kinds={self.kernel_kinds}: use names from {BLUR_KINDS}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_probs") or f.name.endswith("_probs2"):
                n = len(self.kernel_kinds) if f.name.startswith("kernel") else 3
                if len(value) != n or min(value) < 0 or abs(sum(value) - 1) > 1e-6:
                    raise FacesrError(f"SecondOrderSettings.{f.name}={value}: give {n} probabilities summing to 1")
            elif f.name.endswith("_prob") or f.name.endswith("_prob2"):
                if not 0 <= value <= 1:
                    raise FacesrError(f"SecondOrderSettings.{f.name}={value}: use a probability in [0, 1]")
            elif isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
                raise FacesrError(f"SecondOrderSettings.{f.name}={value}: low must not exceed high")
        for name in ("resize_range", "resize_range2"):
            low, high = getattr(self, name)
            if not 0 < low <= 1 <= high:
                raise FacesrError(f"SecondOrderSettings.{name}={(low, high)}: use 0 < down scale <= 1 <= up scale")
        for name in ("jpeg_range", "jpeg_range2"):
            low, high = getattr(self, name)
            if not 1 <= low <= high <= 100:
                raise FacesrError(f"SecondOrderSettings.{name}={(low, high)}: use qualities in [1, 100]")
        if self.scale < 1:
            raise FacesrError(f"SecondOrderSettings.scale={self.scale}: use a positive integer")


# ------------------------------------------------------------------------------------------ the draw (CPU)

#: The keys of one sample's params and their dtypes. The three kernels are (kernel_pad, kernel_pad), 21x21
#: for the course; ``kernel1_shape`` and ``kernel2_shape`` are (5,) (:data:`KERNEL_SHAPE`, what made the
#: kernel); everything else is 0-d. default_collate puts a batch dimension first.
PARAM_KEYS: dict[str, torch.dtype] = {
    "kernel1": torch.float32, "kernel1_kind": torch.int64, "kernel1_size": torch.int64, "kernel1_shape": torch.float64,
    "kernel2": torch.float32, "kernel2_kind": torch.int64, "kernel2_size": torch.int64, "kernel2_shape": torch.float64,
    "sinc_kernel": torch.float32, "final_sinc": torch.bool, "sinc_size": torch.int64, "sinc_omega": torch.float64,
    "resize1_kind": torch.int64, "resize1_scale": torch.float64, "resize1_mode": torch.int64,
    "noise1_gaussian": torch.bool, "noise1_sigma": torch.float64, "noise1_scale": torch.float64,
    "noise1_gray": torch.bool, "jpeg1_quality": torch.float32, "blur2": torch.bool,
    "resize2_kind": torch.int64, "resize2_scale": torch.float64, "resize2_mode": torch.int64,
    "noise2_gaussian": torch.bool, "noise2_sigma": torch.float64, "noise2_scale": torch.float64,
    "noise2_gray": torch.bool, "final_sinc_first": torch.bool, "final_mode": torch.int64,
    "jpeg2_quality": torch.float32,
}  # fmt: skip


def kernel_from_shape(kind: str, size: int, shape: Sequence[float], pad_to: int = 21) -> np.ndarray:
    """A blur or sinc kernel from its :data:`KERNEL_SHAPE` values, zero-padded to ``pad_to`` (float32).

    Args:
        kind: one of :data:`KERNEL_KINDS`.
        size: kernel side (odd, at most ``pad_to``).
        shape: (sigma_x, sigma_y, angle, beta, omega); the kind uses what it needs (beta: generalized and
            plateau kinds; omega: sinc).
        pad_to: side after zero padding.
    """
    if kind not in KERNEL_KINDS or size > pad_to:
        raise FacesrError(f"kernel_from_shape: kind {kind!r} (use one of {KERNEL_KINDS}), size {size} <= {pad_to}")
    sigma_x, sigma_y, angle, beta, omega = (float(v) for v in shape)
    if kind == "sinc":
        return sinc_kernel(size, omega, pad_to=pad_to)
    needs_beta = kind.startswith(("generalized", "plateau"))
    kernel = blur_kernel(kind, size, sigma_x, sigma_y, angle, beta if needs_beta else None)
    return np.pad(kernel, (pad_to - size) // 2)


def _draw_kernel(
    rng: np.random.Generator, s: SecondOrderSettings, stage: int
) -> tuple[np.ndarray, int, int, list[float]]:
    """One blur kernel as the course's dataset draws it -> (kernel padded to kernel_pad, kind code, size, shape)."""
    suffix = "2" if stage == 2 else ""
    size = int(s.kernel_sizes[rng.integers(len(s.kernel_sizes))])
    if rng.random() < getattr(s, f"sinc_prob{suffix}"):
        omega = rng.uniform(np.pi / 3, np.pi) if size < 13 else rng.uniform(np.pi / 5, np.pi)
        kind, shape = "sinc", [0.0, 0.0, 0.0, 0.0, omega]
    else:
        probs = np.asarray(getattr(s, f"kernel_probs{suffix}"), dtype=np.float64)
        kind = s.kernel_kinds[int(rng.choice(len(probs), p=probs / probs.sum()))]
        sigma_range = getattr(s, f"blur_sigma{suffix}")
        sigma_x = rng.uniform(*sigma_range)
        sigma_y, angle = sigma_x, 0.0
        if "aniso" in kind:
            sigma_y, angle = rng.uniform(*sigma_range), rng.uniform(-np.pi, np.pi)
        beta = 0.0
        if kind.startswith(("generalized", "plateau")):
            low, high = getattr(s, f"{'betag' if kind.startswith('generalized') else 'betap'}_range{suffix}")
            beta = rng.uniform(low, 1) if rng.random() < 0.5 else rng.uniform(1, high)
        shape = [sigma_x, sigma_y, angle, beta, 0.0]
    return kernel_from_shape(kind, size, shape, s.kernel_pad), KERNEL_KINDS.index(kind), size, shape


def pulse_kernel(size: int = 21) -> np.ndarray:
    """The identity kernel (a centred 1 in zeros), float32: the final "sinc" of samples drawn without one.

    Args:
        size: kernel side (odd).
    """
    pulse = np.zeros((size, size), np.float32)
    pulse[size // 2, size // 2] = 1
    return pulse


def _draw_resize(
    rng: np.random.Generator, probs: tuple[float, ...], scale_range: tuple[float, float]
) -> tuple[int, float]:
    kind = int(rng.choice(3, p=np.asarray(probs) / np.sum(probs)))
    # both scales are drawn whatever the kind: every draw takes the same number of numbers from rng
    scale = (rng.uniform(1, scale_range[1]), rng.uniform(scale_range[0], 1), 1.0)[kind]
    return kind, float(scale)


def sample_second_order_params(
    rng: np.random.Generator, settings: SecondOrderSettings | None = None
) -> dict[str, torch.Tensor]:
    """Draw one sample's second-order degradation on the CPU from ``rng``.

    The kernels come from the course's formulas (:func:`facesr.data.degradations.blur_kernel`,
    :func:`~facesr.data.degradations.sinc_kernel`), zero-padded to ``kernel_pad``; the final sinc is a
    pulse (identity) when not drawn. Every other choice is a 0-d tensor; see :data:`PARAM_KEYS` for the keys,
    shapes and dtypes. Codes: kernel kinds index :data:`KERNEL_KINDS`, resize kinds :data:`RESIZE_KINDS`,
    modes :data:`RESIZE_MODES`. Noise sigmas are in 0-255 units (0 when the noise is Poisson), Poisson
    scales 0 when the noise is Gaussian.

    Args:
        rng: the sample's generator (in the trainer's worker: the one that drew the sample's crop and flip).
        settings: None for the course's values.
    """
    s = settings or SecondOrderSettings()
    modes = np.asarray(s.resize_mode_probs) / np.sum(s.resize_mode_probs)
    p: dict[str, object] = {}
    for stage in (1, 2):
        kernel, kind, size, shape = _draw_kernel(rng, s, stage)
        p[f"kernel{stage}"], p[f"kernel{stage}_kind"], p[f"kernel{stage}_size"] = kernel, kind, size
        p[f"kernel{stage}_shape"] = np.asarray(shape, dtype=np.float64)
    p["final_sinc"] = bool(rng.random() < s.final_sinc_prob)
    p["sinc_kernel"], p["sinc_size"], p["sinc_omega"] = pulse_kernel(s.kernel_pad), 1, 0.0
    if p["final_sinc"]:
        size = int(s.kernel_sizes[rng.integers(len(s.kernel_sizes))])
        p["sinc_omega"] = omega = rng.uniform(np.pi / 3, np.pi)
        p["sinc_kernel"], p["sinc_size"] = sinc_kernel(size, omega, pad_to=s.kernel_pad), size
    for stage, suffix in ((1, ""), (2, "2")):
        if stage == 2:
            p["blur2"] = bool(rng.random() < s.second_blur_prob)
        kind, scale = _draw_resize(rng, getattr(s, f"resize_probs{suffix}"), getattr(s, f"resize_range{suffix}"))
        p[f"resize{stage}_kind"], p[f"resize{stage}_scale"] = kind, scale
        p[f"resize{stage}_mode"] = int(rng.choice(3, p=modes))
        gaussian = bool(rng.random() < getattr(s, f"gaussian_noise_prob{suffix}"))
        p[f"noise{stage}_gaussian"] = gaussian
        p[f"noise{stage}_sigma"] = rng.uniform(*getattr(s, f"noise_range{suffix}")) if gaussian else 0.0
        p[f"noise{stage}_scale"] = 0.0 if gaussian else rng.uniform(*getattr(s, f"poisson_scale_range{suffix}"))
        p[f"noise{stage}_gray"] = bool(rng.random() < getattr(s, f"gray_noise_prob{suffix}"))
        if stage == 1:
            p["jpeg1_quality"] = rng.uniform(*s.jpeg_range)
    p["final_sinc_first"] = bool(rng.random() < s.final_sinc_first_prob)
    p["final_mode"] = int(rng.choice(3, p=modes))
    p["jpeg2_quality"] = rng.uniform(*s.jpeg_range2)
    out = {}
    for key, dtype in PARAM_KEYS.items():
        value = p[key]
        out[key] = torch.from_numpy(value) if isinstance(value, np.ndarray) else torch.tensor(value, dtype=dtype)
    return out


def describe_params(params: Mapping[str, torch.Tensor], index: int = 0) -> str:
    """One line that names sample ``index``'s choices (for figure titles and logs).

    Args:
        params: one sample's params or a collated batch of them.
        index: the sample of the batch.
    """
    p = _sample(_batched(params), index)

    def noise(stage: int) -> str:
        gray = " gray" if bool(p[f"noise{stage}_gray"]) else ""
        if bool(p[f"noise{stage}_gaussian"]):
            return f"Gaussian{gray} {float(p[f'noise{stage}_sigma']):.1f}/255"
        return f"Poisson{gray} x{float(p[f'noise{stage}_scale']):.2f}"

    def resize(stage: int) -> str:
        return f"{RESIZE_KINDS[int(p[f'resize{stage}_kind'])]} x{float(p[f'resize{stage}_scale']):.2f} " \
               f"{RESIZE_MODES[int(p[f'resize{stage}_mode'])]}"  # fmt: skip

    k1, k2 = (f"{KERNEL_KINDS[int(p[f'kernel{i}_kind'])]} {int(p[f'kernel{i}_size'])}px" for i in (1, 2))
    sinc = f"sinc {int(p['sinc_size'])}px" if bool(p["final_sinc"]) else "no sinc"
    order = "resize+sinc, JPEG" if bool(p["final_sinc_first"]) else "JPEG, resize+sinc"
    return (
        f"1: {k1}, {resize(1)}, {noise(1)}, JPEG {float(p['jpeg1_quality']):.0f} | "
        f"2: {k2 if bool(p['blur2']) else 'no blur'}, {resize(2)}, {noise(2)} | "
        f"final: {order} ({sinc}, {RESIZE_MODES[int(p['final_mode'])]}), JPEG {float(p['jpeg2_quality']):.0f}"
    )


# ------------------------------------------------------------------------------------------ the single ops


@lru_cache(maxsize=8)
def _usm_taps(radius: int) -> np.ndarray:
    """OpenCV's ``getGaussianKernel(radius, 0)`` (sigma from the size: 8.0 for 51), float32."""
    import cv2

    return cv2.getGaussianKernel(radius, 0).astype(np.float32).ravel()


@lru_cache(maxsize=16)
def _device_taps(taps: bytes, device: torch.device) -> torch.Tensor:
    """1-D float32 taps on ``device``, uploaded once."""
    return torch.from_numpy(np.frombuffer(taps, dtype=np.float32).copy()).to(device, non_blocking=True)


def _separable_opencv(img: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """:func:`_separable` on the CPU: ``cv2.sepFilter2D`` plane by plane."""
    import cv2

    planes = img.detach().to(torch.float32).contiguous().reshape(-1, *img.shape[-2:]).numpy()
    out = [cv2.sepFilter2D(p, -1, taps, taps, borderType=cv2.BORDER_REFLECT_101) for p in planes]
    return torch.from_numpy(np.stack(out)).reshape(img.shape)


def _separable_conv(img: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """:func:`_separable` on any device: reflect padding and two 1-D convolutions."""
    k = taps.size
    weight = _device_taps(taps.tobytes(), img.device)
    flat = img.reshape(-1, 1, *img.shape[-2:]).to(torch.float32)
    flat = F.conv2d(F.pad(flat, (k // 2, k // 2, 0, 0), mode="reflect"), weight.view(1, 1, 1, k))
    flat = F.conv2d(F.pad(flat, (0, 0, k // 2, k // 2), mode="reflect"), weight.view(1, 1, k, 1))
    return flat.reshape(img.shape)


def _separable(img: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """Correlation of (B, C, H, W) with ``outer(taps, taps)``, reflect-101 border, as two 1-D passes."""
    return _separable_opencv(img, taps) if img.device.type == "cpu" else _separable_conv(img, taps)


def usm_sharpen(img: torch.Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> torch.Tensor:
    """The course's unsharp mask of a (B, 3, H, W) batch in [0, 1] (docs/course.md section 4).

    ``blur`` = the image filtered with OpenCV's ``getGaussianKernel(radius, 0)`` outer product (radius made
    odd; 51 taps, sigma 8 for the default), reflect-101 border, applied as two 1-D passes;
    ``residual = img - blur``; ``mask = |residual| * 255 > threshold``; ``soft`` = the mask filtered the same
    way; result ``soft * clip(img + weight * residual, 0, 1) + (1 - soft) * img``.

    Args:
        img: (B, C, H, W) float batch in [0, 1] on any device (H, W larger than radius / 2).
        weight: sharpening weight.
        radius: Gaussian kernel size (an even one is made odd, as the course does).
        threshold: residual threshold in 0-255 units.
    """
    radius = radius + 1 if radius % 2 == 0 else radius
    if img.ndim != 4 or min(img.shape[-2:]) <= radius // 2:
        raise FacesrError(
            f"usm_sharpen: expected a (B, C, H, W) batch larger than {radius // 2} px, got {tuple(img.shape)}"
        )
    taps = _usm_taps(radius)
    img = img.to(torch.float32)
    residual = img - _separable(img, taps)
    soft = _separable((residual.abs() * 255 > threshold).to(torch.float32), taps)
    sharp = (img + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * img


def _filter_opencv(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """:func:`filter2d` on the CPU: each sample through :func:`facesr.data.degradations.blur` (OpenCV; zero
    rows of the padded kernel trimmed, separable kernels as two 1-D passes, large ones by FFT)."""
    b, c, h, w = img.shape
    out = []
    for x, kernel in zip(img.to(torch.float32), kernels.detach().cpu().numpy(), strict=True):
        hwc = blur(np.ascontiguousarray(x.permute(1, 2, 0).numpy()), kernel)
        out.append(torch.from_numpy(hwc.reshape(h, w, c)).permute(2, 0, 1))
    return torch.stack(out)


def _filter_conv(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """:func:`filter2d` on any device: reflect padding and one grouped convolution for the whole batch.

    The kernels' zero border (the padding of small kernels) is cut on the host first: same result, less work.
    """
    b, c, h, w = img.shape
    centre = kernels.shape[-1] // 2
    taps = torch.nonzero(kernels.detach().cpu().abs().sum(0))  # (n, 2) positions used by any kernel, on the host
    r = int((taps - centre).abs().max()) if len(taps) else 0
    kernels = kernels[:, centre - r : centre + r + 1, centre - r : centre + r + 1]
    k = kernels.shape[-1]
    weight = kernels.to(img.device, torch.float32, non_blocking=True).repeat_interleave(c, 0).unsqueeze(1)
    padded = F.pad(img.reshape(1, b * c, h, w).to(torch.float32), (k // 2,) * 4, mode="reflect")
    return F.conv2d(padded, weight, groups=b * c).reshape(b, c, h, w)


def filter2d(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Per-sample correlation of (B, C, H, W) with (B, k, k) kernels after reflect-101 padding (the course's
    ``filter2D``; docs/course.md section 4). OpenCV on the CPU, a grouped convolution elsewhere.

    Args:
        img: (B, C, H, W) float batch on any device, H and W larger than k / 2.
        kernels: (B, k, k) float kernels, k odd, on the host (uploaded to ``img``'s device without waiting).
    """
    if kernels.ndim != 3 or kernels.shape[0] != img.shape[0] or kernels.shape[-1] % 2 == 0:
        raise FacesrError(f"filter2d: expected (B, k, k) kernels with k odd for a batch of {img.shape[0]}, "
                          f"got {tuple(kernels.shape)}")  # fmt: skip
    return _filter_opencv(img, kernels) if img.device.type == "cpu" else _filter_conv(img, kernels)


def _resize(
    x: torch.Tensor, mode: int, size: tuple[int, int] | None = None, scale: float | None = None
) -> torch.Tensor:
    """``F.interpolate`` as the course calls it (align_corners False, no antialias); a same-size resize
    with a scale of 1 is the identity and is skipped."""
    name = RESIZE_MODES[mode]
    if scale is not None:
        if scale == 1.0:
            return x
        return F.interpolate(x, scale_factor=scale, mode=name, **({} if name == "area" else {"align_corners": False}))
    return F.interpolate(x, size=size, mode=name, **({} if name == "area" else {"align_corners": False}))


def _to_8bit(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp((x * 255).round(), 0, 255) / 255


def _poisson(x8: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Poisson noise of one rounded image (1, C, h, w): ``Poisson(x8 v) / v - x8`` with ``v`` the number of
    distinct 8-bit values rounded up to a power of 2, counted on the device (a scatter into 256 bins)."""
    bins = torch.zeros(256, device=x8.device).scatter_(0, (x8 * 255).round().long().flatten(), 1.0)
    vals = torch.exp2(torch.ceil(torch.log2(bins.sum())))
    return torch.poisson(x8 * vals, generator=generator) / vals - x8


def _add_noise(
    x: torch.Tensor, p: Mapping[str, torch.Tensor], stage: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Stage ``stage``'s noise for one image (1, 3, h, w): Gaussian or Poisson, gray or colour; clipped to [0, 1]."""
    gray = bool(p[f"noise{stage}_gray"])
    dev = x.device
    if bool(p[f"noise{stage}_gaussian"]):
        shape = (1, 1, *x.shape[-2:]) if gray else x.shape
        noise = torch.randn(shape, generator=generator, device=dev) * (float(p[f"noise{stage}_sigma"]) / 255)
    else:
        # gray: torchvision's rgb_to_grayscale weights, rounded the same way; one field for all channels
        img = _to_8bit(0.2989 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:] if gray else x)
        noise = _poisson(img, generator) * float(p[f"noise{stage}_scale"])
    return (x + noise).clamp(0, 1)


# ------------------------------------------------------------------------------------------ the pipeline


def _sample(params: Mapping[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    return {key: params[key][i] for key in PARAM_KEYS}


def _index(rows: list[int], device: torch.device) -> torch.Tensor:
    """Row indices known on the host as a tensor on ``device`` (an upload that waits on nothing)."""
    return torch.tensor(rows, dtype=torch.long).to(device, non_blocking=True)


def _batched(params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch of params (as collated) or one sample's dict -> a batch, on the host."""
    missing = [key for key in PARAM_KEYS if key not in params]
    if missing:
        raise FacesrError(f"second-order params lack {', '.join(missing)}; make them with sample_second_order_params")
    one = params["kernel1"].ndim == 2
    return {key: (params[key][None] if one else params[key]).cpu() for key in PARAM_KEYS}


def apply_second_order(
    gt: torch.Tensor,
    params: Mapping[str, torch.Tensor],
    generators: Sequence[torch.Generator | None] | None = None,
    settings: SecondOrderSettings | None = None,
    steps: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Degrade a (B, 3, H, W) GT batch with given params -> ``(lq, target)`` on the GT's device.

    ``lq`` is (B, 3, H/scale, W/scale) rounded to 8 bits; ``target`` is the sharpened GT when
    ``settings.gt_usm`` (the course: the degradation starts from it too), else the GT itself. Only the
    noise is random here: sample ``i`` draws it from ``generators[i]`` alone (None: the device's default
    RNG; the meta device has no generators), so its LQ does not depend on the other samples. The params
    are read on the host; no device value is read back. For the course's ranges on a non-CPU device, H
    and W should be at least 64 (reflect padding needs images wider than half a kernel).

    Args:
        gt: float batch in [0, 1] on any device; H and W multiples of ``settings.scale``.
        params: the collated output of :func:`sample_second_order_params` (CPU tensors with a batch
            dimension first), or one sample's dict for a batch of 1.
        generators: one ``torch.Generator`` (on the GT's device) or None per sample; None for all None.
        settings: None for the course's values.
        steps: a dict that receives sample 0's image after every step, in order (for figures).
    """
    s = settings or SecondOrderSettings()
    if not torch.is_tensor(gt) or gt.ndim != 4 or gt.shape[1] != 3 or not gt.is_floating_point():
        got = f"{gt.dtype} {tuple(gt.shape)}" if torch.is_tensor(gt) else type(gt).__name__
        raise FacesrError(f"apply_second_order: expected a float (B, 3, H, W) GT batch in [0, 1], got {got}")
    b, _, h, w = gt.shape
    if h % s.scale or w % s.scale:
        raise FacesrError(f"apply_second_order: GT size {(h, w)} is not a multiple of the x{s.scale} scale")
    p = _batched(params)
    if p["kernel1"].shape[0] != b:
        raise FacesrError(f"apply_second_order: params for {p['kernel1'].shape[0]} samples, GT batch of {b}")
    gens = list(generators) if generators is not None else [None] * b
    if len(gens) != b:
        raise FacesrError(f"apply_second_order: {len(gens)} generators for a batch of {b}")
    dev = gt.device
    if any(g is not None and (g.device.type, g.device.index or 0) != (dev.type, dev.index or 0) for g in gens):
        raise FacesrError(f"apply_second_order: give generators on the GT's device ({dev}) or None")
    out_size = (h // s.scale, w // s.scale)
    per = [_sample(p, i) for i in range(b)]

    def record(name: str, img: torch.Tensor) -> None:
        if steps is not None:
            steps[name] = img.detach().clone()

    with torch.no_grad():
        record("GT", gt[0])
        target = usm_sharpen(gt, s.usm_weight, s.usm_radius, s.usm_threshold) if s.gt_usm else gt.to(torch.float32)
        if s.gt_usm:
            record("sharpened GT (USM)", target[0])
        x = filter2d(target, p["kernel1"])
        record("1 blur", x[0])
        xs = []
        for i, (q, g) in enumerate(zip(per, gens, strict=True)):
            t = _resize(x[i : i + 1], int(q["resize1_mode"]), scale=float(q["resize1_scale"]))
            if i == 0:
                record("1 resize", t[0])
            xs.append(_add_noise(t, q, 1, g)[0])
        record("1 noise", xs[0])
        xs = jpeg_torch_list([t.clamp(0, 1) for t in xs], p["jpeg1_quality"])
        record("1 JPEG", xs[0])
        for i, q in enumerate(per):
            t = xs[i][None]
            if bool(q["blur2"]):
                t = filter2d(t, q["kernel2"][None])
                if i == 0:
                    record("2 blur", t[0])
            size = (int(out_size[0] * float(q["resize2_scale"])), int(out_size[1] * float(q["resize2_scale"])))
            t = _resize(t, int(q["resize2_mode"]), size=size)
            if i == 0:
                record("2 resize", t[0])
            xs[i] = _add_noise(t, q, 2, gens[i])[0]
        record("2 noise", xs[0])
        # Final step: [resize to the LQ size + sinc] then JPEG, or JPEG then [resize + sinc], per sample.
        jpeg_first = [i for i, q in enumerate(per) if not bool(q["final_sinc_first"])]
        if jpeg_first:
            done = jpeg_torch_list([xs[i].clamp(0, 1) for i in jpeg_first], p["jpeg2_quality"][jpeg_first])
            for i, t in zip(jpeg_first, done, strict=True):
                xs[i] = t
            if jpeg_first[0] == 0:
                record("final JPEG", xs[0])
        x = torch.cat([_resize(t[None], int(q["final_mode"]), size=out_size) for t, q in zip(xs, per, strict=True)])
        record("final resize", x[0])
        sinc = [i for i, q in enumerate(per) if bool(q["final_sinc"])]
        if sinc:  # the others have the identity pulse
            idx = _index(sinc, dev)
            x = x.index_copy(0, idx, filter2d(x.index_select(0, idx), p["sinc_kernel"][sinc]))
            if sinc[0] == 0:
                record("final sinc", x[0])
        sinc_first = [i for i, q in enumerate(per) if bool(q["final_sinc_first"])]
        if sinc_first:
            idx = _index(sinc_first, dev)
            x = x.index_copy(0, idx, jpeg_torch(x.index_select(0, idx).clamp(0, 1), p["jpeg2_quality"][sinc_first]))
            if sinc_first[0] == 0:
                record("final JPEG", x[0])
        lq = _to_8bit(x)
        record("LQ", lq[0])
    return lq, target


def _seeds(generator: torch.Generator | None, n: int) -> list[int]:
    """``n`` numpy seeds drawn from a torch generator (on a GPU this reads ``n`` integers back once)."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, 2**62, (n,), generator=generator, device=device).tolist()


def degrade_second_order(
    gt: torch.Tensor,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    settings: SecondOrderSettings | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Second-order degradation of a (B, 3, H, W) GT batch in [0, 1] -> ``(lq, target)`` (docs/course.md section 4).

    Each sample draws all its choices (kernels, resize kinds, scales and modes, noise, JPEG qualities,
    final order) from its own generator, then its noise from the same generator. Because every sample gets
    its own resize scales and modes, a batch is as varied as the course's mix of batches, so no
    training-pair queue is needed; the course drew the resize, noise type and stage-2 blur choices once per
    batch and mixed pairs across iterations through a queue of 176.

    Args:
        gt: float batch in [0, 1] on any device (512x512 for the course -> 128x128 LQ).
        generator: one ``torch.Generator`` per sample (sample ``i`` then depends on ``generator[i]`` alone;
            the trainer seeds each by (seed, iteration, index in the global batch)), one generator for the
            whole batch, or None for torch's default RNG. The choices are drawn on the host from a numpy
            generator seeded by the torch generator (for a GPU generator this reads one integer back per
            sample); training uses :func:`sample_second_order_params` in the DataLoader workers instead.
        settings: None for the course's values.

    Returns:
        ``lq`` (B, 3, H/4, W/4) rounded to 8 bits and the training target (the sharpened GT when
        ``settings.gt_usm``, as the course).
    """
    s = settings or SecondOrderSettings()
    if not torch.is_tensor(gt) or gt.ndim != 4:
        got = f"{gt.dtype} {tuple(gt.shape)}" if torch.is_tensor(gt) else type(gt).__name__
        raise FacesrError(f"degrade_second_order: expected a float (B, 3, H, W) GT batch in [0, 1], got {got}")
    b = gt.shape[0]
    if isinstance(generator, Sequence):
        if len(generator) != b:
            raise FacesrError(f"degrade_second_order: {len(generator)} generators for a batch of {b}")
        gens: list[torch.Generator | None] = list(generator)
        seeds = [_seeds(g, 1)[0] for g in gens]
    else:
        gens, seeds = [generator] * b, _seeds(generator, b)
    draws = [sample_second_order_params(np.random.default_rng(seed), s) for seed in seeds]
    params = {key: torch.stack([d[key] for d in draws]) for key in PARAM_KEYS}
    return apply_second_order(gt, params, gens, s)

