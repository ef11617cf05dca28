"""PSNR / SSIM against independent numpy computations, plus tensor_to_uint8 and the bicubic baseline."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from facesr.metrics import bicubic_upscale, psnr, ssim, tensor_to_uint8


def _pair(seed: int = 0, h: int = 36, w: int = 44) -> tuple[np.ndarray, np.ndarray]:
    """A smooth-ish gt and a noisy sr, uint8 HxWx3 (structure makes SSIM non-trivial)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None] * np.array([1.0, 0.7, -0.5])
    gt = np.clip(base + rng.normal(0, 10, (h, w, 3)), 0, 255).round().astype(np.uint8)
    sr = np.clip(gt.astype(np.float64) + rng.normal(0, 12, (h, w, 3)), 0, 255).round().astype(np.uint8)
    return sr, gt


def _ref_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10.0 * math.log10(255.0**2 / mse)


def _ref_y(img: np.ndarray) -> np.ndarray:
    rgb = img.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def _ref_ssim_2d(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of one channel: 11x11 Gaussian window sigma 1.5, valid region only, written from the formula."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()
    window = np.outer(g, g)

    def filt(img: np.ndarray) -> np.ndarray:
        views = np.lib.stride_tricks.sliding_window_view(img, (11, 11))
        return np.einsum("ijkl,kl->ij", views, window)

    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def _ref_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([_ref_ssim_2d(a[..., c], b[..., c]) for c in range(a.shape[2])]))


def test_psnr_matches_numpy_mse() -> None:
    sr, gt = _pair()
    assert psnr(sr, gt) == pytest.approx(_ref_psnr(sr, gt), abs=1e-10)
    assert 20 < psnr(sr, gt) < 40


def test_psnr_hand_value() -> None:
    gt = np.zeros((8, 8, 3), np.uint8)
    sr = np.full((8, 8, 3), 2, np.uint8)  # MSE 4 -> 20 log10(255 / 2)
    assert psnr(sr, gt) == pytest.approx(20 * math.log10(127.5), abs=1e-12)
    assert isinstance(psnr(sr, gt), float)


def test_identical_images() -> None:
    _, gt = _pair()
    assert psnr(gt, gt.copy()) == float("inf")
    assert psnr(gt, gt, y_channel=True) == float("inf")
    assert ssim(gt, gt.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_formula() -> None:
    sr, gt = _pair(1)
    value = ssim(sr, gt)
    assert value == pytest.approx(_ref_ssim(sr, gt), abs=1e-9)
    assert 0.2 < value < 0.99


def test_crop_border_psnr_and_ssim() -> None:
    sr, gt = _pair(2)
    c = 4
    assert psnr(sr, gt, crop_border=c) == pytest.approx(_ref_psnr(sr[c:-c, c:-c], gt[c:-c, c:-c]), abs=1e-10)
    # All three channels are scored after cropping (unlike MMEditing 0.x, which keeps only the first).
    expected = _ref_ssim(sr[c:-c, c:-c], gt[c:-c, c:-c])
    assert ssim(sr, gt, crop_border=c) == pytest.approx(expected, abs=1e-9)
    first_channel_only = _ref_ssim_2d(sr[c:-c, c:-c, 0], gt[c:-c, c:-c, 0])
    assert abs(expected - first_channel_only) > 1e-4

    # Images that differ only inside the border score as identical once it is cropped.
    damaged = gt.copy()
    damaged[:c] = 0
    damaged[:, -c:] = 255
    assert psnr(damaged, gt) < 30
    assert psnr(damaged, gt, crop_border=c) == float("inf")
    assert ssim(damaged, gt, crop_border=c) == pytest.approx(1.0, abs=1e-12)


def test_y_channel() -> None:
    sr, gt = _pair(3)
    y_sr, y_gt = _ref_y(sr), _ref_y(gt)
    mse = np.mean((y_sr - y_gt) ** 2)
    assert psnr(sr, gt, y_channel=True) == pytest.approx(20 * math.log10(255 / math.sqrt(mse)), abs=1e-4)
    assert psnr(sr, gt, y_channel=True) != pytest.approx(psnr(sr, gt), abs=1e-3)
    assert ssim(sr, gt, y_channel=True) == pytest.approx(_ref_ssim_2d(y_sr, y_gt), abs=1e-6)
    c = 3
    assert psnr(sr, gt, crop_border=c, y_channel=True) == pytest.approx(
        20 * math.log10(255 / math.sqrt(np.mean((y_sr[c:-c, c:-c] - y_gt[c:-c, c:-c]) ** 2))), abs=1e-4
    )

    # Gray images one level apart: Y differs by 219/255 everywhere.
    gray = np.full((16, 16, 3), 100, np.uint8)
    assert psnr(gray + 1, gray, y_channel=True) == pytest.approx(20 * math.log10(255 / (219 / 255)), abs=1e-4)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_bad_inputs_raise_value_error(metric) -> None:
    _, gt = _pair()
    with pytest.raises(ValueError, match="float32"):
        metric(gt.astype(np.float32), gt)
    with pytest.raises(ValueError, match=r"\(36, 44\)"):
        metric(gt[..., 0], gt[..., 0])
    with pytest.raises(ValueError, match=r"\(36, 44, 4\)"):
        metric(np.zeros((36, 44, 4), np.uint8), gt)
    with pytest.raises(ValueError, match=r"sr \(36, 40, 3\), gt \(36, 44, 3\)"):
        metric(gt[:, :40], gt)
    with pytest.raises(ValueError, match="Tensor"):
        metric(torch.zeros(36, 44, 3, dtype=torch.uint8), gt)
    with pytest.raises(ValueError, match="crop_border 18"):
        metric(gt, gt, crop_border=18)


def test_ssim_too_small() -> None:
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="11x11"):
        ssim(img, img)


def test_tensor_to_uint8_rounding_and_layout() -> None:
    values = torch.tensor([-0.1, 0.0, 0.0019, 0.0021, 0.2, 0.5, 1.0, 1.2])
    # 0.0019*255 = 0.48 -> 0; 0.0021*255 = 0.54 -> 1; 0.5*255 = 127.5 -> 128 (round half to even).
    expected = np.array([0, 0, 0, 1, 51, 128, 255, 255], np.uint8)
    t = values.view(1, 1, 8).expand(3, 2, 8).clone().requires_grad_(True)
    img = tensor_to_uint8(t)
    assert img.shape == (2, 8, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, :, 0], expected)

    batch = torch.rand(2, 3, 5, 7)
    batch[1, 2, 4, 6] = 1.0
    out = tensor_to_uint8(batch)
    assert out.shape == (2, 5, 7, 3)
    assert out[1, 4, 6, 2] == 255
    np.testing.assert_array_equal(out[0], tensor_to_uint8(batch[0]))
    np.testing.assert_array_equal(out[0][..., 1], np.round(batch[0, 1].numpy() * 255).astype(np.uint8))

    with pytest.raises(ValueError, match=r"\(5, 7\)"):
        tensor_to_uint8(torch.zeros(5, 7))


def test_bicubic_upscale() -> None:
    rng = np.random.default_rng(4)
    lq = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    up = bicubic_upscale(lq)
    assert up.shape == (32, 40, 3) and up.dtype == np.uint8
    np.testing.assert_array_equal(up, cv2.resize(lq, (40, 32), interpolation=cv2.INTER_CUBIC))
    assert bicubic_upscale(lq, scale=2).shape == (16, 20, 3)
    flat = np.full((6, 6, 3), 77, np.uint8)
    assert np.all(bicubic_upscale(flat) == 77)
    with pytest.raises(ValueError, match="float64"):
        bicubic_upscale(lq.astype(np.float64))


@pytest.mark.parametrize("channels", [1, 4])
def test_bicubic_upscale_keeps_channel_axis(channels: int) -> None:
    lq = np.random.default_rng(5).integers(0, 256, (6, 7, channels), dtype=np.uint8)
    up = bicubic_upscale(lq, scale=3)
    assert up.shape == (18, 21, channels) and up.dtype == np.uint8
    ref = cv2.resize(lq, (21, 18), interpolation=cv2.INTER_CUBIC).reshape(18, 21, channels)
    np.testing.assert_array_equal(up, ref)
