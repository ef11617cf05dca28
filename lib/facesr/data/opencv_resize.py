"""OpenCV's float ``cv2.resize`` in torch, on any device: :func:`resize_torch` and the coefficients behind it.

OpenCV's 2-D resize is separable: each axis is a (out, in) matrix of OpenCV's own coefficients
(:func:`resize_matrix`: INTER_LINEAR, INTER_CUBIC, INTER_AREA down and up), so ``M_h @ img @ M_w.T``
reproduces it. Every row of such a matrix has a few non-zero entries (2 linear, 4 cubic, 2 area up,
``floor(in / out) + 2`` at most area down), so the kit keeps them in their few-tap form
(:func:`resize_taps`: T source indices and T weights per output pixel) and resizes by gathering T shifted
copies. The taps are computed where they are used, with torch's own arithmetic on that device (no upload: a
GPU degradation never copies a table from the host), and the last :data:`TAP_CACHE_SIZE` of them are kept,
so a run that draws hundreds of sizes holds a few MB, not a dense matrix per size.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from facesr.errors import FacesrError

INTERPOLATIONS = ("bilinear", "area", "bicubic")
#: (sizes, mode, device) combinations whose taps are kept: a few MB at most (an area-down table from 512 to 32
#: is 18 x 32 entries), and enough for a run whose sizes repeat (the course's up-resize is always to 512).
TAP_CACHE_SIZE = 256


def _check(interpolation: str) -> None:
    if interpolation not in INTERPOLATIONS:
        raise FacesrError(f"resize interpolation={interpolation!r}: use 'bilinear', 'area' or 'bicubic'")


def _linear_taps(sx: torch.Tensor, fx: torch.Tensor, in_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV's two linear taps from the left source index ``sx`` and the float32 fraction ``fx``; a tap left
    of the first or right of the last pixel clamps to the edge pixel with weight 1."""
    out = (sx < 0) | (sx >= in_size - 1)
    sx = sx.clamp(0, in_size - 1)
    fx = torch.where(out, 0.0, fx)
    idx = torch.stack([sx, (sx + 1).clamp(max=in_size - 1)])
    return idx, torch.stack([1 - fx, fx])


def _area_down_taps(in_size: int, scale: float, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV's ``computeResizeAreaTab`` box of width ``scale`` from ``dx * scale``: full pixels weigh 1/cell,
    the partly covered ends their share. T = floor(scale) + 2 positions, from the one before the first full
    pixel to the one after the last (checked for every size pair up to 1100); each position has one weight."""
    fsx1 = rows * scale
    fsx2 = fsx1 + scale
    cell = torch.clamp(in_size - fsx1, max=scale)
    sx2 = torch.clamp(torch.floor(fsx2), max=in_size - 1)
    sx1 = torch.minimum(torch.ceil(fsx1), sx2)
    full = (1.0 / cell).float()
    head = torch.where(sx1 - fsx1 > 1e-3, ((sx1 - fsx1) / cell).float(), 0.0)
    tail_share = torch.clamp(torch.clamp(fsx2 - sx2, max=1.0), max=cell)  # min(min(fsx2 - sx2, 1), cell)
    tail = torch.where(fsx2 - sx2 > 1e-3, (tail_share / cell).float(), 0.0)
    pos = sx1[None] - 1 + torch.arange(int(scale) + 2, device=rows.device, dtype=rows.dtype)[:, None]
    weight = torch.where(pos == sx1 - 1, head, 0.0) + torch.where((pos >= sx1) & (pos < sx2), full, 0.0)
    weight = weight + torch.where(pos == sx2, tail, 0.0)
    return pos.clamp(0, in_size - 1).long(), weight


def _cubic_taps(sx: torch.Tensor, fx: torch.Tensor, in_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV's four A = -0.75 cubic taps at sx-1 .. sx+2 (float32 coefficients, replicated border)."""
    a = -0.75
    x1, x0 = fx + 1, 1 - fx
    c0 = ((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a
    c1 = ((a + 2) * fx - (a + 3)) * fx * fx + 1
    c2 = ((a + 2) * x0 - (a + 3)) * x0 * x0 + 1
    idx = torch.stack([(sx - 1 + j).clamp(0, in_size - 1) for j in range(4)])
    return idx, torch.stack([c0, c1, c2, 1 - c0 - c1 - c2])


def _compute_taps(in_size: int, out_size: int, interpolation: str,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    rows = torch.arange(out_size, device=device, dtype=torch.float64)
    if in_size == out_size:  # cv2.resize copies when the size does not change
        return rows.long()[None], torch.ones(1, out_size, device=device)
    inv_scale = out_size / in_size
    scale = 1.0 / inv_scale
    if interpolation == "area" and scale >= 1:
        return _area_down_taps(in_size, scale, rows)
    if interpolation == "area":  # OpenCV's area mode when enlarging: linear weights of its own
        sx = torch.floor(rows * scale)
        fx = ((rows + 1) - (sx + 1) * inv_scale).float()
        fx = torch.where(fx <= 0, 0.0, fx - torch.floor(fx))
        return _linear_taps(sx.long(), fx, in_size)
    f = ((rows + 0.5) * scale - 0.5).float()
    sx = torch.floor(f)
    fx = f - sx
    make = _cubic_taps if interpolation == "bicubic" else _linear_taps
    return make(sx.long(), fx, in_size)


@lru_cache(maxsize=TAP_CACHE_SIZE)
def _cached_taps(in_size: int, out_size: int, interpolation: str,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return _compute_taps(in_size, out_size, interpolation, device)


def resize_taps(in_size: int, out_size: int, interpolation: str,
                device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV's 1-D float resize from ``in_size`` to ``out_size`` as (T, out_size) int64 source indices and
    float32 weights on ``device``: output ``i`` is ``sum_t weight[t, i] * x[idx[t, i]]``.

    Coefficients follow OpenCV's ``resize`` (``(dx + 0.5) * scale - 0.5`` sampling, A = -0.75 cubic with
    replicated border, ``computeResizeAreaTab`` boxes for area down, the area-mode linear weights for
    area up), in float32 as OpenCV computes them (positions in float64), with torch's arithmetic on
    ``device``: nothing is uploaded. The last :data:`TAP_CACHE_SIZE` tables are cached; treat them as
    read-only.

    Args:
        in_size: The source length.
        out_size: The resized length.
        interpolation: ``"bilinear"``, ``"area"`` or ``"bicubic"``.
        device: Where the taps are made and kept.
    """
    _check(interpolation)
    return _cached_taps(int(in_size), int(out_size), interpolation, torch.device(device))


def resize_matrix(in_size: int, out_size: int, interpolation: str) -> np.ndarray:
    """(out_size, in_size) float64 matrix M with ``M @ x`` == OpenCV's 1-D float resize of ``x``.

    :func:`resize_taps` written out densely (taps at one index add up); OpenCV's 2-D resize is separable,
    so ``M_h @ img @ M_w.T`` reproduces it. Not cached (out x in entries): for figures and checks.
    """
    idx, weight = resize_taps(in_size, out_size, interpolation)
    mat = np.zeros((out_size, in_size))
    rows = np.broadcast_to(np.arange(out_size), idx.shape)
    np.add.at(mat, (rows, idx.numpy()), weight.numpy().astype(np.float64))
    return mat


def _resize_axis(x: torch.Tensor, dim: int, out_size: int, interpolation: str) -> torch.Tensor:
    """OpenCV's 1-D resize of ``x`` along ``dim``: the sum of T gathered, weighted copies."""
    if x.shape[dim] == out_size:
        return x
    idx, weight = resize_taps(x.shape[dim], out_size, interpolation, x.device)
    shape = [1] * x.ndim
    shape[dim] = out_size
    out = None
    for i, w in zip(idx, weight, strict=True):
        term = x.index_select(dim, i) * w.view(shape)
        out = term if out is None else out + term
    return out


def resize_torch(img: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """OpenCV-equivalent resize of (..., H, W) float to ``size`` = (height, width).

    Bilinear and bicubic use ``F.interpolate`` (align_corners=False, no antialias: the same sampling,
    A = -0.75 and clamped border as OpenCV); area uses OpenCV's own weights (:func:`resize_taps`).
    """
    _check(interpolation)
    if tuple(size) == tuple(img.shape[-2:]):
        return img
    if interpolation in ("bilinear", "bicubic"):
        flat = img.reshape(1, -1, *img.shape[-2:])
        out = F.interpolate(flat, size=tuple(size), mode=interpolation, align_corners=False, antialias=False)
        return out.reshape(*img.shape[:-2], *size)
    return _resize_axis(_resize_axis(img, -1, size[1], interpolation), -2, size[0], interpolation)
