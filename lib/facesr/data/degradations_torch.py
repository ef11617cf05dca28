"""The course degradation for a torch batch on any device (:func:`degrade_batch`).

Same distribution as ``facesr.data.degradations.degrade``, each sample with its own parameters drawn from a
``torch.Generator``. Blur is an FFT correlation with reflect-101 padding; every resize is a pair of
per-axis weight matrices that reproduce OpenCV's float ``cv2.resize`` coefficients (INTER_LINEAR,
INTER_CUBIC, INTER_AREA down and up), applied as ``W_h @ img @ W_w^T``; JPEG goes through OpenCV on
the CPU (the course's codec, bit-exact) unless ``gpu_jpeg`` asks for torchvision's nvJPEG.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from facesr.data.degradations import DegradationParams, DegradationSettings, fast_len, jpeg_roundtrip_uint8
from facesr.errors import FacesrError


@lru_cache(maxsize=2048)
def resize_matrix(in_size: int, out_size: int, interpolation: str) -> np.ndarray:
    """(out_size, in_size) float64 matrix M with ``M @ x`` == OpenCV's 1-D float resize of ``x``.

    Coefficients follow OpenCV's ``resize`` (``(dx + 0.5) * scale - 0.5`` sampling, A = -0.75 cubic with
    replicated border, ``computeResizeAreaTab`` boxes for area down, the area-mode linear weights for
    area up), in float32 as OpenCV computes them; OpenCV's 2-D resize is separable, so
    ``M_h @ img @ M_w.T`` reproduces it.
    """
    if interpolation not in ("bilinear", "area", "bicubic"):
        raise FacesrError(f"resize interpolation={interpolation!r}: use 'bilinear', 'area' or 'bicubic'")
    mat = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    if in_size == out_size:  # cv2.resize copies when the size does not change
        np.fill_diagonal(mat, 1.0)
        return mat
    inv_scale = out_size / in_size
    scale = 1.0 / inv_scale
    if interpolation == "area" and scale >= 1:
        # Box of width `scale` starting at dx * scale: full pixels weigh 1/cell, the cut ends their share.
        fsx1 = rows * scale
        fsx2 = fsx1 + scale
        cell = np.minimum(scale, in_size - fsx1)
        sx2 = np.minimum(np.floor(fsx2), in_size - 1).astype(int)
        sx1 = np.minimum(np.ceil(fsx1), sx2).astype(int)
        cols = np.arange(in_size)
        full = (cols[None] >= sx1[:, None]) & (cols[None] < sx2[:, None])
        mat += full * (1.0 / cell).astype(np.float32)[:, None]
        head = sx1 - fsx1 > 1e-3
        mat[rows[head], sx1[head] - 1] += ((sx1 - fsx1) / cell).astype(np.float32)[head]
        tail = fsx2 - sx2 > 1e-3
        mat[rows[tail], sx2[tail]] += (np.minimum(np.minimum(fsx2 - sx2, 1.0), cell) / cell).astype(np.float32)[tail]
        return mat
    if interpolation == "area":  # OpenCV's area mode when enlarging
        sx = np.floor(rows * scale).astype(int)
        fx = ((rows + 1) - (sx + 1) * inv_scale).astype(np.float32)
        fx = np.where(fx <= 0, np.float32(0), fx - np.floor(fx))
    else:
        f = ((rows + 0.5) * scale - 0.5).astype(np.float32)
        sx = np.floor(f).astype(int)
        fx = f - sx.astype(np.float32)
    if interpolation == "bicubic":
        a, x = np.float32(-0.75), fx.astype(np.float32)
        c0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
        c1 = ((a + 2) * x - (a + 3)) * x * x + 1
        c2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
        for j, c in enumerate((c0, c1, c2, np.float32(1) - c0 - c1 - c2)):
            np.add.at(mat, (rows, np.clip(sx - 1 + j, 0, in_size - 1)), c)  # replicated border
        return mat
    low, high = sx < 0, sx >= in_size - 1  # linear taps clamp to the edge pixel with weight 1
    sx = np.where(low, 0, np.where(high, in_size - 1, sx))
    fx = np.where(low | high, np.float32(0), fx).astype(np.float32)
    mat[rows, sx] += np.float32(1) - fx
    inner = fx != 0
    mat[rows[inner], sx[inner] + 1] += fx[inner]
    return mat


@lru_cache(maxsize=2048)
def _taps(in_size: int, out_size: int, interpolation: str) -> tuple[np.ndarray, np.ndarray]:
    """``resize_matrix`` as (T, out) source indices and weights, T = most non-zeros in a row."""
    mat = resize_matrix(in_size, out_size, interpolation)
    rows, cols = np.nonzero(mat)  # row-major order: each row's columns ascending
    slot = np.arange(rows.size) - np.searchsorted(rows, rows)  # position within the row
    idx = np.zeros((int(slot.max()) + 1, out_size), dtype=np.int64)
    weight = np.zeros(idx.shape, dtype=np.float32)
    idx[slot, rows], weight[slot, rows] = cols, mat[rows, cols]
    return idx, weight


def _resize_axis(x: torch.Tensor, dim: int, out_size: int, interpolation: str) -> torch.Tensor:
    """OpenCV's 1-D resize of ``x`` along ``dim``: a dense matmul for area down (many taps per output),
    a sum of a few gathered, weighted copies otherwise."""
    if interpolation == "area" and out_size < x.shape[dim]:
        mat = torch.from_numpy(resize_matrix(x.shape[dim], out_size, "area")).to(x.device, torch.float32)
        return (mat @ x) if dim == -2 else (x @ mat.T)
    idx, weight = _taps(x.shape[dim], out_size, interpolation)
    shape = [1] * x.ndim
    shape[dim] = out_size
    out = None
    for i, w in zip(torch.from_numpy(idx).to(x.device), torch.from_numpy(weight).to(x.device), strict=True):
        term = x.index_select(dim, i) * w.view(shape)
        out = term if out is None else out + term
    return out


def resize_torch(img: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """OpenCV-equivalent resize of (..., H, W) float to ``size`` = (height, width).

    Bilinear and bicubic use ``F.interpolate`` (align_corners=False, no antialias: the same sampling,
    A = -0.75 and clamped border as OpenCV); area uses OpenCV's own weights (``resize_matrix``).
    """
    if tuple(size) == tuple(img.shape[-2:]):
        return img
    if interpolation in ("bilinear", "bicubic"):
        flat = img.reshape(1, -1, *img.shape[-2:])
        out = F.interpolate(flat, size=tuple(size), mode=interpolation, align_corners=False, antialias=False)
        return out.reshape(*img.shape[:-2], *size)
    return _resize_axis(_resize_axis(img, -1, size[1], interpolation), -2, size[0], interpolation)


def blur_kernels_torch(params: list[DegradationParams], size: int, device: torch.device) -> torch.Tensor:
    """(B, size, size) float32 kernels on ``device`` with ``facesr.data.degradations.blur_kernel``'s formula."""
    sx = torch.tensor([p.sigma_x for p in params], dtype=torch.float64, device=device)
    sy = torch.tensor([p.sigma_y for p in params], dtype=torch.float64, device=device)
    ang = torch.tensor([p.angle for p in params], dtype=torch.float64, device=device)
    cos, sin = torch.cos(ang), torch.sin(ang)
    # Inverse of R diag(sx^2, sy^2) R^T = R diag(1/sx^2, 1/sy^2) R^T.
    a, b = 1 / sx**2, 1 / sy**2
    i00, i11, i01 = a * cos**2 + b * sin**2, a * sin**2 + b * cos**2, (a - b) * cos * sin
    ax = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    y, x = torch.meshgrid(ax, ax, indexing="ij")  # x = column offset, y = row offset
    q = i00[:, None, None] * x * x + 2 * i01[:, None, None] * x * y + i11[:, None, None] * y * y
    k = torch.exp(-0.5 * q)
    return (k / k.sum(dim=(1, 2), keepdim=True)).to(torch.float32)


def blur_torch(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Per-sample correlation of (B, C, H, W) with (B, k, k) kernels, reflect-101 border, via FFT.

    The whole batch at once on a GPU; one sample at a time on the CPU, where the smaller working set
    is faster.
    """
    if not img.is_cuda and img.shape[0] > 1:
        return torch.cat([blur_torch(img[i : i + 1], kernels[i : i + 1]) for i in range(img.shape[0])])
    k = kernels.shape[-1]
    h, w = img.shape[-2:]
    padded = F.pad(img, (k // 2,) * 4, mode="reflect")  # torch "reflect" is OpenCV's reflect-101
    shape = (fast_len(padded.shape[-2]), fast_len(padded.shape[-1]))
    # Kernel spectra: row transforms of the k kernel rows, then the column transform (zero padding implied).
    kspec = torch.fft.fft(torch.fft.rfft(kernels.flip(-1, -2), n=shape[1], dim=-1), n=shape[0], dim=-2)
    spec = torch.fft.rfft2(padded, s=shape) * kspec[:, None]
    return torch.fft.irfft2(spec, s=shape)[..., k - 1 : k - 1 + h, k - 1 : k - 1 + w]


def torchvision_jpeg(img8: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip of a (3, h, w) uint8 tensor with torchvision's codec (nvJPEG on CUDA, libjpeg on the
    CPU). The channels are reversed around the codec so its chroma subsampling sees them as OpenCV sees
    the course's RGB-as-BGR array; on the CPU the result equals ``cv2.imencode``/``imdecode``."""
    from torchvision.io import decode_jpeg, encode_jpeg

    with warnings.catch_warnings():  # torchvision >= 0.29 deprecates its codecs
        warnings.simplefilter("ignore", DeprecationWarning)
        data = encode_jpeg(img8.flip(0).contiguous(), quality=quality).cpu()
        return decode_jpeg(data, device=img8.device).flip(0)


def _jpeg(img: torch.Tensor, quality: int, gpu_codec: bool = False) -> torch.Tensor:
    """JPEG round trip of one (3, h, w) float image.

    By default through OpenCV on the CPU, bit-exact with ``facesr.data.degradations.jpeg_compress`` (the course's
    codec). ``gpu_codec`` uses ``torchvision_jpeg`` (nvJPEG) for CUDA tensors when available; nvJPEG is not
    bit-exact with libjpeg, so check the distribution (benchmarks/degradations.py) before relying on it.
    """
    img8 = (img * 255).round().clamp(0, 255).to(torch.uint8)  # torch.round is half-to-even
    if gpu_codec and img8.is_cuda:
        try:
            return torchvision_jpeg(img8, quality).to(torch.float32) / 255
        except (ImportError, RuntimeError, TypeError, ValueError):
            pass  # no CUDA codec in this torchvision: use OpenCV on the CPU
    out8 = jpeg_roundtrip_uint8(img8.permute(1, 2, 0).cpu().numpy(), quality)
    out = torch.from_numpy(out8).permute(2, 0, 1)
    return out.to(img.device).to(torch.float32) / 255


def sample_params_torch(
    batch: int, generator: torch.Generator | None = None, settings: DegradationSettings | None = None
) -> list[DegradationParams]:
    """``batch`` parameter sets drawn from ``generator`` (same distribution as ``sample_params``)."""
    s = settings or DegradationSettings()
    device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand((batch, 9), generator=generator, device=device, dtype=torch.float64).cpu().numpy()
    cum = np.cumsum(np.asarray(s.resize_probs) / np.sum(s.resize_probs))

    def uni(rng: tuple[float, float], v: float) -> float:
        return float(rng[0] + (rng[1] - rng[0]) * v)

    def pick(v: float) -> str:
        return s.resize_interpolations[min(int(np.searchsorted(cum, v, side="right")), len(cum) - 1)]

    out = []
    for r in u:
        iso = r[0] < s.iso_prob
        sx, sy, ang = uni(s.sigma_range, r[1]), uni(s.sigma_range, r[2]), uni(s.angle_range, r[3])
        out.append(DegradationParams(
            "iso" if iso else "aniso", sx, sx if iso else sy, 0.0 if iso else ang, uni(s.scale_range, r[4]),
            pick(r[5]), uni(s.noise_sigma_range, r[6]), int(round(uni(s.jpeg_quality_range, r[7]))), pick(r[8]),
        ))  # fmt: skip
    return out


def degrade_batch(
    gt: torch.Tensor,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    settings: DegradationSettings | None = None,
    return_params: bool = False,
    gpu_jpeg: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, list[DegradationParams]]:
    """Course degradation of a (B, 3, H, W) float batch in [0, 1] -> (B, 3, H/4, W/4) on the same device.

    Args:
        gt: GT batch, float, values in [0, 1], on any device (512x512 for the course).
        generator: ``torch.Generator`` for parameters and noise (default: torch's global one), or one
            generator per sample: sample ``i`` then draws its parameters and noise from ``generator[i]`` alone,
            so its LQ does not depend on the other samples of the batch (the trainer seeds each by
            (seed, iteration, index in the global batch)).
        settings: ranges; the course's when None.
        return_params: also return the list of sampled ``DegradationParams``.
        gpu_jpeg: on CUDA, JPEG with torchvision's nvJPEG instead of OpenCV on the CPU (faster, not
            bit-exact with the course's libjpeg).
    """
    s = settings or DegradationSettings()
    factor = s.gt_size // s.out_size
    if not torch.is_tensor(gt) or gt.ndim != 4 or gt.shape[1] != 3 or not gt.is_floating_point():
        got = f"{gt.dtype} {tuple(gt.shape)}" if torch.is_tensor(gt) else type(gt).__name__
        raise FacesrError(f"degrade_batch: expected a float (B, 3, H, W) tensor in [0, 1], got {got}")
    b, _, h, w = gt.shape
    if h % factor or w % factor:
        raise FacesrError(f"degrade_batch: GT size {(h, w)} is not a multiple of the x{factor} scale")
    if isinstance(generator, Sequence):
        if len(generator) != b:
            raise FacesrError(f"degrade_batch: {len(generator)} generators for a batch of {b}")
        gens = list(generator)
        params = [sample_params_torch(1, g, s)[0] for g in gens]
    else:
        gens = [generator] * b
        params = sample_params_torch(b, generator, s)
    with torch.no_grad():
        x = blur_torch(gt.to(torch.float32), blur_kernels_torch(params, s.kernel_size, gt.device))
        outs = []
        for i, p in enumerate(params):
            small = resize_torch(x[i], (max(1, int(h * p.scale)), max(1, int(w * p.scale))), p.down_interpolation)
            gen = gens[i]
            noise_device = gen.device if gen is not None else gt.device
            noise = torch.randn(small.shape, generator=gen, device=noise_device).to(gt.device)
            small = _jpeg(small + noise * (p.noise_sigma / 255), p.jpeg_quality, gpu_jpeg)
            outs.append(resize_torch(small, (h, w), p.up_interpolation))
        x = torch.stack(outs)
        x = (x * 255).round().clamp(0, 255) / 255  # torch.round is half-to-even, like np.round
        lq = F.avg_pool2d(x, factor)  # exact INTER_AREA for an integer factor
    return (lq, params) if return_params else lq
