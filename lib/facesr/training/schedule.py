"""What a run does at iteration k, as pure functions of (config, k): the lr, the EMA decay, the data order.

Nothing here holds state that a checkpoint would have to carry beyond the iteration counter, which is
what makes a killed-and-resumed run bit-identical to an uninterrupted one, on any number of ranks.
"""

from __future__ import annotations

import bisect
import copy
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from facesr.errors import FacesrError
from facesr.training.distributed import per_rank_batch


# ----------------------------------------------------------------------------------------------- lr schedule
def lr_at(cfg: Any, base_lr: float, progress: int) -> float:
    """The lr of the iteration that starts after ``progress`` finished iterations (MMCV iter-based hooks).

    Every scheduler starts with ``cfg.warmup_iters`` of linear warm-up, ``base * (progress + 1) / warmup``
    (0 = none), then:

    - cosine_restart: ``eta_min + 0.5 * w_i * (base - eta_min) * (1 + cos(pi * t))`` within period ``i``
      (MMEditing's CosineRestart); after the last period the lr stays at ``eta_min``.
    - cosine: one cosine period from ``base`` to ``eta_min`` over the iterations after the warm-up,
      ``iters - warmup_iters`` (the fixed-budget recipe: no restart costs the ~0.1 dB a restart does).
    - multistep: ``base * gamma ** (number of milestones <= progress)``.
    """
    warmup = int(getattr(cfg, "warmup_iters", 0) or 0)
    if progress < warmup:
        return base_lr * (progress + 1) / warmup
    if cfg.scheduler == "multistep":
        return base_lr * cfg.gamma ** bisect.bisect_right(sorted(cfg.milestones), progress)
    if cfg.scheduler == "cosine":
        span = max(1, cfg.iters - warmup)
        alpha = min((progress - warmup) / span, 1.0)
        return cfg.eta_min + 0.5 * (base_lr - cfg.eta_min) * (math.cos(math.pi * alpha) + 1)
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


class EMA:
    """The EMA generator of a run, updated with multi-tensor (``torch._foreach_*``) ops on cached tensor lists.

    Each update is today's formula, ``ema = d * ema + (1 - d) * net`` for every floating-point entry of the
    state dict (parameters and buffers; ``d`` from :func:`ema_decay_at`) and a copy for the others, computed
    with the same rounding as one ``mul_`` and one ``add_(alpha=1 - d)`` per tensor, so it is bit-identical to
    that loop on the CPU, in two kernel launches instead of two per tensor and without rebuilding state dicts.

    With ``applied`` (a 0-d float tensor on the device, 1 for a step that was applied, 0 for one that was
    skipped as non-finite), a skipped step leaves the EMA exactly as it was, decided on the device without
    reading the flag back. With ``decay`` 0 the EMA is the net itself: nothing is done per iteration, and
    :meth:`ready` copies the net once before the EMA is read (validation, checkpoints).

    The parameter objects are cached (``.to()``, ``.double()`` and ``load_state_dict`` keep them); buffers are
    looked up by owner and name at each update, because ``.to()`` replaces buffer tensors.

    Args:
        net_ema: The EMA copy (:func:`make_ema`), updated in place.
        net: The trained net it follows (the plain module, not a DDP or compiled wrapper).
        decay: ``ema_decay``; the decay of an update is :func:`ema_decay_at` of it.
    """

    def __init__(self, net_ema: nn.Module, net: nn.Module, decay: float) -> None:
        self.net_ema, self.net, self.decay = net_ema, net, float(decay)
        self._params: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        self._buffers: list[tuple[nn.Module, nn.Module, str]] = []
        net_modules = dict(net.named_modules())
        for key in net_ema.state_dict(keep_vars=True):
            owner_path, _, name = key.rpartition(".")
            ema_owner, net_owner = net_ema.get_submodule(owner_path), net_modules[owner_path]
            if name in ema_owner._parameters:
                self._params[0].append(ema_owner._parameters[name])
                self._params[1].append(net_owner._parameters[name])
            else:
                self._buffers.append((ema_owner, net_owner, name))
        self._stale = False

    def _pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """(EMA floats, net floats in their dtypes, EMA others, net others), in state-dict order per kind."""
        ema = [*self._params[0], *(e._buffers[n] for e, _, n in self._buffers)]
        src = [*self._params[1], *(m._buffers[n] for _, m, n in self._buffers)]
        floats = [i for i, t in enumerate(ema) if t.dtype.is_floating_point]
        others = [i for i, t in enumerate(ema) if not t.dtype.is_floating_point]
        ema_f = [ema[i].detach() for i in floats]
        src_f = [src[i].detach().to(ema[i].dtype) for i in floats]
        return ema_f, src_f, [ema[i] for i in others], [src[i] for i in others]

    @torch.no_grad()
    def update(self, updates: int, applied: torch.Tensor | None = None) -> None:
        """One EMA step after ``updates`` earlier iterations; ``applied``: see the class docstring."""
        d = ema_decay_at(self.decay, updates)
        if d <= 0:
            self._stale = True  # the EMA is the net: copied when read
            return
        ema_f, src_f, ema_o, src_o = self._pairs()
        if applied is None:
            torch._foreach_mul_(ema_f, d)
            torch._foreach_add_(ema_f, src_f, alpha=1.0 - d)
        else:
            # new = d * ema + (1 - d) * net (the same rounding); then ema = ema * (1 - a) + new * a, exact for a in {0, 1}
            new = torch._foreach_mul(ema_f, d)
            torch._foreach_add_(new, src_f, alpha=1.0 - d)
            torch._foreach_mul_(new, applied)
            torch._foreach_mul_(ema_f, 1.0 - applied)
            torch._foreach_add_(ema_f, new)
        for e, s in zip(ema_o, src_o, strict=True):
            e.copy_(s)

    @torch.no_grad()
    def ready(self) -> nn.Module:
        """The EMA net, up to date (with ``decay`` 0: the net copied now, once)."""
        if self._stale:
            ema_f, src_f, ema_o, src_o = self._pairs()
            torch._foreach_copy_(ema_f + ema_o, src_f + src_o)
            self._stale = False
        return self.net_ema


def make_ema(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` in eval mode, to be updated by :class:`EMA`."""
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


# ------------------------------------------------------------------------------------------------ data order
def sample_seed(seed: int, k: int, j: int) -> tuple[int, int, int]:
    """The seed of item ``j`` of the global batch of iteration ``k``: its degradation, crop and flip."""
    return (int(seed), int(k), int(j))


class IterationBatchSampler(torch.utils.data.Sampler):
    """Batches of ``(index, sample_seed)`` for iterations ``start_iter .. total_iters - 1`` (0-based).

    The order is a pure function of (seed, iteration): epoch ``e`` is the permutation drawn by
    ``default_rng((seed, 1, e))`` cut into ``n // batch_size`` batches (drop_last), and item ``j`` of
    iteration ``k`` is degraded with ``sample_seed = (seed, k, j)``. Resuming at iteration k therefore
    reproduces batches k.. of an uninterrupted run without replaying earlier ones, with any worker count.

    With ``world_size`` ranks, ``batch_size`` is the global batch and rank ``r`` gets items
    ``r * b .. (r + 1) * b - 1`` of it (``b = batch_size / world_size``), seeds unchanged: the samples a
    run trains on do not depend on how many ranks share them.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int,
        start_iter: int,
        total_iters: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size > num_items:
            raise FacesrError(
                f"batch_size={batch_size} is larger than the {num_items} training images; "
                f"use --set batch_size={num_items} or fewer"
            )
        self.per_rank = per_rank_batch(batch_size, world_size)
        self.n, self.batch_size, self.seed = num_items, batch_size, seed
        self.start_iter, self.total_iters = start_iter, total_iters
        self.per_epoch = num_items // batch_size
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return max(0, self.total_iters - self.start_iter)

    def batch(self, k: int, _perm: dict[int, np.ndarray] | None = None) -> list[tuple[int, tuple[int, int, int]]]:
        """This rank's part of the global batch of iteration ``k``."""
        epoch, pos = divmod(k, self.per_epoch)
        perm = None if _perm is None else _perm.get(epoch)
        if perm is None:
            perm = np.random.default_rng((self.seed, 1, epoch)).permutation(self.n)
            if _perm is not None:
                _perm.clear()
                _perm[epoch] = perm
        idx = perm[pos * self.batch_size : (pos + 1) * self.batch_size]
        first = self.rank * self.per_rank
        return [(int(idx[j]), sample_seed(self.seed, k, j)) for j in range(first, first + self.per_rank)]

    def __iter__(self) -> Iterator[list[tuple[int, tuple[int, int, int]]]]:
        cache: dict[int, np.ndarray] = {}
        for k in range(self.start_iter, self.total_iters):
            yield self.batch(k, cache)
