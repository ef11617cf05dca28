"""Report figures and tables at page size: PDF + PNG read back from the files, fonts, native pixels, grid columns,
chained curves; the LaTeX tables' headers, units and numbers against the CSV; scores on fewer images marked.

Synthetic logs, images and tables only (fast: no training, no inference).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402

from facesr.data.lq_statistics import STATISTICS  # noqa: E402
from facesr.report.curves import (  # noqa: E402
    chain_runs,
    plot_loss_curves,
    plot_psnr_curves,
    plot_run_curves,
    plot_stage_curves,
)
from facesr.report.degradation_match import DegradationComparison, plot_degradation_match  # noqa: E402
from facesr.report.explore import (  # noqa: E402
    channel_histograms,
    plot_degradation_result,
    plot_degradation_steps,
    plot_psnr_histogram,
    plot_second_order_steps,
    show_images,
)
from facesr.report.figures import plot_comparison, plot_real_world, report_columns  # noqa: E402
from facesr.report.runs import run_parents  # noqa: E402
from facesr.report.skeleton import figure_width  # noqa: E402
from facesr.report.style import COLUMN_WIDTH, FULL_WIDTH, MIN_FONT_PT, REPORT_DPI, save_figure  # noqa: E402
from facesr.report.submission_table import submission_table  # noqa: E402
from facesr.report.table_views import FEWER_NOTE, table_view  # noqa: E402
from facesr.report.tables import PSNR_REPORT_HIDE, save_table  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def pdf_page_inches(path: Path) -> tuple[float, float]:
    """The page size of a one-page PDF as matplotlib writes it (its MediaBox, in points)."""
    box = re.search(rb"/MediaBox \[\s*([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)\s*\]", path.read_bytes())
    assert box, f"{path.name}: no MediaBox"
    x0, y0, x1, y1 = (float(v) for v in box.groups())
    return (x1 - x0) / 72, (y1 - y0) / 72


def pdf_image_sizes(path: Path) -> list[tuple[int, int]]:
    """(width, height) of every image XObject embedded in a PDF, from their dictionaries."""
    found = re.findall(rb"/Subtype /Image\s*/Width (\d+)\s*/Height (\d+)", path.read_bytes())
    return [(int(w), int(h)) for w, h in found]


def assert_report_page(fig: object, folder: Path, name: str) -> tuple[Path, Path]:
    """Save ``fig``; check both files have a report width (6.5 or 3.25 in) and the same height, the PNG at
    300 dpi, and every text of the figure at least 8 pt."""
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert sizes and min(sizes) >= MIN_FONT_PT, f"{name}: text below {MIN_FONT_PT} pt ({min(sizes)})"
    png, pdf = save_figure(fig, folder, name)
    assert (png.suffix, pdf.suffix) == (".png", ".pdf") and pdf.read_bytes()[:5] == b"%PDF-"
    width, height = pdf_page_inches(pdf)
    assert min(abs(width - w) for w in (FULL_WIDTH, COLUMN_WIDTH)) < 0.01, f"{name}: {width:.3f} in wide"
    assert 0.5 < height <= 9.0, f"{name}: {height:.2f} in high"
    with Image.open(png) as im:
        assert im.size[0] == round(width * REPORT_DPI) and abs(im.size[1] - height * REPORT_DPI) <= 1, (name, im.size)
    return png, pdf


def _logs(n: int = 6, start: float = 24.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    iters = np.arange(1, n + 1) * 10
    log = pd.DataFrame({"iter": iters, "lr": 2e-4, "l_pix": np.linspace(0.08, 0.03, n)})
    val = pd.DataFrame({"iter": iters[1::2], "psnr": start + np.arange(len(iters[1::2])) * 0.3, "ssim": 0.6})
    val["bicubic_psnr"] = 23.5
    return log, val


def test_every_figure_is_a_pdf_and_a_png_at_page_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    log, val = _logs()
    gan = log.assign(l_percep=np.linspace(2.0, 1.5, len(log)), l_g_gan=0.01)
    kernel = np.outer(np.hanning(7), np.hanning(7))
    steps = {"1 blur": gt, "1 resize": gt[::2, ::2], "2 noise": gt[::2, ::2], "final JPEG": gt[::4, ::4], "LQ": gt[::4, ::4]}
    monkeypatch.setitem(plt.rcParams, "figure.max_open_warning", 0)  # every figure function's, open at once
    figures = {
        "loss": plot_loss_curves({"srgan": log, "esrgan": log, "esrgan_gan": gan, "swinir": log, "swinir_l2": log}),
        "psnr": plot_psnr_curves({"srgan": val, "swinir": val, "swinir_l2": _logs(start=26)[1]}, bicubic_psnr=23.5),
        "run": plot_run_curves("srgan", log, val),
        "stages": plot_stage_curves({"swinir": (log, val), "swinir_l2": (log, val)}, {"srgan": (log, val)}),
        "grid": plot_comparison({"lq": gt[::4, ::4], "bicubic": gt, "srgan": gt, "gt": gt}, title="face 0"),
        "real": plot_real_world({"a.png": {"lq": gt[:12, :16], "bicubic": gt[:48, :64], "srgan": gt[:48, :64]}}),
        "images": show_images([gt] * 3, ["a", "b", "c"], suptitle="some faces"),
        "histograms": channel_histograms({"GT": [gt], "LQ": [gt[::4, ::4]]}),
        "steps": plot_degradation_steps({"blur": gt, "LQ": gt[::4, ::4]}, kernel, "params"),
        "second_order": plot_second_order_steps(steps, {"kernel 1": kernel, "kernel 2": None, "final sinc": kernel},
                                                gt, 21.5, "title"),
        "result": plot_degradation_result(kernel, gt[::4, ::4], gt, gt, 25.0, "params"),
        "psnr_histogram": plot_psnr_histogram(rng.normal(24, 1, 40), {"val LQ": 24.2}, title="bicubic"),
        "degradation_match": plot_degradation_match(DegradationComparison(
            2024, (), 2, pd.DataFrame({"name": list("ab"), **{s: rng.normal(1, 0.1, 2) for s in STATISTICS}}),
            pd.DataFrame({"name": list("aabb"), "draw": [0, 1] * 2, **{s: rng.normal(1, 0.2, 4) for s in STATISTICS}}))),
    }  # fmt: skip
    for name, fig in figures.items():
        assert_report_page(fig, tmp_path, name)
    # the title is the caption's: left out of both files, still on the figure shown in the notebook
    fig, seen = figures["grid"], []
    save = fig.savefig
    fig.savefig = lambda *a, **k: (seen.append(fig._suptitle.get_visible()), save(*a, **k))[1]
    save_figure(fig, tmp_path, "titled")
    assert seen == [False, False] and fig._suptitle.get_visible() and fig._suptitle.get_text() == "face 0"
    # a figure drawn at another size is scaled to the nearest report width
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.plot([0, 1], [0, 1])
    png, pdf = save_figure(fig, tmp_path, "wide.svg")
    assert (png.name, pdf.name) == ("wide.png", "wide.pdf")
    assert pdf_page_inches(pdf) == pytest.approx((FULL_WIDTH, 4 * FULL_WIDTH / 12), abs=0.01)
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2))  # one column: main.tex sets it half the text width
    _, column = save_figure(fig, tmp_path, "column")
    assert (figure_width(column), figure_width(pdf)) == ("column", "full")


def test_face_grids_embed_native_pixels_and_hold_the_report_columns(tmp_path: Path):
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    images = {"lq": gt[::4, ::4], "bicubic": gt, "srgan": gt, "esrgan": gt, "swinir_l2": gt, "gt": gt}
    columns = report_columns("", "srgan", "swinir_l2")
    assert columns == ["lq", "bicubic", "srgan", "swinir_l2", "gt"]
    assert report_columns(" lq, swinir_l2,gt ,lq", "srgan", "x") == ["lq", "swinir_l2", "gt"]
    fig = plot_comparison(images, columns=columns)
    titles = [ax.get_title().replace("\n", " ") for ax in fig.axes[:5]]  # label, then the PSNR to the GT
    labels = ["LQ", "Bicubic", "SRGAN (MSRResNet-16)", "SwinIR + MSE finish", "GT"]
    assert all(t.startswith(label) for t, label in zip(titles, labels, strict=True)), titles
    assert len(fig.axes) == 3 * len(columns)  # faces, eyes, mouth
    _, pdf = assert_report_page(fig, tmp_path, "06_qualitative_0")
    sizes = pdf_image_sizes(pdf)
    assert (24, 24) in sizes and sizes.count((96, 96)) == 4  # the LQ and the four faces at their own pixels
    assert len(sizes) == 3 * len(columns)
    grid = {f"{i}.png": {"lq": gt[: 8 + 4 * i, :12], "bicubic": gt[: 32 + 16 * i, :48], "srgan": gt[: 32 + 16 * i, :48],
                         "esrgan": gt[: 32 + 16 * i, :48], "swinir_l2": gt[: 32 + 16 * i, :48]} for i in range(6)}
    fig = plot_real_world(grid, columns=columns)  # gt: none for real-world images
    titles = [ax.get_title().replace("\n", " ") for ax in fig.axes[:4]]  # narrow columns wrap their titles
    assert titles == ["LQ", "Bicubic", "SRGAN (MSRResNet-16)", "SwinIR + MSE finish"]
    assert len(fig.axes) == 6 * 4 and fig.axes[4].get_ylabel() == "1.png\n12x12"
    _, pdf = assert_report_page(fig, tmp_path, "06_real_world")
    assert pdf_page_inches(pdf)[1] <= 7.0  # six rows still fit a page with its caption
    assert sorted(pdf_image_sizes(pdf)) == sorted((img.shape[1], img.shape[0]) for row in grid.values()
                                                  for key, img in row.items() if key in columns)  # fmt: skip


def test_chained_curves_continue_each_stage_after_the_one_it_starts_from(tmp_path: Path):
    base, finish, gan_base, gan = _logs(n=6), _logs(n=4, start=25), _logs(n=8), _logs(n=2)
    logs = {"swinir": base, "swinir_l2": finish, "esrgan": gan_base, "esrgan_gan": gan, "srgan": _logs(n=3)}
    chained = chain_runs(logs)  # parents by the kit's naming: _l2 after its base, the GAN after esrgan
    base_end = max(base[0]["iter"].max(), base[1]["iter"].max())
    assert chained["swinir_l2"][1]["iter"].min() > base_end  # the finish's first point after its base's last
    assert chained["swinir_l2"][0]["iter"].tolist() == (finish[0]["iter"] + base_end).tolist()
    assert chained["esrgan_gan"][0]["iter"].min() == gan_base[0]["iter"].max() + gan[0]["iter"].min()
    assert chained["srgan"][0]["iter"].tolist() == logs["srgan"][0]["iter"].tolist()  # nothing before it
    # from the run folders: config.json's init (a name, a run folder or a checkpoint in one) decides
    runs = {}
    for name, init in (("a", None), ("b", str(tmp_path / "a")), ("c", str(tmp_path / "b" / "best.pt")), ("d_l2", None)):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        (runs[name] / "config.json").write_text(json.dumps({"init": init}))
    assert run_parents(runs) == {"b": "a", "c": "b"}
    fig = plot_psnr_curves({n: v for n, (_, v) in logs.items()}, bicubic_psnr=23.5)
    main, zoom = fig.axes[:2]
    line = next(ln for ln in main.get_lines() if ln.get_label() == "SwinIR + MSE finish")
    assert min(line.get_xdata()) > base_end and "stages" in main.get_xlabel()
    best = max(v["psnr"].max() for _, v in logs.values())
    labels = {ln.get_label() for ln in zoom.get_lines()}
    near = {n for n, (_, v) in logs.items() if v["psnr"].max() >= best - 1.0}
    assert "SwinIR + MSE finish" in labels and len([ln for ln in zoom.get_lines() if ln.get_marker() == "o"]) == len(near)
    assert zoom.get_ylim()[0] >= best - 1.1 and zoom.get_ylim()[1] <= best + 0.2
    fig = plot_loss_curves({n: lg for n, (lg, _) in logs.items()})
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 3  # swinir + its finish, esrgan + the GAN, srgan
    assert {ax.get_ylim() for ax in panels} == {panels[0].get_ylim()} and panels[0].get_yscale() == "log"


# ----------------------------------------------------------------------------- LaTeX tables


def parse_tabular(tex: str) -> tuple[str, list[list[str]], list[list[str]]]:
    """(column spec, header rows, body rows) of a booktabs tabular; cells without \\textbf and escapes."""
    match = re.search(r"\\begin\{tabular\}\{(.+?)\}\n(.*?)\\end\{tabular\}", tex, re.S)
    assert match, tex
    spec, body = match.groups()
    assert body.count(r"\toprule") == 1 and body.count(r"\midrule") == 1 and body.count(r"\bottomrule") == 1
    head, rest = body.split(r"\midrule")
    rows_text = rest.split(r"\bottomrule")[0]

    n_columns = len(re.findall(r"p\{[^}]*\}|[lrc]", spec.replace("@{}", "")))

    def rows(text: str) -> list[list[str]]:
        out = []
        for line in re.split(r"\\\\|\\tabularnewline", text.replace(r"\toprule", "")):
            line = re.sub(r"\\cmidrule\(lr\)\{[\d-]+\}", "", line).strip()
            if line:
                cells = [re.sub(r"^\\raggedright ", "", c.strip()) for c in re.split(r"(?<!\\)&", line)]
                cells = [re.sub(r"\\textbf\{(.*)\}", r"\1", c) for c in cells]
                spans = [int(m.group(1)) if (m := re.match(r"\\multicolumn\{(\d+)\}", c)) else 1 for c in cells]
                assert sum(spans) == n_columns, (line, n_columns)  # every row spans every column
                out.append([c.replace("\\%", "%").replace("\\_", "_") for c in cells])
        return out

    return spec, rows(head), rows(rows_text)


def _psnr_table(x8_images: int = 1) -> pd.DataFrame:
    table = pd.DataFrame({
        "model": ["Bicubic", "SRGAN (MSRResNet-16)", "SwinIR", "SwinIR + MSE finish"],
        "run": ["bicubic", "srgan", "swinir", "swinir_l2"], "params": [0, 1517571, 2251758, 2251758],
        "within_limit": [True, True, True, True], "best_iter": pd.array([pd.NA, 400, 240, 60], dtype="Int64"),
        "images": [8, 8, 8, 8], "psnr": [24.228712345, 24.49851234, 23.15091111, 23.25334444],
        "ssim": [0.6512345, 0.6601234, 0.61, 0.62], "psnr_hflip": [math.nan, 24.50041234, 23.3559, 23.4653],
        "ssim_hflip": [math.nan, 0.661, 0.612, 0.623], "images_x8": pd.array([pd.NA, x8_images, x8_images, x8_images], dtype="Int64"),
        "psnr_x8": [math.nan, 25.1, 23.9, 24.03], "ssim_x8": [math.nan, 0.70, 0.62, 0.63],
    })  # fmt: skip
    table.attrs["report_hide"] = PSNR_REPORT_HIDE
    return table


def _check_numbers(csv: pd.DataFrame, tex: str, units: set[str]) -> list[list[str]]:
    """Every number of the tex body is the CSV's, rounded as the header's column prints it."""
    _, head, body = parse_tabular(tex)
    assert units <= set(head[-1]), head
    assert len(body) == len(csv)
    view = table_view(csv, PSNR_REPORT_HIDE if "psnr" in csv and "best_iter" in csv else ())
    for row, cells in enumerate(body):
        assert len(cells) == len(view.columns)
        for col, cell in zip(view.columns, cells, strict=True):
            if col not in csv:  # derived for the report (% of limit): checked by its own assert
                continue
            value = csv[col].iloc[row]
            if cell in ("yes", "no"):
                assert cell == ("yes" if str(value) == "True" else "no"), (col, cell, value)
                continue
            if cell == "" or isinstance(value, str):
                continue
            decimals = len(cell.split(".")[1]) if "." in cell else 0
            assert float(cell.replace(",", "")) == pytest.approx(round(float(value), decimals), abs=1e-9), (col, cell)
    return body


def test_every_table_is_a_booktabs_tabular_with_units_and_the_csv_numbers(tmp_path: Path):
    from facesr.report.budget import parameter_budget_table

    psnr = _psnr_table(x8_images=8)
    csv_path, md_path, tex_path = save_table(psnr, tmp_path, "psnr_table")
    assert [p.suffix for p in (csv_path, md_path, tex_path)] == [".csv", ".md", ".tex"]
    csv = pd.read_csv(csv_path)
    assert csv["psnr"].iloc[1] == 24.49851234  # full precision in the CSV
    body = _check_numbers(csv, tex_path.read_text(), {"Model", "PSNR (dB)", "SSIM"})
    assert body[1][2] == "24.4985" and body[0][2] == "24.2287"  # 4 decimals, as the leaderboard is read
    tex = tex_path.read_text()
    assert r"\textbf{24.4985}" in tex and r"\textbf{25.1000}" in tex and "Parameters" not in tex
    assert r"\multicolumn{2}{c}{x8}" in tex  # all images: no count in the header
    params = parameter_budget_table(2024)
    _, _, tex_path = save_table(params, tmp_path, "param_table")
    body = _check_numbers(pd.read_csv(tmp_path / "param_table.csv"), tex_path.read_text(),
                          {"Parameters", "% of limit", "Within limit"})  # fmt: skip
    srgan = next(row for row in body if row[0] == "SRGAN")
    assert srgan[2] == "1,517,571" and srgan[3] == "66.7"  # % of the 2,276,356 limit
    assert next(row for row in body if row[0] == "ESRGAN (discriminator)")[3:] == ["", ""]  # not a generator
    machine = pd.DataFrame({"model": ["SwinIR"], "run": ["swinir"], "machine": ["1 x NVIDIA A100-SXM4-40GB (39.4 GiB)"],
                            "gpus": [1], "torch": ["2.5.1"], "cuda": ["12.4"], "amp": ["bf16"], "iterations": [300000],
                            "wall_hours": [12.3456], "iters_per_s": [6.7512], "sessions": [2]})  # fmt: skip
    _, _, tex_path = save_table(machine, tmp_path, "machine_table")
    body = _check_numbers(pd.read_csv(tmp_path / "machine_table.csv"), tex_path.read_text(), {"GPU", "Hours"})
    assert body == [["SwinIR", "1 x NVIDIA A100-SXM4-40GB (39.4 GiB)", "bf16", "300,000", "12.35", "6.75"]]
    sub = submission_table(psnr, "swinir_l2", "x8", machine, edition=2024)
    _, _, tex_path = save_table(sub, tmp_path, "submission_table")
    csv = pd.read_csv(tmp_path / "submission_table.csv")
    assert csv["expected_test_psnr"].iloc[1:].str.match(r"\d+\.\d{4}-\d+\.\d{4}$").all()  # in the CSV, not the .tex
    body = _check_numbers(csv.drop(columns="expected_test_psnr"), tex_path.read_text(),
                          {"Model", "PSNR (dB)", "Parameters", "% of limit", "GPU", "Hours"})
    assert [row[0] for row in body] == ["Bicubic", "SRGAN (MSRResNet-16)", "SwinIR", "SwinIR + MSE finish"]
    assert body[2][-2:] == ["1 x NVIDIA A100-SXM4-40GB", "12.35"] and body[3][4] == "98.9"  # % of 2,276,356


def test_a_score_on_fewer_images_is_never_shown_unmarked(tmp_path: Path):
    psnr = _psnr_table(x8_images=1)  # quick mode: x8 on the first val image only
    _, md, tex = save_table(psnr, tmp_path, "psnr_table")
    spec, head, body = parse_tabular(tex.read_text())
    groups = " ".join(head[0])
    assert "x8, 1 of 8 images" in groups and "plain" in groups and "8 of 8" not in groups
    assert "images" not in " ".join(head[-1])  # the counts are in the group headers, not columns of their own
    # one run scored on fewer images than the others of its column: left out, with a note
    mixed = psnr.copy()
    mixed.loc[2, "images"] = 4
    view = table_view(mixed)
    psnr_col = view.columns.index("psnr")
    assert [row[psnr_col] for row in view.cells] == ["24.2287", "24.4985", "", "23.2533"]
    assert view.notes == [FEWER_NOTE]
    _, _, tex = save_table(mixed, tmp_path, "mixed")
    assert FEWER_NOTE in tex.read_text()
    # the submission table of the x8 submission says it too
    sub = submission_table(psnr, "swinir_l2", "x8", edition=2024)
    assert sub["role"].tolist() == ["floor", "baseline", "first stage", "submitted"]
    view = table_view(sub)
    assert "x8, 1 of 8 images" in view.groups
    assert view.headers == ["Model", "PSNR (dB)", "PSNR (dB)", "Parameters", "% of limit", "GPU", "Hours"]
    assert view.groups[:3] == ["", "plain", "x8, 1 of 8 images"]  # the expected test range: in the CSV and the text
    assert sub.set_index("run").loc["swinir_l2", "percent_of_limit"] == pytest.approx(100 * 2251758 / 2276356)


def test_submission_tables_expected_test_column_is_the_kits_range(tmp_path: Path):
    from facesr.inference.submissions import SUBMISSIONS_FILE, expected_test

    psnr = _psnr_table(x8_images=8)
    sub = submission_table(psnr, "srgan", "hflip", edition=2022).set_index("run")
    assert sub.index.tolist() == ["bicubic", "srgan"]  # the baseline submitted: one row
    published = expected_test(24.50041234, 2022).range_text()  # the submitted ensemble's val PSNR
    assert published[:2] == "24" and sub.loc["srgan", "expected_test_psnr"] == published
    assert sub.loc["bicubic", "expected_test_psnr"] == ""
    # the student's own CodaLab scores in the runs folder's submissions.csv widen the range
    (tmp_path / SUBMISSIONS_FILE).write_text("row,edition,run,val_psnr,codalab_psnr,sha256\n1,2022,srgan,24.0,23.0,ab\n")
    own = submission_table(psnr, "srgan", "hflip", edition=2022, runs_dir=tmp_path).set_index("run")
    assert own.loc["srgan", "expected_test_psnr"] == expected_test(24.50041234, 2022, tmp_path).range_text() != published
    assert own.loc["srgan", "expected_test_psnr"].startswith("23.5004-")  # 24.5004 - 1 dB, the own pair's offset
    # quick mode's x8 on 1 of 8 images: the range comes from the plain score; 2025 published no pairs
    x8 = submission_table(_psnr_table(x8_images=1), "swinir_l2", "x8", edition=2024).set_index("run")
    assert x8.loc["swinir_l2", "expected_test_psnr"] == expected_test(23.25334444, 2024).range_text()
    none = submission_table(psnr, "swinir_l2", "x8", edition=2025).set_index("run")
    assert none.loc["swinir_l2", "expected_test_psnr"] == "no published pairs"
    assert "expected_test_psnr" in none.columns and "expected_test_psnr" not in table_view(none).columns  # the .tex
