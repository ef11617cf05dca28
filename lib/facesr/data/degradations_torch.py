"""The course degradation for a torch batch on any device (:func:`degrade_batch`, :func:`apply_degradation_batch`).

Same distribution as ``facesr.data.degradations.degrade`` (docs/course.md section 3), each sample with its
own parameters. Blur is an FFT correlation with reflect-101 padding; every resize is OpenCV's float
``cv2.resize`` in torch (:mod:`facesr.data.opencv_resize`); JPEG is OpenCV's codec, either through OpenCV itself (on a
GPU: one copy down, the JPEGs in parallel threads, one copy up) or through
:func:`facesr.data.jpeg_torch.jpeg_libjpeg`, a torch port of libjpeg's integer codec that equals OpenCV's
output bit for bit and runs on the device.

The trainer's GPU path draws each sample's :class:`DegradationParams` on the CPU in its DataLoader worker
(``sample_params`` after the crop and flip draws, exactly as the CPU path), collates them as
:func:`params_to_tensor` rows and calls :func:`apply_degradation_batch` on the device, which reads nothing
back when ``jpeg="torch"`` and copies nothing up but those rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from facesr.data.degradations import (
    INTERPOLATIONS,
    DegradationParams,
    DegradationSettings,
    fast_len,
    jpeg_roundtrip_uint8,
)
from facesr.data.jpeg_torch import jpeg_libjpeg_list
from facesr.data.opencv_resize import resize_torch
from facesr.errors import FacesrError
from facesr.metrics import exact_fp32

#: Measured with ``python benchmarks/degradations.py --samples 200 --section jpeg`` (CPU, same seeds, 200
#: samples per image): the mean bicubic PSNR of ``degrade_batch`` LQs is 21.983 / 24.588 / 28.549 dB on
#: astronaut / coffee / chelsea with ``jpeg="opencv"`` and with ``jpeg="torch"``, a difference of 0.000 dB
#: (all 600 LQs identical: the torch codec is libjpeg's integer arithmetic, bit-exact with OpenCV's), inside
#: the 0.05 dB the kit asks for. So CUDA batches use the torch codec by default; tests/test_cuda.py checks that
#: it stays bit-exact on the GPU.
TORCH_JPEG_ON_CUDA = True
JPEG_CODECS = ("opencv", "torch")

#: Column order of :func:`params_to_tensor`; interpolations are coded by their index in ``INTERPOLATION_NAMES``.
PARAM_COLUMNS = ("kernel_kind", "sigma_x", "sigma_y", "angle", "scale", "down_interpolation", "noise_sigma",
                 "jpeg_quality", "up_interpolation")  # fmt: skip
INTERPOLATION_NAMES = tuple(INTERPOLATIONS)


def blur_kernels_torch(table: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size, size) float32 kernels with ``facesr.data.degradations.blur_kernel``'s formula, on the device of
    ``table``, the (B, 9) float64 rows of :func:`params_to_tensor` (their sigmas and angle), computed there.

    Args:
        table: the parameter rows, on the device the kernels are for.
        size: the kernel size (odd).
    """
    device = table.device
    sx, sy, ang = table[:, 1], table[:, 2], table[:, 3]
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


@lru_cache(maxsize=1)
def _jpeg_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="facesr-jpeg")


def jpeg_batch(images: Sequence[torch.Tensor], qualities: Sequence[int], codec: str = "opencv") -> list[torch.Tensor]:
    """JPEG round trip of (3, h, w) float images (sizes may differ) as the course does it: ``x * 255`` rounded
    half to even and saturated to uint8, OpenCV's codec fed the RGB array as BGR, decoded, / 255.

    Args:
        images: float images on one device.
        qualities: one integer quality per image, on the host; for the torch codec also a tensor on the
            images' device (nothing is then copied there).
        codec: ``"opencv"``: OpenCV itself; off the CPU the batch makes one trip (one copy to the host of
            all images, the JPEGs in parallel threads, one copy back). ``"torch"``:
            :func:`facesr.data.jpeg_torch.jpeg_libjpeg_list` on the images' device (bit-exact with OpenCV,
            nothing read back).
    """
    if codec not in JPEG_CODECS:
        raise FacesrError(f"JPEG codec {codec!r}: use one of {', '.join(JPEG_CODECS)}")
    if not images:
        return []
    img8 = [(img * 255).round().clamp(0, 255).to(torch.uint8) for img in images]  # torch.round: half to even
    if codec == "torch":
        return [out.to(torch.float32) / 255 for out in jpeg_libjpeg_list(img8, qualities)]
    hwc = [t.permute(1, 2, 0) for t in img8]
    if images[0].device.type == "cpu":
        outs = [torch.from_numpy(jpeg_roundtrip_uint8(t.contiguous().numpy(), int(q)))
                for t, q in zip(hwc, qualities, strict=True)]  # fmt: skip
    else:
        outs = opencv_one_trip(hwc, qualities)
    return [out.permute(2, 0, 1).to(torch.float32) / 255 for out in outs]


def opencv_one_trip(hwc: Sequence[torch.Tensor], qualities: Sequence[int]) -> list[torch.Tensor]:
    """OpenCV's JPEG of (h, w, 3) uint8 images on any device: one copy of all of them to the host, the codecs
    in parallel threads (cv2 releases the GIL), one copy back -> (h, w, 3) uint8 on the images' device."""
    dev = hwc[0].device
    sizes = [t.numel() for t in hwc]
    host = torch.cat([t.reshape(-1) for t in hwc]).cpu().numpy()  # the one copy down
    parts = [part.reshape(t.shape) for part, t in zip(np.split(host, np.cumsum(sizes)[:-1]), hwc, strict=True)]
    done = list(_jpeg_pool().map(jpeg_roundtrip_uint8, parts, [int(q) for q in qualities]))
    back = torch.from_numpy(np.concatenate([d.reshape(-1) for d in done])).to(dev, non_blocking=True)  # one copy up
    return [part.view(t.shape) for part, t in zip(back.split(sizes), hwc, strict=True)]


def default_jpeg_codec(device: torch.device) -> str:
    """The codec ``degrade_batch`` uses on ``device`` when none is given: OpenCV on the CPU (fastest there), the
    torch codec on CUDA (see ``TORCH_JPEG_ON_CUDA``) and on any other device (e.g. meta, where OpenCV's
    would have to read the batch back).

    Args:
        device: where the batch is.
    """
    if device.type == "cpu" or (device.type == "cuda" and not TORCH_JPEG_ON_CUDA):
        return "opencv"
    return "torch"


def params_to_tensor(params: DegradationParams | Sequence[DegradationParams]) -> torch.Tensor:
    """:class:`DegradationParams` as float64 (9,) (one) or (B, 9) (a list), columns ``PARAM_COLUMNS``.

    Kernel kind 0 = iso, 1 = aniso; interpolations are indices into ``INTERPOLATION_NAMES``. Every value
    survives the round trip through :func:`params_from_tensor` exactly, and ``default_collate`` stacks the
    rows of single samples into a batch.

    Args:
        params: one sample's parameters (from ``sample_params``) or a list of them.
    """
    rows = [params] if isinstance(params, DegradationParams) else list(params)
    table = [[float(p.kernel_kind == "aniso"), p.sigma_x, p.sigma_y, p.angle, p.scale,
              INTERPOLATION_NAMES.index(p.down_interpolation), p.noise_sigma, p.jpeg_quality,
              INTERPOLATION_NAMES.index(p.up_interpolation)] for p in rows]  # fmt: skip
    out = torch.tensor(table, dtype=torch.float64)
    return out[0] if isinstance(params, DegradationParams) else out


def params_from_tensor(table: torch.Tensor) -> list[DegradationParams]:
    """The :class:`DegradationParams` of a (9,) or (B, 9) tensor from :func:`params_to_tensor` (read on the host).

    Args:
        table: the rows, on the CPU (a device tensor would be read back).
    """
    if not torch.is_tensor(table) or table.shape[-1] != len(PARAM_COLUMNS) or table.ndim not in (1, 2):
        got = tuple(table.shape) if torch.is_tensor(table) else type(table).__name__
        raise FacesrError(
            f"degradation params: expected a (B, {len(PARAM_COLUMNS)}) tensor from params_to_tensor, got {got}"
        )
    rows = table.reshape(-1, len(PARAM_COLUMNS)).to("cpu", torch.float64).tolist()
    return [DegradationParams("aniso" if r[0] else "iso", r[1], r[2], r[3], r[4], INTERPOLATION_NAMES[int(r[5])], r[6],
                              int(r[7]), INTERPOLATION_NAMES[int(r[8])]) for r in rows]  # fmt: skip


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


def _check_batch(gt: torch.Tensor, settings: DegradationSettings, name: str) -> int:
    factor = settings.gt_size // settings.out_size
    if not torch.is_tensor(gt) or gt.ndim != 4 or gt.shape[1] != 3 or not gt.is_floating_point():
        got = f"{gt.dtype} {tuple(gt.shape)}" if torch.is_tensor(gt) else type(gt).__name__
        raise FacesrError(f"{name}: expected a float (B, 3, H, W) tensor in [0, 1], got {got}")
    if gt.shape[2] % factor or gt.shape[3] % factor:
        raise FacesrError(f"{name}: GT size {tuple(gt.shape[2:])} is not a multiple of the x{factor} scale")
    return factor


def apply_degradation_batch(
    gt: torch.Tensor,
    params: torch.Tensor | Sequence[DegradationParams],
    generators: Sequence[torch.Generator | None] | None = None,
    settings: DegradationSettings | None = None,
    jpeg: str | None = None,
) -> torch.Tensor:
    """Course degradation of a (B, 3, H, W) batch with given parameters -> (B, 3, H/4, W/4) on the same device.

    Only the noise is random here: sample ``i`` draws it from ``generators[i]`` (None: the default RNG of
    the GT's device; the meta device has none). The parameters are read on the host; with
    ``jpeg="torch"`` no device value is ever read back. The parameter table goes to the device in one copy
    (from the loader's pinned batch, in training: it waits on nothing), and every table the device needs
    (blur kernels, JPEG quantisation tables) is made there from it.

    Args:
        gt: GT batch, float, values in [0, 1], on any device.
        params: (B, 9) float64 CPU tensor of :func:`params_to_tensor` rows (what the DataLoader collates), or
            a list of :class:`DegradationParams`.
        generators: one generator (or None) per sample; None for all None.
        settings: kernel size and scale; the course's when None.
        jpeg: ``"opencv"`` or ``"torch"`` (see :func:`jpeg_batch`); None for :func:`default_jpeg_codec`.
    """
    s = settings or DegradationSettings()
    factor = _check_batch(gt, s, "apply_degradation_batch")
    b, _, h, w = gt.shape
    table = params if torch.is_tensor(params) else params_to_tensor(list(params))
    plist = params_from_tensor(table)
    gens = list(generators) if generators is not None else [None] * b
    if len(plist) != b or len(gens) != b:
        raise FacesrError(
            f"apply_degradation_batch: {len(plist)} parameter sets and {len(gens)} generators for a batch of {b}"
        )
    codec = jpeg or default_jpeg_codec(gt.device)
    with torch.no_grad(), exact_fp32():  # the same pairs on every card (no TF32 convolutions)
        table = table.reshape(-1, len(PARAM_COLUMNS)).to(gt.device, torch.float64, non_blocking=True)  # the one copy
        x = blur_torch(gt.to(torch.float32), blur_kernels_torch(table, s.kernel_size))
        smalls = []
        for i, p in enumerate(plist):
            small = resize_torch(x[i], (max(1, int(h * p.scale)), max(1, int(w * p.scale))), p.down_interpolation)
            gen = gens[i]
            noise_device = gen.device if gen is not None else gt.device
            noise = torch.randn(small.shape, generator=gen, device=noise_device).to(gt.device, non_blocking=True)
            smalls.append(small + noise * (p.noise_sigma / 255))
        smalls = jpeg_batch(smalls, table[:, PARAM_COLUMNS.index("jpeg_quality")] if codec == "torch"
                            else [p.jpeg_quality for p in plist], codec)
        x = torch.stack([resize_torch(t, (h, w), p.up_interpolation) for t, p in zip(smalls, plist, strict=True)])
        x = (x * 255).round().clamp(0, 255) / 255  # torch.round is half-to-even, like np.round
        return F.avg_pool2d(x, factor)  # exact INTER_AREA for an integer factor


def degrade_batch(
    gt: torch.Tensor,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    settings: DegradationSettings | None = None,
    return_params: bool = False,
    jpeg: str | None = None,
) -> torch.Tensor | tuple[torch.Tensor, list[DegradationParams]]:
    """Course degradation of a (B, 3, H, W) float batch in [0, 1] -> (B, 3, H/4, W/4) on the same device.

    Draws each sample's parameters from the generator(s) (:func:`sample_params_torch`, which reads the draws of
    a GPU generator back to the host), then :func:`apply_degradation_batch`. Same samples as before the split
    for the same generators. The trainer's GPU path draws the parameters in its DataLoader workers instead and
    calls :func:`apply_degradation_batch` itself.

    Args:
        gt: GT batch, float, values in [0, 1], on any device (512x512 for the course).
        generator: ``torch.Generator`` for parameters and noise (default: torch's global one), or one
            generator per sample: sample ``i`` then draws its parameters and noise from ``generator[i]`` alone,
            so its LQ does not depend on the other samples of the batch (the trainer seeds each by
            (seed, iteration, index in the global batch)).
        settings: ranges; the course's when None.
        return_params: also return the list of sampled ``DegradationParams``.
        jpeg: ``"opencv"`` or ``"torch"`` (bit-exact with each other); None for :func:`default_jpeg_codec`
            (the torch codec on CUDA, OpenCV elsewhere).
    """
    s = settings or DegradationSettings()
    _check_batch(gt, s, "degrade_batch")
    b = gt.shape[0]
    if isinstance(generator, Sequence):
        if len(generator) != b:
            raise FacesrError(f"degrade_batch: {len(generator)} generators for a batch of {b}")
        gens = list(generator)
        params = [sample_params_torch(1, g, s)[0] for g in gens]
    else:
        gens = [generator] * b
        params = sample_params_torch(b, generator, s)
    lq = apply_degradation_batch(gt, params, gens, s, jpeg)
    return (lq, params) if return_params else lq
