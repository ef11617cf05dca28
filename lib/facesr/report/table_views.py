"""How a table of the kit reads in a report: headers with units, rounded numbers, the best of each column.

The CSV files keep the code's column names and full precision; a report shows the same numbers under headers
a reader understands ("PSNR (dB)", "Parameters", "% of limit", "GPU", "Hours"), PSNR and SSIM to 4 decimals
as the leaderboard is read (submissions differ in the third), and the best value of each score column marked.
A score made on fewer images than the others of its table never stands beside them unmarked: its column
header says on how many (x8 in quick mode scores the first val image only), and a cell scored on fewer images
than the rest of its column is left out. :func:`table_view` builds that view once; :mod:`facesr.report.latex`
writes it as a booktabs tabular and :func:`pipe_table` as a Markdown table for pandoc.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Column:
    """How one code column reads in a report.

    Args:
        header: the header with its unit, e.g. ``"PSNR (dB)"``.
        group: the heading over a group of columns (``"x8 ensemble"``); empty for none.
        fmt: the number format (``".4f"``, ``",d"``, ``".2f"``), ``"yesno"`` for booleans, ``""`` for text.
        best: ``"max"`` marks the highest value of the column (scores); None marks nothing.
        count: the column holding how many images each score was made on; None for none.
        wide: long text that wraps in a paragraph column.
    """

    header: str
    group: str = ""
    fmt: str = ""
    best: str | None = None
    count: str | None = None
    wide: bool = False


_PLAIN, _HFLIP, _X8 = "plain", "hflip", "x8"  # the self-ensembles (the captions say so)
COLUMNS: dict[str, Column] = {
    "model": Column("Model"),
    "networks": Column("Network", wide=True),
    "best_iter": Column("Best iter.", fmt=",d"),
    "psnr": Column("PSNR (dB)", _PLAIN, ".4f", "max", "images"),
    "ssim": Column("SSIM", _PLAIN, ".4f", "max", "images"),
    "psnr_hflip": Column("PSNR (dB)", _HFLIP, ".4f", "max", "images"),
    "ssim_hflip": Column("SSIM", _HFLIP, ".4f", "max", "images"),
    "psnr_x8": Column("PSNR (dB)", _X8, ".4f", "max", "images_x8"),
    "ssim_x8": Column("SSIM", _X8, ".4f", "max", "images_x8"),
    "expected_test_psnr": Column("PSNR (dB)", "expected test"),  # a group of its own: a narrow column
    "params": Column("Parameters", fmt=",d"),
    "percent_of_limit": Column("% of limit", fmt=".1f"),
    "within_limit": Column("Within limit", fmt="yesno"),
    "machine": Column("GPU", wide=True),
    "gpu": Column("GPU", wide=True),
    "amp": Column("Precision"),
    "iterations": Column("Iterations", fmt=",d"),
    "wall_hours": Column("Hours", fmt=".2f"),
    "hours": Column("Hours", fmt=".2f"),
    "iters_per_s": Column("Iter./s", fmt=".2f"),
}
# Code columns a report leaves out: run folder names, image counts (said in the score headers), the limit
# (said beside the table), versions (in the hand-in's Readme.txt).
HIDDEN = ("run", "role", "images", "images_hflip", "images_x8", "limit", "gpus", "torch", "cuda", "sessions")
OPTIONAL = ("expected_test_psnr",)  # left out of a report while every cell is empty
REPORT_HIDE = "report_hide"  # df.attrs key: more columns a table's own report view leaves out
FEWER_NOTE = "Left out: a score made on fewer images than the rest of its column."


@dataclass
class TableView:
    """A table as a report shows it: formatted cells, which to set bold, the headers and their groups."""

    columns: list[str]
    headers: list[str]
    groups: list[str]
    cells: list[list[str]]
    bold: list[list[bool]]
    numeric: list[bool]
    wide: list[bool]
    notes: list[str] = field(default_factory=list)


def column_spec(name: str) -> Column:
    """The report form of code column ``name`` (an unknown one: its name as the header, text or numbers as is)."""
    return COLUMNS.get(name, Column(name.replace("_", " ")))


def _is_missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def format_cell(value: object, fmt: str) -> str:
    """``value`` as the report prints it with ``fmt`` (see :class:`Column`); empty for a missing value."""
    if _is_missing(value):
        return ""
    if fmt == "yesno" or isinstance(value, bool | np.bool_):
        return "yes" if bool(value) else "no"
    if fmt == ",d" and isinstance(value, int | float | np.integer | np.floating):
        return f"{int(round(float(value))):,}"
    if fmt and isinstance(value, int | float | np.integer | np.floating):
        return format(float(value), fmt)
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return str(value).replace("\n", " ")


def _with_percent(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``percent_of_limit`` next to ``params`` where it has ``params`` and ``limit`` but not that."""
    if "percent_of_limit" in df.columns or not {"params", "limit"} <= set(df.columns):
        return df
    generator = df["within_limit"].map(lambda v: not _is_missing(v)) if "within_limit" in df.columns else True
    share = 100 * pd.to_numeric(df["params"], errors="coerce") / pd.to_numeric(df["limit"], errors="coerce")
    out = df.copy()
    out.insert(list(df.columns).index("params") + 1, "percent_of_limit", share.where(generator))
    return out


def _counts(df: pd.DataFrame, col: str) -> pd.Series | None:
    count = column_spec(col).count
    return pd.to_numeric(df[count], errors="coerce") if count and count in df.columns else None


def _image_total(df: pd.DataFrame, columns: Sequence[str]) -> float:
    """The most images any score of the table was made on (NaN when the table says nothing about images)."""
    totals = [c.max() for col in columns if (c := _counts(df, col)) is not None and c.notna().any()]
    return max(totals) if totals else math.nan


def _score_mask(df: pd.DataFrame, col: str) -> tuple[pd.Series, str]:
    """(which rows of a score column to show, a note for its header): cells on fewer images than the column's
    most are left out; a column whose most is below the table's most says how many in its header."""
    present = df[col].map(lambda v: not _is_missing(v))
    counts = _counts(df, col)
    if counts is None or not counts[present].notna().any():
        return present, ""
    most, total = counts[present].max(), _image_total(df, list(df.columns))
    keep = present & (counts == most)
    note = f"{int(most)} of {int(total)} images" if most < total else ""
    return keep, note


def _bold(values: list[str], keep: list[bool], best: str | None) -> list[bool]:
    """The cells holding the column's best value (as printed), when at least two values compete."""
    if best != "max":
        return [False] * len(values)
    numbers = [float(v.replace(",", "")) if k and v else math.nan for v, k in zip(values, keep, strict=True)]
    finite = [n for n in numbers if math.isfinite(n)]
    if len(finite) < 2:
        return [False] * len(values)
    top = max(finite)
    return [math.isfinite(n) and n == top for n in numbers]


def table_view(df: pd.DataFrame, hide: Sequence[str] = ()) -> TableView:
    """The report view of a kit table (PSNR, parameters, machine, submission, or any other DataFrame).

    Args:
        df: the table as the code has it (the CSV's columns).
        hide: more code columns to leave out, besides :data:`HIDDEN` and the table's own
            ``df.attrs["report_hide"]``.
    """
    df = _with_percent(df.reset_index(drop=True))
    hidden = {*HIDDEN, *df.attrs.get(REPORT_HIDE, ()), *hide}
    empty = {c for c in OPTIONAL if c in df.columns and not df[c].map(lambda v: bool(format_cell(v, ""))).any()}
    shown = [str(c) for c in df.columns if str(c) not in hidden | empty]
    view = TableView(columns=shown, headers=[], groups=[], cells=[[] for _ in range(len(df))],
                     bold=[[] for _ in range(len(df))], numeric=[], wide=[])  # fmt: skip
    for col in shown:
        spec = column_spec(col)
        keep, note = _score_mask(df, col) if spec.count else (df[col].map(lambda v: not _is_missing(v)), "")
        if spec.count and bool((keep != df[col].map(lambda v: not _is_missing(v))).any()) and FEWER_NOTE not in view.notes:
            view.notes.append(FEWER_NOTE)
        values = [format_cell(v, spec.fmt) if k else "" for v, k in zip(df[col], keep, strict=True)]
        for row, (value, bold) in enumerate(zip(values, _bold(values, list(keep), spec.best), strict=True)):
            view.cells[row].append(value)
            view.bold[row].append(bold)
        view.headers.append(spec.header)
        view.groups.append(", ".join(p for p in (spec.group, note) if p))
        view.numeric.append(pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]))
        view.wide.append(spec.wide)
    if set(view.groups) <= {"", _PLAIN}:  # no ensembles beside plain: no group row
        view.groups = [""] * len(view.groups)
    return view


def pipe_table(view: TableView) -> str:
    """The view as a Markdown pipe table (pandoc and GitHub read it): groups joined into the headers, best bold."""
    headers = [f"{h}, {g}" if g else h for h, g in zip(view.headers, view.groups, strict=True)]
    rows = [[f"**{c}**" if b and c else c.replace("|", "\\|") for c, b in zip(cells, bold, strict=True)]
            for cells, bold in zip(view.cells, view.bold, strict=True)]  # fmt: skip
    rule = ["---:" if num else "---" for num in view.numeric]
    lines = ["| " + " | ".join(row).replace("\n", " ") + " |" for row in (headers, rule, *rows)]
    return "\n".join(lines) + "\n" + "".join(f"\n{note}\n" for note in view.notes)
