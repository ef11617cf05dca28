"""Steps that are not finite: counted on the device, read back at log steps, a stop after ``max_bad_steps`` in a row.

:func:`facesr.training.step.train_step` skips a step whose loss terms or gradient norms are not all finite
and leaves a 0/1 flag and the per-term flags on the device. :class:`BadSteps` keeps the run of skipped steps
there too, and the iteration at which it first reached ``max_bad_steps``, so that the loop reads nothing
back between two log steps; :meth:`BadSteps.check` reads them at log steps, validations and checkpoints and
stops the run with one line before anything is written after such a run of bad steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from facesr.errors import FacesrError


class BadSteps:
    """The run of consecutive skipped steps and where it first reached the limit, as device tensors.

    Args:
        names: What each entry of a step's ``nonfinite`` flags stands for (``Nets.check_names()``).
        limit: ``max_bad_steps``: this many skipped steps in a row stop the run.
        device: The training device.
        start_iter: The iteration the run (re)starts after.
        streak: Skipped steps in a row just before ``start_iter`` (from the checkpoint).
    """

    def __init__(self, names: Sequence[str], limit: int, device: torch.device, start_iter: int, streak: int = 0):
        self.names, self.limit = tuple(names), int(limit)
        self.iteration = torch.tensor(start_iter, dtype=torch.int64, device=device)  # one copy up, at the start
        self.streak = torch.tensor(float(streak), device=device)
        self.hit_at = torch.zeros((), dtype=torch.int64, device=device)
        self.hit_terms = torch.zeros(len(self.names), dtype=torch.bool, device=device)

    def add(self, skipped: torch.Tensor, nonfinite: torch.Tensor) -> None:
        """Count one iteration: ``skipped`` (0-d, 1 = not applied) and its per-term ``nonfinite`` flags."""
        self.iteration.add_(1)
        self.streak = (self.streak + 1) * skipped
        newly = (self.streak >= self.limit) & (self.hit_at == 0)
        self.hit_at = torch.where(newly, self.iteration, self.hit_at)
        self.hit_terms = torch.where(newly, nonfinite, self.hit_terms)

    def state_dict(self) -> dict:
        """What a checkpoint keeps (a read back: checkpoints only)."""
        return {"streak": int(self.streak.item())}

    def check(self, cfg: Any, kept: str) -> None:
        """FacesrError (one line) when ``max_bad_steps`` skipped steps in a row were reached (a read back).

        Args:
            cfg: The run's TrainConfig (its lr, for the advice).
            kept: What is left on disk, e.g. "the last checkpoint (..., iteration 2) is intact".
        """
        hit, *flags = torch.cat([self.hit_at.reshape(1), self.hit_terms.long()]).tolist()
        if not hit:
            return
        terms = ", ".join(name for name, bad in zip(self.names, flags, strict=True) if bad) or "a loss term"
        err = FacesrError(
            f"{self.limit} training steps in a row were not finite (max_bad_steps), the last at iteration {hit}: "
            f"{terms} not finite; none of them was applied and nothing was saved after them, {kept}; try a lower "
            f"lr (--set lr={cfg.lr / 10:g}), gradient clipping (--set grad_clip=1.0) or bf16/fp32 instead of fp16 "
            f"(--set allow_fp16=false or --set amp=false); notebooks: get_config(..., lr={cfg.lr / 10:g})"
        )
        err.same_on_every_rank = True  # the counts are the same on every rank: the CLI prints it once
        raise err
