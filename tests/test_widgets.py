"""The degradation panel (facesr.report.widgets) and the figures of notebooks 01/02 (facesr.report.explore)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from facesr.data.check import check_dataset
from facesr.data.degradations import (
    DegradationParams,
    DegradationSettings,
    apply_degradation,
    params_kernel,
    sample_params,
)
from facesr.data.images import list_images, read_image
from facesr.data.second_order import apply_second_order
from facesr.data.second_order_draws import sample_second_order_params
from facesr.errors import FacesrError
from facesr.report.second_order_panel import (
    SecondOrderKnobs,
    build_second_order_panel,
    knobs_to_params,
    params_to_knobs,
    render_second_order,
    strip_kernels,
)
from facesr.report.widgets import build_degradation_panel, degradation_steps, render_degradation

# The ipywidgets classes that exist, with the same constructor arguments, in 7.7 (Colab) and 8.x.
COMMON_WIDGETS = {"FloatSlider", "IntSlider", "Dropdown", "Button", "Output", "VBox", "HBox"}


@pytest.fixture(scope="module")
def gt(sample_root: Path) -> np.ndarray:
    """A real face at 128x128 (any multiple of 4 works; small keeps the tests fast)."""
    face = read_image(list_images(sample_root / "val" / "GT")[0])
    return cv2.resize(face, (128, 128), interpolation=cv2.INTER_AREA)


def _params(**changes: object) -> DegradationParams:
    base = DegradationParams("aniso", 2.0, 1.0, 0.5, 0.5, "bicubic", 5.0, 75, "bilinear")
    return dataclasses.replace(base, **changes)


def test_steps_end_in_the_library_lq(gt: np.ndarray) -> None:
    for seed in range(3):
        params = sample_params(np.random.default_rng(seed))
        steps = degradation_steps(gt, params, seed=seed)
        lq = apply_degradation(gt.astype(np.float32) / 255, params, np.random.default_rng(seed))
        assert len(steps) == 7 and list(steps)[0] == "GT"
        np.testing.assert_allclose(list(steps.values())[-1], lq, atol=1e-5)
        assert list(steps.values())[2].shape[0] == max(1, int(128 * params.scale))


def test_render_degradation(gt: np.ndarray) -> None:
    kernel, lq, psnr = render_degradation(gt, _params())
    assert kernel.shape == (41, 41) and abs(float(kernel.sum()) - 1) < 1e-5
    assert lq.shape == (32, 32, 3) and lq.dtype == np.float32
    assert render_degradation(gt, _params())[2] == psnr  # same seed, same noise, same LQ
    # The panel's PSNR responds to the settings the way the task says it should.
    assert render_degradation(gt, _params(noise_sigma=25.0))[2] < psnr
    assert render_degradation(gt, _params(sigma_x=0.2, sigma_y=0.2, noise_sigma=0.0, jpeg_quality=95))[2] > psnr
    np.testing.assert_array_equal(params_kernel(_params(kernel_kind="iso")), params_kernel(_params(
        kernel_kind="iso", sigma_y=4.0, angle=1.0)))  # fmt: skip


def test_panel_redraws_on_slider_and_button(gt: np.ndarray) -> None:
    panel = build_degradation_panel(gt, seed=3)
    assert set(panel.controls) == {f.name for f in dataclasses.fields(DegradationParams)}
    assert panel.redraws == 1 and panel.last_psnr is not None

    before = panel.last_psnr
    panel.controls["noise_sigma"].value = 25.0
    assert panel.redraws == 2 and panel.last_psnr < before
    assert panel.last_psnr == render_degradation(gt, panel.params, seed=3)[2]

    panel.controls["kernel_kind"].value = "iso"
    assert panel.controls["sigma_y"].disabled and panel.params.sigma_y == panel.params.sigma_x
    assert panel.params.angle == 0.0

    old_params = panel.params
    panel.button.click()  # every control changes, the figure is drawn once
    assert panel.redraws == 4 and panel.params != old_params
    assert panel.last_psnr == render_degradation(gt, panel.params, seed=3)[2]

    settings = DegradationSettings()
    drawn = sample_params(np.random.default_rng(11), settings)
    panel.set_params(drawn)
    assert panel.params == drawn and panel.redraws == 5


def test_params_kernel_lives_in_degradations_and_panel_follows_a_new_gt(gt: np.ndarray) -> None:
    import facesr.report.widgets

    assert facesr.report.widgets.params_kernel is params_kernel  # one kernel, the library's, drawn by the panel
    panel = build_degradation_panel(gt, seed=3)
    other = gt[::-1].astype(np.float32) / 255  # a float GT works too (converted at each redraw)
    panel.gt = other
    panel.update()
    assert panel.gt is other and panel.last_psnr == render_degradation(other, panel.params, seed=3)[2]


@pytest.mark.parametrize("module", ["widgets", "second_order_panel"])
def test_widgets_use_the_common_ipywidgets_subset(module: str) -> None:
    import importlib

    source = Path(importlib.import_module(f"facesr.report.{module}").__file__).read_text()
    used = set(re.findall(r"(?<![.\w])widgets\.([A-Z]\w*)", source))  # ipywidgets', not facesr.report.widgets'
    assert used and used <= COMMON_WIDGETS, used - COMMON_WIDGETS
    wiring = Path(importlib.import_module("facesr.report.widgets").__file__).read_text()  # ControlPanel: both panels
    assert 'names="value"' in wiring and ".on_click(" in wiring


def test_figures_carry_titles_and_labels(gt: np.ndarray, sample_root: Path) -> None:
    import matplotlib.pyplot as plt

    from facesr.report.explore import (
        channel_histograms,
        dataset_summary,
        plot_degradation_result,
        plot_degradation_steps,
        plot_psnr_histogram,
        show_images,
    )

    table = dataset_summary(check_dataset(sample_root))
    assert list(table["folder"]) == ["train/GT", "val/LQ", "val/GT", "test/LQ", "test_real"]
    assert list(table["images"]) == [24, 8, 8, 8, 5] and (table["disk (MB)"] > 0).all()
    assert table["pixel size (WxH)"].iloc[-1] == "61x45, 37x53, 45x71, 97x83, 129x101"  # sorted by height

    fig = channel_histograms({"GT": [gt], "LQ": [gt[::4, ::4]]})
    assert [ax.get_xlabel() for ax in fig.axes] == ["intensity (0-255)"] * 3
    assert fig.axes[0].get_ylabel() == "fraction of pixels" and fig.axes[-1].get_legend() is not None

    fig = plot_psnr_histogram([25.0, 26.0, 27.5], {"val LQ": 24.0}, title="t")
    ax = fig.axes[0]
    assert "dB" in ax.get_xlabel() and ax.get_ylabel() and len(ax.get_legend().get_texts()) == 3

    params = _params()
    kernel, lq, psnr = render_degradation(gt, params)
    fig = plot_degradation_result(kernel, lq, cv2.resize(lq, (128, 128)), gt, psnr, params)
    assert f"{psnr:.2f} dB" in fig.axes[2].get_title() and "offset (px)" in fig.axes[0].get_xlabel()
    fig = plot_degradation_steps(degradation_steps(gt, params), kernel, params)
    assert sum(bool(ax.get_title()) for ax in fig.axes) == 8  # the kernel and 7 images

    fig = show_images([gt, gt, gt], ["a", "b", "c"], ncols=2, suptitle="s")
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["a", "b", "c"]
    plt.close("all")


# ------------------------------------------------------------------------------ the 2024/2025 (second-order) panel


def test_second_order_knobs_and_params_round_trip() -> None:
    for seed in range(40):
        params = sample_second_order_params(np.random.default_rng(seed))
        again = knobs_to_params(params_to_knobs(params))
        assert all(np.array_equal(params[k].numpy(), again[k].numpy()) for k in params), seed
    base = SecondOrderKnobs(noise1_sigma=12.0, omega=1.5)
    knobs = params_to_knobs(knobs_to_params(dataclasses.replace(base, noise1="poisson", sinc=False)), base=base)
    assert knobs.noise1_sigma == 12.0 and knobs.omega == 1.5  # what the params leave open comes from the base
    for bad in ({"kernel1": "box"}, {"kernel2_size": 8}, {"noise2": "salt"}, {"mode1": "nearest"}):
        with pytest.raises(FacesrError):
            SecondOrderKnobs(**bad)


def test_render_second_order_steps_end_in_the_library_lq(gt: np.ndarray) -> None:
    import torch

    knobs = SecondOrderKnobs()
    steps, lq, psnr = render_second_order(gt, knobs, seed=2)
    names = list(steps)
    assert names[0] == "GT" and names[-1] == "LQ" and lq.shape == (32, 32, 3)
    assert [n for n in names if n[0] in "12"] == ["1 blur", "1 resize", "1 noise", "1 JPEG", "2 blur", "2 resize", "2 noise"]
    assert names[names.index("2 noise") + 1 :] == ["final resize", "final sinc", "final JPEG", "LQ"]
    assert steps["1 resize"].shape[0] == int(128 * knobs.scale1) and steps["2 resize"].shape[0] == int(32 * knobs.scale2)
    x = torch.from_numpy(gt).permute(2, 0, 1).float().div(255)[None]
    library = apply_second_order(x, knobs_to_params(knobs), [torch.Generator().manual_seed(2)])[0][0]
    np.testing.assert_array_equal(lq, library.permute(1, 2, 0).numpy())
    assert render_second_order(gt, knobs, seed=2)[2] == psnr
    # the PSNR responds to the knobs the way it should
    assert render_second_order(gt, dataclasses.replace(knobs, noise1_sigma=20.0, noise2_sigma=15.0), seed=2)[2] < psnr
    mild = dataclasses.replace(knobs, sigma1=0.2, sigma2=0.2, noise1_sigma=1.0, noise2_sigma=1.0, jpeg1=95.0, jpeg2=95.0,
                               sinc=False, scale1=1.0, scale2=1.0, usm=False)  # fmt: skip
    assert render_second_order(gt, mild, seed=2)[2] > psnr
    order = render_second_order(gt, dataclasses.replace(knobs, sinc_first=False, usm=False, blur2=False), seed=2)[0]
    assert list(order)[-4:] == ["final JPEG", "final resize", "final sinc", "LQ"] and "sharpened GT (USM)" not in order
    assert "2 blur" not in order


def test_second_order_panel_redraws_and_draws_like_training(gt: np.ndarray) -> None:
    panel = build_second_order_panel(gt, seed=3)
    assert panel.redraws == 1 and panel.last_psnr == render_second_order(gt, panel.knobs, seed=3)[2]
    assert panel.controls["noise1_scale"].disabled and not panel.controls["noise1_sigma"].disabled
    before = panel.last_psnr
    panel.controls["noise1_sigma"].value = 20.0
    assert panel.redraws == 2 and panel.last_psnr < before and panel.knobs.noise1_sigma == 20.0
    panel.controls["noise1"].value = "poisson"
    assert panel.controls["noise1_sigma"].disabled and not panel.controls["noise1_scale"].disabled
    panel.controls["kernel2"].value = "none"
    assert not panel.knobs.blur2 and panel.controls["sigma2"].disabled
    panel.controls["sinc"].value = False
    assert panel.controls["omega"].disabled and panel.redraws == 5
    drawn = panel.randomize()  # every control changes, the figure is drawn once
    assert panel.redraws == 6 and panel.knobs == drawn
    params = sample_second_order_params(np.random.default_rng(3))  # the panel's first draw, as training draws
    assert all(np.array_equal(params[k].numpy(), knobs_to_params(drawn)[k].numpy()) for k in params)
    assert panel.last_psnr == render_second_order(gt, drawn, seed=3)[2]
    panel.button.click()
    assert panel.redraws == 7 and panel.knobs != drawn


def test_second_order_strip_figure(gt: np.ndarray) -> None:
    import matplotlib.pyplot as plt

    from facesr.report.explore import plot_second_order_steps

    knobs = dataclasses.replace(SecondOrderKnobs(), blur2=False)
    steps, _, psnr = render_second_order(gt, knobs)
    kernels = strip_kernels(knobs)
    assert kernels["kernel 2"] is None and kernels["final sinc"].shape == (21, 21)
    fig = plot_second_order_steps(steps, kernels, gt=gt, psnr=psnr, title="one draw")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert f"bicubic x4: {psnr:.2f} dB" in " ".join(titles) and "no kernel 2" in titles
    assert sum(ax.images != [] for ax in fig.axes) >= len(steps) + 2  # every step, the bicubic, the kernels
    assert "LQ\n32x32 px" in titles
    plt.close("all")


@pytest.mark.parametrize("year", [2022, 2024])
def test_notebook_02_views_follow_the_edition(year: int) -> None:
    """The step figure, the panel and the bicubic distribution of the edition's own degradation."""
    from facesr.report.degradation_views import (
        bicubic_psnr_distribution,
        degradation_figure,
        degradation_panel,
    )
    from facesr.report.second_order_panel import SecondOrderPanel
    from facesr.report.widgets import DegradationPanel

    gt = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    fig, description = degradation_figure(gt, year, seed=3)
    assert fig is not None and ("JPEG" in description)
    panel = degradation_panel(gt, year, seed=3)
    assert isinstance(panel, DegradationPanel if year == 2022 else SecondOrderPanel)
    values = bicubic_psnr_distribution(gt, 3, year, seed=1)
    assert values.shape == (3,) and np.isfinite(values).all() and len(set(values.round(6))) == 3
    assert np.array_equal(values, bicubic_psnr_distribution(gt, 3, year, seed=1))  # the seeds decide
