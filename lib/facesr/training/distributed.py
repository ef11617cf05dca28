"""Training on several GPUs (or CPU processes) with torchrun and DistributedDataParallel.

Launch: ``torchrun --nproc_per_node=N -m facesr train CONFIG [flags]`` (multi-node: torchrun's own
``--nnodes/--node_rank/--rdzv-*`` flags). Without torchrun (no ``WORLD_SIZE`` in the environment) a run is
one process and nothing here does anything. The backend is NCCL on CUDA, where ``LOCAL_RANK`` picks the GPU,
and gloo on the CPU.

What a config means does not depend on the number of ranks N:

- ``batch_size`` is the *global* batch; each rank trains on ``batch_size / N`` samples (a batch that does
  not divide by N is refused with one line before anything starts).
- The data order is a pure function of (seed, iteration) and each rank takes its slice of the global
  batch; the degradation, crop and flip of each sample are seeded by (seed, iteration, index in the global
  batch), on the CPU (:class:`facesr.data.datasets.TrainDataset`) and on the GPU (:func:`facesr.training.step.prepare_batch`).
- The random draws of the step itself (SwinIR's drop path, any dropout) come from the device's own generator,
  which every iteration seeds from (seed, iteration, rank) on CUDA (:func:`seed_step`): each rank draws its
  own masks, and a resumed run draws what the uninterrupted one did.
- Gradients are averaged by ``DistributedDataParallel``; on CUDA the discriminator's BatchNorm becomes
  ``SyncBatchNorm`` (torch has no CPU SyncBatchNorm: gloo runs normalise with each rank's own batch). The
  relativistic GAN loss averages D's outputs over each rank's batch, as MMEditing's multi-GPU runs do.
  EMA, the lr schedules and the grad scaler see the same averaged gradients, so they stay identical on every rank.
- Rank 0 alone validates, prints, writes ``log.csv`` (losses averaged over the ranks), ``val.csv``,
  TensorBoard, ``run_info.json`` and the checkpoints (atomic; they hold the unwrapped nets, so they load
  anywhere); the other ranks wait for it at a barrier.
- Every rank resumes from the same ``latest.pt``. The data a run draws is keyed by sample, not by rank, so
  a checkpoint written by an N-rank run resumes on M ranks, or in one process, with the same global batch
  (bit-exact only on N ranks: the step's own draws and the sums of the averaged gradients are per rank).
- A rank that dies ends the job (torchrun's default); the last checkpoint is whole, and starting the same
  command again resumes from it.
- Stops and time-based checkpoints (:mod:`facesr.training.stopping`) are decided at sync points that rank 0
  spaces a few seconds apart: the ranks agree there with one small all-reduce on the CPU (:func:`agree_max`,
  over gloo), so every rank stops, or checkpoints, after the same iteration without a collective per iteration.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from facesr.errors import FacesrError

# Rank 0 validates the whole val set while the others wait: allow for a long validation.
BARRIER_TIMEOUT = datetime.timedelta(minutes=60)
# The group of the sync points' all-reduce: gloo, so that it runs on host tensors and never waits for the GPU.
_CONTROL: dict[str, object] = {}


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in the job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True for the one process that validates, prints and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def ranks_from_env(env: dict | None = None) -> Ranks:
    """The ranks torchrun put in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); one process without."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1") or 1)
        rank = int(env.get("RANK", "0") or 0)
        local = int(env.get("LOCAL_RANK", str(rank)) or 0)
    except ValueError as err:
        raise FacesrError(f"bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {err}") from None
    return Ranks(rank=rank, world_size=max(1, world), local_rank=local)


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """The samples each rank trains on per iteration; FacesrError when the global batch does not divide."""
    if batch_size % world_size:
        lower, upper = world_size * (batch_size // world_size), world_size * (batch_size // world_size + 1)
        choices = " or ".join(f"--set batch_size={b}" for b in (lower, upper) if b > 0)
        raise FacesrError(
            f"batch_size={batch_size} is the global batch and does not divide by {world_size} ranks; "
            f"use a multiple of {world_size} ({choices}) or another --nproc_per_node"
        )
    return batch_size // world_size


def start(ranks: Ranks, device: torch.device | None) -> torch.device:
    """Join the process group (when ``ranks.enabled``) and return this rank's device.

    CUDA (the default when there is a GPU): ``cuda:LOCAL_RANK`` with NCCL; otherwise the CPU with gloo.
    """
    cuda = (device.type == "cuda") if device is not None else torch.cuda.is_available()
    if not ranks.enabled:
        return device if device is not None else torch.device("cuda" if cuda else "cpu")
    if cuda:
        if ranks.local_rank >= torch.cuda.device_count():
            raise FacesrError(
                f"LOCAL_RANK={ranks.local_rank} but this node has {torch.cuda.device_count()} GPU(s); "
                "use --nproc_per_node no larger than the number of GPUs"
            )
        torch.cuda.set_device(ranks.local_rank)
        device = torch.device("cuda", ranks.local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=BARRIER_TIMEOUT)
    # every rank creates the gloo group of the sync points here, in the same order (a collective call)
    _CONTROL["group"] = dist.new_group(backend="gloo", timeout=BARRIER_TIMEOUT) if cuda else dist.group.WORLD
    return device


def seed_step(seed: int, iteration: int, ranks: Ranks, device: torch.device) -> None:
    """Seed the CUDA ``device``'s default generator for ``iteration`` from (seed, iteration, rank); nothing
    elsewhere.

    A GPU step draws its drop-path and dropout masks from that generator: seeded alike (``torch.manual_seed``),
    every torchrun rank would draw the same ones. Seeded per iteration, the draws are a pure function of
    (seed, iteration, rank), as the samples are of (seed, iteration, index): a resumed run draws the same
    ones, on the same number of ranks. A host-side seed: no synchronisation.

    Args:
        seed: The run's seed.
        iteration: The iteration about to run (1-based).
        ranks: This process's place in the job.
        device: The training device.
    """
    if device.type != "cuda":
        return
    state = np.random.SeedSequence((int(seed), 2, int(iteration), ranks.rank)).generate_state(1, np.uint64)[0]
    with torch.cuda.device(device):
        torch.cuda.manual_seed(int(state))


def stop(ranks: Ranks) -> None:
    """Leave the process group (after a last barrier, so rank 0's final files are written)."""
    _CONTROL.clear()
    if ranks.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def agree_max(values: list[int]) -> list[int]:
    """Each value's maximum over the ranks, from host integers (one all-reduce over gloo); as given in one process.

    A rank passes 0 where only rank 0's value counts, so the maximum is rank 0's.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_CONTROL.get("group"))
    return [int(v) for v in t.tolist()]


def gather_rows(row: torch.Tensor) -> torch.Tensor | None:
    """Every rank's 1-d ``row`` stacked in rank order (one all-gather); None in one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    rows = [torch.empty_like(row) for _ in range(dist.get_world_size())]
    dist.all_gather(rows, row.contiguous())
    return torch.stack(rows)


def barrier(ranks: Ranks) -> None:
    """Wait until every rank is here (rank 0 validating or saving, the others waiting)."""
    if ranks.enabled and dist.is_initialized():
        dist.barrier()


def mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each scalar averaged over the ranks (one all-reduce for all of them); unchanged in one process."""
    if not values or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys])
    dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
    stacked /= dist.get_world_size()
    return {k: stacked[i] for i, k in enumerate(keys)}


def wrap(net: nn.Module, ranks: Ranks, device: torch.device, sync_batchnorm: bool = False) -> nn.Module:
    """``net`` itself in one process, else a ``DistributedDataParallel`` wrapper around it.

    The wrapper shares the parameters of ``net``: optimizers, EMA and checkpoints use ``net``, the step
    calls the wrapper. ``sync_batchnorm`` converts BatchNorm layers in place to SyncBatchNorm (CUDA only).
    """
    if not ranks.enabled:
        return net
    if sync_batchnorm and device.type == "cuda":
        # in place for a container (the kit's discriminator): its layers are swapped, its parameters kept
        nn.SyncBatchNorm.convert_sync_batchnorm(net)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids, output_device=device.index if ids else None)
