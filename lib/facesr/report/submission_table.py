"""The report's compact submission table: the submitted run against bicubic and the edition's baseline.

One row each for bicubic, the edition's baseline run, the submitted run's first stage (when the submitted run
is an MSE finish ``<name>_l2``) and the submitted run, with the val PSNR plain and with the self-ensemble the
submission was made with, the parameters against the edition's limit, the GPU and the hours it trained.
``expected_test_psnr`` is the hook for the edition's val-to-test estimate: a callable passed in fills it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import pandas as pd

from facesr.editions import Edition, get_edition
from facesr.errors import FacesrError
from facesr.report.runs import FINISH_SUFFIX

# ``expected_test(val_psnr, edition_year)`` -> a (low, high) range in dB, one value, a text, or None.
ExpectedTest = Callable[[float, int], object]
ROLES = ("floor", "baseline", "first stage", "submitted")


def format_expected(value: object) -> str:
    """The ``expected_test_psnr`` cell of an ``expected_test`` result: ``"26.41 to 26.58"``, ``"26.50"``, text."""
    if value is None:
        return ""
    if isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
        return f"{float(value[0]):.2f} to {float(value[1]):.2f}"
    if isinstance(value, int | float):
        return f"{float(value):.2f}" if math.isfinite(value) else ""
    return str(value)


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
    expected_test: ExpectedTest | None = None,
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
        expected_test: ``expected_test(val_psnr, edition_year)`` gives the expected test PSNR of a val PSNR
            (the submitted ensemble's where there is one); None leaves the column empty.
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
        scored = row.get(f"psnr_{tta}", row["psnr"]) if tta is not None else row["psnr"]
        hook = expected_test is not None and run != "bicubic" and pd.notna(scored)
        row["expected_test_psnr"] = format_expected(expected_test(float(scored), ed.year)) if hook else ""
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
    return table
