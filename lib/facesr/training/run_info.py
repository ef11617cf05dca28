"""run_info.json: where and how fast a run trained and with which kit commit, session by session (one per process
start, e.g. one Colab runtime), with the iterations an interrupted session trained past its last checkpoint (the work lost
to restarts). It is written next to every checkpoint (:func:`facesr.training.run_folder.save_iteration`) and
read by the report and the hand-in.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform

import torch

from facesr.training.distributed import Ranks


@functools.lru_cache(maxsize=8)
def kit_commit(kit: str | os.PathLike | None = None) -> str | None:
    """The git commit the kit's checkout is at (``git rev-parse HEAD``), or None when it is not a git checkout.

    Args:
        kit: The kit's root (default: the checkout this module lives in).
    """
    import subprocess
    from pathlib import Path

    root = Path(kit) if kit is not None else Path(__file__).resolve().parents[3]  # lib/facesr/training/run_info.py
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def precision_name(dtype: torch.dtype | None) -> str:
    """``"bf16"``, ``"fp16"`` or ``"fp32"`` for a run's AMP dtype (None: no autocast)."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


def machine_info(device: torch.device, ranks: Ranks, amp_dtype: torch.dtype | None) -> dict:
    """Where this run trains: GPU model and count (or the CPU), torch/CUDA/cuDNN/Python versions, AMP dtype."""
    cuda = device.type == "cuda"
    info = {
        "device": "cuda" if cuda else "cpu",
        "gpu_name": torch.cuda.get_device_name(device) if cuda else None,
        "gpu_count": ranks.world_size if cuda else 0,
        "world_size": ranks.world_size,
        "cpu": f"{platform.machine() or 'unknown'}, {os.cpu_count() or '?'} cores",
        "host": platform.node(),
        "torch": str(torch.__version__),  # a TorchVersion (str subclass): weights-only loads want plain str
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "python": platform.python_version(),
        "amp_dtype": precision_name(amp_dtype),
        "kit_commit": kit_commit(),  # the kit's code this session trained with (None outside a git checkout)
    }
    if cuda:
        props = torch.cuda.get_device_properties(device)
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return info


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def start_session(previous: dict | None, machine: dict, start_iter: int, redone: int = 0) -> dict:
    """The run_info of a run that (re)starts at ``start_iter`` on ``machine``: earlier sessions kept.

    Each session (one process start, e.g. one Colab runtime) records its machine and iterations, so a
    run resumed on another GPU says so; the top-level fields describe the latest machine. ``redone``: the
    iterations an earlier session had trained past the checkpoint this one starts from (its last log row),
    which this session trains again: the work lost to that restart.
    """
    sessions = list((previous or {}).get("sessions", []))
    sessions.append({"started": _now(), "from_iter": start_iter, "to_iter": start_iter, "seconds": 0.0,
                     "redone": int(redone), **machine})
    kept = {k: v for k, v in (previous or {}).items() if k in ("skipped_steps", "batch_size")}
    info = {**kept, **machine, "sessions": sessions}
    return update_session(info, start_iter, 0.0)


def update_session(info: dict, it: int, session_seconds: float, skipped: int | None = None,
                   batch_size: int | None = None) -> dict:
    """``info`` with the current session at iteration ``it`` after ``session_seconds`` of training.

    Args:
        info: The run_info so far.
        it: The iteration reached.
        session_seconds: Wall seconds of this session so far.
        skipped: Non-finite steps skipped since the run began, when known.
        batch_size: The global batch, for ``samples_per_s``; default the one ``info`` holds.
    """
    sessions = [dict(s) for s in info["sessions"]]
    sessions[-1].update(to_iter=it, seconds=round(session_seconds, 3))
    seconds = sum(s["seconds"] for s in sessions)
    trained = sum(s["to_iter"] - s["from_iter"] for s in sessions)
    redone = sum(int(s.get("redone", 0)) for s in sessions)
    rate = trained / seconds if seconds > 0 else None
    batch = batch_size or info.get("batch_size")
    out = {
        **{k: v for k, v in info.items() if k != "sessions"},
        "iterations": it,
        "wall_hours": round(seconds / 3600, 6),
        "iters_per_s": round(rate, 4) if rate else None,
        "samples_per_s": round(rate * batch, 3) if rate and batch else None,
        "batch_size": batch,
        "restarts": len(sessions) - 1,
        "iterations_trained_twice": redone,
        "hours_lost_to_restarts": round(redone / rate / 3600, 6) if rate else None,
        "updated": _now(),
        "sessions": sessions,
    }
    if skipped is not None:
        out["skipped_steps"] = int(skipped)
    return out
