"""Iteration-based trainer for the pixel-loss runs (srgan, esrgan, msrresnet20) and the GAN run (esrgan_gan).

``train(cfg)`` trains into ``<runs_dir>/<name>/`` and resumes by itself from ``latest.pt`` when the folder
holds one (a recycled Colab runtime just runs the same cell again). Checkpoints hold everything a
bit-exact resume needs: weights, EMA, optimizers, lr schedule position, grad scaler and RNG states; the
data order is a pure function of (seed, iteration) (:class:`facesr.engine_utils.IterationBatchSampler`).

Config changes on resume: every field that changes what is trained must match the checkpoint's, else
FacesrError lists the differences (``allow_config_change=True`` / ``--allow-config-change`` continues
with the new values). Not compared: the bookkeeping fields in :data:`facesr.run_state.NOT_COMPARED` and
``iters``, so a finished run can be extended. ``get_config`` stretches ``periods``/``milestones`` with
``iters`` though, and those are compared: extend with ``--allow-config-change`` to continue on the
stretched schedule (the lr is a closed-form function of the iteration), or pass the old
``--set periods=[...]`` to keep it (past the last cosine period the lr stays at ``eta_min``).
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from facesr.checkpoints import load_weights, save_checkpoint
from facesr.config import TrainConfig
from facesr.engine_utils import (
    TORCH_CU126_HINT,
    CsvLog,
    IterationBatchSampler,
    IterationLR,
    ema_update,
    is_no_kernel,
    is_oom,
    resolve_device,
)
from facesr.errors import FacesrError
from facesr.run_state import (
    link_or_save,
    load_resume,
    make_checkpoint,
    remove_stale_temp_files,
    resolve_init,
    restore_state,
    rotate_checkpoints,
    write_json,
)
from facesr.train_steps import build_nets, prepare_batch, train_step, validate

VAL_COLUMNS = ["iter", "psnr", "ssim", "best_psnr", "best_iter", "bicubic_psnr", "val_time"]
PIXEL_LOSS_NAMES = ("l_pix",)
GAN_LOSS_NAMES = ("l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake")


def _log_columns(loss_names: tuple[str, ...]) -> list[str]:
    """Header of log.csv for a run logging ``loss_names``."""
    return ["iter", "lr", *loss_names, "data_time", "step_time", "samples_per_s"]


def _resolve_data_root(path: str | os.PathLike) -> Path:
    from facesr.data import find_data_root
    from facesr.sample_data import default_sample_root, ensure_sample_data

    path = Path(path).expanduser()
    if path.resolve() == default_sample_root().resolve():
        return ensure_sample_data(path)  # quick mode's data: built on first use
    return find_data_root(path)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # one degradation per worker; more threads only oversubscribe the cores
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def _tensorboard(run_dir: Path, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("tensorboard is not installed: logging to log.csv/val.csv only")
        return None
    return SummaryWriter(str(run_dir / "tb"))


def train(
    cfg: TrainConfig,
    data_root: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike | None = None,
    name: str | None = None,
    init: str | os.PathLike | None = None,
    allow_config_change: bool = False,
    device: str | torch.device | None = None,
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
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available.
    """
    from facesr.data import TrainDataset, ValDataset
    from facesr.metrics import bicubic_upscale, psnr, tensor_to_uint8

    changes = {k: str(v) for k, v in (("data_root", data_root), ("runs_dir", runs_dir), ("name", name)) if v}
    if init is not None:
        changes["init"] = str(init)
    cfg = dataclasses.replace(cfg, **changes)
    device = resolve_device(device)
    root = _resolve_data_root(cfg.data_root)
    run_dir = Path(cfg.runs_dir).expanduser() / cfg.name
    ckpt = load_resume(run_dir, cfg, allow_config_change)
    init_path = resolve_init(cfg.init, run_dir.parent, cfg.name) if cfg.init and ckpt is None else None
    start = int(ckpt["iter"]) if ckpt else 0

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    nets = build_nets(cfg, device)
    scheduler = {"scheduler_g": IterationLR(nets.optimizer_g, cfg, cfg.lr)}
    if nets.optimizer_d is not None:
        scheduler["scheduler_d"] = IterationLR(nets.optimizer_d, cfg, cfg.lr_d)
    scaler = torch.amp.GradScaler("cuda", enabled=nets.amp_dtype == torch.float16)
    best = {"metric": "psnr", "value": None, "iter": None}
    if ckpt is not None:
        restore_state(nets, ckpt, scheduler, scaler, run_dir / "latest.pt")
        best = dict(ckpt.get("best") or best)
        print(f"resumed {run_dir} from iteration {start}")
        if start >= cfg.iters:
            print(f"{run_dir} is already at iteration {start} >= iters={cfg.iters}: nothing to train")
            return run_dir
    elif init_path is not None:
        load_weights(nets.net_g, init_path, prefer_ema=True)
        nets.net_g_ema.load_state_dict(nets.net_g.state_dict())
        print(f"generator initialised from {init_path}")

    train_set = TrainDataset(
        root / "train" / "GT",
        gt_patch=None if nets.gpu_degrade else cfg.gt_patch,  # the GPU path crops after degrading
        flip=True,
        degrade=not nets.gpu_degrade,
        cache=cfg.cache,
        seed=cfg.seed,
    )
    val_set = ValDataset(root)
    sampler = IterationBatchSampler(len(train_set), cfg.batch_size, cfg.seed, start, cfg.iters)
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if cfg.num_workers else None,
    )
    bicubic = float(np.mean([psnr(bicubic_upscale(tensor_to_uint8(v["lq"])), tensor_to_uint8(v["gt"])) for v in val_set]))

    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(run_dir)
    write_json(run_dir / "config.json", cfg.to_dict())
    loss_names = GAN_LOSS_NAMES if nets.net_d is not None else PIXEL_LOSS_NAMES
    log = CsvLog(run_dir / "log.csv", _log_columns(loss_names), start)
    val_log = CsvLog(run_dir / "val.csv", VAL_COLUMNS, start)
    writer = _tensorboard(run_dir, cfg.tensorboard)
    from facesr.models import PARAM_LIMIT, count_parameters

    n_params = count_parameters(nets.net_g)
    over = f", over the {PARAM_LIMIT:,} limit: not submittable" if n_params > PARAM_LIMIT else ""
    print(f"{cfg.name}: {cfg.generator} {cfg.generator_args} ({n_params:,} parameters{over}), {len(train_set)} training "
          f"images, {len(val_set)} val pairs (bicubic {bicubic:.2f} dB), iterations {start} -> {cfg.iters}, run "
          f"folder {run_dir}")

    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.iters, initial=start, desc=cfg.name, unit="it", dynamic_ncols=True, mininterval=1.0)
    sums: dict[str, torch.Tensor] = {}
    window = {"n": 0, "data": 0.0, "t0": time.perf_counter()}
    last_ckpt = start if ckpt else None
    last_psnr = float("nan")
    t_prev = time.perf_counter()
    try:
        for k, batch in zip(range(start, cfg.iters), loader, strict=True):
            it = k + 1
            lr = nets.optimizer_g.param_groups[0]["lr"]
            try:
                lq, gt = prepare_batch(batch, k, cfg, nets, device)
                window["data"] += time.perf_counter() - t_prev
                losses = train_step(nets, lq, gt, scaler)
            except (RuntimeError, MemoryError) as err:
                raise _step_error(err, it, cfg, run_dir, last_ckpt) from None
            for sched in scheduler.values():
                sched.step()
            ema_update(nets.net_g_ema, nets.net_g, cfg.ema_decay, k)
            for key, value in losses.items():
                sums[key] = sums[key] + value if key in sums else value
            window["n"] += 1

            if it % cfg.log_every == 0 or it == cfg.iters:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                n, wall = window["n"], time.perf_counter() - window["t0"]
                row = {"iter": it, "lr": lr, **{key: float(v) / n for key, v in sums.items()},
                       "data_time": window["data"] / n, "step_time": (wall - window["data"]) / n,
                       "samples_per_s": n * cfg.batch_size / wall}
                log.write(row)
                if writer is not None:
                    for key in ("lr", *sums):
                        writer.add_scalar(f"train/{key}", row[key], it)
                bar.set_postfix(loss=f"{row[loss_names[0]]:.4f}", lr=f"{lr:.2e}", psnr=f"{last_psnr:.2f}")
                sums, window = {}, {"n": 0, "data": 0.0, "t0": time.perf_counter()}

            if it % cfg.val_every == 0 or it == cfg.iters:
                t_val = time.perf_counter()
                try:
                    last_psnr, last_ssim = validate(nets.net_g_ema, val_set, device)
                except (RuntimeError, MemoryError) as err:
                    raise _step_error(err, it, cfg, run_dir, last_ckpt) from None
                improved = best["value"] is None or last_psnr > best["value"]
                if improved:
                    best = {"metric": "psnr", "value": last_psnr, "iter": it, "ssim": last_ssim}
                val_log.write({"iter": it, "psnr": last_psnr, "ssim": last_ssim, "best_psnr": best["value"],
                               "best_iter": best["iter"], "bicubic_psnr": bicubic,
                               "val_time": time.perf_counter() - t_val})
                if writer is not None:
                    writer.add_scalar("val/psnr", last_psnr, it)
                    writer.add_scalar("val/ssim", last_ssim, it)
                bar.set_postfix(loss=f"{float(losses[loss_names[0]]):.4f}", lr=f"{lr:.2e}", psnr=f"{last_psnr:.2f}")
            else:
                improved = False

            # Files of one iteration: iter_N.pt, then best.pt and latest.pt as hard links of it where the file
            # system allows (one serialisation instead of three; Drive falls back to a full atomic save).
            # latest.pt comes last: a crash before it resumes earlier and redoes these iterations identically.
            ckpt_now = it % cfg.checkpoint_every == 0 or it == cfg.iters
            if improved or ckpt_now:
                state = make_checkpoint(nets, scheduler, scaler, it, best, cfg)
                written = save_checkpoint(state, run_dir / f"iter_{it:06d}.pt") if ckpt_now else None
                if improved:
                    written = link_or_save(state, written, run_dir / "best.pt")
                if ckpt_now:
                    link_or_save(state, written, run_dir / "latest.pt")
                    rotate_checkpoints(run_dir, cfg.keep_last)
                    last_ckpt = it
            bar.update(1)
            t_prev = time.perf_counter()
    finally:
        bar.close()
        log.close()
        val_log.close()
        if writer is not None:
            writer.close()
    value = best["value"]
    summary = f"best val PSNR {value:.2f} dB at iteration {best['iter']}" if value is not None else "no validation"
    print(f"done: {cfg.name} at iteration {cfg.iters}, {summary} (bicubic {bicubic:.2f} dB); run folder {run_dir}")
    return run_dir


def _step_error(err: BaseException, it: int, cfg: TrainConfig, run_dir: Path, last_ckpt: int | None) -> BaseException:
    """One clear FacesrError for CUDA OOM and missing kernels; anything else is re-raised as it is."""
    kept = (f"the last checkpoint ({run_dir / 'latest.pt'}, iteration {last_ckpt}) is intact" if last_ckpt
            else "no checkpoint had been written yet")
    if is_oom(err):
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        smaller = max(1, cfg.batch_size // 2)
        return FacesrError(
            f"CUDA ran out of memory at iteration {it} (batch_size={cfg.batch_size}, gt_patch={cfg.gt_patch}); "
            f"use a smaller batch (--set batch_size={smaller}) or crops (--set gt_patch=128); "
            f"notebooks: get_config(..., batch_size={smaller}); {kept}"
        )
    if is_no_kernel(err):
        return FacesrError(
            f"this torch build has no CUDA kernels for the GPU ('no kernel image is available'); install one "
            f"whose torch.cuda.get_arch_list() includes the card, e.g. `{TORCH_CU126_HINT}`; {kept}"
        )
    return err


def read_run_logs(run_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training log, validation log) of a run folder as DataFrames (empty when not written yet)."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise FacesrError(f"run folder not found: {run_dir}; train it first (python -m facesr train CONFIG)")
    frames = []
    # A log not written yet has no header to tell a GAN run's columns: the placeholder is a pixel run's.
    for fname, columns in (("log.csv", _log_columns(PIXEL_LOSS_NAMES)), ("val.csv", VAL_COLUMNS)):
        path = run_dir / fname
        if path.exists() and path.stat().st_size > 0:
            frames.append(pd.read_csv(path, on_bad_lines="skip"))
        else:
            frames.append(pd.DataFrame(columns=columns))
    return frames[0], frames[1]


__all__ = ["read_run_logs", "train"]
