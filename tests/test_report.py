"""facesr.report: tables, runs, figures and notebook steps on small synthetic run logs (fast: no training)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from facesr.errors import FacesrError  # noqa: E402
from facesr.report.figures import (  # noqa: E402
    DEFAULT_CROPS,
    comparison_images,
    crop,
    crop_box,
    plot_comparison,
    plot_loss_curves,
    plot_psnr_curves,
    plot_run_curves,
)
from facesr.report.runs import best_validation, find_runs, loss_columns, missing_run_note  # noqa: E402
from facesr.report.steps import over_budget_generator, parse_box  # noqa: E402
from facesr.report.style import MODEL_COLORS, MODEL_ORDER, model_color, save_figure  # noqa: E402
from facesr.report.tables import (  # noqa: E402
    best_tta,
    bicubic_scores,
    markdown_table,
    parameter_budget_table,
    psnr_table,
    save_table,
    submission_run,
    val_subset,
)


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


def test_model_colors_distinct_and_stable():
    report_models = [*MODEL_ORDER, "bicubic"]
    assert len({MODEL_COLORS[m] for m in report_models}) == len(report_models)
    assert model_color("srgan") == MODEL_COLORS["srgan"]
    assert model_color("my_run") == model_color("my_run")  # unknown names get a stable colour


def test_markdown_table_formats_and_aligns():
    df = pd.DataFrame({"model": ["a|b", "c"], "psnr": [28.123456, math.nan], "params": [1_517_571, 3],
                       "ok": [True, False]})
    text = markdown_table(df, floatfmt=".2f")
    lines = text.splitlines()
    assert lines[0].split("|")[1].strip() == "model"
    assert set(lines[1].replace("|", "").replace(" ", "")) <= {"-", ":"}
    assert "a\\|b" in lines[2] and "28.12" in lines[2] and "1,517,571" in lines[2] and "yes" in lines[2]
    assert lines[3].split("|")[2].strip() == ""  # NaN -> empty cell
    # numeric columns right-aligned: the rule ends with ':' and values are padded on the left
    assert lines[1].split("|")[2].strip().endswith(":")
    assert len({len(line) for line in lines}) == 1  # columns padded to one width


def test_save_table_and_figure(tmp_path: Path):
    df = pd.DataFrame({"model": ["srgan"], "psnr": [28.9]})
    csv_path, md_path = save_table(df, tmp_path / "fig", "psnr_table")
    assert pd.read_csv(csv_path).equals(df)
    assert md_path.read_text().startswith("| model")
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    png = save_figure(fig, tmp_path / "fig", "curve")
    assert png == tmp_path / "fig" / "curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(png).size[0] >= 250  # 2 inches at ~150 dpi


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
    assert axes[0].get_xlabel() == "iterations" and "loss" in axes[0].get_ylabel()
    assert axes[1].get_yscale() == "log"
    empty = plot_loss_curves({})  # no run yet: a note instead of an empty grid
    assert any("no runs yet" in t.get_text() for ax in empty.axes for t in ax.texts)


def test_psnr_curves_all_models_on_one_axis():
    vals = {"srgan": _logs()[1], "esrgan": _logs()[1] + 0.5, "esrgan_gan": pd.DataFrame(columns=["iter", "psnr"])}
    fig = plot_psnr_curves(vals, bicubic_psnr=23.5)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "PSNR (dB)" and ax.get_xlabel() == "iterations"
    assert _line_colors(ax) == {MODEL_COLORS["srgan"], MODEL_COLORS["esrgan"], MODEL_COLORS["bicubic"]}
    labels = ax.get_legend_handles_labels()[1]
    assert any("Bicubic" in label and "23.50 dB" in label for label in labels)


def test_run_curves_take_bicubic_from_the_log():
    log, val = _logs()
    fig = plot_run_curves("srgan", log, val)
    ax_psnr = fig.axes[1]
    assert any(to_hex(line.get_color()) == MODEL_COLORS["bicubic"] for line in ax_psnr.get_lines())
    assert ax_psnr.get_ylabel() == "PSNR (dB)"


def test_crop_boxes():
    assert crop_box((512, 512, 3), DEFAULT_CROPS["eyes"]) == (179, 256, 102, 410)
    img = np.arange(128 * 128 * 3, dtype=np.uint8).reshape(128, 128, 3)
    assert crop(img, DEFAULT_CROPS["mouth"]).shape == (18, 52, 3)  # rows 87:105, columns 38:90
    assert parse_box(" 0.1, 0.2,0.3,0.4") == (0.1, 0.2, 0.3, 0.4)
    with pytest.raises(ValueError, match="crop box"):
        crop_box((512, 512), (0.5, 0.4, 0.0, 1.0))
    with pytest.raises(FacesrError, match="four fractions"):
        parse_box("0.1,0.2")


def test_comparison_grid_layout_and_psnr_titles():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    images = {"lq": gt[::4, ::4], "bicubic": gt // 2, "srgan": gt, "gt": gt}
    fig = plot_comparison(images, title="face")
    assert len(fig.axes) == 3 * 4  # whole faces + eyes + mouth rows, one column per image
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles[0] == "LQ" and "dB" in titles[1] and titles[3] == "GT"
    assert "inf dB" in titles[2]  # identical to GT


def test_find_runs_skips_missing_with_a_note(tmp_path: Path, capsys):
    (tmp_path / "srgan").mkdir()
    (tmp_path / "srgan" / "latest.pt").write_bytes(b"x")
    (tmp_path / "esrgan").mkdir()  # a folder without a checkpoint is not a run yet
    runs = find_runs(tmp_path, ["srgan", "esrgan", "esrgan_gan"])
    assert list(runs) == ["srgan"]
    out = capsys.readouterr().out
    assert missing_run_note("esrgan_gan", tmp_path) in out
    assert "no esrgan_gan run in" in out and "notebook 05" in out and "notebook 04" in out


def test_parameter_table_matches_the_report():
    df = parameter_budget_table().set_index("model")
    assert df.loc["SRGAN", "params"] == 1_517_571
    assert df.loc["ESRGAN", "params"] == 16_697_987
    assert df.loc["ESRGAN (discriminator)", "params"] == 51_221_772
    assert df.loc["In-budget recipe", "params"] == 1_812_995
    assert df["within_limit"].tolist() == [True, False, False, True]


def test_over_budget_generator_uses_loaded_generators(tmp_path: Path):
    from facesr.models import PARAM_LIMIT, RRDBNet, count_parameters

    small = _tiny_run(tmp_path / "runs" / "srgan")
    with torch.device("meta"):
        big = RRDBNet()  # only its size matters
    what, net = over_budget_generator({"srgan": small, "esrgan": big})  # a run folder or a generator
    assert what == "run esrgan" and net is big
    what, net = over_budget_generator({"srgan": small})
    assert what.startswith("RRDBNet 64/23/32") and count_parameters(net) > PARAM_LIMIT


def test_submission_run_picks_the_best_in_budget():
    table = pd.DataFrame({
        "run": ["bicubic", "srgan", "esrgan", "msrresnet20"],
        "within_limit": [True, True, False, True],
        "psnr": [24.0, 28.9, 29.2, 28.95],
        "psnr_x8": [math.nan, 29.0, 29.3, 28.99],
    })
    assert submission_run(table) == "srgan"  # the best of plain and x8 decides when every run has x8
    assert submission_run(table.drop(columns="psnr_x8")) == "msrresnet20"
    assert submission_run(table[table["run"] != "srgan"].iloc[:3].assign(within_limit=[True, False, False])) is None
    assert best_tta(table, "srgan") == "x8" and best_tta(table.drop(columns="psnr_x8"), "srgan") is None
    with_hflip = table.assign(psnr_hflip=[math.nan, 29.05, 29.1, 28.9])
    assert best_tta(with_hflip, "srgan") == "hflip" and best_tta(with_hflip, "msrresnet20") == "x8"
    assert submission_run(with_hflip) == "srgan"
    partial = table.assign(psnr_x8=[math.nan, 29.0, math.nan, math.nan])  # a column not every run has is left out
    assert submission_run(partial) == "msrresnet20" and best_tta(partial, "srgan") is None
    with pytest.raises(FacesrError, match="'rcan' is not in the PSNR table"):
        best_tta(table, "rcan")


def _tiny_run(run_dir: Path) -> Path:
    """A run folder holding a kit checkpoint of a 1-block MSRResNet and a two-row val log."""
    from facesr.checkpoints import save_checkpoint
    from facesr.models import MSRResNet

    torch.manual_seed(0)
    net_g = MSRResNet(mid_channels=8, num_blocks=1)
    config = {"name": run_dir.name, "generator": "msrresnet", "generator_args": {"mid_channels": 8, "num_blocks": 1}}
    run_dir.mkdir(parents=True)
    save_checkpoint({"net_g": net_g.state_dict(), "iter": 20, "config": config}, run_dir / "best.pt")
    pd.DataFrame({"iter": [10, 20], "psnr": [20.0, 21.0], "ssim": [0.5, 0.6]}).to_csv(run_dir / "val.csv", index=False)
    return run_dir


def test_psnr_table_and_bicubic_on_sample_data(sample_root: Path, tmp_path: Path):
    run_dir = _tiny_run(tmp_path / "runs" / "srgan")
    table = psnr_table({"srgan": run_dir}, sample_root, tta=True, limit=2, verbose=False)
    assert table["run"].tolist() == ["bicubic", "srgan"]
    assert list(table.columns) == ["model", "run", "params", "within_limit", "best_iter", "images", "psnr", "ssim",
                                   "psnr_hflip", "ssim_hflip", "psnr_x8", "ssim_x8"]  # fmt: skip
    row = table.set_index("run").loc["srgan"]
    assert row["best_iter"] == 20 and bool(row["within_limit"])
    assert table["images"].tolist() == [2, 2]  # the subset scored is stated in the table
    assert 5 < row["psnr"] < 60 and 5 < row["psnr_x8"] < 60
    # the ensembles are the numbers evaluate gives for them (one pass here, separate passes there)
    from facesr.infer import evaluate, load_generator

    subset = val_subset(sample_root, 2, tmp_path / "subset")
    for tta, col in ((None, "psnr"), ("hflip", "psnr_hflip"), ("x8", "psnr_x8")):
        assert row[col] == evaluate(load_generator(run_dir), subset, tta=tta)["psnr"].iloc[-1]
    # the bicubic row is the same baseline bicubic_scores computes (first 2 val images here)
    assert table.iloc[0]["psnr"] == pytest.approx(bicubic_scores(subset)["psnr"], abs=1e-6)
    # the report's Markdown shows 4 decimals (the leaderboard 10; submissions differ in the third)
    md = save_table(table, tmp_path / "fig", "psnr_table")[1].read_text()
    assert f" {row['psnr']:.4f} |" in md and f" {row['psnr_x8']:.4f} |" in md
    assert pd.read_csv(tmp_path / "fig" / "psnr_table.csv")["psnr"].iloc[1] == pytest.approx(row["psnr"], abs=1e-12)
    plain = psnr_table({"srgan": run_dir}, subset, tta=False, verbose=False)
    assert "psnr_hflip" not in plain.columns and plain["psnr"].iloc[1] == row["psnr"]
    images = comparison_images({"srgan": run_dir}, sample_root, name=0)
    assert list(images) == ["lq", "bicubic", "srgan", "gt"]
    assert images["srgan"].shape == images["gt"].shape == (512, 512, 3)


def test_notebook_helpers(tmp_path: Path):
    from facesr.config import get_config
    from facesr.report.steps import budget_line, overrides, resolve_init

    assert "1,517,571" in budget_line(get_config("srgan", quick=False))
    assert "OVER" in budget_line(get_config("esrgan", quick=False))
    assert overrides(iters=0, batch_size=4, vgg_weights="") == {"batch_size": 4}
    with pytest.raises(FacesrError, match="notebook 04.*INIT_FROM"):
        resolve_init("", tmp_path)
    with pytest.raises(FacesrError, match="INIT_FROM="):
        resolve_init(tmp_path / "nope", tmp_path)
    run = tmp_path / "esrgan"
    run.mkdir()
    (run / "latest.pt").write_bytes(b"x")
    assert resolve_init("", tmp_path) == run
    (tmp_path / "esrgan_gan").mkdir()
    (tmp_path / "esrgan_gan" / "latest.pt").write_bytes(b"x")
    assert resolve_init("", tmp_path, run_name="esrgan_gan") is None  # resuming needs no starting point
