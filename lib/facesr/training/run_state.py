"""What the training loop carries between iterations, and what it does on its log, validation and checkpoint
iterations: the log row, the validation, the checkpoint files, and a clean stop.

These are the loop's only reads from the device (:mod:`facesr.training.loop`); rank 0 writes every file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesr.atomic import atomic_write_json
from facesr.config.train_config import TrainConfig
from facesr.losses import PIXEL_TERM
from facesr.training import distributed
from facesr.training.device import step_error
from facesr.training.guard import BadSteps
from facesr.training.logs import LossWindow, RunLogs
from facesr.training.run_folder import (
    check_finite,
    make_checkpoint,
    remove_stale_temp_files,
    save_iteration,
)
from facesr.training.run_info import update_session
from facesr.training.step import Nets, validate
from facesr.training.stopping import Cadence, TrainingStopped


@dataclass
class RunState:
    """What the loop carries from one iteration to the next (rank 0 owns logs and the files)."""

    cfg: TrainConfig
    run_dir: Path
    ranks: distributed.Ranks
    device: torch.device
    nets: Nets
    schedulers: dict
    scaler: Any
    start: int
    best: dict
    run_info: dict
    bicubic: float = float("nan")
    val_set: Any = None
    logs: RunLogs | None = None
    last_ckpt: int | None = None  # the iteration latest.pt holds
    last_psnr: float = float("nan")
    resumed: dict = field(default_factory=dict)  # the checkpoint's log_window and bad_steps
    skipped_total: int = 0  # skipped steps in the log rows written so far (the run's, over all sessions)
    t_start: float = 0.0
    window: LossWindow | None = None
    bad: BadSteps | None = None
    cadence: Cadence | None = None
    bar: Any = None  # tqdm
    postfix: dict = field(default_factory=dict)  # the progress bar's: loss, lr, psnr, data-wait share, skipped


def open_run_folder(run: RunState, val_set: Any, n_train: int) -> None:
    """Rank 0: bicubic baseline, config.json, the logs, and the one-line summary of the run."""
    from facesr.metrics import bicubic_upscale, psnr, tensor_to_uint8
    from facesr.models import count_parameters, param_limit
    from facesr.models.sizing import count_generator

    cfg, run_dir = run.cfg, run.run_dir
    run.bicubic = float(np.mean([psnr(bicubic_upscale(tensor_to_uint8(v["lq"])), tensor_to_uint8(v["gt"]))
                                 for v in val_set]))
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(run_dir)
    atomic_write_json(run_dir / "config.json", cfg.to_dict())
    run.logs = RunLogs(run_dir, run.nets.loss_names(), run.start, cfg.tensorboard)  # a column per term it trains on
    n_params = count_generator(cfg.generator, cfg.generator_args)  # the student's submitted form: no teacher, SPAN fused
    limit = param_limit(cfg.edition)
    over = f", over the {cfg.edition} limit of {limit:,}: not submittable" if n_params > limit else ""
    trained = count_parameters(run.nets.net_g)
    if trained != n_params:
        over += f"; it trains with {trained:,} in its re-parameterisable form"
    ranks = f", {run.ranks.world_size} ranks x batch {cfg.batch_size // run.ranks.world_size}" if run.ranks.enabled else ""
    print(f"{cfg.name}: {cfg.generator} {cfg.generator_args} ({n_params:,} parameters{over}), {n_train} training "
          f"images, {len(val_set)} val pairs (bicubic {run.bicubic:.4f} dB), iterations {run.start} -> {cfg.iters}"
          f"{ranks}, run folder {run_dir}")


def kept(run: RunState) -> str:
    """What is left on disk, for error messages."""
    if run.last_ckpt:
        return f"the last checkpoint ({run.run_dir / 'latest.pt'}, iteration {run.last_ckpt}) is intact"
    return "no checkpoint had been written yet"


def validate_run(run: RunState, it: int) -> bool:
    """Rank 0: score the EMA generator on the val set, log it; True when it is the best so far."""
    t_val = time.perf_counter()
    try:
        run.last_psnr, ssim = validate(run.nets.ema.ready(), run.val_set, run.device, run.nets.channels_last)
    except (RuntimeError, MemoryError) as err:
        raise step_error(err, it, run.cfg, kept(run)) from None
    improved = run.best["value"] is None or run.last_psnr > run.best["value"]
    if improved:
        run.best = {"metric": "psnr", "value": run.last_psnr, "iter": it, "ssim": ssim}
    run.logs.write_val({"iter": it, "psnr": run.last_psnr, "ssim": ssim, "best_psnr": run.best["value"],
                        "best_iter": run.best["iter"], "bicubic_psnr": run.bicubic,
                        "val_time": time.perf_counter() - t_val})
    return improved


def save_run(run: RunState, it: int, improved: bool = False, periodic: bool = False, latest: bool | None = None) -> None:
    """The checkpoint files of iteration ``it`` (rank 0 writes). Every rank calls it when ``latest.pt`` is
    written (periodic, time-based, stop): the window's per-rank loss sums are gathered into it.

    Args:
        run: The run.
        it: The iteration just finished.
        improved: Its validation improved: write ``best.pt``.
        periodic: A ``checkpoint_every`` iteration (or the last): ``iter_N.pt`` and ``latest.pt``, rotation.
        latest: Write ``latest.pt`` (default: ``periodic``); True for the time-based and the stop checkpoints.
    """
    t_save = time.perf_counter()
    latest = periodic if latest is None else latest
    per_rank = distributed.gather_rows(run.window.stacked_sums()) if latest and run.window.n else None
    if run.ranks.is_main:
        check_finite(run.nets, it, kept(run))
        extra = {"log_window": run.window.state_dict(per_rank), "bad_steps": run.bad.state_dict()}
        run.run_info = update_session(run.run_info, it, time.perf_counter() - run.t_start, skipped=run.skipped_total,
                                      batch_size=run.cfg.batch_size)
        state = make_checkpoint(run.nets, run.schedulers, run.scaler, it, run.best, run.cfg, run.run_info, extra)
        save_iteration(run.run_dir, state, it, improved, periodic, run.cfg.keep_last, latest=latest)
    if latest:
        run.last_ckpt = it
        run.cadence.wrote_latest()
    if periodic:
        distributed.barrier(run.ranks)
    run.window.exclude(time.perf_counter() - t_save)


def log_and_save(run: RunState, it: int, lr: float) -> None:
    """The log row, validation and checkpoints that fall on iteration ``it`` (the only reads from the device).

    Args:
        run: The run.
        it: The iteration just finished.
        lr: Its generator lr, for the log row.
    """
    cfg, ranks = run.cfg, run.ranks
    log = it % cfg.log_every == 0 or it == cfg.iters
    val = it % cfg.val_every == 0 or it == cfg.iters
    periodic = it % cfg.checkpoint_every == 0 or it == cfg.iters
    if not (log or val or periodic):
        return
    run.bad.check(cfg, kept(run))  # the same on every rank: every rank stops here
    if log:
        row = run.window.row(it, lr, run.device)  # every rank: the losses are averaged over the ranks
        run.skipped_total += row["skipped"]
        if run.logs:
            run.logs.write_train(row)
            share = row["data_time"] / max(row["data_time"] + row["step_time"], 1e-9)
            run.postfix.update(loss=f"{row[PIXEL_TERM]:.4f}", lr=f"{lr:.2e}", data=f"{share:.0%}",
                               skipped=run.skipped_total)
            run.bar.set_postfix(run.postfix)
    improved = False
    if val:
        t_val = time.perf_counter()
        if ranks.is_main:
            improved = validate_run(run, it)
            run.postfix["psnr"] = f"{run.last_psnr:.2f}"
            run.bar.set_postfix(run.postfix)
        distributed.barrier(ranks)
        run.window.exclude(time.perf_counter() - t_val)
    if periodic or (improved and ranks.is_main):
        save_run(run, it, improved=improved, periodic=periodic)


def stop_run(run: RunState, it: int, signum: int) -> TrainingStopped:
    """Write ``latest.pt`` for iteration ``it`` (unless it holds it), say so, and return the exception to raise.

    Args:
        run: The run.
        it: The last finished iteration.
        signum: The signal that asked for the stop.
    """
    if it > run.start and run.last_ckpt != it:
        save_run(run, it, latest=True)
    distributed.barrier(run.ranks)
    run.bar.close()
    if run.last_ckpt == it:
        print(f"stopped at iteration {it}: latest.pt saved, run the same command or cell again to continue")
    else:
        print("stopped before the first iteration, nothing was trained: run the same command or cell again to start")
    return TrainingStopped(signum, it)
