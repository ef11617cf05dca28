"""Stopping a run without losing it: SIGINT / SIGTERM, time-based checkpoints, and where the ranks agree on both.

What happens on an interrupt (Ctrl-C, a notebook's stop button, SIGTERM from torchrun or a preempted
machine): :class:`StopSignals` turns the first SIGINT or SIGTERM into a request; the iteration under way
finishes (one whose batch never came, because the loader's workers were stopped too, is dropped), rank 0
writes ``latest.pt`` for the last finished iteration, prints ``stopped at iteration N: latest.pt saved, run
the same command or cell again to continue`` and every rank raises :class:`TrainingStopped`. It is a
``KeyboardInterrupt``, so a notebook's "run all" stops there; the CLI exits 130 (SIGINT) or 143 (SIGTERM)
without a traceback. A second Ctrl-C stops at once: the checkpoint being written, if any, is dropped
(atomic writes) and the previous one is left as it was.

When: in one process the loop checks after every iteration (no device value is read for it). Under
torchrun the ranks must agree on the iteration, and a collective per iteration is what the loop avoids: at
sync points :class:`Cadence` exchanges three integers over gloo (a stop request of any rank, rank 0's "the
time-based checkpoint is due", and rank 0's distance to the next sync point, chosen so that sync points
are about :data:`SYNC_SECONDS` of training apart and at most ``log_every`` iterations). torchrun gives its
workers 30 s after forwarding a signal before it kills them; a stop takes a sync interval and one
checkpoint write.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from facesr.training import distributed

SYNC_SECONDS = 2.0


class TrainingStopped(KeyboardInterrupt):
    """Raised by ``train()`` after a clean stop on ``signum``: ``latest.pt`` holds ``iteration``."""

    def __init__(self, signum: int, iteration: int) -> None:
        super().__init__(f"stopped at iteration {iteration}")
        self.signum, self.iteration = int(signum), int(iteration)


class StopSignals:
    """Context manager that turns SIGINT and SIGTERM into a stop request (``signum``) for its duration.

    A SIGINT after the first signal raises ``KeyboardInterrupt`` at once (the previous handlers are back by
    then); a SIGTERM after it is ignored: the stop is under way. Outside the main thread, where Python
    cannot install handlers, nothing changes.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.signum:
            self.signum = signum
        elif signum == signal.SIGINT:
            self._restore()
            raise KeyboardInterrupt

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def __exit__(self, *exc: object) -> None:
        self._restore()


class Cadence:
    """Where the loop decides on a stop and on a time-based ``latest.pt`` (see the module docstring).

    Args:
        ranks: This process's place in the job.
        checkpoint_minutes: Write ``latest.pt`` when this many minutes passed since the last write (0: never).
        start: The iteration the run (re)starts after.
        log_every: The longest distance between two sync points, in iterations.
    """

    def __init__(self, ranks: distributed.Ranks, checkpoint_minutes: float, start: int, log_every: int) -> None:
        self.ranks, self.seconds, self.log_every = ranks, 60.0 * checkpoint_minutes, max(1, log_every)
        self.next_sync = start + 1
        self.last_write = self.t_sync = time.monotonic()
        self.it_sync = start

    def wrote_latest(self) -> None:
        """``latest.pt`` was just written (whatever the reason): the time-based interval starts again."""
        self.last_write = time.monotonic()

    def decide(self, it: int, signum: int) -> tuple[int, bool]:
        """(the signal to stop for, 0 for none; whether the time-based ``latest.pt`` is due) after iteration ``it``.

        Every rank calls it after every iteration; under torchrun it returns (0, False) between sync points
        and the values all ranks agreed on at them.
        """
        if it < self.next_sync:
            return 0, False
        now = time.monotonic()
        due = self.seconds > 0 and now - self.last_write >= self.seconds
        step = 1
        if self.ranks.enabled:
            per_it = (now - self.t_sync) / max(1, it - self.it_sync)
            step = min(self.log_every, max(1, round(SYNC_SECONDS / per_it))) if per_it > 0 else 1
            main = self.ranks.is_main
            signum, due_any, step = distributed.agree_max([signum, int(due and main), step if main else 0])
            due = bool(due_any)
        self.next_sync, self.t_sync, self.it_sync = it + step, now, it
        return signum, due
