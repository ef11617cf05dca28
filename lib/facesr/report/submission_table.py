"""The report's compact submission table: the submitted run against bicubic and the edition's baseline.

One row each for bicubic, the edition's baseline run, the submitted run's first stage (when the submitted run
is an MSE finish ``<name>_l2``) and the submitted run, with the val PSNR plain and with the self-ensemble the
submission was made with, the test PSNR that val PSNR leads to expect (the edition's published val/test pairs and
the student's own scored submissions: :func:`facesr.inference.submissions.expected_test`), the parameters against
the edition's limit, the GPU and the hours it trained.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

import pandas as pd

from facesr.editions import Edition, get_edition
from facesr.errors import FacesrError
from facesr.inference.submissions import expected_test
from facesr.report.runs import FINISH_SUFFIX
from facesr.report.table_views import REPORT_HIDE

ROLES = ("floor", "baseline", "first stage", "submitted")


def expected_from(row: Mapping[str, object], tta: str | None) -> float | None:
    """The val PSNR a row's expected test PSNR is computed from: the submitted self-ensemble's, unless it was scored
    on fewer images than the plain one (quick mode's x8 on the first image), then the plain one; None if unknown."""
    plain = row.get("psnr")
    value = row.get(f"psnr_{tta}") if tta is not None else plain
    counts = (row.get("images"), row.get(f"images_{tta}")) if tta is not None else (None, None)
    if tta is not None and all(c is not None and pd.notna(c) for c in counts) and int(counts[1]) < int(counts[0]):
        value = plain
    return float(value) if value is not None and pd.notna(value) else None


def _rows(psnr: pd.DataFrame, submitted: str, baseline: str) -> list[tuple[str, str]]:
    """(run, role) of the table's rows, in order, each run once."""
    runs = set(psnr["run"])
    if submitted not in runs:
        raise FacesrError(f"run {submitted!r} is not in the PSNR table (runs: {', '.join(map(str, psnr['run']))}); "
                          "score it first (notebook 06's PSNR table)")  # fmt: skip
    first = submitted.removesuffix(FINISH_SUFFIX) if submitted.endswith(FINISH_SUFFIX) else None
    wanted = [("bicubic", "floor"), (baseline, "baseline"), (first, "first stage"), (submitted, "submitted")]
    seen: dict[str, str] = {}
    for run, role in wanted:
        if run is not None and run in runs and run not in seen:
            seen[run] = role
    if submitted in seen and seen[submitted] != "submitted":  # the baseline submitted: it is the submission
        seen[submitted] = "submitted"
    return list(seen.items())


def submission_table(
    psnr: pd.DataFrame,
    submitted: str,
    tta: str | None = None,
    machine: pd.DataFrame | None = None,
    edition: int | str | Edition | None = None,
    runs_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The compact table of the submission, from the PSNR table and the machine table of notebook 06.

    Columns: model, run, role (floor, baseline, first stage, submitted), images, psnr, and with ``tta`` the
    ensemble's ``images_<tta>``/``psnr_<tta>``; expected_test_psnr; params, percent_of_limit; gpu, hours.

    Args:
        psnr: :func:`facesr.report.tables.psnr_table` (with the submitted run in it).
        submitted: the submitted run.
        tta: the self-ensemble of the submission (None, ``"hflip"`` or ``"x8"``).
        machine: :func:`facesr.report.tables.machine_table` of the runs (None: no GPU and hours columns filled).
        edition: whose limit and baseline (None: the default edition).
        runs_dir: the runs folder whose ``submissions.csv`` holds the student's own CodaLab scores (their val/test
            pairs join the edition's published ones in the expected test PSNR); None: the published pairs only.
    """
    ed = get_edition(edition)
    if tta is not None and f"psnr_{tta}" not in psnr.columns:
        raise FacesrError(f"the PSNR table has no {tta} column; make it with tta=True or submit without {tta}")
    by_run = psnr.set_index("run")
    machines: Mapping[str, pd.Series] = {} if machine is None else {r: row for r, row in machine.set_index("run").iterrows()}
    rows = []
    for run, role in _rows(psnr, submitted, ed.baseline_config):
        src = by_run.loc[run]
        row: dict[str, object] = {"model": src["model"], "run": run, "role": role, "images": src.get("images"),
                                  "psnr": float(src["psnr"])}  # fmt: skip
        if tta is not None:
            count = "images_x8" if tta == "x8" else "images"
            row[f"images_{tta}"] = src.get(count)
            row[f"psnr_{tta}"] = float(src[f"psnr_{tta}"]) if pd.notna(src.get(f"psnr_{tta}")) else math.nan
        if run != "bicubic":  # the range as the leaderboard's 4 decimals read: "28.8437-28.8475"
            row["expected_test_psnr"] = expected_test(expected_from(row, tta), ed.year, runs_dir).range_text()
        else:
            row["expected_test_psnr"] = ""
        params = src.get("params") if run != "bicubic" else None
        row["params"] = int(params) if params is not None and pd.notna(params) else None
        row["percent_of_limit"] = 100 * row["params"] / ed.param_limit if row["params"] is not None else math.nan
        info = machines.get(run)
        # the GPU without its memory (the machine table has it): the column stays narrow beside the scores
        row["gpu"] = re.sub(r" \([\d.]+ GiB\)", "", str(info["machine"])) if info is not None else ""
        row["hours"] = float(info["wall_hours"]) if info is not None and pd.notna(info.get("wall_hours")) else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    table["params"] = table["params"].astype("Int64")
    for col in [c for c in table.columns if c.startswith("images")]:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("Int64")
    table.attrs["floatfmt"] = {"percent_of_limit": ".1f", "hours": ".2f"}
    # The report's .tex leaves the range out (the report's text states the submission's): a page is too narrow
    # for three PSNR columns, parameters, GPU and hours beside it; the CSV and Markdown keep it for every row.
    table.attrs[REPORT_HIDE] = ("expected_test_psnr",)
    return table
