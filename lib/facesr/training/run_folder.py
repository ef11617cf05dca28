"""The run folder: checkpoint dict, atomic save, resume (config comparison, restore), rotation, RNG states.

A checkpoint holds everything a bit-exact resume needs (weights, EMA, optimizers, lr schedule position,
grad scaler, RNG states, the training time so far); files are written with
:mod:`facesr.atomic` (temp file, fsync, rename), so a runtime killed mid-write leaves
the previous checkpoint whole. Only rank 0 writes here (see :mod:`facesr.training.distributed`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

import facesr
from facesr.atomic import atomic_link, atomic_write_json, temp_pattern
from facesr.config.train_config import TrainConfig
from facesr.errors import FacesrError
from facesr.training.step import Nets

# Fields that do not change what is trained (or, for iters, may grow: a run can be extended). deterministic and
# compile change the last bits of GPU arithmetic, not the training: they can be switched on a resumed run.
NOT_COMPARED = frozenset(
    {"iters", "name", "data_root", "runs_dir", "num_workers", "worker_timeout", "cache", "val_every", "checkpoint_every",
     "log_every", "keep_last", "tensorboard", "init", "quick", "why", "checkpoint_minutes", "max_bad_steps",
     "deterministic", "compile"}
)


def resolve_init(init: str, runs_dir: Path, cfg_name: str) -> Path:
    """A checkpoint file, a run folder (best.pt, else latest.pt) or a run name under runs_dir."""
    from facesr.weights.checkpoints import run_checkpoint

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
    now, default = cfg.to_dict(), TrainConfig().to_dict()
    out = []
    for key, value in now.items():
        if key in NOT_COMPARED:
            continue
        old = saved.get(key, default[key])  # a field an older kit did not write had its default value
        if _norm(old) != _norm(value):
            out.append(f"{key}: {old!r} -> {value!r}")
    return out


def _norm(v: Any) -> Any:
    return json.loads(json.dumps(v)) if not isinstance(v, str) else v


def load_resume(
    run_dir: Path, cfg: TrainConfig, allow_config_change: bool, trust: bool = False
) -> dict | None:
    """The checkpoint to resume from (``run_dir/latest.pt``), or None for a fresh run.

    Args:
        run_dir: The run folder.
        cfg: The config to train with; compared with the checkpoint's.
        allow_config_change: Resume although compared fields differ.
        trust: Unpickle ``latest.pt`` in full (runs code from it); the kit's own checkpoints never need it.
    """
    from facesr.training.checkpoint_files import repair_best, resume_checkpoint
    from facesr.weights.checkpoints import load_checkpoint

    latest = resume_checkpoint(run_dir)  # latest.pt; on Drive the newest slot whose checksum matches
    if latest is None:
        return None
    try:
        ckpt = load_checkpoint(latest, trust=trust)
    except FacesrError as err:
        older = sorted(p.name for p in run_dir.glob("iter_*.pt"))
        hint = f"; to resume from an older one copy it over latest.pt ({', '.join(older)})" if older else ""
        raise FacesrError(f"{err}{hint}") from None
    if "net_g" not in ckpt or "iter" not in ckpt:
        raise FacesrError(f"{latest} is not a kit training checkpoint (no net_g/iter); move it away to start afresh")
    repair_best(run_dir, ckpt)
    diff = config_differences(ckpt.get("config", {}), cfg)
    if diff and not allow_config_change:
        saved_edition = ckpt.get("config", {}).get("edition")
        if saved_edition != cfg.edition and saved_edition is not None:  # the edition is not a value to change
            raise FacesrError(
                f"{run_dir} was trained for the {saved_edition} edition ({'; '.join(diff)}); set EDITION = "
                f"{saved_edition} in the notebook's settings cell (CLI: --edition {saved_edition}) to continue it, "
                f"or give the {cfg.edition} run another name (RUN_NAME, --name)"
            )
        raise FacesrError(
            f"{run_dir} was trained with another config ({'; '.join(diff)}); use another --name for a new run, "
            "or --allow-config-change (notebooks: allow_config_change=True) to continue with the new values"
        )
    if diff:
        print(f"config changed since iteration {ckpt['iter']} ({'; '.join(diff)}): continuing with the new values")
    return ckpt


def as_fused(optimizer_state: dict) -> dict:
    """An Adam state dict as the kit's fused Adam loads it: ``load_state_dict`` takes the saved param groups'
    options, and an older kit's (foreach or for-loop Adam) would turn the fused step, and its ``found_inf``
    skip, off; their step counters also move to the parameters' device, as fused Adam keeps them."""
    groups = [{**group, "fused": True, "foreach": None} for group in optimizer_state["param_groups"]]
    return {**optimizer_state, "param_groups": groups}


def state_like_parameters(optimizer: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor of ``optimizer`` its parameter's layout, dtype and device.

    ``Optimizer.load_state_dict`` casts a state tensor's dtype and device only, and ``torch.save`` keeps the
    strides it was saved with: a moment saved from channels_last parameters (a CUDA run) stays channels_last
    where the parameters are contiguous (a CPU resume, or another ``channels_last`` choice), and fused Adam
    walks both in memory order, pairing each moment with the wrong weight (CPU) or refusing (CUDA). Tensors
    of the parameter's shape get its strides; the others (``step``) keep what torch gave them.

    Args:
        optimizer: An optimizer just loaded from a state dict.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if not torch.is_tensor(value) or value.shape != param.shape:
                    continue
                dtype = param.dtype if value.is_floating_point() else value.dtype
                if value.stride() != param.stride() or value.dtype != dtype or value.device != param.device:
                    state[key] = torch.empty_like(param, dtype=dtype).copy_(value)  # empty_like keeps the strides


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a checkpoint's optimizer ``state`` as the kit's fused Adam (:func:`as_fused`), every state tensor in
    its parameter's layout (:func:`state_like_parameters`).

    Args:
        optimizer: The run's optimizer.
        state: Its state dict from a checkpoint (any kit version, any device or memory format).
    """
    optimizer.load_state_dict(as_fused(state))
    state_like_parameters(optimizer)


def restore_state(nets: Nets, ckpt: dict, scheduler: dict, scaler: Any, path: Path) -> None:
    from facesr.weights.checkpoints import load_weights

    load_weights(nets.net_g, ckpt, prefer_ema=False)
    load_weights(nets.net_g_ema, ckpt, prefer_ema=True)
    try:
        load_optimizer(nets.optimizer_g, ckpt["optimizer_g"])
        if nets.net_d is not None and "net_d" in ckpt:
            load_weights(nets.net_d, ckpt)
            load_optimizer(nets.optimizer_d, ckpt["optimizer_d"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise FacesrError(f"{path}: optimizer state does not fit this config ({err}); use another --name") from None
    for key, sched in scheduler.items():
        sched.load_state_dict(ckpt.get(key) or {"last_epoch": ckpt["iter"]})
    if ckpt.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"], next(nets.net_g.parameters()).device)


def make_checkpoint(
    nets: Nets, scheduler: dict, scaler: Any, it: int, best: dict, cfg: TrainConfig, run_info: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """The checkpoint dict of iteration ``it``: the unwrapped nets (they load anywhere), optimizers, schedules,
    scaler, best metric, RNG states, config, ``run_info`` (where and how long it trained), and ``extra`` (the
    loop's ``log_window`` and ``bad_steps``: a checkpoint between two log rows resumes their counts)."""
    ckpt = {
        "net_g": nets.net_g.state_dict(),
        "net_g_ema": nets.ema.ready().state_dict(),
        "optimizer_g": nets.optimizer_g.state_dict(),
        "scheduler_g": scheduler["scheduler_g"].state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "iter": it,
        "best": dict(best),
        "rng": get_rng_state(cfg.seed, it, next(nets.net_g.parameters()).device),
        "config": cfg.to_dict(),
        "kit_version": facesr.__version__,
        "run_info": dict(run_info or {}),
        **(extra or {}),
    }
    if nets.net_d is not None:
        ckpt.update(
            net_d=nets.net_d.state_dict(),
            optimizer_d=nets.optimizer_d.state_dict(),
            scheduler_d=scheduler["scheduler_d"].state_dict(),
        )
    return ckpt


def plain_values(obj: Any) -> Any:
    """``obj`` with numpy scalars and subclasses of str/int/float as plain Python values.

    For what a resumed run carries over from an older checkpoint (its ``best`` and ``run_info``, which may
    hold numpy floats or a ``TorchVersion``), so that the checkpoints it writes load with
    ``weights_only=True`` and no allow-list.
    """
    if isinstance(obj, dict):
        return {k: plain_values(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        values = [plain_values(v) for v in obj]
        return tuple(values) if isinstance(obj, tuple) else values
    if isinstance(obj, np.generic):
        return obj.item()
    if type(obj) not in (bool, int, float, str):
        for kind in (str, float, int):  # bool is no base class of anything
            if isinstance(obj, kind):
                return kind(obj)
    return obj


def remove_stale_temp_files(run_dir: Path) -> None:
    """Temp files of the kit's own atomic writes left by a killed process (never any other file)."""
    names = ["latest.pt", "best.pt", "iter_[0-9]*.pt", "config.json", "run_info.json", "log.csv", "val.csv",
             "checksums.json"]
    patterns = [temp_pattern(name) for name in names]
    patterns += [f"{name}.tmp" for name in names[3:]] + [".*.pt.link.tmp"]  # the fixed names of older kits
    for pattern in patterns:
        for path in run_dir.glob(pattern):
            path.unlink(missing_ok=True)


def link_or_save(state: dict, written: Path | None, path: Path) -> Path:
    """Atomically make ``path`` a hard link of the checkpoint ``written`` (same content), else save ``state``.

    File systems without hard links (Drive, some FUSE mounts) get :func:`facesr.weights.checkpoints.save_checkpoint`.
    """
    from facesr.weights.checkpoints import save_checkpoint

    if written is not None and atomic_link(written, path):
        return path
    return save_checkpoint(state, path)


def check_finite(nets: Nets, it: int, kept: str) -> None:
    """FacesrError when a weight of the run is not finite: such a state is never saved (a read back).

    Args:
        nets: The run's nets (generator, EMA, discriminator).
        it: The iteration about to be saved.
        kept: What is left on disk, e.g. "the last checkpoint (..., iteration 2) is intact".
    """
    nets_ = [nets.net_g, nets.ema.ready()] + ([nets.net_d] if nets.net_d is not None else [])
    tensors = [t for net in nets_ for t in net.state_dict().values() if t.dtype.is_floating_point]
    if not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        raise FacesrError(f"the weights at iteration {it} are not all finite, so they were not saved; {kept}")


def save_iteration(
    run_dir: Path, state: dict, it: int, improved: bool, periodic: bool, keep_last: int, latest: bool | None = None
) -> None:
    """Write the files of iteration ``it``: ``iter_N.pt`` (periodic), ``best.pt`` (improved), ``latest.pt``
    (periodic, or ``latest``: a time-based or stop checkpoint), rotation, and ``run_info.json`` beside them.

    best.pt and latest.pt are hard links of iter_N.pt where the file system allows (one serialisation
    instead of three; Drive falls back to a full atomic save). latest.pt comes last: a crash before it
    resumes earlier and redoes these iterations identically.
    """
    from facesr.training.checkpoint_files import on_drive, rotate_checkpoints, save_on_drive
    from facesr.weights.checkpoints import save_checkpoint

    if on_drive(run_dir):  # replaced files fill Drive's Trash: slots written in place (checkpoint_files)
        save_on_drive(run_dir, state, it, improved, periodic, keep_last, latest=periodic if latest is None else latest)
        atomic_write_json(run_dir / "run_info.json", state.get("run_info") or {})
        return
    written = save_checkpoint(state, run_dir / f"iter_{it:06d}.pt") if periodic else None
    if improved:
        written = link_or_save(state, written, run_dir / "best.pt")
    if periodic if latest is None else latest:
        link_or_save(state, written, run_dir / "latest.pt")
    if periodic:
        rotate_checkpoints(run_dir, keep_last)
    atomic_write_json(run_dir / "run_info.json", state.get("run_info") or {})


# ------------------------------------------------------------------------------------------------------- RNG
def get_rng_state(seed: int, iteration: int, device: torch.device | None = None) -> dict:
    """Global RNG states (python, numpy, torch CPU, and the CUDA ``device``'s) and the data-order position.

    Args:
        seed: The run's seed (kept with the iteration: the data order's position).
        iteration: The iteration the state belongs to.
        device: The training device; its CUDA RNG state is kept when it is a GPU.

    Only the training device's CUDA state is read (``"cuda": [state]``), so a torchrun rank never creates a
    context on another GPU; a CPU run keeps none. The samples themselves are seeded by (seed, iteration,
    index in the global batch), so these states are the same on every rank that matters: rank 0's are saved
    and every rank restores them. weights_only-safe.
    """
    np_state = np.random.get_state()
    cuda = device is not None and device.type == "cuda"
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(device)] if cuda else [],
        "data": {"seed": seed, "iter": iteration},
    }
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    """Restore what :func:`get_rng_state` saved (``state``); the CUDA state goes to the CUDA ``device`` only.

    A state of one device (this kit's) is restored on whichever GPU trains now: it is a seed and an offset,
    the same on any card. Older checkpoints hold every visible GPU's: the entry of ``device``'s index is
    restored when the count matches this machine's.
    """
    random.setstate(_tuplify(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys).astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    cuda_states = list(state.get("cuda") or [])
    if not cuda_states or device is None or device.type != "cuda":
        return
    index = device.index if device.index is not None else torch.cuda.current_device()
    if len(cuda_states) == 1:
        torch.cuda.set_rng_state(cuda_states[0], device)
    elif len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state(cuda_states[index], device)


def _tuplify(obj: Any) -> Any:
    return tuple(_tuplify(o) for o in obj) if isinstance(obj, (list, tuple)) else obj
