"""Pieces of the trainer that hold state across a resume: lr schedule, EMA, data order, RNG, logs, device.

Everything here is a pure function of (config, iteration) or is saved in the checkpoint, which is what
makes a killed-and-resumed CPU run bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import bisect
import copy
import csv
import math
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from facesr.errors import FacesrError

TORCH_CU126_HINT = "pip install torch torchvision --index-url https://download.pytorch.org/whl/cu126"


# ----------------------------------------------------------------------------------------------- lr schedule
def lr_at(cfg: Any, base_lr: float, progress: int) -> float:
    """The lr of the iteration that starts after ``progress`` finished iterations (MMCV iter-based hooks).

    cosine_restart: ``eta_min + 0.5 * w_i * (base - eta_min) * (1 + cos(pi * t))`` within period ``i``
    (MMEditing's CosineRestart); after the last period the lr stays at ``eta_min``.
    multistep: ``base * gamma ** (number of milestones <= progress)``.
    """
    if cfg.scheduler == "multistep":
        return base_lr * cfg.gamma ** bisect.bisect_right(sorted(cfg.milestones), progress)
    start = 0
    for period, weight in zip(cfg.periods, cfg.restart_weights, strict=True):
        if progress < start + period:
            alpha = min((progress - start) / period, 1.0)
            return cfg.eta_min + 0.5 * weight * (base_lr - cfg.eta_min) * (math.cos(math.pi * alpha) + 1)
        start += period
    return cfg.eta_min


class IterationLR(torch.optim.lr_scheduler.LRScheduler):
    """Closed-form lr per iteration (see :func:`lr_at`); its state is only the iteration counter.

    Being closed-form, a resumed run (even one whose schedule was changed with allow_config_change)
    gets exactly the lr the config prescribes for that iteration.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: Any, base_lr: float) -> None:
        self.cfg, self.base_lr = cfg, base_lr
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [lr_at(self.cfg, self.base_lr, self.last_epoch) for _ in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.last_epoch = int(state_dict["last_epoch"])
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = lrs


# ------------------------------------------------------------------------------------------------------- EMA
def ema_decay_at(decay: float, updates: int) -> float:
    """EMA decay with warm-up ``min(decay, (1 + n) / (10 + n))`` (as TF's ExponentialMovingAverage).

    Without warm-up a 0.999 average would still be 74% random init after 300 iterations (quick runs);
    from about 9000 iterations on this is the plain ``decay``.
    """
    return min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def ema_update(net_ema: nn.Module, net: nn.Module, decay: float, updates: int) -> None:
    """``ema = d * ema + (1 - d) * net`` for float parameters and buffers; other buffers copied."""
    d = ema_decay_at(decay, updates)
    src = dict(net.state_dict())
    for key, value in net_ema.state_dict().items():
        if value.dtype.is_floating_point and d > 0:
            value.mul_(d).add_(src[key].to(value.dtype), alpha=1.0 - d)
        else:
            value.copy_(src[key])


def make_ema(net: nn.Module) -> nn.Module:
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


# ------------------------------------------------------------------------------------------------ data order
class IterationBatchSampler(torch.utils.data.Sampler):
    """Batches of ``(index, sample_seed)`` for iterations ``start_iter .. total_iters - 1`` (0-based).

    The order is a pure function of (seed, iteration): epoch ``e`` is the permutation drawn by
    ``default_rng((seed, 1, e))`` cut into ``n // batch_size`` batches (drop_last), and item ``j`` of
    iteration ``k`` is degraded with ``sample_seed = (seed, k, j)``. Resuming at iteration k therefore
    reproduces batches k.. of an uninterrupted run without replaying earlier ones, with any worker count.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start_iter: int, total_iters: int) -> None:
        if batch_size > num_items:
            raise FacesrError(
                f"batch_size={batch_size} is larger than the {num_items} training images; "
                f"use --set batch_size={num_items} or fewer"
            )
        self.n, self.batch_size, self.seed = num_items, batch_size, seed
        self.start_iter, self.total_iters = start_iter, total_iters
        self.per_epoch = num_items // batch_size

    def __len__(self) -> int:
        return max(0, self.total_iters - self.start_iter)

    def batch(self, k: int, _perm: dict[int, np.ndarray] | None = None) -> list[tuple[int, tuple[int, int, int]]]:
        epoch, pos = divmod(k, self.per_epoch)
        perm = None if _perm is None else _perm.get(epoch)
        if perm is None:
            perm = np.random.default_rng((self.seed, 1, epoch)).permutation(self.n)
            if _perm is not None:
                _perm.clear()
                _perm[epoch] = perm
        idx = perm[pos * self.batch_size : (pos + 1) * self.batch_size]
        return [(int(i), (self.seed, k, j)) for j, i in enumerate(idx)]

    def __iter__(self) -> Iterator[list[tuple[int, tuple[int, int, int]]]]:
        cache: dict[int, np.ndarray] = {}
        for k in range(self.start_iter, self.total_iters):
            yield self.batch(k, cache)


# ------------------------------------------------------------------------------------------------------- RNG
def get_rng_state(seed: int, iteration: int) -> dict:
    """Global RNG states (python, numpy, torch CPU/CUDA) and the data-order position, weights_only-safe."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "data": {"seed": seed, "iter": iteration},
    }
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_tuplify(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys).astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuplify(obj: Any) -> Any:
    return tuple(_tuplify(o) for o in obj) if isinstance(obj, (list, tuple)) else obj


# ------------------------------------------------------------------------------------------------------ logs
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
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(list(columns))
        w.writerows(keep)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _iter_of(row: list[str]) -> int | None:
    try:
        return int(row[0])
    except (ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------------- device
def has_kernel_for(capability: tuple[int, int], arch_list: Sequence[str]) -> bool:
    """Whether a torch build with ``arch_list`` (``torch.cuda.get_arch_list()``) runs on a GPU of ``capability``.

    A cubin for sm_XY runs on sm_XZ with Z >= Y; PTX (compute_XY) is JIT-compiled for any newer card. An empty
    list (CPU-only, ROCm or another unusual build) gives True: there is nothing to compare, so torch decides.
    Entries that are not ``sm_``/``compute_`` plus digits (e.g. the arch-specific ``sm_90a``) are skipped.
    """
    if not arch_list:
        return True
    major, minor = capability
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        if len(digits) < 2 or not digits.isdigit():
            continue
        a_major, a_minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def check_cuda_arch(index: int = 0) -> None:
    """FacesrError when the installed torch has no kernels for the card (e.g. V100 sm_70 on CUDA 12.8+).

    A cubin for sm_XY runs on sm_XZ with Z >= Y; PTX (compute_XY) is JIT-compiled for any newer card.
    """
    major, minor = torch.cuda.get_device_capability(index)
    arch_list = torch.cuda.get_arch_list()
    if has_kernel_for((major, minor), arch_list):
        return
    name = torch.cuda.get_device_name(index)
    raise FacesrError(
        f"the installed torch {torch.__version__} has no kernels for {name} (compute capability sm_{major}{minor}; "
        f"this build supports {' '.join(arch_list)}), so every CUDA call would fail with 'no kernel image is "
        f"available'; install a torch build whose arch list includes sm_{major}{minor}, e.g. `{TORCH_CU126_HINT}` "
        "(then restart the runtime), or pick another GPU"
    )


def resolve_device(device: str | torch.device | None) -> torch.device:
    """CUDA when available (after the capability check), else the CPU, with a one-line note."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FacesrError("device='cuda' was asked for but torch sees no CUDA device; use device='cpu'")
        check_cuda_arch(device.index or 0)
        print(f"training on {torch.cuda.get_device_name(device.index or 0)}")
    else:
        print("no CUDA device: training on the CPU (fine for quick mode; full runs need a GPU)")
    return device


def is_oom(err: BaseException) -> bool:
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(err, oom_type) or (isinstance(err, RuntimeError) and "out of memory" in str(err))


def is_no_kernel(err: BaseException) -> bool:
    return isinstance(err, RuntimeError) and "no kernel image is available" in str(err)
