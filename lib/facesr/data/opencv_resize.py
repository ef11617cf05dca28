"""OpenCV's float ``cv2.resize`` in torch, on any device: :func:`resize_torch` and the weight matrices behind it.

OpenCV's 2-D resize is separable: each axis is a (out, in) matrix of OpenCV's own coefficients
(:func:`resize_matrix`: INTER_LINEAR, INTER_CUBIC, INTER_AREA down and up), so ``M_h @ img @ M_w.T``
reproduces it. The matrices (and their few-tap gather form) are uploaded once per (sizes, mode, device) and
cached there, so the GPU degradation never uploads them again.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

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


@lru_cache(maxsize=4096)
def device_matrix(in_size: int, out_size: int, interpolation: str, device: torch.device) -> torch.Tensor:
    """``resize_matrix`` as float32 on ``device``, uploaded once per (sizes, mode, device)."""
    mat = resize_matrix(in_size, out_size, interpolation).astype(np.float32)
    return torch.from_numpy(mat).to(device, non_blocking=True)


@lru_cache(maxsize=4096)
def _device_taps(in_size: int, out_size: int, interpolation: str, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``_taps`` on ``device``, uploaded once: (T, out) indices then (T, out) weights, one row per tap."""
    idx, weight = _taps(in_size, out_size, interpolation)
    idx, weight = (torch.from_numpy(a).to(device, non_blocking=True) for a in (idx, weight))
    return tuple(idx.unbind(0)) + tuple(weight.unbind(0))


def _resize_axis(x: torch.Tensor, dim: int, out_size: int, interpolation: str) -> torch.Tensor:
    """OpenCV's 1-D resize of ``x`` along ``dim``: a dense matmul for area down (many taps per output),
    a sum of a few gathered, weighted copies otherwise."""
    if interpolation == "area" and out_size < x.shape[dim]:
        mat = device_matrix(x.shape[dim], out_size, "area", x.device)
        return (mat @ x) if dim == -2 else (x @ mat.T)
    taps = _device_taps(x.shape[dim], out_size, interpolation, x.device)
    shape = [1] * x.ndim
    shape[dim] = out_size
    out = None
    for i, w in zip(taps[: len(taps) // 2], taps[len(taps) // 2 :], strict=True):
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
