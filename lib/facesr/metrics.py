"""Image-quality metrics with MMEditing 0.x conventions (docs/course.md section 8), plus the bicubic baseline.

``psnr`` and ``ssim`` score uint8 HxWx3 RGB arrays: network outputs go through ``tensor_to_uint8``
(clamp to [0, 1], x255, round, uint8) first, exactly as MMEditing scores its outputs. The outputs that are
scored or submitted, and the training degradation, are computed in full float32 (:func:`exact_fp32`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2
import numpy as np
import torch
from skimage.metrics import structural_similarity

# ITU-R BT.601 luma on 0-255 values: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255.
_Y_COEFFS_RGB = np.array([65.481, 128.553, 24.966])


def _check_pair(sr: np.ndarray, gt: np.ndarray, crop_border: int) -> None:
    for name, img in (("sr", sr), ("gt", gt)):
        if not isinstance(img, np.ndarray):
            raise ValueError(f"{name} must be a numpy uint8 HxWx3 array, got {type(img).__name__}")
        if img.dtype != np.uint8:
            raise ValueError(
                f"{name} must be uint8 (0-255), got dtype {img.dtype}; convert network outputs with "
                "tensor_to_uint8"
            )
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{name} must have shape HxWx3 (RGB), got shape {img.shape}")
    if sr.shape != gt.shape:
        raise ValueError(f"sr and gt differ in size: sr {sr.shape}, gt {gt.shape}")
    if not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise ValueError(f"crop_border must be a non-negative int, got {crop_border!r}")
    if 2 * crop_border >= min(sr.shape[:2]):
        raise ValueError(f"crop_border {crop_border} leaves nothing of images of shape {sr.shape}")


def _crop(img: np.ndarray, crop_border: int) -> np.ndarray:
    if crop_border == 0:
        return img
    return img[crop_border:-crop_border, crop_border:-crop_border, ...]


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Y channel (HxW, float, 0-255 scale, not rounded) of a uint8 HxWx3 RGB image.

    Follows MMEditing's ``to_y_channel``: computed on float32 [0, 1] values, returned as float32 x255.
    """
    y = np.dot(img.astype(np.float32) / 255.0, _Y_COEFFS_RGB) + 16.0
    return (y / 255.0).astype(np.float32) * 255.0


def _prepare(img: np.ndarray, crop_border: int, y_channel: bool) -> np.ndarray:
    img = _crop(img, crop_border)
    if y_channel:
        return rgb_to_y(img).astype(np.float64)
    return img.astype(np.float64)


def _prepare_pair(sr: np.ndarray, gt: np.ndarray, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    _check_pair(sr, gt, crop_border)
    return _prepare(sr, crop_border, y_channel), _prepare(gt, crop_border, y_channel)


def psnr(sr: np.ndarray, gt: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """PSNR in dB, ``20 log10(255 / sqrt(MSE))`` over all channels; ``inf`` for identical images.

    Args:
        sr (np.ndarray): uint8 HxWx3 RGB image.
        gt (np.ndarray): uint8 HxWx3 RGB image of the same shape.
        crop_border (int): Pixels removed from every side before scoring. Default: 0.
        y_channel (bool): Score the Y channel of YCbCr instead of RGB. Default: False.

    Raises:
        ValueError: wrong type, dtype or shape, or different sizes (the message names what it got).
    """
    a, b = _prepare_pair(sr, gt, crop_border, y_channel)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(20.0 * np.log10(255.0 / np.sqrt(mse)))


def ssim(sr: np.ndarray, gt: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """SSIM with an 11x11 Gaussian window (sigma 1.5), valid region, averaged over channels.

    Equal to MMEditing 0.x's ``ssim`` for ``crop_border=0``; with ``crop_border > 0`` all channels are
    scored (MMEditing scores only the first, a known bug).

    Args:
        sr (np.ndarray): uint8 HxWx3 RGB image.
        gt (np.ndarray): uint8 HxWx3 RGB image of the same shape.
        crop_border (int): Pixels removed from every side before scoring. Default: 0.
        y_channel (bool): Score the Y channel of YCbCr instead of RGB. Default: False.

    Raises:
        ValueError: wrong type, dtype or shape, different sizes, or smaller than 11x11 after cropping.
    """
    a, b = _prepare_pair(sr, gt, crop_border, y_channel)
    if min(a.shape[:2]) < 11:
        raise ValueError(f"ssim needs at least 11x11 pixels after cropping, got {a.shape[:2]}")
    return float(
        structural_similarity(
            a,
            b,
            data_range=255,
            channel_axis=None if y_channel else -1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def tensor_to_uint8(t: torch.Tensor) -> np.ndarray:
    """Float tensor in [0, 1] -> uint8 image(s): clamp, x255, round, cast (MMEditing's ``tensor2img``).

    (3, H, W) -> HxWx3; (B, 3, H, W) -> BxHxWx3.
    """
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"tensor_to_uint8 needs a torch.Tensor, got {type(t).__name__}")
    if t.ndim not in (3, 4):
        raise ValueError(f"tensor_to_uint8 needs shape (3, H, W) or (B, 3, H, W), got {tuple(t.shape)}")
    img = t.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    img = img.permute(1, 2, 0) if img.ndim == 3 else img.permute(0, 2, 3, 1)
    return img.cpu().numpy()


def bicubic_upscale(lq_uint8: np.ndarray, scale: int = 4) -> np.ndarray:
    """Bicubic baseline: ``cv2.resize(..., INTER_CUBIC)`` of a uint8 HxWx3 image by ``scale``.

    OpenCV resizes uint8 images with saturation, so the result is already clipped to 0-255.
    """
    if not isinstance(lq_uint8, np.ndarray) or lq_uint8.dtype != np.uint8 or lq_uint8.ndim != 3:
        got = (
            f"dtype {lq_uint8.dtype}, shape {lq_uint8.shape}"
            if isinstance(lq_uint8, np.ndarray)
            else type(lq_uint8).__name__
        )
        raise ValueError(f"bicubic_upscale needs a uint8 HxWxC array, got {got}")
    if not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    h, w = lq_uint8.shape[:2]
    out = cv2.resize(np.ascontiguousarray(lq_uint8), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    # cv2 drops the channel axis of a 1-channel image; the uint8 result needs no clipping.
    return out.reshape(h * scale, w * scale, lq_uint8.shape[2])


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """Float32 matrix products and convolutions in full float32 for the duration (TF32 off in cuBLAS and cuDNN),
    the previous settings restored after.

    cuDNN convolutions run in TF32 (10-bit mantissas) by default on Ampere and newer cards and in float32 on
    older ones, so outputs computed with it depend on the card. The kit computes in float32 what it scores
    or submits (validation, predict, evaluate, TTA) and the training degradation, so that a val PSNR, a
    leaderboard PNG or a training pair is the same on a T4 and an H100; the training step keeps the card's
    default (its precision is the run's ``amp``).
    """
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32 = cudnn.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved
