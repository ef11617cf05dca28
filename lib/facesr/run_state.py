"""The state of a run folder: resume (config comparison, restore), checkpoint dicts, rotation, temp files.

Used by :func:`facesr.train.train`. A checkpoint holds everything a bit-exact resume needs (weights, EMA,
optimizers, lr schedule position, grad scaler, RNG states); files are written with
:func:`facesr.checkpoints.save_checkpoint` (temp file, fsync, rename), so a runtime killed mid-write leaves
the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import facesr
from facesr.config import TrainConfig
from facesr.engine_utils import get_rng_state, set_rng_state
from facesr.errors import FacesrError
from facesr.train_steps import Nets

# Fields that do not change what is trained (or, for iters, may grow: a run can be extended).
NOT_COMPARED = frozenset(
    {"iters", "name", "data_root", "runs_dir", "num_workers", "cache", "val_every", "checkpoint_every",
     "log_every", "keep_last", "tensorboard", "init", "quick", "why"}
)


def resolve_init(init: str, runs_dir: Path, cfg_name: str) -> Path:
    """A checkpoint file, a run folder (best.pt, else latest.pt) or a run name under runs_dir."""
    from facesr.checkpoints import run_checkpoint

    path = Path(init).expanduser()
    if path.is_file():
        return path
    for folder in (path, runs_dir / init):
        found = run_checkpoint(folder)
        if found is not None:
            return found
    raise FacesrError(
        f"{cfg_name} initialises its generator from {init!r}, but neither {path} nor {runs_dir / init} holds "
        f"best.pt/latest.pt; train it first (python -m facesr train {init}), or point at another run folder "
        "or checkpoint with --init RUN_OR_CKPT (notebooks: train(cfg, init=...)), or --set init=none for random init"
    )


def config_differences(saved: dict, cfg: TrainConfig) -> list[str]:
    """``field: saved -> now`` for each compared field that differs."""
    now = cfg.to_dict()
    out = []
    for key, value in now.items():
        if key in NOT_COMPARED:
            continue
        old = saved.get(key, "<missing>")
        if _norm(old) != _norm(value):
            out.append(f"{key}: {old!r} -> {value!r}")
    return out


def _norm(v: Any) -> Any:
    return json.loads(json.dumps(v)) if not isinstance(v, str) else v


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_resume(run_dir: Path, cfg: TrainConfig, allow_config_change: bool) -> dict | None:
    from facesr.checkpoints import load_checkpoint

    latest = run_dir / "latest.pt"
    if not latest.exists():
        return None
    try:
        ckpt = load_checkpoint(latest)
    except FacesrError as err:
        older = sorted(p.name for p in run_dir.glob("iter_*.pt"))
        hint = f"; to resume from an older one copy it over latest.pt ({', '.join(older)})" if older else ""
        raise FacesrError(f"{err}{hint}") from None
    if "net_g" not in ckpt or "iter" not in ckpt:
        raise FacesrError(f"{latest} is not a kit training checkpoint (no net_g/iter); move it away to start afresh")
    diff = config_differences(ckpt.get("config", {}), cfg)
    if diff and not allow_config_change:
        raise FacesrError(
            f"{run_dir} was trained with another config ({'; '.join(diff)}); use another --name for a new run, "
            "or --allow-config-change (notebooks: allow_config_change=True) to continue with the new values"
        )
    if diff:
        print(f"config changed since iteration {ckpt['iter']} ({'; '.join(diff)}): continuing with the new values")
    return ckpt


def restore_state(nets: Nets, ckpt: dict, scheduler: dict, scaler: Any, path: Path) -> None:
    from facesr.checkpoints import load_weights

    load_weights(nets.net_g, ckpt, prefer_ema=False)
    load_weights(nets.net_g_ema, ckpt, prefer_ema=True)
    try:
        nets.optimizer_g.load_state_dict(ckpt["optimizer_g"])
        if nets.net_d is not None and "net_d" in ckpt:
            load_weights(nets.net_d, ckpt)
            nets.optimizer_d.load_state_dict(ckpt["optimizer_d"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise FacesrError(f"{path}: optimizer state does not fit this config ({err}); use another --name") from None
    for key, sched in scheduler.items():
        sched.load_state_dict(ckpt.get(key) or {"last_epoch": ckpt["iter"]})
    if ckpt.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])


def make_checkpoint(nets: Nets, scheduler: dict, scaler: Any, it: int, best: dict, cfg: TrainConfig) -> dict:
    ckpt = {
        "net_g": nets.net_g.state_dict(),
        "net_g_ema": nets.net_g_ema.state_dict(),
        "optimizer_g": nets.optimizer_g.state_dict(),
        "scheduler_g": scheduler["scheduler_g"].state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "iter": it,
        "best": dict(best),
        "rng": get_rng_state(cfg.seed, it),
        "config": cfg.to_dict(),
        "kit_version": facesr.__version__,
    }
    if nets.net_d is not None:
        ckpt.update(
            net_d=nets.net_d.state_dict(),
            optimizer_d=nets.optimizer_d.state_dict(),
            scheduler_d=scheduler["scheduler_d"].state_dict(),
        )
    return ckpt


def remove_stale_temp_files(run_dir: Path) -> None:
    """Temp files of the kit's own atomic writes left by a killed process (never any other file)."""
    patterns = [".latest.pt.*.tmp", ".best.pt.*.tmp", ".iter_[0-9]*.pt.*.tmp", "config.json.tmp", "log.csv.tmp",
                "val.csv.tmp"]
    for pattern in patterns:
        for path in run_dir.glob(pattern):
            path.unlink(missing_ok=True)


def link_or_save(state: dict, written: Path | None, path: Path) -> Path:
    """Atomically make ``path`` a hard link of the checkpoint ``written`` (same content), else save ``state``.

    The link is made under a temp name and renamed over ``path``, so ``path`` is always whole; file systems
    without hard links (Drive, some FUSE mounts) get :func:`facesr.checkpoints.save_checkpoint` instead.
    """
    from facesr.checkpoints import save_checkpoint

    if written is not None:
        tmp = path.with_name(f".{path.name}.link.tmp")
        try:
            tmp.unlink(missing_ok=True)
            os.link(written, tmp)
            os.replace(tmp, path)
            return path
        except OSError:
            tmp.unlink(missing_ok=True)
    return save_checkpoint(state, path)


def rotate_checkpoints(run_dir: Path, keep_last: int) -> None:
    for old in sorted(run_dir.glob("iter_[0-9][0-9][0-9][0-9][0-9][0-9].pt"))[:-keep_last]:
        old.unlink(missing_ok=True)
