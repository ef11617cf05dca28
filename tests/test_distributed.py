"""torchrun on the CPU: two gloo ranks train what one process trains, log once, resume after a SIGKILL, stop
cleanly on SIGINT / SIGTERM.

Every run is a real ``python -m torch.distributed.run --standalone --nproc_per_node=N -m facesr train``
subprocess (quick mode, a tiny MSRResNet on 64x64 GT crops of the sample data), as a user launches it. Kills
and signals come at a seeded moment known to lie inside the run: after a seeded iteration's log row.
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
import torch

from facesr.training import read_run_logs
from facesr.training.logs import last_logged_iteration
from facesr.weights.checkpoints import load_checkpoint

ITERS = 8
# Global batch 4: two ranks of 2 samples, or one process of 4. Checkpoint (and log) every 2 iterations. A
# constant lr (multistep without milestones, no warm-up) does not depend on --iters, so a run stopped at
# ITERS // 2 and continued to ITERS trains what an uninterrupted run of ITERS does.
TINY = ["--set", "generator_args.mid_channels=16", "--set", "generator_args.num_blocks=2", "--set", "gt_patch=64",
        "--set", "batch_size=4", "--set", "log_every=2", "--set", "checkpoint_every=2", "--set", "val_every=4",
        "--set", "scheduler=multistep", "--set", "milestones=[]", "--set", "warmup_iters=0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "FACESR_QUICK": "0"}
RUN = {"env": ENV, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")


def _train_argv(runs: Path, data: Path, ranks: int, iters: int = ITERS, *extra: str,
                entry: tuple[str, ...] = ("-m", "facesr")) -> list[str]:
    train = [*entry, "train", "srgan", "--quick", "--data", str(data), "--runs", str(runs),
             "--iters", str(iters), *TINY, *extra]
    if ranks == 1:
        return [sys.executable, *train]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", *train]


def _run(argv: list[str], timeout: float = 300) -> str:
    done = subprocess.run(argv, timeout=timeout, **RUN)
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def two_rank_run(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 2-rank run of ITERS iterations (the reference of the tests below)."""
    runs = tmp_path_factory.mktemp("ddp2")
    out = _run(_train_argv(runs, sample_root, 2))
    assert "2 ranks x batch 2" in out
    return runs / "srgan"


@pytest.mark.slow
def test_two_ranks_train_what_one_process_trains(two_rank_run: Path, sample_root: Path, tmp_path: Path) -> None:
    _run(_train_argv(tmp_path, sample_root, 1))
    one, two = load_checkpoint(tmp_path / "srgan" / "latest.pt"), load_checkpoint(two_rank_run / "latest.pt")
    assert one["iter"] == two["iter"] == ITERS
    # Not bit-equal: DDP averages the two ranks' mean gradients, one process takes the mean over all four
    # samples at once, so float sums run in another order (and the conv kernels see batch 2, not 4). Each
    # Adam step moves a weight by at most lr=2e-4; a difference of reduction order stays far below that.
    for key in ("net_g", "net_g_ema"):
        diff = _max_difference(one[key], two[key])
        print(f"{key}: max |1 process - 2 ranks| = {diff:.3g}")
        assert diff < 2e-5, key  # (_max_difference also checks that the keys match: no DDP "module." prefix)
    log_1, log_2 = read_run_logs(tmp_path / "srgan")[0], read_run_logs(two_rank_run)[0]
    # the logged loss is the global batch's: averaged over the ranks, it matches the single process
    assert (log_1["l_pix"] - log_2["l_pix"]).abs().max() < 1e-4


@pytest.mark.slow
def test_two_rank_logs_hold_each_iteration_once(two_rank_run: Path) -> None:
    log, val = read_run_logs(two_rank_run)
    assert list(log["iter"]) == list(range(2, ITERS + 1, 2))
    assert list(val["iter"]) == [4, 8]
    info = (two_rank_run / "run_info.json").read_text()
    assert '"world_size": 2' in info
    assert sorted(p.name for p in two_rank_run.glob("*.pt")) == ["best.pt", "iter_000006.pt", "iter_000008.pt",
                                                                 "latest.pt"]


def _worker_pids(launcher: subprocess.Popen, count: int, deadline: float) -> list[int]:
    """The PIDs of torchrun's worker processes (children of the launcher, read from /proc)."""
    pids: list[int] = []
    while len(pids) < count and time.monotonic() < deadline and launcher.poll() is None:
        pids = []
        for task in Path(f"/proc/{launcher.pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
        time.sleep(0.05)
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds torchrun's workers through /proc")
def test_sigkill_of_one_rank_then_the_same_command_resumes_bit_exact(
    two_rank_run: Path, sample_root: Path, tmp_path: Path, assert_same_run
) -> None:
    argv = _train_argv(tmp_path, sample_root, 2)
    launcher = subprocess.Popen(argv, **RUN)
    deadline = time.monotonic() + 240
    workers = _worker_pids(launcher, 2, deadline)
    assert len(workers) == 2, "torchrun did not start two workers"
    rng = random.Random("sigkill of one rank")
    k, fraction, victim = rng.choice([2, 4]), rng.uniform(0.0, 0.2), rng.choice([0, 1])
    while last_logged_iteration(tmp_path / "srgan" / "log.csv") < k and launcher.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(fraction)  # maybe in the middle of writing a checkpoint
    os.kill(workers[victim], signal.SIGKILL)
    out, _ = launcher.communicate(timeout=120)
    assert launcher.returncode != 0, f"the run ended before a rank could be killed:\n{out[-2000:]}"
    latest = tmp_path / "srgan" / "latest.pt"
    killed_at = load_checkpoint(latest)["iter"]
    assert 2 <= killed_at < ITERS

    resumed = _run(argv)  # the same command again
    assert f"from iteration {killed_at}" in resumed
    b = assert_same_run(two_rank_run, tmp_path / "srgan")
    assert b["iter"] == ITERS
    assert not list((tmp_path / "srgan").glob(".*.tmp"))
    print(f"SIGKILL of rank {victim} after iteration {k}'s log row: resumed from {killed_at}, "
          f"{b['run_info']['iterations_trained_twice']} iterations trained twice")


@pytest.mark.slow
def test_a_two_rank_checkpoint_resumes_in_one_process(two_rank_run: Path, sample_root: Path, tmp_path: Path) -> None:
    _run(_train_argv(tmp_path, sample_root, 2, ITERS // 2))
    out = _run(_train_argv(tmp_path, sample_root, 1, ITERS))
    assert f"from iteration {ITERS // 2}" in out
    one, two = load_checkpoint(tmp_path / "srgan" / "latest.pt"), load_checkpoint(two_rank_run / "latest.pt")
    assert one["iter"] == ITERS
    assert _max_difference(one["net_g"], two["net_g"]) < 2e-5  # the same training, up to reduction order
    log, val = read_run_logs(tmp_path / "srgan")
    assert list(log["iter"]) == list(range(2, ITERS + 1, 2)) and list(val["iter"]) == [4, 8]


# rank 0 reaches the checks last: torchrun stops every worker as soon as one exits, so a rank that
# exited at once would cut rank 0 off before its error line
_RANK_0_LAST = """import os, sys, time
if os.environ["RANK"] == "0":
    time.sleep(3)
from facesr.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("rank_0_last", [False, True], ids=["as-launched", "rank-0-last"])
def test_a_global_batch_that_does_not_divide_is_refused_with_one_line(
    rank_0_last: bool, sample_root: Path, tmp_path: Path
) -> None:
    entry = ("-m", "facesr")
    if rank_0_last:
        (tmp_path / "rank_0_last.py").write_text(_RANK_0_LAST)
        entry = (str(tmp_path / "rank_0_last.py"),)
    argv = _train_argv(tmp_path, sample_root, 2, ITERS, "--set", "batch_size=3", entry=entry)
    done = subprocess.run(argv, timeout=300, **RUN)
    assert done.returncode != 0
    lines = [line for line in done.stdout.splitlines() if line.startswith("error")]
    assert lines == [
        "error: batch_size=3 is the global batch and does not divide by 2 ranks; use a multiple of 2 "
        "(--set batch_size=2 or --set batch_size=4) or another --nproc_per_node"
    ], done.stdout[-3000:]
    assert not (tmp_path / "srgan").exists()  # refused before anything was written


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_torchrun_stops_every_rank_and_the_same_command_finishes_bit_exact(
    signum: int, two_rank_run: Path, sample_root: Path, tmp_path: Path, assert_same_run
) -> None:
    """Ctrl-C (SIGINT) or a preemption's SIGTERM to the launcher, which forwards it to both ranks: they agree on
    the iteration at a sync point, rank 0 alone writes latest.pt, every rank exits 128 + signal."""
    extra = ("--set", "checkpoint_every=100")  # no periodic checkpoint before the end: latest.pt is the stop's
    argv = _train_argv(tmp_path, sample_root, 2, ITERS, *extra)
    launcher = subprocess.Popen(argv, **RUN)
    rng = random.Random(f"torchrun {signum}")
    k, fraction = rng.choice([2, 4]), rng.uniform(0.0, 0.2)
    deadline = time.monotonic() + 240
    while last_logged_iteration(tmp_path / "srgan" / "log.csv") < k and launcher.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(fraction)
    assert launcher.poll() is None, "the run ended before the signal"
    launcher.send_signal(signum)
    out, _ = launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    stopped_at = load_checkpoint(tmp_path / "srgan" / "latest.pt")["iter"]
    assert k <= stopped_at < ITERS, out[-3000:]
    line = f"stopped at iteration {stopped_at}: latest.pt saved, run the same command or cell again to continue"
    assert out.count(line) == 1, out[-3000:]  # rank 0 alone says it
    resumed = _run(argv)  # the same command again
    assert f"from iteration {stopped_at}" in resumed
    b = assert_same_run(two_rank_run, tmp_path / "srgan")
    assert b["iter"] == ITERS
    print(f"{signal.Signals(signum).name} after iteration {k}'s log row: both ranks stopped at {stopped_at}, "
          f"{b['run_info']['iterations_trained_twice']} iterations trained twice")

