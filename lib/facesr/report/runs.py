"""Finding the report's run folders and reading what they hold: logs, their columns, run_info.json.

Run folders are named after their config (``runs/srgan``, ``runs/esrgan``, ``runs/esrgan_gan``, and from
notebook 07 ``runs/msrresnet20``, ``runs/swinir``, ``runs/rcan`` with their MSE finishes ``runs/<name>_l2``),
which is what :func:`facesr.training.train` writes by default.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from facesr.errors import FacesrError
from facesr.report.manifest import note_runs
from facesr.report.style import MODEL_ORDER

RUN_INFO = "run_info.json"  # written by the trainer beside the checkpoints (facesr.training.run_folder)

# Where a missing run of the report's experiments comes from (shown in the "run is missing" notes); the
# in-budget configs of every edition come from notebook 07.
TRAINED_BY: dict[str, str] = {
    "srgan": "train notebook 03 first",
    "esrgan": "train notebook 04 first",
    "esrgan_gan": "train notebook 05 first",
}
FINISH_SUFFIX = "_l2"  # notebook 07 trains the MSE finish of run <name> into <name>_l2


def missing_run_note(name: str, runs_dir: str | os.PathLike) -> str:
    """The one-line note shown instead of a run's results, e.g. ``no esrgan_gan run in runs: ...``.

    Args:
        name: the missing run.
        runs_dir: where it was looked for.
    """
    from facesr.config.named_configs import in_budget_names
    from facesr.editions import EDITIONS

    first = name.removesuffix(FINISH_SUFFIX)
    if name not in TRAINED_BY and any(first in in_budget_names(year) for year in EDITIONS):
        finish = " and FINISH = True" if name != first else ""
        return f"no {name} run in {runs_dir}: train notebook 07 with CONFIG = {first!r}{finish} first"
    return f"no {name} run in {runs_dir}: {TRAINED_BY.get(name, f'train the {name} config first')}"


def find_runs(
    runs_dir: str | os.PathLike, names: Iterable[str] = MODEL_ORDER, verbose: bool = True, finishes: bool = False
) -> dict[str, Path]:
    """The run folders of ``names`` under ``runs_dir`` that hold a checkpoint, in the order given.

    Args:
        runs_dir: the folder of run folders.
        names: the run names to look for.
        verbose: print a note for each missing run saying which notebook trains it.
        finishes: also take the MSE finish ``<name>_l2`` of each name (right after it) when that run holds a
            checkpoint; a missing finish gets no note (it is optional), and names listed already stay put.
    """
    from facesr.weights.checkpoints import run_checkpoint

    runs_dir, names = Path(runs_dir), list(names)
    found: dict[str, Path] = {}
    for name in names:
        run_dir = runs_dir / name
        if run_checkpoint(run_dir) is not None:
            found[name] = run_dir
        elif verbose:
            print(missing_run_note(name, runs_dir))
        finish = f"{name}{FINISH_SUFFIX}"
        optional = finishes and not name.endswith(FINISH_SUFFIX) and finish not in names
        if optional and run_checkpoint(runs_dir / finish) is not None:
            found[finish] = runs_dir / finish
    note_runs(*found)  # the figures saved from these runs record them (facesr.report.manifest)
    return found


def read_logs(runs: Mapping[str, Path]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """``{name: (training log, validation log)}`` of each run (see :func:`facesr.training.read_run_logs`)."""
    from facesr.training import read_run_logs

    return {name: read_run_logs(run_dir) for name, run_dir in runs.items()}


def iteration_column(df: pd.DataFrame) -> str:
    """The iteration column of a log table (``iter`` in the kit's logs)."""
    for col in ("iter", "iters", "iteration", "step"):
        if col in df.columns:
            return col
    raise FacesrError(f"log table has no iteration column (columns: {', '.join(map(str, df.columns))})")


def loss_columns(df: pd.DataFrame) -> list[str]:
    """The loss terms of a training log: numeric columns named ``loss*``, ``*_loss`` or ``l_*``."""
    names = [str(c) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    return [c for c in names if "loss" in c.lower() or c.startswith("l_")]


def metric_column(df: pd.DataFrame, metric: str = "psnr") -> str:
    """The column of ``metric`` in a validation log (``psnr`` or ``val_psnr``).

    Args:
        df: the validation log.
        metric: ``psnr`` or ``ssim``.
    """
    for col in df.columns:
        if str(col).lower() in (metric, f"val_{metric}"):
            return str(col)
    raise FacesrError(f"validation log has no {metric} column (columns: {', '.join(map(str, df.columns))})")


def best_validation(val: pd.DataFrame) -> dict[str, float]:
    """Best validation PSNR during training: ``{"iter", "psnr", "ssim"}`` (NaN when the log is empty)."""
    if val.empty:
        return {"iter": math.nan, "psnr": math.nan, "ssim": math.nan}
    p_col = metric_column(val, "psnr")
    row = val.loc[val[p_col].idxmax()]
    try:
        s = float(row[metric_column(val, "ssim")])
    except FacesrError:
        s = math.nan
    return {"iter": int(row[iteration_column(val)]), "psnr": float(row[p_col]), "ssim": s}


def run_best_validation(run_dir: str | os.PathLike) -> dict[str, float]:
    """:func:`best_validation` of a run folder's ``val.csv`` (NaN values when it has none yet)."""
    from facesr.training import read_run_logs

    return best_validation(read_run_logs(Path(run_dir))[1])


def read_run_info(run_dir: str | os.PathLike) -> dict | None:
    """The run's ``run_info.json`` (where and how long it trained), or None when the run has none.

    Raises:
        FacesrError: the file exists but is not a JSON object (names the file).
    """
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FacesrError(f"{path} is unreadable ({err}); it is rewritten by the next checkpoint of the run") from err
    if not isinstance(info, dict):
        raise FacesrError(f"{path} holds a {type(info).__name__}, not the trainer's JSON object")
    return info
