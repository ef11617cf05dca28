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
from facesr.training.distributed import mean_over_ranks

VAL_COLUMNS = ["iter", "psnr", "ssim", "best_psnr", "best_iter", "bicubic_psnr", "val_time"]
PIXEL_LOSS_NAMES = ("l_pix",)
GAN_LOSS_NAMES = ("l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake")


def log_columns(loss_names: Sequence[str]) -> list[str]:
    """Header of log.csv for a run logging ``loss_names``."""
    return ["iter", "lr", *loss_names, "data_time", "step_time", "samples_per_s"]


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
    """Drop rows after iteration ``keep_until`` (written before a crash, redone after the resume),
    torn last lines, and a file with another header (rewritten with the kit's atomic rename)."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if rows and rows[0] == list(columns):
        body = rows[1:]
        keep = [r for r in body if len(r) == len(columns) and _iter_of(r) is not None and _iter_of(r) <= keep_until]
        if len(keep) == len(body) and (not body or path.read_bytes().endswith(b"\n")):
            return
    else:
        keep = []
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(list(columns))
    w.writerows(keep)
    atomic_write_text(path, text.getvalue())


def _iter_of(row: list[str]) -> int | None:
    try:
        return int(row[0])
    except (ValueError, IndexError):
        return None


class LossWindow:
    """Loss sums and timings of the iterations since the last log row (kept on every rank).

    ``row()`` averages the losses over the window and, in a distributed run, over the ranks (one
    all-reduce per log row), so log.csv holds the loss of the global batch whatever the number of ranks.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.n, self.data, self.t0 = 0, 0.0, time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor], data_seconds: float) -> None:
        for key, value in losses.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.n += 1
        self.data += data_seconds

    def row(self, it: int, lr: float, device: torch.device) -> dict:
        """The log.csv row of this window (``samples_per_s`` counts the global batch); then resets."""
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        n, wall = self.n, time.perf_counter() - self.t0
        means = mean_over_ranks({key: value / n for key, value in self.sums.items()})
        row = {"iter": it, "lr": lr, **{key: float(v) for key, v in means.items()}, "data_time": self.data / n,
               "step_time": (wall - self.data) / n, "samples_per_s": n * self.batch_size / wall}
        self.reset()
        return row


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
    # A log not written yet has no header to tell a GAN run's columns: the placeholder is a pixel run's.
    for fname, columns in (("log.csv", log_columns(PIXEL_LOSS_NAMES)), ("val.csv", VAL_COLUMNS)):
        path = run_dir / fname
        if path.exists() and path.stat().st_size > 0:
            frames.append(pd.read_csv(path, on_bad_lines="skip"))
        else:
            frames.append(pd.DataFrame(columns=columns))
    return frames[0], frames[1]
