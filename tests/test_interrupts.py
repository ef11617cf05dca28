"""Interrupts during training: SIGINT and SIGTERM stop a run after the iteration under way with latest.pt saved,
from which the same command or call finishes bit-identical to an uninterrupted run; a second Ctrl-C stops at
once and leaves the previous checkpoint as it was.

Every signal arrives at a seeded moment known to lie inside the run: in-process, from a patched step at a
seeded iteration (or from inside a checkpoint write); to a CLI subprocess, once its log.csv shows a seeded
iteration k, plus a seeded fraction of an iteration, in a run long enough not to end before it. The 2-rank
versions are in test_distributed.py.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facesr.config import get_config
from facesr.training import train
from facesr.training.logs import last_logged_iteration
from facesr.training.stopping import StopSignals, TrainingStopped
from facesr.weights.checkpoints import load_checkpoint

ITERS = 16
# Tiny srgan (16-channel, 2-block MSRResNet on 64x64 crops), a constant lr, a log row every 2 iterations and
# no periodic checkpoint before the end: the latest.pt of a stopped run is the stop's own.
TINY = {"generator_args": {"mid_channels": 16, "num_blocks": 2}, "gt_patch": 64, "batch_size": 2, "log_every": 2,
        "checkpoint_every": 100, "val_every": 100, "scheduler": "multistep", "milestones": [], "warmup_iters": 0}
TINY_ARGS = [arg for key, value in TINY.items() if key != "generator_args"
             for arg in ("--set", f"{key}={value}")] + ["--set", "generator_args.mid_channels=16",
                                                        "--set", "generator_args.num_blocks=2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "FACESR_QUICK": "0"}
STOPPED = "stopped at iteration {}: latest.pt saved, run the same command or cell again to continue"


# ------------------------------------------------------------------------------------------------ in-process
@pytest.fixture(scope="module")
def reference(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted in-process run the interrupted ones are compared with."""
    return train(get_config("srgan", quick=True, iters=8, **TINY), data_root=sample_root,
                 runs_dir=tmp_path_factory.mktemp("reference"))


def _signal_in_step(monkeypatch: pytest.MonkeyPatch, at: int, *signums: int) -> None:
    """Send ``signums`` to this process from inside the step of iteration ``at``."""
    import facesr.training.loop as loop

    real, calls = loop.train_step, []

    def step(*args, **kwargs):
        calls.append(1)
        out = real(*args, **kwargs)
        if len(calls) == at:
            for signum in signums:
                os.kill(os.getpid(), signum)
        return out

    monkeypatch.setattr(loop, "train_step", step)


def test_ctrl_c_in_a_notebook_saves_raises_and_the_same_call_continues(
    reference: Path, sample_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, assert_same_run
) -> None:
    at = random.Random("ctrl-c in a notebook").randint(2, 6)  # a seeded iteration inside the 8
    _signal_in_step(monkeypatch, at, signal.SIGINT)
    before = signal.getsignal(signal.SIGINT)
    cfg = get_config("srgan", quick=True, iters=8, **TINY)
    with pytest.raises(TrainingStopped) as info:  # a KeyboardInterrupt: "run all" stops there
        train(cfg, data_root=sample_root, runs_dir=tmp_path)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.iteration == at
    assert signal.getsignal(signal.SIGINT) is before  # the notebook's handler is back
    out = capsys.readouterr().out
    assert out.count(STOPPED.format(at)) == 1, out
    assert load_checkpoint(tmp_path / "srgan" / "latest.pt")["iter"] == at
    monkeypatch.undo()
    train(cfg, data_root=sample_root, runs_dir=tmp_path)  # the same cell again
    assert f"from iteration {at}" in capsys.readouterr().out
    assert_same_run(reference, tmp_path / "srgan")
    info_json = load_checkpoint(tmp_path / "srgan" / "latest.pt")["run_info"]
    assert info_json["restarts"] == 1 and info_json["iterations_trained_twice"] == 0  # a clean stop loses nothing


def test_a_second_ctrl_c_during_the_stop_leaves_the_previous_checkpoint(
    sample_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The first Ctrl-C in iteration 3 starts the stop; the second arrives while latest.pt is being written."""
    import facesr.weights.checkpoints as checkpoints

    _signal_in_step(monkeypatch, 3, signal.SIGINT)
    real_save = checkpoints.save_checkpoint

    def save(state: dict, path: Path) -> Path:
        if state["iter"] == 3:  # the stop's checkpoint: a second Ctrl-C half-way through its write
            return real_save({**state, "half": _Interrupting()}, path)
        return real_save(state, path)

    monkeypatch.setattr(checkpoints, "save_checkpoint", save)
    cfg = get_config("srgan", quick=True, iters=8, **{**TINY, "checkpoint_every": 2})
    with pytest.raises(KeyboardInterrupt) as info:
        train(cfg, data_root=sample_root, runs_dir=tmp_path)
    assert not isinstance(info.value, TrainingStopped)
    run = tmp_path / "srgan"
    assert load_checkpoint(run / "latest.pt")["iter"] == 2  # the previous checkpoint, whole
    assert not list(run.glob(".*.tmp"))
    out = capsys.readouterr().out
    assert f"interrupted during iteration 3, nothing saved since: the last checkpoint ({run / 'latest.pt'}, " \
           "iteration 2) is intact" in out and "stopped at" not in out


class _Interrupting:
    """Pickled half-way through a checkpoint write: a second Ctrl-C arrives there."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGINT)
        return (int, (0,))


def test_stop_signals_first_asks_then_a_second_ctrl_c_raises() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.signum == signal.SIGTERM  # a request, not an exit
        os.kill(os.getpid(), signal.SIGTERM)  # torchrun's own SIGTERM after the first: the stop is under way
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # not reached: the handler raises first
    assert {s: signal.getsignal(s) for s in before} == before


# ---------------------------------------------------------------------------------------------- CLI process
def _cli(runs: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "facesr", "train", "srgan", "--quick", "--data", str(data), "--runs", str(runs),
            "--iters", str(ITERS), *TINY_ARGS]


@pytest.fixture(scope="module")
def cli_reference(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("cli_reference")
    done = subprocess.run(_cli(runs, sample_root), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return runs / "srgan"


def signal_at_a_seeded_moment(proc: subprocess.Popen, log_csv: Path, seed: str, signum: int, lowest: int = 2,
                              highest: int = 6) -> int:
    """Send ``signum`` to ``proc`` once ``log_csv`` shows iteration k (seeded in [lowest, highest]), plus a seeded
    fraction of a second; return k."""
    rng = random.Random(seed)
    k, extra = rng.randint(lowest, highest), rng.uniform(0.0, 0.1)
    deadline = time.monotonic() + 240
    while last_logged_iteration(log_csv) < k and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(extra)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(signum)
    return k


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_stops_on_a_signal_and_the_same_command_finishes_bit_identical(
    signum: int, cli_reference: Path, sample_root: Path, tmp_path: Path, assert_same_run
) -> None:
    argv = _cli(tmp_path, sample_root)
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    k = signal_at_a_seeded_moment(proc, tmp_path / "srgan" / "log.csv", f"cli {signum}", signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, out[-2000:] + err[-2000:]  # 130 / 143
    stopped_at = load_checkpoint(tmp_path / "srgan" / "latest.pt")["iter"]
    assert k <= stopped_at < ITERS
    assert out.count(STOPPED.format(stopped_at)) == 1 and "Traceback" not in out + err, out + err
    again = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=300)  # the same command
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"from iteration {stopped_at}" in again.stdout
    assert_same_run(cli_reference, tmp_path / "srgan")
    print(f"{signal.Signals(signum).name} after iteration {k}'s log row: stopped at {stopped_at}, "
          f"{load_checkpoint(tmp_path / 'srgan' / 'latest.pt')['run_info']['iterations_trained_twice']} "
          "iterations trained twice")
