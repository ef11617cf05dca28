"""Shared fixtures: the bundled sample data, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):  # the cores shared by the workers (pyproject's -n), before torch loads
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))


@pytest.fixture(autouse=True)
def _no_drive_from_earlier_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """setup_runtime with a Drive sets FACESR_DRIVE and FACESR_LOCAL_CHECKPOINTS for the notebook's later cells:
    every test starts without them and leaves none behind."""
    for name in ("FACESR_DRIVE", "FACESR_LOCAL_CHECKPOINTS"):
        monkeypatch.setenv(name, "")  # records the variable's state before the test, so teardown restores it
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _globals_restored():
    """No test leaves torch's thread count changed: every later test (and the session fixtures they build)
    would otherwise run with it."""
    import torch

    threads = torch.get_num_threads()
    yield
    assert torch.get_num_threads() == threads, f"the test left torch on {torch.get_num_threads()} threads"


@pytest.fixture(scope="session")
def assert_same_run():
    """A check that a resumed (killed, or stopped and run again) run folder ended bit-identical to the
    uninterrupted ``reference``: weights, EMA, Adam state (moments and step counts), and the iterations and
    losses of log.csv. It returns the resumed run's latest.pt."""
    import torch

    from facesr.training import read_run_logs
    from facesr.weights.checkpoints import load_checkpoint

    def check(reference: Path, resumed: Path) -> dict:
        a, b = load_checkpoint(reference / "latest.pt"), load_checkpoint(resumed / "latest.pt")
        assert a["iter"] == b["iter"]
        for key in ("net_g", "net_g_ema"):
            assert a[key].keys() == b[key].keys()
            assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
        for x, y in zip(a["optimizer_g"]["state"].values(), b["optimizer_g"]["state"].values(), strict=True):
            assert all(torch.equal(x[k], y[k]) for k in ("exp_avg", "exp_avg_sq", "step"))
        log_a, log_b = read_run_logs(reference)[0], read_run_logs(resumed)[0]
        assert list(log_a["iter"]) == list(log_b["iter"]) and list(log_a["l_pix"]) == list(log_b["l_pix"])
        return b

    return check


@pytest.fixture()
def one_torch_thread():
    """torch on one thread for the test (small per-sample work), the previous count restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def train_step_benchmark():
    """benchmarks/train_step.py as a module (the benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "train_step_benchmark", Path(__file__).resolve().parents[1] / "benchmarks" / "train_step.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the bundled sample data in the course layout (read-only by convention)."""
    from facesr.data.sample import make_sample_data

    return make_sample_data(tmp_path_factory.mktemp("sample") / "data")


# The quick_run fixture: srgan in quick mode, longer and on 64x64 GT crops so that MSRResNet-16 clearly beats
# bicubic on the sample data (learning check in tests/test_train.py). Per CPU second,
# 64x64 crops learn faster than quick mode's 128: each sample costs about the same to degrade (the full 512x512
# GT is degraded, then cropped) but a step is 4x cheaper, so the run gets twice the iterations.
QUICK_RUN_ITERS = 500
QUICK_RUN_GT_PATCH = 64


@pytest.fixture(scope="session")
def quick_run(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of ``get_config("srgan", quick=True)`` trained on ``sample_root`` (CPU, session-wide).

    Overrides: QUICK_RUN_ITERS iterations (two validations, two checkpoints) and GT patch QUICK_RUN_GT_PATCH,
    so the learning check has something to check. Treat the folder as read-only.
    """
    from facesr.config import get_config
    from facesr.training import train

    n = QUICK_RUN_ITERS
    cfg = get_config("srgan", quick=True, iters=n, gt_patch=QUICK_RUN_GT_PATCH, val_every=n // 2,
                     checkpoint_every=n // 2, log_every=n // 25)
    return train(cfg, data_root=sample_root, runs_dir=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def mini_root(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3 val pairs and 3 test LQ of the sample data (same layout), to keep the tests quick."""
    from facesr.data.sample import copy_data_subset

    counts = {"val/LQ": 3, "val/GT": 3, "test/LQ": 3}
    return copy_data_subset(sample_root, tmp_path_factory.mktemp("mini") / "data", counts)
