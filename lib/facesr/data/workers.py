"""DataLoader workers that never hang in silence: a fork-safe start, one thread each, one clear line when a
worker dies or stops answering.

Every DataLoader of the kit that starts worker processes (the trainer's, predict's and evaluate's on a GPU,
on every torchrun rank) is iterated through :func:`iterate`.

Why the workers are forked with OpenCV's thread pool stopped: OpenCV's pool does not survive a fork. A worker
forked after the main process used the pool (the trainer's bicubic baseline on the val set, any
``cv2.resize``) inherits its condition variables with waiters that do not exist in the child, and its first
OpenCV threading call (``cv2.setNumThreads(1)``, which one-thread workers need) can wait on them for ever:
the run sits at iteration 0 with no CPU use. ``cv2.setNumThreads(1)`` in the main process joins the pool's
threads, so :func:`iterate` calls it right before the workers are forked and restores the old count once
they are running: the fork is safe whatever the main process did before (in 40 tries of that sequence each,
with OpenCV 4.10 and 5.0: 37/40 and 20/40 hangs without the stop, none with it).

The alternatives start clean interpreters instead of forking. ``python benchmarks/data_loading.py --iters 30
--repeats 3`` on the sample data (srgan's loader: 2 workers, batch 8, the full 512x512 course degradation,
2 CPU cores, median of 3 runs):

====================  ==========  ===========
start method          start-up    data s/it
====================  ==========  ===========
fork, pool stopped    0.27 s      0.108 s
forkserver            2.14 s      0.121 s
spawn                 1.90 s      0.109 s
====================  ==========  ===========

The data time per iteration is about the same; fork starts seconds sooner, shares the RAM cache (``cache=True``)
with the workers copy-on-write instead of pickling a copy into each, and needs no ``if __name__ ==
"__main__":`` guard in a student's own training script. So the kit forks (the platform's default start
method: fork on Linux, where the hang happens), with the pool stopped.

Other places that start processes need nothing: torchrun starts its ranks, and the demo its notebook
kernels, as new programs (fork + exec), which inherit no thread pool.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from facesr.errors import FacesrError

# A batch may wait this long for the workers before the loader gives up: generous for a slow Drive mount,
# short of "for ever". 0 waits for ever.
WORKER_TIMEOUT_S = 600.0


def worker_init(_: int) -> None:
    """One OpenCV thread per worker (torch's DataLoader already gives each worker one torch thread)."""
    import cv2

    cv2.setNumThreads(1)


@contextlib.contextmanager
def opencv_pool_stopped() -> Iterator[None]:
    """OpenCV's thread pool joined for the duration (a fork inside is safe), its thread count restored after."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def make_loader(dataset: Any, num_workers: int, timeout: float = WORKER_TIMEOUT_S, **kwargs: Any) -> DataLoader:
    """A DataLoader whose workers run one thread each and time out after ``timeout`` seconds (0: never).

    Args:
        dataset: The data set.
        num_workers: Worker processes (0: load in the main process).
        timeout: Seconds a batch may take before :func:`iterate` reports the workers as stuck.
        **kwargs: Other DataLoader arguments (batch_size or batch_sampler, collate_fn, pin_memory, ...).
    """
    if num_workers:
        kwargs.update(worker_init_fn=worker_init, timeout=float(timeout))
    return DataLoader(dataset, num_workers=num_workers, **kwargs)


def _worker_message(text: str) -> str | None:
    """The original message of a FacesrError raised inside a worker (torch wraps it in its traceback)."""
    found = re.findall(r"^(?:facesr\.errors\.)?FacesrError: (.+)$", text, flags=re.MULTILINE)
    return found[-1] if found else None


# Why a worker died, most often, and what to do about it
_DEAD_WORKER_ADVICE = ("most often for lack of RAM; use fewer workers (--set num_workers=1, notebooks: "
                       "get_config(..., num_workers=1)) or turn the RAM cache off (--set cache=false)")

# How long a broken hand-over waits for torch's SIGCHLD handler to name the worker that died
_DEATH_REPORT_S = 2.0


def loader_error(err: BaseException, what: str, timeout: float = WORKER_TIMEOUT_S) -> BaseException:
    """One clear FacesrError for a worker that died, timed out or raised FacesrError; other errors as they are.

    Args:
        err: What the DataLoader raised.
        what: What was being loaded, for the message (e.g. "the training data").
        timeout: The loader's timeout in seconds.
    """
    text = str(err)
    if isinstance(err, FacesrError):
        original = _worker_message(text)
        return FacesrError(original) if original else err
    if not isinstance(err, RuntimeError):
        return err
    if "timed out after" in text:
        return FacesrError(
            f"no batch of {what} came from the data loader's workers in {timeout:.0f} s: a worker is stuck (a "
            "slow or unmounted Drive, a file that does not read, a deadlock); check that the data folder reads, "
            "or load in the main process with --set num_workers=0 (notebooks: get_config(..., num_workers=0))"
        )
    dead = re.search(r"DataLoader worker \(pid\(?s?\)? ?([\d, ]+)\)\s*(?:is killed by signal: ([^.]+)|exited unexpectedly)",
                     text)
    if dead:
        how = f"killed by signal {dead.group(2).strip()}" if dead.group(2) else "exited unexpectedly"
        return FacesrError(
            f"a data loader worker of {what} died (pid {dead.group(1).strip()}, {how}), {_DEAD_WORKER_ADVICE}"
        )
    return err


def _broken_handover_error(err: OSError | EOFError, what: str) -> BaseException:
    """The error for a worker whose connection broke while the main process fetched a batch from it.

    A worker killed during the hand-over breaks the connection (the batch's shared memory comes through it)
    before torch's SIGCHLD handler hears of the death; the handler then raises in whatever code runs next. So
    wait for it here, where its report becomes the usual line, instead of anywhere later in the run.
    """
    try:
        deadline = time.monotonic() + _DEATH_REPORT_S
        while time.monotonic() < deadline:
            time.sleep(0.02)
    except RuntimeError as reported:
        return loader_error(reported, what)  # a death: no timeout in it
    return FacesrError(f"the connection to a data loader worker of {what} broke while it handed over a batch "
                       f"({type(err).__name__}: {err}); it most likely died, {_DEAD_WORKER_ADVICE}")


def iterate(loader: DataLoader, what: str) -> Iterator[Any]:
    """The batches of ``loader``, its workers forked with OpenCV's pool stopped, failures as one line.

    Args:
        loader: A DataLoader (from :func:`make_loader` when it has workers).
        what: What is being loaded, for error messages (e.g. "the training data", "the LQ images").
    """
    timeout = loader.timeout or WORKER_TIMEOUT_S
    with opencv_pool_stopped() if loader.num_workers else contextlib.nullcontext():
        batches = iter(loader)  # the workers are forked here
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (RuntimeError, FacesrError) as err:
            error = loader_error(err, what, timeout)
        except (OSError, EOFError) as err:
            if not loader.num_workers or "in DataLoader worker process" in str(err):
                raise  # raised by the data set (torch re-raises a worker's error in its own type): as it is
            error = _broken_handover_error(err, what)
        else:
            yield batch
            continue
        # raised here, not inside the except clause, so that the error's traceback does not hold the loader's
        # iterator: it goes now and stops the workers still running, not when the caller drops the error
        del batches
        raise error
