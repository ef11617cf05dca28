"""facesr.report.curves: training-loss and val-PSNR curves, training stages against a baseline, on synthetic logs."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from facesr.report.curves import (  # noqa: E402
    chain_stages,
    plot_loss_curves,
    plot_psnr_curves,
    plot_run_curves,
    plot_stage_curves,
)
from facesr.report.runs import best_validation, loss_columns, missing_run_note  # noqa: E402
from facesr.report.style import MODEL_COLORS  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _logs(gan: bool = False, n: int = 6) -> tuple[pd.DataFrame, pd.DataFrame]:
    iters = np.arange(1, n + 1) * 10
    log = pd.DataFrame({"iter": iters, "lr": 2e-4, "l_pix": np.linspace(0.08, 0.03, n)})
    if gan:
        log["l_percep"] = np.linspace(2.0, 1.5, n)
        log["l_g_gan"] = np.linspace(0.01, 0.02, n)
        log["l_d_real"] = 0.35
        log["l_d_fake"] = 0.34
    log["data_time"], log["step_time"], log["samples_per_s"] = 0.1, 0.5, 8.0
    val = pd.DataFrame({"iter": iters[1::2], "psnr": [24.0, 25.5, 25.1][: len(iters[1::2])],
                        "ssim": [0.60, 0.70, 0.68][: len(iters[1::2])]})
    val["best_psnr"] = val["psnr"].cummax()
    val["bicubic_psnr"] = 23.5
    return log, val


def _line_colors(ax) -> set[str]:
    return {to_hex(line.get_color()) for line in ax.get_lines()}


def test_log_helpers():
    log, val = _logs(gan=True)
    assert loss_columns(log) == ["l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake"]
    best = best_validation(val)
    assert best == {"iter": 40, "psnr": 25.5, "ssim": 0.70}
    empty = best_validation(pd.DataFrame(columns=["iter", "psnr", "ssim"]))
    assert math.isnan(empty["psnr"])


def test_loss_curves_one_panel_per_model_in_its_colour():
    logs = {"srgan": _logs()[0], "esrgan_gan": _logs(gan=True)[0]}
    fig = plot_loss_curves(logs)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    assert _line_colors(axes[0]) == {MODEL_COLORS["srgan"]}
    assert _line_colors(axes[1]) == {MODEL_COLORS["esrgan_gan"]}
    assert len(axes[1].get_lines()) == 5
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == loss_columns(logs["esrgan_gan"])
    # one x label under the panels (a figure text: matplotlib 3.7, the floor, has no get_supxlabel)
    assert [t.get_text() for t in fig.texts] == ["iterations"] and "loss" in axes[0].get_ylabel()
    assert axes[1].get_yscale() == "log"
    chained = plot_loss_curves({**logs, "esrgan": _logs()[0]})  # the GAN fine-tune after esrgan, in one panel
    panels = [ax for ax in chained.axes if ax.get_visible()]
    assert len(panels) == 2 and panels[1].get_title() == "ESRGAN (RRDBNet), then ESRGAN+GAN"
    assert _line_colors(panels[1]) == {MODEL_COLORS["esrgan"], MODEL_COLORS["esrgan_gan"]}
    empty = plot_loss_curves({})  # no run yet: a note instead of an empty grid
    assert any("no runs yet" in t.get_text() for ax in empty.axes for t in ax.texts)


def test_psnr_curves_all_models_on_one_axis():
    vals = {"srgan": _logs()[1], "esrgan": _logs()[1] + 0.5, "esrgan_gan": pd.DataFrame(columns=["iter", "psnr"])}
    fig = plot_psnr_curves(vals, bicubic_psnr=23.5)
    ax, zoom = fig.axes  # every run, and the runs within 1 dB of the best
    assert ax.get_ylabel() == "PSNR (dB)" and ax.get_xlabel() == "iterations"
    assert _line_colors(ax) == {MODEL_COLORS["srgan"], MODEL_COLORS["esrgan"], MODEL_COLORS["bicubic"]}
    assert _line_colors(zoom) == {MODEL_COLORS["srgan"], MODEL_COLORS["esrgan"]}  # bicubic 2 dB below the best
    (ax,) = plot_psnr_curves(vals, bicubic_psnr=23.5, zoom_db=None).axes
    labels = ax.get_legend_handles_labels()[1]
    assert any("Bicubic" in label and "23.50 dB" in label for label in labels)


def test_run_curves_take_bicubic_from_the_log():
    log, val = _logs()
    fig = plot_run_curves("srgan", log, val)
    ax_psnr = fig.axes[1]
    assert any(to_hex(line.get_color()) == MODEL_COLORS["bicubic"] for line in ax_psnr.get_lines())
    assert ax_psnr.get_ylabel() == "PSNR (dB)"


def test_stage_curves_continue_each_stage_and_compare_with_the_baseline(tmp_path: Path, capsys):
    from facesr.report.steps import show_stage_curves

    first, finish, base = _logs(n=6), _logs(n=4), _logs(n=6)
    chained = chain_stages({"swinir": first, "swinir_l2": finish})
    assert chained["swinir"][0]["iter"].tolist() == first[0]["iter"].tolist()
    assert chained["swinir_l2"][0]["iter"].tolist() == (finish[0]["iter"] + 60).tolist()  # after the last, 60
    assert chained["swinir_l2"][1]["iter"].tolist() == (finish[1]["iter"] + 60).tolist()
    fig = plot_stage_curves({"swinir": first, "swinir_l2": finish}, {"srgan": base})
    ax_loss, ax_psnr = fig.axes
    styles = {to_hex(line.get_color()): line.get_linestyle() for line in ax_loss.get_lines()}
    assert styles == {MODEL_COLORS["swinir"]: "-", MODEL_COLORS["swinir_l2"]: "-", MODEL_COLORS["srgan"]: "--"}
    assert ax_loss.get_yscale() == "log" and ax_psnr.get_ylabel() == "PSNR (dB)"
    assert _line_colors(ax_psnr) == {MODEL_COLORS[m] for m in ("swinir", "swinir_l2", "srgan", "bicubic")}
    assert max(ax_psnr.get_lines()[1].get_xdata()) == 60 + 40  # the finish's last validation, continued
    # the notebook step: the baseline run folder is missing here, so a note and the stages alone
    runs = {}
    for name, (log, val) in (("swinir", first), ("swinir_l2", finish)):
        runs[name] = tmp_path / "runs" / name
        runs[name].mkdir(parents=True)
        log.to_csv(runs[name] / "log.csv", index=False)
        val.to_csv(runs[name] / "val.csv", index=False)
    fig = show_stage_curves(runs, tmp_path / "runs" / "srgan", tmp_path / "fig", name="07_in_budget_curves")
    assert (tmp_path / "fig" / "07_in_budget_curves.png").is_file() and (tmp_path / "fig" / "07_in_budget_curves.pdf").is_file()
    assert "no srgan run in" in capsys.readouterr().out and "notebook 03" in missing_run_note("srgan", tmp_path)
    assert MODEL_COLORS["srgan"] not in _line_colors(fig.axes[0])
