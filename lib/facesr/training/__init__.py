"""The training engine: one run, from a config to a run folder of checkpoints and logs.

Public entry points: :func:`train` (train or resume a run, on one device or under torchrun) and
:func:`read_run_logs` (a run folder's ``log.csv`` and ``val.csv`` as DataFrames).

Modules, each named for what it holds:

- :mod:`~facesr.training.loop`: ``train()``, the iteration loop and nothing else.
- :mod:`~facesr.training.run_state`: what the loop carries, and its log, validation, checkpoint and stop iterations.
- :mod:`~facesr.training.step`: the nets of a run, batch preparation (GPU degradation, crops), one step (skipped
  on the device when not finite), validation.
- :mod:`~facesr.training.guard`: non-finite steps counted on the device, the stop after ``max_bad_steps``.
- :mod:`~facesr.training.stopping`: SIGINT / SIGTERM, time-based checkpoints, and where the ranks agree on them.
- :mod:`~facesr.training.run_folder`: checkpoint dict, atomic save, resume, restore, rotation, RNG states.
- :mod:`~facesr.training.run_info`: ``run_info.json``: machine, speed and restarts, session by session.
- :mod:`~facesr.training.schedule`: lr (cosine, restarts, warm-up, milestones), EMA, data order and sample seeds.
- :mod:`~facesr.training.logs`: ``log.csv``, ``val.csv``, TensorBoard.
- :mod:`~facesr.training.distributed`: torchrun set-up and rank helpers; its docstring states what a config
  means on N ranks (``batch_size`` is the global batch, samples seeded by their index in it, rank 0 writes).
- :mod:`~facesr.training.teacher`: a distillation run's teacher, found, checked and loaded on every rank.
- :mod:`~facesr.training.averaging`: ``python -m facesr average``: the mean of the EMA weights of a run's kept
  checkpoints, as a run folder of its own.
- :mod:`~facesr.training.device`: CUDA checks (kernels for the card, out of memory), the CPU fallback, cuDNN
  autotuning or deterministic algorithms.
- :mod:`~facesr.training.memory`: out of memory: a step's memory estimate, the batch that fits, the one line,
  and letting go of what the failed call held before it is raised.
- :mod:`~facesr.training.speed`: ``plan_run``, the first iterations timed: the ETA and the Colab sessions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["read_run_logs", "train"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `facesr.training.device` (which inference uses too) comes without the loop.
    if name == "train":
        from facesr.training.loop import train

        return train
    if name == "read_run_logs":
        from facesr.training.logs import read_run_logs

        return read_run_logs
    raise AttributeError(f"module 'facesr.training' has no attribute {name!r}")
