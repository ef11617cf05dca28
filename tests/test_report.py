"""facesr.report: tables, runs, face figures and notebook steps on tiny hand-made runs (fast: no training).

The training curves are tested in test_report_curves.py.
"""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from facesr.data.images import read_image, write_png  # noqa: E402
from facesr.errors import FacesrError  # noqa: E402
from facesr.inference.predict import evaluate, load_generator, predict  # noqa: E402
from facesr.models import MSRResNet  # noqa: E402
from facesr.report.budget import parameter_budget_table  # noqa: E402
from facesr.report.figures import (  # noqa: E402
    DEFAULT_CROPS,
    comparison_images,
    crop,
    crop_box,
    plot_comparison,
    plot_real_world,
    plot_val_outputs,
    real_world_images,
)
from facesr.report.runs import find_runs, missing_run_note  # noqa: E402
from facesr.report.steps import parse_box, predict_real_world, show_real_world  # noqa: E402
from facesr.report.style import MODEL_COLORS, MODEL_LABELS, MODEL_ORDER, model_color, save_figure  # noqa: E402
from facesr.report.tables import (  # noqa: E402
    best_tta,
    bicubic_scores,
    markdown_table,
    psnr_table,
    save_table,
    submission_run,
    val_subset,
)
from facesr.weights.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_model_colors_distinct_and_stable():
    report_models = [*MODEL_ORDER, "bicubic"]
    assert {"swinir", "rcan", "msrresnet20_l2", "swinir_l2", "rcan_l2"} <= set(MODEL_ORDER)
    assert len({MODEL_COLORS[m] for m in report_models}) == len(report_models)
    assert all(m in MODEL_LABELS for m in report_models)
    assert model_color("srgan") == MODEL_COLORS["srgan"]
    assert model_color("my_run") == model_color("my_run")  # unknown names get a stable colour
    unknown = {model_color(f"run{i}") for i in range(50)}
    assert not unknown & set(MODEL_COLORS.values())  # ... never one of the report's own


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
    csv_path, md_path, tex_path = save_table(df, tmp_path / "fig", "psnr_table")
    assert pd.read_csv(csv_path).equals(df)
    assert md_path.read_text().startswith("| model")
    assert "\\begin{tabular}" in tex_path.read_text() and "PSNR (dB)" in tex_path.read_text()
    fig, ax = plt.subplots(figsize=(3.25, 2))
    ax.plot([0, 1], [0, 1])
    png, pdf = save_figure(fig, tmp_path / "fig", "curve")
    assert (png, pdf) == (tmp_path / "fig" / "curve.png", tmp_path / "fig" / "curve.pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    from PIL import Image

    assert Image.open(png).size == (975, 600)  # 3.25 x 2 inches at 300 dpi
    from facesr.report.manifest import read_manifest

    # every file of both saves is recorded in the manifest: the hand-in takes them
    assert set(read_manifest(tmp_path / "fig")) == {"psnr_table.csv", "psnr_table.md", "psnr_table.tex", "curve.png",
                                                    "curve.pdf"}


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
    for name in ("swinir", "swinir_l2"):  # the in-budget runs and their finishes come from notebook 07
        assert "notebook 07 with CONFIG = 'swinir'" in missing_run_note(name, tmp_path)
    # MSE finishes join their first stage when they exist, without a note when they do not
    for name in ("swinir_l2", "rcan_l2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "best.pt").write_bytes(b"x")
    runs = find_runs(tmp_path, ["srgan", "swinir", "msrresnet20", "rcan_l2"], finishes=True)
    assert list(runs) == ["srgan", "swinir_l2", "rcan_l2"]
    out = capsys.readouterr().out
    assert "no swinir run" in out and "no msrresnet20 run" in out and "_l2 run" not in out
    assert list(find_runs(tmp_path, ["swinir"], verbose=False)) == []  # finishes only when asked


@pytest.mark.parametrize("year", [2022, 2024])
def test_parameter_table_matches_the_report(year: int):
    df = parameter_budget_table(year).set_index("model")
    assert df.loc["SRGAN", "params"] == 1_517_571
    assert df.loc["ESRGAN", "params"] == 16_697_987
    assert df.loc["ESRGAN (discriminator)", "params"] == 51_221_772
    assert (df["limit"] == (1_821_085 if year == 2022 else 2_276_356)).all()
    if year == 2022:
        assert df.loc["MSRResNet-20", "params"] == 1_812_995
        assert df.loc["SwinIR", "params"] == 1_766_292 and df.loc["RCAN", "params"] == 1_786_531
    else:
        assert df.loc["MSRResNet-26", "params"] == 2_256_131
        assert df.loc["SwinIR", "params"] == 2_251_758 and df.loc["RCAN", "params"] == 2_270_075
    # issue 28's networks, sized to the edition's limit (SPAN counted in its fused, submitted form)
    sized = ["Omni-SR", "SPAN", "RealPLKSR", "DAT-light", "ATD-light"]
    assert list(df.index[-len(sized):]) == sized
    assert (df.loc[sized, "params"] > 0.98 * df.loc[sized, "limit"]).all()
    # only generators are held to the limit: the GAN row's total is not judged
    assert df["within_limit"].tolist() == [True, False, None] + [True] * (len(df) - 3)


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
                                   "psnr_hflip", "ssim_hflip", "images_x8", "psnr_x8", "ssim_x8"]  # fmt: skip
    row = table.set_index("run").loc["srgan"]
    assert row["best_iter"] == 20 and bool(row["within_limit"])
    assert table["images"].tolist() == [2, 2]  # the subset scored is stated in the table
    assert row["images_x8"] == 2 and pd.isna(table["images_x8"].iloc[0])  # no x8 for bicubic
    assert 5 < row["psnr"] < 60 and 5 < row["psnr_x8"] < 60
    # the ensembles are the numbers evaluate gives for them (one pass here, separate passes there)
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

    line = budget_line(get_config("srgan", quick=False, edition=2022))
    assert line == "msrresnet: 1,517,571 parameters, within the 2022 limit of 1,821,085 (83.3 % of the limit)"
    line = budget_line(get_config("msrresnet26", quick=False, edition=2024))
    assert line == "msrresnet_basicsr: 2,256,131 parameters, within the 2024 limit of 2,276,356 (99.1 % of the limit)"
    assert "trainable" not in line and "1,786,531 parameters, within" in budget_line(get_config("rcan", quick=False))
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


def test_psnr_table_scores_x8_on_the_first_images_only(sample_root: Path, tmp_path: Path):

    run_dir = _tiny_run(tmp_path / "runs" / "srgan")
    subset = val_subset(sample_root, 3, tmp_path / "subset")
    table = psnr_table({"srgan": run_dir}, subset, x8_limit=1, verbose=False)
    row = table.set_index("run").loc["srgan"]
    assert table["images"].tolist() == [3, 3] and row["images_x8"] == 1  # plain and hflip: every image
    net = load_generator(run_dir)
    assert row["psnr"] == evaluate(net, subset)["psnr"].iloc[-1]
    assert row["psnr_hflip"] == evaluate(net, subset, tta="hflip")["psnr"].iloc[-1]
    first = val_subset(subset, 1, tmp_path / "first")
    assert row["psnr_x8"] == evaluate(net, first, tta="x8")["psnr"].iloc[-1]
    assert row["ssim_x8"] == evaluate(net, first, tta="x8")["ssim"].iloc[-1]
    # a limit at or above the image count is one pass over all of them
    full = psnr_table({"srgan": run_dir}, subset, x8_limit=5, verbose=False).set_index("run").loc["srgan"]
    assert full["images_x8"] == 3 and full["psnr_x8"] == evaluate(net, subset, tta="x8")["psnr"].iloc[-1]
    assert best_tta(table, "srgan") in (None, "hflip")  # x8 over 1 image does not compete with 3-image means


def test_submission_ignores_an_ensemble_scored_on_fewer_images():
    table = pd.DataFrame({
        "run": ["bicubic", "srgan", "swinir"], "within_limit": [True, True, True], "images": [8, 8, 8],
        "psnr": [24.0, 28.9, 28.8], "psnr_hflip": [math.nan, 28.95, 28.85], "images_x8": [pd.NA, 1, 1],
        "psnr_x8": [math.nan, 28.0, 31.0],
    })  # fmt: skip
    table["images_x8"] = table["images_x8"].astype("Int64")
    assert submission_run(table) == "srgan" and best_tta(table, "swinir") == "hflip"
    every = table.assign(images_x8=[pd.NA, 8, 8])  # x8 over every image: it competes
    assert submission_run(every) == "swinir" and best_tta(every, "swinir") == "x8"
    assert best_tta(pd.read_csv(io.StringIO(every.to_csv(index=False))), "swinir") == "x8"  # read back from CSV


def test_report_loaders_pass_trust_on(sample_root: Path, tmp_path: Path):
    """A checkpoint a plain load refuses (it pickles a non-weights object) loads everywhere with trust=True."""

    run_dir = _tiny_run(tmp_path / "runs" / "srgan")
    state = load_checkpoint(run_dir / "best.pt")
    save_checkpoint({**state, "rng": np.random.RandomState(0)}, run_dir / "best.pt")  # as old trainers saved
    subset = val_subset(sample_root, 1, tmp_path / "subset")
    calls = {
        "psnr_table": lambda trust: psnr_table({"srgan": run_dir}, subset, verbose=False, trust=trust),
        "comparison_images": lambda trust: comparison_images({"srgan": run_dir}, sample_root, trust=trust),
        "plot_val_outputs": lambda trust: plot_val_outputs(run_dir, sample_root, n=1, trust=trust),
        "real_world_images": lambda trust: real_world_images({"srgan": run_dir}, sample_root, trust=trust),
    }
    for name, call in calls.items():
        with pytest.raises(FacesrError, match="trust=True"):
            call(False)
        assert call(True) is not None, name


# ----------------------------------------------------------------------------- real-world LQ (issue 12)

ODD_SIZES = [(53, 37), (31, 45)]  # (height, width) of the real-world LQ images of these tests


@pytest.fixture()
def real_root(mini_root: Path, tmp_path: Path) -> Path:
    """mini_root plus a test_real/ of two real-world LQ images of odd sizes."""
    root = Path(shutil.copytree(mini_root, tmp_path / "data"))
    rng = np.random.default_rng(1)
    for i, (h, w) in enumerate(ODD_SIZES):
        write_png(root / "test_real" / f"{i:05d}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return root


def test_predict_and_grid_on_real_world_images_of_odd_sizes(real_root: Path, tmp_path: Path) -> None:
    run = _tiny_run(tmp_path / "runs" / "srgan")
    net = load_generator(run)
    paths = predict(net, real_root / "test_real", tmp_path / "sr")
    assert [read_image(p).shape for p in paths] == [(4 * h, 4 * w, 3) for h, w in ODD_SIZES]
    grid = real_world_images({"srgan": run, "my_run": MSRResNet(mid_channels=8, num_blocks=1)}, real_root)
    assert list(grid) == ["00000.png", "00001.png"]
    for name, (h, w) in zip(grid, ODD_SIZES, strict=True):
        assert list(grid[name]) == ["lq", "bicubic", "srgan", "my_run"]
        assert grid[name]["lq"].shape == (h, w, 3)
        assert {img.shape for key, img in grid[name].items() if key != "lq"} == {(4 * h, 4 * w, 3)}
    assert np.array_equal(grid["00000.png"]["srgan"], read_image(paths[0]))  # the same output predict writes
    fig = plot_real_world(grid, title="Real-world LQ")
    assert len(fig.axes) == 2 * 4 and fig._suptitle.get_text().startswith("Real-world LQ")
    titles = [ax.get_title().replace("\n", " ") for ax in fig.axes[:4]]
    assert titles == ["LQ", "Bicubic", "SRGAN (MSRResNet-16)", "my_run"]
    assert [to_hex(ax.title.get_color()) for ax in fig.axes[:4]] == [model_color(k) for k in grid["00000.png"]]
    assert [fig.axes[4 * i].get_ylabel() for i in range(2)] == ["00000.png\n37x53", "00001.png\n45x31"]
    saved = show_real_world({"srgan": net}, real_root, tmp_path / "fig")
    assert saved is not None and (tmp_path / "fig" / "06_real_world.png").is_file()
    written = predict_real_world(net, real_root, run)
    assert [p.relative_to(run).as_posix() for p in written] == ["test_real_predictions/00000.png",
                                                                "test_real_predictions/00001.png"]  # fmt: skip


def test_real_world_steps_without_test_real(mini_root: Path, tmp_path: Path, capsys) -> None:
    run = _tiny_run(tmp_path / "runs" / "srgan")
    assert show_real_world({"srgan": run}, mini_root, tmp_path / "fig") is None
    assert predict_real_world(load_generator(run), mini_root, run) == []
    out = capsys.readouterr().out
    assert out.count("no test_real/ in") == 2
    assert not (tmp_path / "fig").exists() and not (run / "test_real_predictions").exists()
    with pytest.raises(FacesrError, match="no real-world LQ images in .*test_real"):
        real_world_images({"srgan": run}, mini_root)
    empty = plot_real_world({})
    assert any("no real-world LQ images" in t.get_text() for ax in empty.axes for t in ax.texts)
