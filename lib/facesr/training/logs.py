"""The run's logs: ``log.csv`` (training window averages), ``val.csv`` (each validation), TensorBoard.

Only rank 0 writes them (see :mod:`facesr.training.distributed`); each row is flushed at once because the
runs folder may be a Drive mount, and a resumed run first drops the rows written after its checkpoint, so
every iteration appears once however often the run was killed.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from facesr.atomic import atomic_write_text
from facesr.errors import FacesrError
from facesr.losses import PIXEL_TERM
from facesr.training.distributed import mean_over_ranks

VAL_COLUMNS = ["iter", "psnr", "ssim", "best_psnr", "best_iter", "bicubic_psnr", "val_time"]


def log_columns(loss_names: Sequence[str]) -> list[str]:
    """Header of log.csv for a run logging ``loss_names`` (``Nets.loss_names()``: a column per term it trains on,
    from the loss terms' records in :mod:`facesr.losses`).

    The losses are the means over the window's applied steps; ``skipped`` counts the window's steps that were
    not applied (not finite); ``data_time`` is the mean seconds an iteration waited for its batch from the
    data loader, ``step_time`` the rest of its wall time (batch preparation on the device, the step, EMA),
    validations and checkpoints left out; ``samples_per_s`` counts the global batch.
    """
    return ["iter", "lr", *loss_names, "skipped", "data_time", "step_time", "samples_per_s"]


class CsvLog:
    """Append-only CSV with a fixed header; every row is flushed (the runs dir may be a Drive mount)."""

    def __init__(self, path: Path, columns: Sequence[str], keep_until: int) -> None:
        self.path, self.columns = path, list(columns)
        truncate_log(path, self.columns, keep_until)
        new = not path.exists() or path.stat().st_size == 0
        self._f = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        self._w = csv.writer(self._f)
        if new:
            self._w.writerow(self.columns)
            self._f.flush()

    def write(self, row: dict) -> None:
        self._w.writerow([_fmt(row.get(c, "")) for c in self.columns])
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


def truncate_log(path: Path, columns: Sequence[str], keep_until: int) -> None:
    """Drop rows after iteration ``keep_until`` (written before a crash, redone after the resume) and torn last
    lines; a file with another header (an older kit's) is rewritten with ``columns``, its rows kept by column
    name (a column it lacked stays empty). Rewrites use the kit's atomic rename."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    whole = [r for r in body if len(r) == len(header) and _iter_of(r) is not None and _iter_of(r) <= keep_until]
    if header == list(columns):
        if len(whole) == len(body) and (not body or path.read_bytes().endswith(b"\n")):
            return
        keep = whole
    elif header[:1] == ["iter"]:
        keep = [[dict(zip(header, r, strict=True)).get(c, "") for c in columns] for r in whole]
    else:
        keep = []
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(list(columns))
    w.writerows(keep)
    atomic_write_text(path, text.getvalue())


def last_logged_iteration(path: Path) -> int:
    """The last iteration with a row in ``path`` (a log.csv), 0 when there is none."""
    if not path.exists():
        return 0
    with open(path, newline="", encoding="utf-8") as f:
        found = [_iter_of(r) for r in csv.reader(f)]
    return max((i for i in found if i is not None), default=0)


def _iter_of(row: list[str]) -> int | None:
    try:
        return int(row[0])
    except (ValueError, IndexError):
        return None


class LossWindow:
    """Loss sums, skipped steps and timings of the iterations since the last log row (kept on every rank).

    Everything a step adds stays on the device; ``row()`` reads it back (one synchronisation per log row)
    and averages the losses over the window's applied steps and, in a distributed run, over the ranks (one
    all-reduce per log row), so log.csv holds the loss of the global batch whatever the number of ranks.
    A checkpoint between two log rows keeps the window (:meth:`state_dict`), so that a resumed run logs the
    same rows as an uninterrupted one.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.applied: torch.Tensor | int = 0
        self.skipped: torch.Tensor | int = 0
        self.n, self.data, self.excluded, self.t0 = 0, 0.0, 0.0, time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor], data_seconds: float, skipped: torch.Tensor | None = None) -> None:
        """One iteration: its loss terms, the seconds it waited for its batch, and its 0/1 ``skipped`` flag."""
        if skipped is not None:  # the losses of a skipped step are left out of the means
            losses = {key: torch.where(skipped > 0, 0.0, value) for key, value in losses.items()}
            self.applied = self.applied + (1 - skipped)
            self.skipped = self.skipped + skipped
        else:
            self.applied = self.applied + 1
        for key, value in losses.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.n += 1
        self.data += data_seconds

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` of bookkeeping (a validation, a checkpoint) out of the window's wall time."""
        self.excluded += seconds

    def row(self, it: int, lr: float, device: torch.device) -> dict:
        """The log.csv row of this window (``samples_per_s`` counts the global batch); then resets."""
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        n, wall = self.n, max(time.perf_counter() - self.t0 - self.excluded, 1e-9)
        keys = list(self.sums)
        means = mean_over_ranks({key: value / self.applied for key, value in self.sums.items()})
        values = torch.stack([*(means[k].float().reshape(()) for k in keys), torch.as_tensor(self.skipped).float()
                              .reshape(()).to(device)]).tolist() if keys else [float(self.skipped)]
        row = {"iter": it, "lr": lr, **dict(zip(keys, values, strict=False)), "skipped": int(values[-1]),
               "data_time": self.data / n, "step_time": max(wall - self.data, 0.0) / n,
               "samples_per_s": n * self.batch_size / wall}
        self.reset()
        return row

    def state_dict(self, per_rank: torch.Tensor | None = None) -> dict:
        """The window so far, for a checkpoint (a read back). ``per_rank``: every rank's loss sums, one row each
        (:func:`facesr.training.distributed.gather_rows`), else this process's."""
        keys = list(self.sums)
        sums = per_rank if per_rank is not None else self.stacked_sums()[None]
        return {"n": self.n, "keys": keys, "sums": sums.detach().cpu(), "data": self.data,
                "seconds": time.perf_counter() - self.t0 - self.excluded,
                "applied": float(torch.as_tensor(self.applied).item()), "skipped": float(torch.as_tensor(self.skipped).item())}

    def stacked_sums(self) -> torch.Tensor:
        """This process's loss sums as one 1-d tensor (in the order of ``self.sums``)."""
        values = [v.float().reshape(()) for v in self.sums.values()]
        return torch.stack(values) if values else torch.zeros(0)

    def load_state_dict(self, state: dict | None, rank: int, world_size: int, device: torch.device) -> None:
        """Continue the window a checkpoint kept: this rank's row of its sums, or their mean when the checkpoint
        was written by another number of ranks (the logged losses then differ in the last digits)."""
        self.reset()
        if not state or not state.get("n"):
            return
        sums = state["sums"]
        row = sums[rank] if sums.shape[0] == world_size else sums.mean(dim=0)
        self.sums = {key: row[i].to(device) for i, key in enumerate(state["keys"])}
        self.n, self.data = int(state["n"]), float(state["data"])
        self.t0 -= float(state.get("seconds", 0.0))  # the window's wall time before the checkpoint
        self.applied = torch.tensor(float(state["applied"]), device=device)
        self.skipped = torch.tensor(float(state["skipped"]), device=device)


class RunLogs:
    """log.csv, val.csv and the optional TensorBoard writer of one run folder (rank 0 only)."""

    def __init__(self, run_dir: Path, loss_names: Sequence[str], start: int, tensorboard: bool) -> None:
        self.loss_names = tuple(loss_names)
        self.train = CsvLog(run_dir / "log.csv", log_columns(loss_names), start)
        self.val = CsvLog(run_dir / "val.csv", VAL_COLUMNS, start)
        self.writer = _tensorboard(run_dir, tensorboard)

    def write_train(self, row: dict) -> None:
        self.train.write(row)
        if self.writer is not None:
            for key in ("lr", *self.loss_names):
                if key in row:
                    self.writer.add_scalar(f"train/{key}", row[key], row["iter"])

    def write_val(self, row: dict) -> None:
        self.val.write(row)
        if self.writer is not None:
            self.writer.add_scalar("val/psnr", row["psnr"], row["iter"])
            self.writer.add_scalar("val/ssim", row["ssim"], row["iter"])

    def close(self) -> None:
        self.train.close()
        self.val.close()
        if self.writer is not None:
            self.writer.close()


def _tensorboard(run_dir: Path, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("tensorboard is not installed: logging to log.csv/val.csv only")
        return None
    return SummaryWriter(str(run_dir / "tb"))


def read_run_logs(run_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training log, validation log) of a run folder as DataFrames (empty when not written yet)."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise FacesrError(f"run folder not found: {run_dir}; train it first (python -m facesr train CONFIG)")
    frames = []
    # A log not written yet has no header to tell which terms the run trains on: the placeholder has the one
    # term of every run.
    for fname, columns in (("log.csv", log_columns([PIXEL_TERM])), ("val.csv", VAL_COLUMNS)):
        path = run_dir / fname
        if path.exists() and path.stat().st_size > 0:
            frames.append(pd.read_csv(path, on_bad_lines="skip"))
        else:
            frames.append(pd.DataFrame(columns=columns))
    return frames[0], frames[1]
