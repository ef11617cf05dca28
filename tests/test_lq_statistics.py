"""Where the training LQ stands against the val LQ: the estimators on synthetic images with known degradations,
and compare-degradation on the sample data (the edition's own settings beat a clearly different one)."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from facesr.cli import main
from facesr.data.images import read_image
from facesr.data.lq_statistics import (
    STATISTICS,
    bicubic_psnr,
    blockiness,
    blur_sigma,
    colour_shift,
    gt_at_lq_size,
    lq_statistics,
    noise_sigma,
    sharpness_ratio,
)
from facesr.errors import FacesrError
from facesr.metrics import bicubic_upscale, psnr
from facesr.report.degradation_match import compare_degradation, degradation_recipe, wasserstein1


def _smooth(size: int = 128) -> np.ndarray:
    """A smooth colour image (float 0-255): low-frequency waves, no edges, nothing near 0 or 255."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = 128 + 50 * np.sin(xx / 9) * np.cos(yy / 13) + 30 * np.sin((xx + yy) / 21)
    return np.stack([base, 0.9 * base + 10, 0.8 * base + 20], -1)


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def face(sample_root: Path) -> np.ndarray:
    return read_image(sample_root / "val" / "GT" / "00000.png")


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0, 20.0])
def test_noise_estimate_recovers_the_sigma_within_10_percent(sigma: float) -> None:
    rng = np.random.default_rng(0)
    colour = _u8(_smooth() + rng.normal(0, sigma, (128, 128, 3)))
    gray = _u8(_smooth() + rng.normal(0, sigma, (128, 128, 1)))
    for img in (colour, gray):
        assert noise_sigma(img) == pytest.approx(sigma, rel=0.1)
    assert noise_sigma(_u8(_smooth())) < 0.5  # only the 8-bit rounding


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0])
def test_blur_estimate_recovers_the_sigma_within_a_tenth_of_a_pixel_under_noise(face: np.ndarray,
                                                                                sigma: float) -> None:
    reference = gt_at_lq_size(face, (128, 128, 3)).astype(np.float32)
    blurred = cv2.GaussianBlur(reference, (0, 0), sigma)
    lq = _u8(blurred + np.random.default_rng(1).normal(0, 3, blurred.shape))
    assert blur_sigma(lq, face) == pytest.approx(sigma, abs=0.1)
    sharper = _u8(cv2.GaussianBlur(reference, (0, 0), sigma / 2))
    assert sharpness_ratio(_u8(blurred), face) < sharpness_ratio(sharper, face) <= 1.0
    assert sharpness_ratio(gt_at_lq_size(face, (128, 128, 3)), face) == pytest.approx(1.0)


def test_blockiness_orders_jpeg_qualities_and_reads_1_without_jpeg() -> None:
    img = _u8(_smooth())

    def jpeg(q: int) -> np.ndarray:
        return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)

    values = [blockiness(jpeg(q)) for q in (10, 30, 50, 70, 90)]
    assert values == sorted(values, reverse=True) and values[2] > 1.5  # lower quality, stronger block edges
    assert blockiness(img) == pytest.approx(1.0, abs=0.05)
    shifted = jpeg(30)[3:, 3:]  # a grid that is not the image's own: the blocks are not measured
    assert blockiness(shifted) < values[1] - 0.5


def test_colour_shift_recovers_a_known_cast_in_cielab(face: np.ndarray) -> None:
    reference = gt_at_lq_size(face, (128, 128, 3))
    lab = cv2.cvtColor(reference.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    lab[..., 1] += 6.0
    lab[..., 2] -= 8.0
    cast = _u8(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255)
    assert colour_shift(cast, face) == pytest.approx(10.0, abs=0.5)
    noisy = _u8(reference + np.random.default_rng(2).normal(0, 5, reference.shape))
    assert colour_shift(noisy, face) < 0.5  # noise keeps the mean colour


def test_lq_statistics_holds_every_statistic_and_refuses_bad_images(face: np.ndarray) -> None:
    lq = cv2.resize(face, (128, 128), interpolation=cv2.INTER_AREA)
    stats = lq_statistics(lq, face)
    assert list(stats) == list(STATISTICS)
    assert stats["bicubic_psnr"] == bicubic_psnr(lq, face) == psnr(bicubic_upscale(lq), face)
    with pytest.raises(FacesrError, match="not x4"):
        lq_statistics(lq[:64], face)
    with pytest.raises(FacesrError, match="uint8"):
        lq_statistics(lq.astype(np.float32), face)


def test_wasserstein1_matches_the_definition() -> None:
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 7), rng.normal(0.5, 2, 19)
    assert wasserstein1(a, b) == pytest.approx(wasserstein_distance(a, b))
    assert wasserstein1([1.0, 2.0], [2.0, 3.0]) == pytest.approx(1.0)  # a shift by 1


# ----------------------------------------------------------------------------- compare-degradation


def test_own_settings_beat_no_noise_on_the_2022_sample(sample_root: Path) -> None:
    own = compare_degradation(sample_root, 2022, draws=2)
    quiet = compare_degradation(sample_root, 2022, ["course.noise_sigma_range=[0,0]"], draws=2)
    assert len(own.val) == 8 and len(own.train) == 16
    assert own.distance < quiet.distance
    noise = {name: c.distances().set_index("statistic").loc["noise", "w1_normalised"] for name, c in
             (("own", own), ("quiet", quiet))}  # fmt: skip
    assert noise["own"] < 0.5 < noise["quiet"]


def test_own_settings_beat_heavy_noise_on_the_2024_sample() -> None:
    from facesr.data.sample import ensure_sample_data

    root = ensure_sample_data(edition=2024)
    heavy = ["second_order.noise_range=[25,30]", "second_order.noise_range2=[25,30]",
             "second_order.gaussian_noise_prob=1", "second_order.gaussian_noise_prob2=1"]  # fmt: skip
    own = compare_degradation(root, 2024, limit=4, draws=2)
    noisy = compare_degradation(root, 2024, heavy, limit=4, draws=2)
    assert len(own.val) == 4 and own.distance < noisy.distance


def test_settings_take_the_train_spelling_and_refuse_others() -> None:
    recipe = degradation_recipe(2024, ["second_order.jpeg_range=[80,95]", "gt_usm=false"])
    assert recipe.second_order.jpeg_range == (80, 95) and recipe.second_order.gt_usm is False
    assert recipe.gt_patch is None and not recipe.flip and not recipe.on_device
    assert degradation_recipe(2022, ["course.noise_sigma_range=[0,5]"]).course.noise_sigma_range == (0, 5)
    for items, message in ((["second_order.jpeg_range=[80,95]"], "use course.* settings"),
                           (["course.jpeg_range=[80,95]"], "did you mean jpeg_quality_range"),
                           (["course.jpeg_quality_range=[95,80]"], "low must not exceed high"),
                           (["batch_size=4"], "changed by course.<field>"),
                           (["noise"], "expected SECTION.FIELD=VALUE")):  # fmt: skip
        with pytest.raises(FacesrError, match=re.escape(message)):
            degradation_recipe(2022, items)


def test_cli_prints_the_table_and_saves_the_figure(sample_root: Path, tmp_path: Path, capsys) -> None:
    figures = tmp_path / "figures"
    assert main(["compare-degradation", "--data", str(sample_root), "--limit", "2", "--draws", "2",
                 "--figures", str(figures)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "2 val pairs of edition 2022" in out and "| noise " in out and "mean normalised W1" in out
    assert (figures / "02_degradation_match.png").is_file() and (figures / "02_degradation_match.csv").is_file()
    no_lq = tmp_path / "no_lq"
    (no_lq / "val" / "GT").mkdir(parents=True)
    assert main(["compare-degradation", "--data", str(no_lq)]) == 0
    assert capsys.readouterr().out.strip() == f"{no_lq} has no val LQ (val/LQ): nothing to compare the training LQ with"
    assert main(["compare-degradation", "--data", str(sample_root), "--set", "course.nope=1"]) == 2
