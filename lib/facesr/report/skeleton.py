"""The report skeleton, filled from a run: ``main.tex``, ``references.bib``, ``report.md`` and the Overleaf zip.

``python -m facesr report RUN`` and notebook 06 call :func:`write_report`. It reads what notebook 06 wrote
into the figures folder (the PSNR and machine tables, the curves and the face grids), makes the submission
table, and writes the report folder beside the figures folder (:func:`report_dir`)::

    main.tex                LaTeX (article, geometry, graphicx, booktabs, amsmath, hyperref): pdflatex + bibtex
    references.bib          the papers of the networks, losses and methods the run used
    report.md               the same report for pandoc (pandoc report.md --citeproc -o report.docx)
    figures/*.pdf, *.png    the report's figures (PDF for LaTeX, PNG for Markdown and Word)
    tables/*.tex            the report's tables (\\input by main.tex)
    report_overleaf.zip     main.tex at its root, references.bib, figures/*.pdf, tables/*.tex: Overleaf's
                            "New Project > Upload Project" opens it as it is

A ``main.tex`` or ``report.md`` edited since the kit wrote it is never replaced: the skeleton then goes to the
next free ``report_2``, ``report_3``, ... beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pandas as pd

from facesr.atomic import atomic_write, atomic_write_json, atomic_write_text
from facesr.config.quick_mode import QUICK_RUNS
from facesr.editions import EDITIONS, Edition, choose_edition
from facesr.errors import FacesrError
from facesr.report.bibliography import bibtex
from facesr.report.document import FILL_IN, render_markdown
from facesr.report.latex import booktabs_tabular, render_latex
from facesr.report.runs import FINISH_SUFFIX
from facesr.report.sections import ReportFacts, report_document
from facesr.report.style import COLUMN_WIDTH
from facesr.report.submission_table import submission_table
from facesr.report.table_views import table_view
from facesr.report.tables import PSNR_REPORT_HIDE, save_table

REPORT_FOLDER = "report"
OVERLEAF_ZIP = "report_overleaf.zip"
SUBMISSION_TABLE = "submission_table"
TABLES = (SUBMISSION_TABLE, "psnr_table", "param_table", "machine_table")
FIGURE_PREFIXES = ("06_loss_curves", "06_psnr_curves", "06_qualitative_", "06_real_world")
_STAMP = ".facesr_report.json"  # the hashes of the files the kit wrote, to tell a student's edits


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote: the folder, its main files, every file, and what was missing."""

    folder: Path
    main_tex: Path
    markdown: Path
    bibliography: Path
    zip: Path
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def report_dir(figures_dir: str | os.PathLike) -> Path:
    """The report folder of a figures folder: its sibling ``report/``, per edition (and mode) where the figures are.

    ``figures/`` -> ``report/``; ``.../figures/2024/`` (a project's figures on Drive) -> ``.../report/2024/``;
    ``.../figures/2024/quick/`` (its quick mode) -> ``.../report/2024/quick/``.
    """
    figures = Path(figures_dir).expanduser()
    folder, tail = figures, []
    if folder.name == QUICK_RUNS:
        folder, tail = folder.parent, [QUICK_RUNS]
    if folder.name.isdigit() and int(folder.name) in EDITIONS:
        folder, tail = folder.parent, [folder.name, *tail]
    return folder.parent.joinpath(REPORT_FOLDER, *tail) if tail else figures.parent / REPORT_FOLDER


def run_figures_dir(run: str | os.PathLike, edition: int | str | Edition | None = None) -> Path:
    """The figures folder notebook 06 wrote for a run: the project's on Drive for its edition and mode when there is
    a Drive (``FACESR_DRIVE``), else the kit's ``figures/`` (:func:`facesr.report.handin.default_figures_dir`).

    Args:
        run: the run folder (its config.json says its edition and whether it is a quick run).
        edition: the edition (None: the run's own, else the default).
    """
    from facesr.report.handin import default_figures_dir

    config = _read_config(Path(run).expanduser())
    return default_figures_dir(choose_edition(edition, config.get("edition")).year, bool(config.get("quick")))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edited(folder: Path) -> bool:
    """Whether main.tex or report.md in ``folder`` differs from what the kit wrote there (or has no record)."""
    written = [folder / name for name in ("main.tex", "report.md") if (folder / name).is_file()]
    if not written:
        return False
    try:
        stamp = json.loads((folder / _STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return any(stamp.get(p.name) != _digest(p) for p in written)


def free_report_dir(folder: str | os.PathLike) -> Path:
    """``folder``, or the first of ``<folder>_2``, ``_3``, ... whose main.tex and report.md hold no edits."""
    folder = Path(folder)
    candidate, n = folder, 2
    while _edited(candidate):
        candidate, n = folder.with_name(f"{folder.name}_{n}"), n + 1
    return candidate


def _read_csv(figures: Path, stem: str, required: bool = False) -> pd.DataFrame | None:
    path = figures / f"{stem}.csv"
    if not path.is_file():
        if required:
            raise FacesrError(f"no {path.name} in {figures}: run notebook 06 (its PSNR table) first, or pass the "
                              "figures folder it wrote (--figures DIR)")  # fmt: skip
        return None
    return pd.read_csv(path)


def _read_config(run_dir: Path) -> dict:
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FacesrError(f"{run_dir / 'config.json'} is missing or unreadable ({err}); pass a run folder written "
                          "by the kit's trainer") from None  # fmt: skip
    if not isinstance(config, dict):
        raise FacesrError(f"{run_dir / 'config.json'} is not a config (a JSON object of TrainConfig fields)")
    return config


def _stages(run_dir: Path, config: dict) -> list[tuple[str, dict]]:
    """The submitted run's stages: its first stage's config first when it is an MSE finish with that run beside it."""
    base = run_dir.name.removesuffix(FINISH_SUFFIX)
    first = run_dir.parent / base / "config.json"
    if run_dir.name.endswith(FINISH_SUFFIX) and first.is_file():
        return [(base, _read_config(first.parent)), (run_dir.name, config)]
    return [(run_dir.name, config)]


def _tables(figures: Path, submission: pd.DataFrame, edition: Edition) -> dict[str, pd.DataFrame]:
    """``{stem: table}`` of the report's tables: the submission table, and those notebook 06 saved (the
    parameter table made here when it did not; the machine table of the submission table's runs)."""
    from facesr.report.budget import parameter_budget_table

    tables = {SUBMISSION_TABLE: submission}
    for stem in TABLES[1:]:
        table = _read_csv(figures, stem)
        if table is None and stem == "param_table":
            table = parameter_budget_table(edition)
            save_table(table, figures, stem)
        if table is not None and stem == "machine_table":  # the runs of the submission table: a page holds them
            table = table[table["run"].isin(submission["run"])]
        if table is not None:
            tables[stem] = table
    return tables


def figure_width(pdf: Path) -> str:
    """``"column"`` for a figure drawn one column wide (its PDF page, as matplotlib writes it), else ``"full"``."""
    box = re.search(rb"/MediaBox \[\s*[\d.]+ [\d.]+ ([\d.]+) [\d.]+\s*\]", pdf.read_bytes())
    return "column" if box and abs(float(box.group(1)) / 72 - COLUMN_WIDTH) < 0.05 else "full"


def _copy_figures(figures: Path, folder: Path) -> dict[str, str]:
    """Copy each report figure's PDF and PNG into ``folder/figures``; return ``{stem: width}`` of those copied."""
    stems = sorted({p.stem for p in figures.glob("06_*.pdf") if p.stem.startswith(FIGURE_PREFIXES)})
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    copied = {}
    for stem in stems:
        sources = [figures / f"{stem}{suffix}" for suffix in (".pdf", ".png")]
        if all(s.is_file() for s in sources):
            for source in sources:
                atomic_write(folder / "figures" / source.name, lambda fh, s=source: fh.write(s.read_bytes()))
            copied[stem] = figure_width(sources[0])
    return copied


def _zip(folder: Path, names: list[str]) -> Path:
    """``report_overleaf.zip``: the given files of ``folder`` at their relative paths, main.tex at the root."""

    def write(fh: IO[bytes]) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in names:
                zf.write(folder / name, name)

    return atomic_write(folder / OVERLEAF_ZIP, write)


def write_report(
    run: str | os.PathLike,
    figures_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    edition: int | str | Edition | None = None,
    tta: str | None = None,
    author: str | None = None,
) -> ReportFiles:
    """Write the report skeleton of the submitted run ``run`` from the figures folder of notebook 06.

    Args:
        run: the submitted run's folder (config.json; its first stage beside it for an MSE finish).
        figures_dir: the figures folder (``psnr_table.csv`` is required; the machine table, the curves and the
            grids are used when there).
        out: the report folder (None: :func:`report_dir` of ``figures_dir``); an edited one is never replaced
            (:func:`free_report_dir`).
        edition: the course edition (None: the run's own, else the default).
        tta: the self-ensemble the submission was made with (None: plain).
        author: the author line (None: a marked blank for the name and matriculation number).
    """
    from facesr.data.check import real_world_dir

    run_dir = Path(run).expanduser()
    config = _read_config(run_dir)
    ed = choose_edition(edition, config.get("edition"))
    figures = Path(figures_dir).expanduser()
    psnr = _read_csv(figures, "psnr_table", required=True)
    machine = _read_csv(figures, "machine_table")
    # the expected test PSNR also uses the CodaLab scores the student recorded in the runs folder's submissions.csv
    submission = submission_table(psnr, run_dir.name, tta, machine, ed, runs_dir=run_dir.parent)
    save_table(submission, figures, SUBMISSION_TABLE)
    tables = _tables(figures, submission, ed)
    folder = free_report_dir(out if out is not None else report_dir(figures))
    folder.mkdir(parents=True, exist_ok=True)
    stems = _copy_figures(figures, folder)
    views = {stem: table_view(df, PSNR_REPORT_HIDE if stem == "psnr_table" else ()) for stem, df in tables.items()}
    table_files = [atomic_write_text(folder / "tables" / f"{stem}.tex", booktabs_tabular(view))
                   for stem, view in views.items()]  # fmt: skip
    real = real_world_dir(config.get("data_root") or "")
    facts = ReportFacts(ed, run_dir.name, _stages(run_dir, config), tta, submission, views, stems,
                        author or FILL_IN.format(what="your name and matriculation number"),
                        real_world_count=len(list(real.glob("*.png"))) if real else None)  # fmt: skip
    doc = report_document(facts)
    main = atomic_write_text(folder / "main.tex", render_latex(doc))
    markdown = atomic_write_text(folder / "report.md", render_markdown(doc))
    bib = atomic_write_text(folder / "references.bib", bibtex(doc.citations()))
    atomic_write_json(folder / _STAMP, {p.name: _digest(p) for p in (main, markdown)})
    in_zip = ["main.tex", "references.bib", *(f"figures/{s}.pdf" for s in stems), *(f"tables/{s}.tex" for s in views)]
    archive = _zip(folder, in_zip)
    figure_files = [folder / "figures" / f"{s}{x}" for s in stems for x in (".pdf", ".png")]
    return ReportFiles(folder, main, markdown, bib, archive, [main, markdown, bib, *figure_files, *table_files,
                                                              archive], facts.missing)  # fmt: skip


def print_report(files: ReportFiles, say: Callable[[str], None] = print) -> None:
    """The lines notebook 06 and ``python -m facesr report`` print about a written report."""
    say(f"report skeleton in {files.folder}: main.tex, references.bib, report.md, {len(files.files) - 4} figures "
        "and tables")  # fmt: skip
    say(f"Overleaf: New Project > Upload Project > {files.zip} (compiles with pdflatex + bibtex as it is)")
    say(f"Word: cd {files.folder} && pandoc report.md --citeproc -o report.docx")
    for item in files.missing:
        say(f"missing in the report: {item} (the report says which notebook cell makes it)")
    say("fill in every box marked <FILL IN: ...> with your own analysis")

