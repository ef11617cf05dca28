"""The 2024/2025 training degradation: Real-ESRGAN's second-order pipeline, per sample, on any device.

docs/course.md section 4 gives every step and value. The randomness and the computation are split so that
the trainer can draw where it is cheap and compute where it is fast:

- :func:`facesr.data.second_order_draws.sample_second_order_params` draws ONE sample's choices on the CPU
  from a ``numpy.random.Generator`` (the kernels as the course's dataset made them, every resize, noise, JPEG
  and order choice) and returns a dict of fixed-shape CPU tensors that ``default_collate`` stacks.
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
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from facesr.data.degradations import blur
from facesr.data.jpeg_torch import jpeg_torch, jpeg_torch_list
from facesr.data.second_order_draws import (
    PARAM_KEYS,
    RESIZE_MODES,
    SecondOrderSettings,
    batched_params,
    params_of,
    sample_second_order_params,
)
from facesr.errors import FacesrError
from facesr.metrics import exact_fp32

__all__ = ["SecondOrderSettings", "apply_second_order", "degrade_second_order", "filter2d", "jpeg_torch", "usm_sharpen"]

# ------------------------------------------------------------------------------------------ the single ops


@lru_cache(maxsize=8)
def usm_taps(radius: int) -> np.ndarray:
    """OpenCV's ``getGaussianKernel(radius, 0)`` (sigma from the size: 8.0 for 51), float32."""
    import cv2

    return cv2.getGaussianKernel(radius, 0).astype(np.float32).ravel()


@lru_cache(maxsize=16)
def _device_taps(taps: bytes, device: torch.device) -> torch.Tensor:
    """1-D float32 taps on ``device``, uploaded once."""
    return torch.from_numpy(np.frombuffer(taps, dtype=np.float32).copy()).to(device, non_blocking=True)


def separable_opencv(img: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """:func:`_separable` on the CPU: ``cv2.sepFilter2D`` plane by plane."""
    import cv2

    planes = img.detach().to(torch.float32).contiguous().reshape(-1, *img.shape[-2:]).numpy()
    out = [cv2.sepFilter2D(p, -1, taps, taps, borderType=cv2.BORDER_REFLECT_101) for p in planes]
    return torch.from_numpy(np.stack(out)).reshape(img.shape)


def separable_conv(img: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """:func:`_separable` on any device: reflect padding and two 1-D convolutions."""
    k = taps.size
    weight = _device_taps(taps.tobytes(), img.device)
    flat = img.reshape(-1, 1, *img.shape[-2:]).to(torch.float32)
    flat = F.conv2d(F.pad(flat, (k // 2, k // 2, 0, 0), mode="reflect"), weight.view(1, 1, 1, k))
    flat = F.conv2d(F.pad(flat, (0, 0, k // 2, k // 2), mode="reflect"), weight.view(1, 1, k, 1))
    return flat.reshape(img.shape)


def _separable(img: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """Correlation of (B, C, H, W) with ``outer(taps, taps)``, reflect-101 border, as two 1-D passes."""
    return separable_opencv(img, taps) if img.device.type == "cpu" else separable_conv(img, taps)


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
    taps = usm_taps(radius)
    img = img.to(torch.float32)
    residual = img - _separable(img, taps)
    soft = _separable((residual.abs() * 255 > threshold).to(torch.float32), taps)
    sharp = (img + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * img


def filter_opencv(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """:func:`filter2d` on the CPU: each sample through :func:`facesr.data.degradations.blur` (OpenCV; zero
    rows of the padded kernel trimmed, separable kernels as two 1-D passes, large ones by FFT)."""
    b, c, h, w = img.shape
    out = []
    for x, kernel in zip(img.to(torch.float32), kernels.detach().cpu().numpy(), strict=True):
        hwc = blur(np.ascontiguousarray(x.permute(1, 2, 0).numpy()), kernel)
        out.append(torch.from_numpy(hwc.reshape(h, w, c)).permute(2, 0, 1))
    return torch.stack(out)


def kernel_radius(kernels: torch.Tensor) -> int:
    """How far from the centre the taps of any of the (B, k, k) host ``kernels`` reach: beyond it they are the
    zero padding of smaller kernels, which a convolution can leave out (same result, less work)."""
    centre = kernels.shape[-1] // 2
    taps = torch.nonzero(kernels.detach().cpu().abs().sum(0))  # (n, 2) positions used by any kernel, on the host
    return int((taps - centre).abs().max()) if len(taps) else 0


def filter_conv(img: torch.Tensor, kernels: torch.Tensor, radius: int | None = None) -> torch.Tensor:
    """:func:`filter2d` on any device: reflect padding and one grouped convolution for the whole batch.

    Args:
        img: (B, C, H, W) float batch.
        kernels: (B, k, k) kernels on ``img``'s device, or on the host (then copied there whole).
        radius: :func:`kernel_radius` of the kernels, known on the host (None: worked out from ``kernels``,
            which reads them back when they are on a device).
    """
    b, c, h, w = img.shape
    centre = kernels.shape[-1] // 2
    r = kernel_radius(kernels) if radius is None else radius
    kernels = kernels.to(img.device, torch.float32, non_blocking=True)[:, centre - r : centre + r + 1,
                                                                       centre - r : centre + r + 1]
    k = kernels.shape[-1]
    weight = kernels.repeat_interleave(c, 0).unsqueeze(1)
    padded = F.pad(img.reshape(1, b * c, h, w).to(torch.float32), (k // 2,) * 4, mode="reflect")
    return F.conv2d(padded, weight, groups=b * c).reshape(b, c, h, w)


def filter2d(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Per-sample correlation of (B, C, H, W) with (B, k, k) kernels after reflect-101 padding (the course's
    ``filter2D``; docs/course.md section 4). OpenCV on the CPU, a grouped convolution elsewhere.

    Args:
        img: (B, C, H, W) float batch on any device, H and W larger than k / 2.
        kernels: (B, k, k) float kernels, k odd, on the host (copied to ``img``'s device, without waiting when
            they are pinned; :func:`apply_second_order` copies its batch's kernels up once instead).
    """
    if kernels.ndim != 3 or kernels.shape[0] != img.shape[0] or kernels.shape[-1] % 2 == 0:
        raise FacesrError(f"filter2d: expected (B, k, k) kernels with k odd for a batch of {img.shape[0]}, "
                          f"got {tuple(kernels.shape)}")  # fmt: skip
    return filter_opencv(img, kernels) if img.device.type == "cpu" else filter_conv(img, kernels)


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


def poisson_noise(x8: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
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
        noise = poisson_noise(img, generator) * float(p[f"noise{stage}_scale"])
    return (x + noise).clamp(0, 1)


# ------------------------------------------------------------------------------------------ the pipeline


#: The params a batch's degradation needs on its device (the rest is read on the host): copied there once.
DEVICE_PARAMS = ("kernel1", "kernel2", "sinc_kernel", "jpeg1_quality", "jpeg2_quality")


def _rows(t: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """The ``rows`` of ``t`` (index lists known on the host), by slices: no index tensor goes to the device."""
    return t if rows == list(range(len(t))) else torch.cat([t[i : i + 1] for i in rows])


def _with_rows(x: torch.Tensor, rows: list[int], new: torch.Tensor) -> torch.Tensor:
    """``x`` with its ``rows`` replaced by those of ``new``, in order."""
    parts = list(x.unbind(0))
    for j, i in enumerate(rows):
        parts[i] = new[j]
    return torch.stack(parts)


def _filtered(img: torch.Tensor, host: torch.Tensor, on_device: torch.Tensor) -> torch.Tensor:
    """:func:`filter2d` of ``img`` with kernels already on its device (``on_device``) and their ``host`` copy
    (OpenCV's input on the CPU; elsewhere only their extent is read)."""
    if img.device.type == "cpu":
        return filter_opencv(img, host)
    return filter_conv(img, on_device, kernel_radius(host))


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
    are read on the host; no device value is read back, and what the device needs of them
    (:data:`DEVICE_PARAMS`: kernels, JPEG qualities) goes there in one copy each, from the loader's pinned
    batch in training (waiting on nothing). For the course's ranges on a non-CPU device, H and W should be
    at least 64 (reflect padding needs images wider than half a kernel).

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
    p = batched_params(params)
    if p["kernel1"].shape[0] != b:
        raise FacesrError(f"apply_second_order: params for {p['kernel1'].shape[0]} samples, GT batch of {b}")
    gens = list(generators) if generators is not None else [None] * b
    if len(gens) != b:
        raise FacesrError(f"apply_second_order: {len(gens)} generators for a batch of {b}")
    dev = gt.device
    if any(g is not None and (g.device.type, g.device.index or 0) != (dev.type, dev.index or 0) for g in gens):
        raise FacesrError(f"apply_second_order: give generators on the GT's device ({dev}) or None")
    out_size = (h // s.scale, w // s.scale)
    per = [params_of(p, i) for i in range(b)]
    d = {key: p[key].to(dev, non_blocking=True) for key in DEVICE_PARAMS}  # the one copy of each (CPU: as is)

    def record(name: str, img: torch.Tensor) -> None:
        if steps is not None:
            steps[name] = img.detach().clone()

    with torch.no_grad(), exact_fp32():  # the same pairs on every card (no TF32 convolutions)
        record("GT", gt[0])
        target = usm_sharpen(gt, s.usm_weight, s.usm_radius, s.usm_threshold) if s.gt_usm else gt.to(torch.float32)
        if s.gt_usm:
            record("sharpened GT (USM)", target[0])
        x = _filtered(target, p["kernel1"], d["kernel1"])
        record("1 blur", x[0])
        xs = []
        for i, (q, g) in enumerate(zip(per, gens, strict=True)):
            t = _resize(x[i : i + 1], int(q["resize1_mode"]), scale=float(q["resize1_scale"]))
            if i == 0:
                record("1 resize", t[0])
            xs.append(_add_noise(t, q, 1, g)[0])
        record("1 noise", xs[0])
        xs = jpeg_torch_list([t.clamp(0, 1) for t in xs], d["jpeg1_quality"])
        record("1 JPEG", xs[0])
        for i, q in enumerate(per):
            t = xs[i][None]
            if bool(q["blur2"]):
                t = _filtered(t, p["kernel2"][i : i + 1], d["kernel2"][i : i + 1])
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
            done = jpeg_torch_list([xs[i].clamp(0, 1) for i in jpeg_first], _rows(d["jpeg2_quality"], jpeg_first))
            for i, t in zip(jpeg_first, done, strict=True):
                xs[i] = t
            if jpeg_first[0] == 0:
                record("final JPEG", xs[0])
        x = torch.cat([_resize(t[None], int(q["final_mode"]), size=out_size) for t, q in zip(xs, per, strict=True)])
        record("final resize", x[0])
        sinc = [i for i, q in enumerate(per) if bool(q["final_sinc"])]
        if sinc:  # the others have the identity pulse
            kernels = (_rows(p["sinc_kernel"], sinc), _rows(d["sinc_kernel"], sinc))
            x = _with_rows(x, sinc, _filtered(_rows(x, sinc), *kernels))
            if sinc[0] == 0:
                record("final sinc", x[0])
        sinc_first = [i for i, q in enumerate(per) if bool(q["final_sinc_first"])]
        if sinc_first:
            done = jpeg_torch_list([x[i].clamp(0, 1) for i in sinc_first], _rows(d["jpeg2_quality"], sinc_first))
            x = _with_rows(x, sinc_first, torch.stack(done))
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

