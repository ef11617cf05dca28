"""How long a run will take on this machine: its first iterations timed, the ETA, and the Colab sessions.

:func:`plan_run` builds the run's networks and data loader as :func:`facesr.training.train` does (the same
workers, degradation path, batch, patch and step, under the run's numerics settings) in memory, times a few
iterations after a warm-up, and writes nothing. A distillation run's teacher is loaded as ``train`` loads it
and its forward is timed with the step. Out of memory, it gives the trainer's one line. The training notebooks
print it before they train.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# docs/course.md section 12: the Colab FAQ gives the free tier's longest runtime as 12 hours.
COLAB_SESSION_HOURS = 12.0
# What an out-of-memory line of the timing run says is on disk.
NOTHING_SAVED = "plan_run saves nothing, so nothing was lost"


@dataclass
class RunPlan:
    """A run's measured speed and what it means for its length (``str()`` is the notebook's line)."""

    seconds_per_iter: float
    iterations: int  # still to train
    device: str
    measured: int  # iterations timed
    session_hours: float = COLAB_SESSION_HOURS
    storage: str = ""  # what the run keeps on Drive (or disk) and sends to Drive's Trash (checkpoint_files)

    @property
    def hours(self) -> float:
        return self.seconds_per_iter * self.iterations / 3600

    @property
    def sessions(self) -> int:
        return max(1, math.ceil(self.hours / self.session_hours))

    def __str__(self) -> str:
        return (f"{self.seconds_per_iter:.3f} s per iteration on {self.device} (data and step, measured over "
                f"{self.measured} iterations after a warm-up): {self.iterations:,} iterations to go take about "
                f"{self.hours:.1f} h without validations, {self.sessions} Colab session(s) of at most "
                f"{self.session_hours:g} h each; every new session resumes from latest.pt"
                + (f"\n{self.storage}" if self.storage else ""))


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"the CPU ({os.cpu_count()} cores)"


def plan_run(
    cfg: Any,
    data_root: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    iters: int | None = None,
    warmup: int | None = None,
    device: str | torch.device | None = None,
    session_hours: float = COLAB_SESSION_HOURS,
) -> RunPlan:
    """Time ``iters`` training iterations of ``cfg`` after ``warmup`` ones; nothing is saved.

    Args:
        cfg: The run's config.
        data_root: Its data root.
        run_dir: Its run folder: an existing ``latest.pt`` counts as iterations already trained.
        iters: Iterations timed (default 8; 1 at the tests' smoke size).
        warmup: Iterations run first and not timed (cuDNN autotuning, first allocations, worker start;
            default 2, 1 at smoke size).
        device: Default: CUDA when available.
        session_hours: How long one Colab session lasts at most.
    """
    from facesr.config.quick_mode import smoke_from_env
    from facesr.data.check import find_data_root
    from facesr.training.device import resolve_device, training_numerics
    from facesr.training.memory import call_freeing_memory, free_memory, out_of_memory_line

    smoke = cfg.quick and smoke_from_env()
    iters, warmup = iters or (1 if smoke else 8), warmup or (1 if smoke else 2)
    device = resolve_device(device, verbose=False)
    root = find_data_root(data_root)

    def line(err: BaseException) -> str:  # one that no iteration worded (e.g. building the nets)
        return out_of_memory_line(cfg, "before the timed iterations", NOTHING_SAVED)

    with training_numerics(device, cfg.deterministic):  # the run's own: cuDNN autotuning, or deterministic
        seconds = call_freeing_memory(_seconds_per_iteration, line, cfg, root, device, iters, warmup,
                                      Path(run_dir).parent if run_dir is not None else None)
    free_memory()  # the timing run's nets are gone: give their cache back before the run itself starts
    from facesr.training.checkpoint_files import drive_use

    done = _trained(Path(run_dir)) if run_dir is not None else 0
    plan = RunPlan(seconds, max(0, cfg.iters - done), _device_name(device), iters, session_hours)
    plan.storage = drive_use(cfg, run_dir, plan.hours) if run_dir is not None else ""
    return plan


def _seconds_per_iteration(
    cfg: Any, root: Path, device: torch.device, iters: int, warmup: int, runs_dir: Path | None = None
) -> float:
    """The mean seconds of ``iters`` iterations (data and step) of ``cfg`` after ``warmup`` ones; a distillation
    run's with its teacher's forward, the teacher looked up as ``train`` does (a run name in ``runs_dir``)."""
    from facesr.data.workers import iterate, make_loader
    from facesr.training.device import step_error
    from facesr.training.schedule import IterationBatchSampler
    from facesr.training.step import build_nets, prepare_batch, train_dataset, train_step
    from facesr.training.teacher import load_teacher, uses_teacher

    teacher = load_teacher(cfg, runs_dir) if uses_teacher(cfg) else None
    nets = build_nets(cfg, device, teacher=teacher)
    dataset = train_dataset(cfg, root / "train" / "GT", on_device=nets.gpu_degrade)
    sampler = IterationBatchSampler(len(dataset), cfg.batch_size, cfg.seed, 0, warmup + iters)
    loader = make_loader(dataset, cfg.num_workers, timeout=cfg.worker_timeout, batch_sampler=sampler,
                         pin_memory=device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=nets.amp_dtype == torch.float16)
    batches = iterate(loader, "the timing run's data")
    try:
        for k in range(warmup + iters):
            if k == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
            batch = next(batches)
            try:
                lq, gt = prepare_batch(batch, cfg, nets, device)
                train_step(nets, lq, gt, scaler)
            except (RuntimeError, MemoryError) as err:
                raise step_error(err, k + 1, cfg, NOTHING_SAVED) from None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) / iters
    finally:
        batches.close()


def _trained(run_dir: Path) -> int:
    """Iterations a run folder has trained, from its run_info.json (written with every checkpoint); 0 without."""
    import json

    try:
        return int(json.loads((run_dir / "run_info.json").read_text(encoding="utf-8")).get("iterations") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0
