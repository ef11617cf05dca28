"""``train(cfg)``: the iteration loop, from a config to a run folder of checkpoints and logs.

``train(cfg)`` trains into ``<runs_dir>/<name>/`` and resumes by itself from ``latest.pt`` when the folder
holds one (a recycled Colab runtime just runs the same cell again). Checkpoints hold everything a
bit-exact resume needs (:mod:`facesr.training.run_folder`); the data order is a pure function of
(seed, iteration) (:class:`facesr.training.schedule.IterationBatchSampler`). Under torchrun the same call
trains on every rank (:mod:`facesr.training.distributed` says what stays the same on N ranks).

What is saved when: ``iter_N.pt`` and ``latest.pt`` every ``checkpoint_every`` iterations and at the end,
``best.pt`` at each validation that improves, and ``latest.pt`` also ``checkpoint_minutes`` after its
last write (whatever the iteration) and when the run is stopped by SIGINT / SIGTERM
(:mod:`facesr.training.stopping`); so a killed runtime loses at most ``checkpoint_minutes`` of training.
A step that is not finite is skipped and counted (:mod:`facesr.training.guard`); no checkpoint is written
with weights that are not finite.

The device: between two log steps the loop reads nothing back from it (losses, skip flags and counters
stay there); reads happen at log steps, validations and checkpoints only, so the GPU never waits for the
host inside that stretch.

Config changes on resume: every field that changes what is trained must match the checkpoint's, else
FacesrError lists the differences (``allow_config_change=True`` / ``--allow-config-change`` continues
with the new values). Not compared: the bookkeeping fields in
:data:`facesr.training.run_folder.NOT_COMPARED` and ``iters``, so a finished run can be extended.
``get_config`` stretches ``periods``/``milestones`` with ``iters`` though, and those are compared: extend
with ``--allow-config-change`` to continue on the stretched schedule (the lr is a closed-form function of
the iteration), or pass the old ``--set periods=[...]`` to keep it (past the last cosine period the lr
stays at ``eta_min``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesr.config.train_config import TrainConfig
from facesr.data.check import find_data_root
from facesr.data.workers import iterate, loader_error, make_loader
from facesr.errors import FacesrError
from facesr.training import distributed
from facesr.training.device import resolve_device, step_error, training_numerics
from facesr.training.guard import BadSteps
from facesr.training.logs import LossWindow, last_logged_iteration
from facesr.training.memory import call_freeing_memory, out_of_memory_line
from facesr.training.run_folder import (
    load_resume,
    plain_values,
    resolve_init,
    restore_state,
)
from facesr.training.run_info import machine_info, start_session
from facesr.training.run_state import RunState, kept, log_and_save, open_run_folder, save_run, stop_run
from facesr.training.schedule import IterationBatchSampler, IterationLR
from facesr.training.step import build_nets, prepare_batch, train_dataset, train_step
from facesr.training.stopping import Cadence, StopSignals, TrainingStopped
from facesr.training.teacher import load_teacher, uses_teacher


def check_data_edition(root: Path, cfg: TrainConfig) -> None:
    """FacesrError, before a fresh run trains, when the data root's facts name another edition than the run's
    (:func:`facesr.editions.detect_edition`): both facts and the fix; data that do not decide pass."""
    from facesr.editions import data_facts, describe_facts, detect_edition

    found = detect_edition(root)
    if found is None or found == cfg.edition:
        return
    raise FacesrError(
        f"the data in {root} are the {found} edition's ({describe_facts(data_facts(root))}), but {cfg.name} trains "
        f"the {cfg.edition} edition's config (its limit, degradation and network); set EDITION = {found} in the "
        f"notebook's settings cell (CLI: --edition {found}) to train for {found}, or point the data root at the "
        f"{cfg.edition} edition's data"
    )


def train(
    cfg: TrainConfig,
    data_root: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike | None = None,
    name: str | None = None,
    init: str | os.PathLike | None = None,
    allow_config_change: bool = False,
    device: str | torch.device | None = None,
    trust: bool = False,
) -> Path:
    """Train (or resume) ``cfg`` into ``<runs_dir>/<name>/`` and return that folder.

    Ctrl-C (the notebook's stop button) or SIGTERM stops after the iteration under way: ``latest.pt`` is
    written for it and :class:`facesr.training.stopping.TrainingStopped` (a ``KeyboardInterrupt``) is
    raised; calling ``train`` again continues from there. A second Ctrl-C stops at once.

    Args:
        cfg: A :class:`facesr.config.train_config.TrainConfig` (``get_config(...)``).
        data_root: Data root in the course layout, as it is (nothing is built: quick mode's sample data comes
            from the caller, :func:`facesr.data.sample.ensure_quick_data`); default ``cfg.data_root``.
        runs_dir: Folder of run folders (may be a Drive mount); default ``cfg.runs_dir``.
        name: Run folder name; default ``cfg.name``.
        init: Run name, run folder or checkpoint to initialise the generator from (fresh runs only);
            default ``cfg.init``.
        allow_config_change: Resume even if compared config fields differ from the checkpoint's.
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available (``cuda:LOCAL_RANK`` under torchrun).
        trust: Unpickle ``latest.pt`` and the ``init`` checkpoint in full, which runs code from them; only for
            files from a trusted source that a plain (weights-only) load refuses.
    """
    changes = {k: str(v) for k, v in (("data_root", data_root), ("runs_dir", runs_dir), ("name", name)) if v}
    if init is not None:
        changes["init"] = str(init)
    cfg = dataclasses.replace(cfg, **changes)
    ranks = distributed.ranks_from_env()
    quiet = open(os.devnull, "w") if not ranks.is_main else None  # noqa: SIM115 - closed below
    def line(err: BaseException) -> str:  # one that no step or validation worded
        return out_of_memory_line(cfg, "outside the training steps", "the checkpoints written so far are intact")

    try:  # an out-of-memory error is raised holding nothing of the run (facesr.training.memory)
        with contextlib.redirect_stdout(quiet) if quiet else contextlib.nullcontext():
            return call_freeing_memory(_train, line, cfg, ranks, allow_config_change, device, trust)
    finally:
        if quiet is not None:
            quiet.close()


def _train(
    cfg: TrainConfig, ranks: distributed.Ranks, allow_config_change: bool, device: Any, trust: bool
) -> Path:
    try:  # checks that fail the same way on every rank, before any process group or file
        distributed.per_rank_batch(cfg.batch_size, ranks.world_size)
        root = find_data_root(Path(cfg.data_root).expanduser())  # resolved by the caller: nothing is built here
        run_dir = Path(cfg.runs_dir).expanduser() / cfg.name
        ckpt = load_resume(run_dir, cfg, allow_config_change, trust=trust)
        if ckpt is None:
            check_data_edition(root, cfg)  # before the first iteration of a fresh run
        init_path = resolve_init(cfg.init, run_dir.parent, cfg.name) if cfg.init and ckpt is None else None
        teacher = load_teacher(cfg, run_dir.parent, trust=trust) if uses_teacher(cfg) else None  # every rank
        device = resolve_device(distributed.start(ranks, torch.device(device) if device else None),
                                verbose=ranks.is_main)
    except FacesrError as err:
        err.same_on_every_rank = True  # the CLI prints it once, on rank 0
        raise
    ok = False
    try:
        with training_numerics(device, cfg.deterministic):
            run = _prepare(cfg, ranks, device, run_dir, ckpt, init_path, trust, teacher)
            if run.start >= cfg.iters:
                print(f"{run_dir} is already at iteration {run.start} >= iters={cfg.iters}: nothing to train")
            else:
                _loop(run, root)
        ok = True
    finally:
        if ok:
            distributed.stop(ranks)
        elif ranks.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # no barrier: the other ranks may never reach one
    return run_dir


def _prepare(
    cfg: TrainConfig, ranks: distributed.Ranks, device: torch.device, run_dir: Path, ckpt: dict | None,
    init_path: Path | None, trust: bool = False, teacher: torch.nn.Module | None = None,
) -> RunState:
    """Seeds, nets (with a distillation run's ``teacher``), schedulers and scaler, restored from ``ckpt`` or
    initialised from ``init_path``."""
    from facesr.weights.checkpoints import load_weights

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    nets = build_nets(cfg, device, ranks, teacher=teacher)
    schedulers = {"scheduler_g": IterationLR(nets.optimizer_g, cfg, cfg.lr)}
    if nets.optimizer_d is not None:
        schedulers["scheduler_d"] = IterationLR(nets.optimizer_d, cfg, cfg.lr_d)
    scaler = torch.amp.GradScaler("cuda", enabled=nets.amp_dtype == torch.float16)
    start = int(ckpt["iter"]) if ckpt else 0
    best = {"metric": "psnr", "value": None, "iter": None}
    if ckpt is not None:
        restore_state(nets, ckpt, schedulers, scaler, run_dir / "latest.pt")
        best = plain_values(dict(ckpt.get("best") or best))
        print(f"resumed {run_dir} from iteration {start}")
    elif init_path is not None:
        load_weights(nets.net_g, init_path, prefer_ema=True, trust=trust)
        nets.net_g_ema.load_state_dict(nets.net_g.state_dict())
        print(f"generator initialised from {init_path}")
    machine = machine_info(device, ranks, nets.amp_dtype)
    previous = plain_values(ckpt.get("run_info")) if ckpt else None
    # iterations an earlier session logged past this checkpoint: trained again now (the cost of that restart)
    redone = max(0, last_logged_iteration(run_dir / "log.csv") - start)
    run_info = start_session(previous, machine, start, redone=redone)
    return RunState(cfg, run_dir, ranks, device, nets, schedulers, scaler, start, best, run_info,
                last_ckpt=start if ckpt else None,
                resumed={key: ckpt.get(key) for key in ("log_window", "bad_steps")} if ckpt else {},
                skipped_total=int((previous or {}).get("skipped_steps", 0)))


def _datasets(run: RunState, root: Path) -> tuple[Any, Any]:
    """(DataLoader of this rank's part of each global batch, val set)."""
    from facesr.data.datasets import ValDataset

    cfg = run.cfg
    train_set = train_dataset(cfg, root / "train" / "GT", on_device=run.nets.gpu_degrade)
    sampler = IterationBatchSampler(len(train_set), cfg.batch_size, cfg.seed, run.start, cfg.iters,
                                    rank=run.ranks.rank, world_size=run.ranks.world_size)
    loader = make_loader(train_set, cfg.num_workers, timeout=cfg.worker_timeout, batch_sampler=sampler,
                         pin_memory=run.device.type == "cuda")
    return loader, ValDataset(root)


def _loop(run: RunState, root: Path) -> None:
    from tqdm.auto import tqdm

    cfg, nets, ranks = run.cfg, run.nets, run.ranks
    loader, run.val_set = _datasets(run, root)
    if ranks.is_main:
        open_run_folder(run, run.val_set, len(loader.dataset))
    run.bar = tqdm(total=cfg.iters, initial=run.start, desc=cfg.name, unit="it", dynamic_ncols=True,
                   mininterval=1.0, disable=not ranks.is_main, file=sys.stderr)
    run.window = LossWindow(cfg.batch_size)
    run.window.load_state_dict(run.resumed.get("log_window"), ranks.rank, ranks.world_size, run.device)
    run.bad = BadSteps(nets.check_names(), cfg.max_bad_steps, run.device, run.start,
                       int((run.resumed.get("bad_steps") or {}).get("streak", 0)))
    run.cadence = Cadence(ranks, cfg.checkpoint_minutes, run.start, cfg.log_every)
    run.t_start = time.perf_counter()
    batches = iterate(loader, "the training data")
    it = run.start
    try:
        with StopSignals() as signals:
            for k in range(run.start, cfg.iters):
                it = k + 1
                t_wait = time.perf_counter()
                try:
                    batch = next(batches)
                except FacesrError as err:
                    if signals.signum and not ranks.enabled:  # the loader's workers got the Ctrl-C too
                        raise stop_run(run, it - 1, signals.signum) from None
                    raise FacesrError(f"{err}; {kept(run)}") from None
                data_s = time.perf_counter() - t_wait
                lr = nets.optimizer_g.param_groups[0]["lr"]
                distributed.seed_step(cfg.seed, it, ranks, run.device)  # this rank's drop-path masks
                try:
                    lq, gt = prepare_batch(batch, cfg, nets, run.device)
                    losses = train_step(nets, lq, gt, run.scaler)
                except (RuntimeError, MemoryError) as err:
                    raise step_error(err, it, cfg, kept(run)) from None
                for sched in run.schedulers.values():
                    sched.step()
                nets.ema.update(k, applied=1 - nets.skipped)
                run.window.add(losses, data_s, nets.skipped)
                run.bad.add(nets.skipped, nets.nonfinite)
                run.bar.update(1)
                log_and_save(run, it, lr)
                signum, due = run.cadence.decide(it, signals.signum)
                if signum and it < cfg.iters:
                    raise stop_run(run, it, signum)
                if due and run.last_ckpt != it:
                    save_run(run, it, latest=True)
    except RuntimeError as err:  # a dead worker is reported by a signal handler, wherever the loop then is
        found = loader_error(err, "the training data", cfg.worker_timeout)
        if found is err:
            raise
        raise FacesrError(f"{found}; {kept(run)}") from None
    except KeyboardInterrupt as err:
        if not isinstance(err, TrainingStopped):
            run.bar.close()
            print(f"interrupted during iteration {it}, nothing saved since: {kept(run)}")
        raise
    finally:
        batches.close()  # stops the workers now, not whenever the garbage collector gets to them
        run.bar.close()
        if run.logs:
            run.logs.close()
    value = run.best["value"]
    summary = f"best val PSNR {value:.4f} dB at iteration {run.best['iter']}" if value is not None else "no validation"
    print(f"done: {cfg.name} at iteration {cfg.iters}, {summary} (bicubic {run.bicubic:.4f} dB); "
          f"run folder {run.run_dir}")
