"""The report skeleton of a quick run: ``python -m facesr report``, main.tex and its zip, report.md, references.bib,
and (where pdflatex is installed) the compiled PDF and its page count.

Uses the session's ``quick_run`` (no training here); the figures come from its logs and two small grids.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from facesr.cli import main
from facesr.inference.submissions import expected_test
from facesr.report.bibliography import BIBLIOGRAPHY, NETWORK_PAPERS, run_citations
from facesr.report.sections import HANDOUT_SECTIONS
from facesr.report.skeleton import OVERLEAF_ZIP, report_dir, run_figures_dir, write_report
from facesr.report.submission_table import expected_from
from facesr.report.tables import best_tta, psnr_table, save_table

PAGE_LIMIT = 5  # docs/course.md section 11


@pytest.fixture(scope="module")
def report(quick_run: Path, sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report folder of ``quick_run``, written by ``python -m facesr report`` from a figures folder holding
    the PSNR table of notebook 06 (2 val images, x8 on the first)."""
    figures = tmp_path_factory.mktemp("project") / "figures"
    table = psnr_table({"srgan": quick_run}, sample_root, tta=True, limit=2, x8_limit=1, verbose=False)
    save_table(table, figures, "psnr_table")
    code = main(["report", str(quick_run), "--figures", str(figures), "--data", str(sample_root), "--faces", "0",
                 "--author", "Matriculation number A0123456X"])  # fmt: skip
    assert code == 0
    return report_dir(figures)


def _main_tex(report: Path) -> str:
    return (report / "main.tex").read_text(encoding="utf-8")


def test_the_skeleton_references_only_files_inside_its_zip(report: Path, quick_run: Path) -> None:
    assert report.name == "report" and (report.parent / "figures").is_dir()  # beside the figures folder
    with zipfile.ZipFile(report / OVERLEAF_ZIP) as zf:
        names = set(zf.namelist())
    assert "main.tex" in names and "references.bib" in names  # at the zip's root: Overleaf's Upload Project
    tex = _main_tex(report)
    used = re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]+)\}", tex) + re.findall(r"\\input\{([^}]+)\}", tex)
    used = [u if Path(u).suffix else f"{u}.tex" for u in used]
    assert used and set(used) <= names, set(used) - names
    assert all(not Path(u).is_absolute() and ".." not in u for u in used)
    assert {"figures/06_loss_curves.pdf", "figures/06_psnr_curves.pdf", "figures/06_qualitative_0.pdf",
            "figures/06_real_world.pdf", "tables/submission_table.tex", "tables/psnr_table.tex"} <= names  # fmt: skip
    assert re.findall(r"\\bibliography\{([^}]+)\}", tex) == ["references"]
    packages = re.findall(r"\\usepackage(?:\[[^\]]*\])?\{([^}]+)\}", tex)
    assert set(packages) == {"geometry", "graphicx", "booktabs", "amsmath", "hyperref"}
    # report.md: the same figures as PNG beside it, the bibliography beside it
    md = (report / "report.md").read_text(encoding="utf-8")
    pngs = re.findall(r"\]\((figures/[^)]+\.png)\)", md)
    assert pngs and all((report / p).is_file() for p in pngs)
    assert "bibliography: references.bib" in md


def test_the_skeleton_has_every_handout_section_and_blanks_only_for_analysis(report: Path, quick_run: Path) -> None:
    tex = _main_tex(report)
    sections = re.findall(r"\\section\{([^}]+)\}", tex)
    positions = [sections.index(s) for s in HANDOUT_SECTIONS]
    assert positions == sorted(positions), sections  # in the handout's order
    assert sections[0] == "Introduction" and sections[-1] == "Conclusion"
    # every blank is a \fillin box of its own (the student's analysis); numbers and names are filled in
    blanks = [m.start() for m in re.finditer("<FILL IN", tex)]
    boxes = [m.start() + len("\\fillin{") for m in re.finditer(r"\\fillin\{", tex)]
    assert blanks and blanks == boxes
    assert r"\author{Matriculation number A0123456X}" in tex
    md = (report / "report.md").read_text(encoding="utf-8")
    md_blanks = [line for line in md.splitlines() if "FILL IN" in line]
    assert len(md_blanks) == len(blanks) and all(line.startswith("**\\<FILL IN: ") for line in md_blanks)
    # the losses are the run's: L1 with its weight, Adam, the schedule; PSNR numbers from the table
    config = pd.read_json(quick_run / "config.json", typ="series")
    assert r"\mathcal{L}_{1} = \frac{1}{N}" in tex and r"\mathcal{L}_G = \mathcal{L}_{1}" in tex
    assert f"{int(config['iters']):,} iterations of Adam" in tex
    table = pd.read_csv(report.parent / "figures" / "psnr_table.csv").set_index("run")
    assert f"{table.loc['srgan', 'psnr']:.4f} dB" in tex
    tta = best_tta(table.reset_index(), "srgan")  # the self-ensemble python -m facesr report picked
    expected = expected_test(expected_from(table.loc["srgan"].to_dict(), tta), 2022, quick_run.parent).range_text()
    assert f"its test PSNR is expected at {expected} dB" in tex  # the published val/test pairs of 2022
    bib = (report / "references.bib").read_text(encoding="utf-8")
    keys = re.findall(r"^@\w+\{([^,]+),", bib, re.M)
    assert set(run_citations(config.to_dict(), "course")) <= set(keys) <= set(BIBLIOGRAPHY)
    assert {"ledig2017srgan", "wang2018esrgan", "kingma2015adam"} <= set(keys)
    cited = {k.strip() for group in re.findall(r"\\cite\{([^}]+)\}", tex) for k in group.split(",")}
    assert cited == set(keys)  # every entry cited, every citation in the file


def test_an_edited_report_is_never_replaced(report: Path, quick_run: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    figures = report.parent / "figures"
    again = write_report(quick_run, figures, edition=2022)
    assert again.folder == report  # unchanged since the kit wrote it: written again in place
    (report / "main.tex").write_text(_main_tex(report) + "% my analysis\n", encoding="utf-8")
    moved = write_report(quick_run, figures, edition=2022)
    assert moved.folder == report.with_name("report_2") and "% my analysis" in _main_tex(report)
    drive = tmp_path / "drive" / "facesr"  # a project's figures on Drive: the report beside them, per edition and mode
    assert report_dir(drive / "figures" / "2024") == drive / "report" / "2024"
    assert report_dir(drive / "figures" / "2024" / "quick") == drive / "report" / "2024" / "quick"
    monkeypatch.setenv("FACESR_DRIVE", str(tmp_path / "drive"))  # the CLI's default: notebook 06's folder on Drive
    assert run_figures_dir(quick_run) == drive / "figures" / "2022" / "quick"


@pytest.mark.skipif(not (shutil.which("pdflatex") and shutil.which("bibtex")), reason="needs pdflatex and bibtex")
def test_the_skeleton_compiles_from_its_zip_within_five_pages(report: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(report / OVERLEAF_ZIP) as zf:
        zf.extractall(tmp_path)  # what Overleaf gets: the zip alone

    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:]
        return done.stdout

    run("pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex")
    run("bibtex", "main")
    run("pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex")
    run("pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex")
    log = (tmp_path / "main.log").read_text(encoding="latin-1")
    pages = int(re.search(r"Output written on main\.pdf \((\d+) pages?", log).group(1))
    print(f"the quick run's report skeleton: {pages} pages")
    assert 1 <= pages <= PAGE_LIMIT
    assert "undefined" not in log.lower(), re.findall(r".*undefined.*", log)
    assert not re.search(r"Overfull \\hbox \((\d{2,}|[3-9])\.", log), re.findall(r"Overfull.*", log)


@pytest.mark.skipif(not shutil.which("pandoc"), reason="needs pandoc")
def test_report_md_converts_with_pandoc(report: Path, tmp_path: Path) -> None:
    def pandoc(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["pandoc", "report.md", "--citeproc", *args], cwd=report, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    word = pandoc("-o", str(tmp_path / "report.docx"))  # for Word: every equation and citation converts
    assert "WARNING" not in word.stderr, word.stderr
    text = pandoc("-t", "plain").stdout
    assert "Ledig et al. 2017" in text and "<FILL IN: your approach" in text and "Table 1" in text


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="needs pdflatex")
def test_every_network_and_loss_compiles(tmp_path: Path) -> None:
    """The model and loss paragraphs of every generator and loss term the configs use, through pdflatex."""
    from facesr.config.named_configs import edition_configs
    from facesr.report.document import Document, Paragraph
    from facesr.report.latex import render_latex
    from facesr.report.methods import loss_blocks, network_text, training_text

    configs = edition_configs(2024)
    stages = [("swinir", configs["swinir"].to_dict()), ("swinir_l2", configs["swinir_l2"].to_dict())]
    gan = [("esrgan_gan", configs["esrgan_gan"].to_dict())]
    charbonnier = [("msrresnet26", {**configs["msrresnet26"].to_dict(), "pixel_loss": "charbonnier"})]
    distilled = [("omnisr_kd", configs["omnisr_kd"].to_dict())]  # taught by notebook 04's RRDBNet
    blocks = [Paragraph(network_text(c.generator, c.generator_args)) for c in configs.values()]
    blocks += [Paragraph(training_text(cfg, stage)) for stage, (_, cfg) in zip(("first", "second"), stages, strict=True)]
    for run in (stages, gan, charbonnier, distilled):
        blocks += loss_blocks(run, "the ground-truth face")
    generators = {c.generator for c in configs.values()}  # every network the configs use cites its paper
    assert generators <= set(NETWORK_PAPERS) and {k for g in generators for k in NETWORK_PAPERS[g]} <= set(BIBLIOGRAPHY)
    assert "hinton2015distilling" in run_citations(distilled[0][1])
    (tmp_path / "main.tex").write_text(render_latex(Document("Losses", "A0123456X", blocks)), encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    tex = (tmp_path / "main.tex").read_text(encoding="utf-8")
    assert r"5\cdot 10^{-3}\,\mathcal{L}_{G}^{Ra}" in tex and r"0.01\,\mathcal{L}_{1}" in tex  # the GAN run's weights
    assert "Stage \\texttt{swinir\\_l2}: the pixel loss is the mean squared error" in tex
    assert r"\mathcal{L}_G = \mathcal{L}_{1} + \mathcal{L}_{\mathrm{distill}}" in tex and "run \\texttt{esrgan}" in tex
    cited = {k for group in re.findall(r"\\cite\{([^}]+)\}", tex) for k in group.split(",")}
    assert {k for g in generators for k in NETWORK_PAPERS[g]} <= cited and "settings" not in tex


def _full_project(root: Path) -> tuple[Path, Path]:
    """A 2024 student's project as notebook 06 leaves it, every run and figure a full project has, made up
    (logs, run_info.json, tables, smooth synthetic faces; no training): (submitted run, figures folder)."""
    import json

    import numpy as np

    from facesr.config.named_configs import edition_configs
    from facesr.report.figures import plot_comparison, plot_real_world
    from facesr.report.results_steps import show_loss_curves, show_psnr_curves
    from facesr.report.style import model_label, save_figure
    from facesr.report.tables import machine_table

    configs, runs, rows = edition_configs(2024), {}, []
    names = ["srgan", "esrgan", "esrgan_gan", "msrresnet26", "msrresnet26_l2", "swinir", "swinir_l2", "rcan", "rcan_l2"]
    gpu = {"device": "cuda", "gpu_name": "NVIDIA A100-SXM4-40GB", "gpu_count": 1, "gpu_memory_gib": 39.4,
           "amp_dtype": "bf16", "iterations": 300000, "wall_hours": 21.5, "iters_per_s": 3.9}  # fmt: skip
    for k, name in enumerate(names):
        runs[name] = root / "runs" / name
        runs[name].mkdir(parents=True)
        (runs[name] / "config.json").write_text(json.dumps(configs[name].to_dict()))
        (runs[name] / "run_info.json").write_text(json.dumps(gpu))
        it = np.arange(1, 31) * 10_000
        pd.DataFrame({"iter": it, "l_pix": 0.05 / np.sqrt(it / 1e4)}).to_csv(runs[name] / "log.csv", index=False)
        pd.DataFrame({"iter": it[::3], "psnr": 26.0 + 0.05 * k + np.log1p(it[::3] / 1e5) / 4}).to_csv(
            runs[name] / "val.csv", index=False)  # fmt: skip
        rows.append({"model": model_label(name), "run": name, "params": 2_251_758, "within_limit": name != "esrgan",
                     "best_iter": 300000, "images": 400, "psnr": 26.5 + 0.01 * k, "ssim": 0.75,
                     "psnr_hflip": 26.55 + 0.01 * k, "ssim_hflip": 0.751, "images_x8": 400, "psnr_x8": 26.6 + 0.01 * k,
                     "ssim_x8": 0.752})  # fmt: skip
    figures = root / "figures"
    bicubic = {"model": "Bicubic", "run": "bicubic", "params": 0, "within_limit": True, "images": 400, "psnr": 25.8,
               "ssim": 0.7}  # fmt: skip
    save_table(pd.DataFrame([bicubic, *rows]), figures, "psnr_table")
    save_table(machine_table(runs), figures, "machine_table")
    show_loss_curves(runs, figures)
    show_psnr_curves(runs, 25.8, figures)
    y, x = np.mgrid[0:512, 0:512]
    face = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)  # compresses like a photo
    columns = ["lq", "bicubic", "srgan", "swinir_l2", "gt"]
    for i in range(2):
        images = {"lq": face[::4, ::4], **{c: face for c in columns[1:]}}
        save_figure(plot_comparison(images, columns=columns), figures, f"06_qualitative_{i}")
    real = {f"{i:02d}.png": {"lq": face[::4, ::4], **{c: face for c in columns[1:4]}} for i in range(1, 7)}
    save_figure(plot_real_world(real, columns=columns), figures, "06_real_world")
    return runs["swinir_l2"], figures


@pytest.mark.skipif(not (shutil.which("pdflatex") and shutil.which("bibtex")), reason="needs pdflatex and bibtex")
def test_a_full_projects_skeleton_fits_five_pages(tmp_path: Path) -> None:
    """Nine runs, two stages of the submitted one, six real-world images: still five pages (skipped elsewhere)."""
    run, figures = _full_project(tmp_path)
    files = write_report(run, figures, tta="x8", edition=2024, author="Matriculation number A0123456X")
    assert files.missing == []
    tex = files.main_tex.read_text(encoding="utf-8")
    assert "Stage \\texttt{swinir}: the pixel loss is the mean absolute error" in tex  # both stages described
    assert "wang2021realesrgan" in files.bibliography.read_text(encoding="utf-8")  # the 2024 degradation's paper
    folder = tmp_path / "overleaf"
    with zipfile.ZipFile(files.zip) as zf:
        zf.extractall(folder)
    for cmd in (["pdflatex"], ["bibtex"], ["pdflatex"], ["pdflatex"]):
        args = [*cmd, "main"] if cmd == ["bibtex"] else [*cmd, "-interaction=nonstopmode", "-halt-on-error", "main.tex"]
        done = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:]
    log = (folder / "main.log").read_text(encoding="latin-1")
    pages = int(re.search(r"Output written on main\.pdf \((\d+) pages?", log).group(1))
    print(f"a full 2024 project's report skeleton: {pages} pages")
    assert pages <= PAGE_LIMIT and not re.search(r"Overfull \\hbox \((\d{2,}|[3-9])\.", log)
