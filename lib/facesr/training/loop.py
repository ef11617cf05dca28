"""``train(cfg)``: the iteration loop, from a config to a run folder of checkpoints and logs.

``train(cfg)`` trains into ``<runs_dir>/<name>/`` and resumes by itself from ``latest.pt`` when the folder
holds one (a recycled Colab runtime just runs the same cell again). Checkpoints hold everything a
bit-exact resume needs (:mod:`facesr.training.run_folder`); the data order is a pure function of
(seed, iteration) (:class:`facesr.training.schedule.IterationBatchSampler`). Under torchrun the same call
trains on every rank (:mod:`facesr.training.distributed` says what stays the same on N ranks).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesr.atomic import atomic_write_json
from facesr.config import TrainConfig
from facesr.data.workers import iterate, loader_error, make_loader
from facesr.errors import FacesrError
from facesr.training import distributed
from facesr.training.device import resolve_device, step_error
from facesr.training.logs import GAN_LOSS_NAMES, PIXEL_LOSS_NAMES, LossWindow, RunLogs
from facesr.training.run_folder import (
    load_resume,
    machine_info,
    make_checkpoint,
    plain_values,
    remove_stale_temp_files,
    resolve_init,
    restore_state,
    save_iteration,
    start_session,
    update_session,
)
from facesr.training.schedule import IterationBatchSampler, IterationLR, ema_update
from facesr.training.step import Nets, build_nets, prepare_batch, train_dataset, train_step, validate


@dataclass
class _Run:
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
    last_ckpt: int | None = None
    last_psnr: float = float("nan")


def _resolve_data_root(path: str | os.PathLike, edition: int) -> Path:
    from facesr.data.check import find_data_root
    from facesr.data.sample import default_sample_root, ensure_sample_data

    path = Path(path).expanduser()
    if path.resolve() == default_sample_root(edition).resolve():
        return ensure_sample_data(path, edition)  # quick mode's data: built on first use
    return find_data_root(path)


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

    Args:
        cfg: A :class:`facesr.config.TrainConfig` (``get_config(...)``).
        data_root: Data root in the course layout; default ``cfg.data_root``.
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
    try:
        with contextlib.redirect_stdout(quiet) if quiet else contextlib.nullcontext():
            return _train(cfg, ranks, allow_config_change, device, trust)
    finally:
        if quiet is not None:
            quiet.close()


def _train(
    cfg: TrainConfig, ranks: distributed.Ranks, allow_config_change: bool, device: Any, trust: bool
) -> Path:
    try:  # checks that fail the same way on every rank, before any process group or file
        distributed.per_rank_batch(cfg.batch_size, ranks.world_size)
        root = _resolve_data_root(cfg.data_root, cfg.edition)
        run_dir = Path(cfg.runs_dir).expanduser() / cfg.name
        ckpt = load_resume(run_dir, cfg, allow_config_change, trust=trust)
        init_path = resolve_init(cfg.init, run_dir.parent, cfg.name) if cfg.init and ckpt is None else None
        device = resolve_device(distributed.start(ranks, torch.device(device) if device else None),
                                verbose=ranks.is_main)
    except FacesrError as err:
        err.same_on_every_rank = True  # the CLI prints it once, on rank 0
        raise
    ok = False
    try:
        run = _prepare(cfg, ranks, device, run_dir, ckpt, init_path, trust)
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
    init_path: Path | None, trust: bool = False,
) -> _Run:
    """Seeds, nets, schedulers and scaler, restored from ``ckpt`` or initialised from ``init_path``."""
    from facesr.checkpoints import load_weights

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    nets = build_nets(cfg, device, ranks)
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
    run_info = start_session(plain_values(ckpt.get("run_info")) if ckpt else None, machine, start)
    return _Run(cfg, run_dir, ranks, device, nets, schedulers, scaler, start, best, run_info,
                last_ckpt=start if ckpt else None)


def _datasets(run: _Run, root: Path) -> tuple[Any, Any]:
    """(DataLoader of this rank's part of each global batch, val set)."""
    from facesr.data.datasets import ValDataset

    cfg = run.cfg
    train_set = train_dataset(cfg, root / "train" / "GT", on_device=run.nets.gpu_degrade)
    sampler = IterationBatchSampler(len(train_set), cfg.batch_size, cfg.seed, run.start, cfg.iters,
                                    rank=run.ranks.rank, world_size=run.ranks.world_size)
    loader = make_loader(train_set, cfg.num_workers, timeout=cfg.worker_timeout, batch_sampler=sampler,
                         pin_memory=run.device.type == "cuda")
    return loader, ValDataset(root)


def _open_run_folder(run: _Run, val_set: Any, n_train: int) -> None:
    """Rank 0: bicubic baseline, config.json, the logs, and the one-line summary of the run."""
    from facesr.metrics import bicubic_upscale, psnr, tensor_to_uint8
    from facesr.models import count_parameters, param_limit

    cfg, run_dir = run.cfg, run.run_dir
    run.bicubic = float(np.mean([psnr(bicubic_upscale(tensor_to_uint8(v["lq"])), tensor_to_uint8(v["gt"]))
                                 for v in val_set]))
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(run_dir)
    atomic_write_json(run_dir / "config.json", cfg.to_dict())
    loss_names = GAN_LOSS_NAMES if run.nets.net_d is not None else PIXEL_LOSS_NAMES
    run.logs = RunLogs(run_dir, loss_names, run.start, cfg.tensorboard)
    n_params = count_parameters(run.nets.net_g)
    limit = param_limit(cfg.edition)
    over = f", over the {cfg.edition} limit of {limit:,}: not submittable" if n_params > limit else ""
    ranks = f", {run.ranks.world_size} ranks x batch {cfg.batch_size // run.ranks.world_size}" if run.ranks.enabled else ""
    print(f"{cfg.name}: {cfg.generator} {cfg.generator_args} ({n_params:,} parameters{over}), {n_train} training "
          f"images, {len(val_set)} val pairs (bicubic {run.bicubic:.4f} dB), iterations {run.start} -> {cfg.iters}"
          f"{ranks}, run folder {run_dir}")


def _kept(run: _Run) -> str:
    if run.last_ckpt:
        return f"the last checkpoint ({run.run_dir / 'latest.pt'}, iteration {run.last_ckpt}) is intact"
    return "no checkpoint had been written yet"


def _validate(run: _Run, it: int) -> bool:
    """Rank 0: score the EMA generator on the val set, log it; True when it is the best so far."""
    t_val = time.perf_counter()
    try:
        run.last_psnr, ssim = validate(run.nets.net_g_ema, run.val_set, run.device)
    except (RuntimeError, MemoryError) as err:
        raise step_error(err, it, run.cfg, _kept(run)) from None
    improved = run.best["value"] is None or run.last_psnr > run.best["value"]
    if improved:
        run.best = {"metric": "psnr", "value": run.last_psnr, "iter": it, "ssim": ssim}
    run.logs.write_val({"iter": it, "psnr": run.last_psnr, "ssim": ssim, "best_psnr": run.best["value"],
                        "best_iter": run.best["iter"], "bicubic_psnr": run.bicubic,
                        "val_time": time.perf_counter() - t_val})
    return improved


def _loop(run: _Run, root: Path) -> None:
    from tqdm.auto import tqdm

    cfg, nets, ranks = run.cfg, run.nets, run.ranks
    loader, run.val_set = _datasets(run, root)
    if ranks.is_main:
        _open_run_folder(run, run.val_set, len(loader.dataset))
    bar = tqdm(total=cfg.iters, initial=run.start, desc=cfg.name, unit="it", dynamic_ncols=True, mininterval=1.0,
               disable=not ranks.is_main, file=sys.stderr)
    window = LossWindow(cfg.batch_size)
    t_start = t_prev = time.perf_counter()
    loss_name = run.logs.loss_names[0] if run.logs else "l_pix"
    batches = iterate(loader, "the training data")
    try:
        for k in range(run.start, cfg.iters):
            it = k + 1
            try:
                batch = next(batches)
            except FacesrError as err:
                raise FacesrError(f"{err}; {_kept(run)}") from None
            lr = nets.optimizer_g.param_groups[0]["lr"]
            try:
                lq, gt = prepare_batch(batch, cfg, nets, run.device)
                data_s = time.perf_counter() - t_prev
                losses = train_step(nets, lq, gt, run.scaler)
            except (RuntimeError, MemoryError) as err:
                raise step_error(err, it, cfg, _kept(run)) from None
            for sched in run.schedulers.values():
                sched.step()
            ema_update(nets.net_g_ema, nets.net_g, cfg.ema_decay, k)
            window.add(losses, data_s)
            if it % cfg.log_every == 0 or it == cfg.iters:
                row = window.row(it, lr, run.device)  # every rank: the losses are averaged over the ranks
                if run.logs:
                    run.logs.write_train(row)
                    bar.set_postfix(loss=f"{row[loss_name]:.4f}", lr=f"{lr:.2e}", psnr=f"{run.last_psnr:.2f}")
            improved = False
            if it % cfg.val_every == 0 or it == cfg.iters:
                if ranks.is_main:
                    improved = _validate(run, it)
                    bar.set_postfix(loss=f"{float(losses['l_pix']):.4f}", lr=f"{lr:.2e}", psnr=f"{run.last_psnr:.2f}")
                distributed.barrier(ranks)
            periodic = it % cfg.checkpoint_every == 0 or it == cfg.iters
            if ranks.is_main and (improved or periodic):
                run.run_info = update_session(run.run_info, it, time.perf_counter() - t_start)
                state = make_checkpoint(nets, run.schedulers, run.scaler, it, run.best, cfg, run.run_info)
                save_iteration(run.run_dir, state, it, improved, periodic, cfg.keep_last)
                run.last_ckpt = it if periodic else run.last_ckpt
            if periodic:
                distributed.barrier(ranks)
            bar.update(1)
            t_prev = time.perf_counter()
    except RuntimeError as err:  # a dead worker is reported by a signal handler, wherever the loop then is
        found = loader_error(err, "the training data", cfg.worker_timeout)
        if found is err:
            raise
        raise FacesrError(f"{found}; {_kept(run)}") from None
    finally:
        batches.close()  # stops the workers now, not whenever the garbage collector gets to them
        bar.close()
        if run.logs:
            run.logs.close()
    value = run.best["value"]
    summary = f"best val PSNR {value:.4f} dB at iteration {run.best['iter']}" if value is not None else "no validation"
    print(f"done: {cfg.name} at iteration {cfg.iters}, {summary} (bicubic {run.bicubic:.4f} dB); "
          f"run folder {run.run_dir}")
