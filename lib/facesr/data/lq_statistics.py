"""Statistics of one LQ image that say how it was degraded, each a number, measured beside its GT.

:mod:`facesr.report.degradation_match` measures them on every val LQ and on training LQ made from the same val
GT, and compares the two distributions. All work on 8-bit RGB (uint8 HxWx3); the GT is the 512x512 face, the
LQ its x4 smaller version. Where a statistic needs the GT at the LQ's size it is ``cv2.INTER_AREA``-downscaled
(the box average: the LQ a perfect camera would give). Luma is BT.601 (``Y = 0.299 R + 0.587 G + 0.114 B``,
0-255).

:data:`STATISTICS`, in the order tables and figures list them:

- ``bicubic_psnr`` (dB): PSNR of OpenCV bicubic x4 of the LQ against the GT (:func:`facesr.metrics.psnr`, RGB,
  0-255, whole image), the leaderboard's metric applied to a do-nothing upscaler: how much the degradation
  destroyed, all effects together (docs/course.md section 3 draws its distribution the same way).
- ``noise`` (0-255): Immerkaer's fast noise estimate (J. Immerkaer, "Fast Noise Variance Estimation",
  Computer Vision and Image Understanding 64(2):300-302, 1996), averaged over R, G and B (colour and gray
  noise of the same sigma read the same): each channel is filtered with
  ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]``, the difference of two Laplacians, which cancels locally planar
  image content; for white Gaussian noise of standard deviation sigma the filtered values have standard
  deviation 6 sigma, so ``sigma = sqrt(pi / 2) / 6 * mean |filtered|``. Edges would count as noise, so, as
  Tai and Yang propose (S.-C. Tai, S.-M. Yang, "A fast method for image noise estimation using Laplacian
  operator and adaptive edge detection", ISCCSP 2008), the pixels with the strongest Sobel gradient of the
  luma (the top :data:`EDGE_SHARE`) are left out. What remains of the face's texture adds the same bias to the val and the
  training LQ of one GT, so the comparison holds even where the absolute level is high.
- ``blur`` (LQ px): the equivalent Gaussian blur: the sigma of the Gaussian that, applied to the GT's area
  downscale, comes closest to the LQ's luma in mean squared error (least squares over a grid of sigmas, then
  a parabola through the best three). The course's blurs are Gaussian-like kernels (docs/course.md sections 3
  and 4), and the down- and up-resizes blur too; this puts them all on one axis. Noise that does not depend
  on the image adds the same constant to every candidate's error, so it does not move the minimum.
- ``sharpness``: the variance of the Laplacian of the luma (J. L. Pech-Pacheco, G. Cristobal, J.
  Chamorro-Martinez, J. Fernandez-Valdivia, "Diatom autofocusing in brightfield microscopy: a comparative
  study", ICPR 2000), divided by the same of the GT's area downscale: 1 is as sharp as a perfect LQ, below 1
  blurred, above 1 sharpened or noisy (no reference needed for the measure itself; the ratio removes the
  face's own detail).
- ``blockiness``: the JPEG block-edge ratio: the mean absolute luma difference across the boundaries of the
  8x8 block grid (between columns, and rows, 8k - 1 and 8k) divided by the mean absolute difference
  elsewhere; 1 without blocks, above 1 with them. It is the block-edge impairment measure of H. R. Wu and M.
  Yuen ("A generalized block-edge impairment metric for video coding", IEEE Signal Processing Letters
  4(11):317-320, 1997) without its luminance-masking weights. It sees a JPEG whose grid is the LQ's own (the
  second-order pipeline's last JPEG); the course's JPEG happens at a random scale before two resizes, so its
  blocks land off this grid and the ratio stays near 1 there.
- ``colour_shift`` (CIELAB units): the chromatic part of the CIE 1976 colour difference between the mean
  colours of the LQ and of the GT's area downscale, ``sqrt(da*^2 + db*^2)`` (CIE 15, Colorimetry; OpenCV's
  sRGB D65 conversion); about 2 is a just noticeable difference. Noise, blur and JPEG keep the mean colour
  almost unchanged, so a large value points at a colour transform in how the LQ was made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from facesr.errors import FacesrError
from facesr.metrics import bicubic_upscale, psnr

SCALE = 4
EDGE_SHARE = 0.1  # share of pixels with the strongest gradient that the noise estimate leaves out
BLOCK = 8  # JPEG block side
BLUR_SIGMAS = np.round(np.arange(0.0, 8.01, 0.1), 2)  # the grid the blur fit searches, LQ px
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


@dataclass(frozen=True)
class Statistic:
    """One statistic of :data:`STATISTICS`: its label and unit for tables and figures."""

    name: str
    label: str
    unit: str


def luma(img8: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB image as float32 0-255 (HxW)."""
    rgb = img8.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def gt_at_lq_size(gt8: np.ndarray, lq_shape: tuple[int, ...]) -> np.ndarray:
    """The GT area-downscaled to the LQ's size, uint8 (the box average: the LQ of a perfect camera)."""
    return cv2.resize(gt8, (lq_shape[1], lq_shape[0]), interpolation=cv2.INTER_AREA)


def noise_sigma(lq8: np.ndarray) -> float:
    """Immerkaer's noise standard deviation (0-255) per channel, strongest-gradient pixels left out (module doc)."""
    y = luma(lq8)
    gradient = np.hypot(cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3))[1:-1, 1:-1]
    keep = gradient <= np.quantile(gradient, 1 - EDGE_SHARE)
    rgb = lq8.astype(np.float32)
    response = np.abs(cv2.filter2D(rgb, -1, _IMMERKAER, borderType=cv2.BORDER_REFLECT_101))[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) / 6 * response[keep].mean())


def _blur_errors(lq_y: np.ndarray, ref_y: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    errors = []
    for s in sigmas:
        blurred = cv2.GaussianBlur(ref_y, (0, 0), float(s), borderType=cv2.BORDER_REFLECT_101) if s > 0 else ref_y
        errors.append(float(np.mean((blurred - lq_y) ** 2)))
    return np.asarray(errors)


def blur_sigma(lq8: np.ndarray, gt8: np.ndarray) -> float:
    """Equivalent Gaussian blur sigma (LQ px) of the LQ against the GT's area downscale (module doc)."""
    lq_y, ref_y = luma(lq8), luma(gt_at_lq_size(gt8, lq8.shape))
    errors = _blur_errors(lq_y, ref_y, BLUR_SIGMAS)
    i = int(np.argmin(errors))
    if i == 0 or i == len(BLUR_SIGMAS) - 1:
        return float(BLUR_SIGMAS[i])
    e0, e1, e2 = errors[i - 1 : i + 2]
    curve = e0 - 2 * e1 + e2
    step = float(BLUR_SIGMAS[1] - BLUR_SIGMAS[0])
    return float(BLUR_SIGMAS[i] + (0.5 * step * (e0 - e2) / curve if curve > 0 else 0.0))


def laplacian_variance(img8: np.ndarray) -> float:
    """Variance of the Laplacian of the luma (Pech-Pacheco et al. 2000)."""
    return float(cv2.Laplacian(luma(img8), cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101).var())


def sharpness_ratio(lq8: np.ndarray, gt8: np.ndarray) -> float:
    """Laplacian variance of the LQ over that of the GT's area downscale (module doc)."""
    ref = laplacian_variance(gt_at_lq_size(gt8, lq8.shape))
    return laplacian_variance(lq8) / ref if ref > 0 else float("nan")


def blockiness(lq8: np.ndarray) -> float:
    """The 8x8 block-edge ratio of the luma: boundary differences over the others (module doc)."""
    y = luma(lq8)
    sums, counts = np.zeros(2), np.zeros(2)
    for diff in (np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0)).T):
        at_edge = (np.arange(diff.shape[1]) % BLOCK) == BLOCK - 1  # between pixel 8k-1 and 8k
        sums += diff[:, at_edge].sum(), diff[:, ~at_edge].sum()
        counts += diff[:, at_edge].size, diff[:, ~at_edge].size
    edge, inner = sums / counts
    return float(edge / inner) if inner > 0 else float("nan")


def colour_shift(lq8: np.ndarray, gt8: np.ndarray) -> float:
    """Chromatic CIE 1976 difference of the mean colours of the LQ and the GT's area downscale (module doc)."""

    def mean_ab(img8: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(img8.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        return lab[..., 1:].reshape(-1, 2).mean(0)

    return float(np.hypot(*(mean_ab(lq8) - mean_ab(gt_at_lq_size(gt8, lq8.shape)))))


def bicubic_psnr(lq8: np.ndarray, gt8: np.ndarray) -> float:
    """PSNR (dB) of OpenCV bicubic x4 of the LQ against the GT (RGB, 0-255, whole image)."""
    return psnr(bicubic_upscale(lq8, SCALE), gt8)


STATISTICS: dict[str, Statistic] = {
    s.name: s
    for s in (
        Statistic("bicubic_psnr", "bicubic x4 PSNR", "dB"),
        Statistic("noise", "noise sigma, Immerkaer", "0-255"),
        Statistic("blur", "equivalent Gaussian blur", "LQ px"),
        Statistic("sharpness", "Laplacian variance over the GT's", "ratio"),
        Statistic("blockiness", "JPEG block-edge ratio", "ratio"),
        Statistic("colour_shift", "colour shift, CIELAB a*b*", "dE"),
    )
}
_MEASURES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "bicubic_psnr": bicubic_psnr,
    "noise": lambda lq8, gt8: noise_sigma(lq8),
    "blur": blur_sigma,
    "sharpness": sharpness_ratio,
    "blockiness": lambda lq8, gt8: blockiness(lq8),
    "colour_shift": colour_shift,
}


def lq_statistics(lq8: np.ndarray, gt8: np.ndarray) -> dict[str, float]:
    """Every statistic of :data:`STATISTICS` of one LQ beside its GT.

    Args:
        lq8: the LQ, uint8 HxWx3 RGB.
        gt8: its GT, uint8 (SCALE*H)x(SCALE*W)x3 RGB.

    Raises:
        FacesrError: the images are not 8-bit RGB or their sizes are not x4 apart.
    """
    for what, img in (("LQ", lq8), ("GT", gt8)):
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise FacesrError(f"lq_statistics: the {what} must be uint8 HxWx3 RGB, got {got}")
    if gt8.shape[:2] != (lq8.shape[0] * SCALE, lq8.shape[1] * SCALE):
        raise FacesrError(f"lq_statistics: GT {gt8.shape[1]}x{gt8.shape[0]} is not x{SCALE} of the LQ "
                          f"{lq8.shape[1]}x{lq8.shape[0]}")
    return {name: measure(lq8, gt8) for name, measure in _MEASURES.items()}
