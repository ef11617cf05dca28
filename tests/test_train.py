"""The trainer: run folder, checkpoints, resume (bit-exact after SIGKILL), schedules, EMA, non-finite steps, the
loop's device reads, GPU checks, CLI errors. (Signals: test_interrupts.py.)

The learning check uses the session fixture ``quick_run`` (srgan in quick mode on the sample data).
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from facesr.cli import main
from facesr.config import get_config
from facesr.errors import FacesrError
from facesr.training import read_run_logs, train
from facesr.training.device import check_cuda_arch, has_kernel_for
from facesr.training.logs import last_logged_iteration
from facesr.training.run_folder import get_rng_state, set_rng_state
from facesr.training.schedule import (
    EMA,
    IterationBatchSampler,
    ema_decay_at,
    lr_at,
)
from facesr.weights.checkpoints import load_checkpoint, save_checkpoint

# Learning check. Measured with the quick_run fixture (500 iterations, 2 CPU threads, about 2 minutes;
# `pytest tests/test_train.py -k beats_bicubic -s` prints it): best val PSNR 24.572 dB vs bicubic 24.229 dB, a
# margin of 0.34 dB (the untrained net, bilinear plus a small residual, scores 23.88). Another CPU's float
# rounding changes the trajectory a little; 0.25 dB leaves room.
LEARN_MARGIN_DB = 0.25

# A tiny but real srgan run for the resume tests: 16-channel, 2-block MSRResNet on 64x64 GT crops.
TINY = ["--set", "generator_args.mid_channels=16", "--set", "generator_args.num_blocks=2", "--set", "gt_patch=64",
        "--set", "batch_size=2", "--set", "log_every=2", "--set", "checkpoint_every=2", "--set", "val_every=1000"]


def _tiny_cfg(**kw: object):
    base = {"generator_args": {"mid_channels": 16, "num_blocks": 2}, "gt_patch": 64, "batch_size": 2,
            "log_every": 2, "checkpoint_every": 2, "val_every": 1000, "iters": 4}
    return get_config("srgan", quick=True, **{**base, **kw})


# ---------------------------------------------------------------------------------------------- quick run
def test_quick_run_folder(quick_run: Path) -> None:
    names = {p.name for p in quick_run.iterdir()}
    assert {"config.json", "log.csv", "val.csv", "latest.pt", "best.pt"} <= names
    iter_files = sorted(n for n in names if n.startswith("iter_"))
    cfg = get_config("srgan", quick=True)
    assert iter_files and len(iter_files) <= cfg.keep_last
    assert all(len(n) == len("iter_000000.pt") for n in iter_files)
    ckpt = load_checkpoint(quick_run / "latest.pt")
    for key in ("net_g", "net_g_ema", "optimizer_g", "scheduler_g", "scaler", "iter", "best", "rng", "config",
                "kit_version", "log_window", "bad_steps"):
        assert key in ckpt, key
    assert "net_d" not in ckpt
    assert iter_files[-1] == f"iter_{ckpt['iter']:06d}.pt"
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch", "cuda", "data"}
    log, val = read_run_logs(quick_run)
    assert list(log.columns) == ["iter", "lr", "l_pix", "skipped", "data_time", "step_time", "samples_per_s"]
    assert (log["skipped"] == 0).all() and ckpt["run_info"]["skipped_steps"] == 0
    assert log["iter"].iloc[-1] == ckpt["iter"] and np.isfinite(log["l_pix"]).all()
    assert {"iter", "psnr", "ssim", "best_psnr", "best_iter", "bicubic_psnr"} <= set(val.columns)
    assert val["best_psnr"].iloc[-1] == pytest.approx(val["psnr"].max(), abs=1e-4)
    assert ckpt["best"]["value"] == pytest.approx(val["psnr"].max(), abs=1e-4)


@pytest.mark.slow
def test_quick_run_beats_bicubic(quick_run: Path, sample_root: Path) -> None:
    """Learning check; PSNR recomputed here from best.pt, not only read from val.csv."""
    from facesr.data.datasets import ValDataset
    from facesr.metrics import bicubic_upscale, psnr, tensor_to_uint8
    from facesr.models import MSRResNet
    from facesr.weights.checkpoints import load_weights

    net = load_weights(MSRResNet(), quick_run / "best.pt").eval()
    sr_psnr, bic_psnr = [], []
    with torch.no_grad():
        for item in ValDataset(sample_root):
            gt = tensor_to_uint8(item["gt"])
            sr_psnr.append(psnr(tensor_to_uint8(net(item["lq"][None])[0]), gt))
            bic_psnr.append(psnr(bicubic_upscale(tensor_to_uint8(item["lq"])), gt))
    _, val = read_run_logs(quick_run)
    assert np.mean(sr_psnr) == pytest.approx(val["psnr"].max(), abs=1e-3)
    assert np.mean(bic_psnr) == pytest.approx(val["bicubic_psnr"].iloc[0], abs=1e-3)
    print(f"quick run: {np.mean(sr_psnr):.3f} dB vs bicubic {np.mean(bic_psnr):.3f} dB")
    assert np.mean(sr_psnr) - np.mean(bic_psnr) >= LEARN_MARGIN_DB


def test_resume_of_a_finished_run_and_config_change(quick_run: Path, capsys: pytest.CaptureFixture) -> None:
    import dataclasses

    from facesr.config.train_config import TrainConfig

    saved = TrainConfig.from_dict(load_checkpoint(quick_run / "latest.pt")["config"])
    train(saved, runs_dir=quick_run.parent, name=quick_run.name)
    assert f"resumed {quick_run} from iteration {saved.iters}" in capsys.readouterr().out
    changed = dataclasses.replace(saved, lr=1e-3)
    with pytest.raises(FacesrError, match=r"lr: 0\.0002 -> 0\.001.*allow-config-change"):
        train(changed, runs_dir=quick_run.parent, name=quick_run.name)
    train(changed, runs_dir=quick_run.parent, name=quick_run.name, allow_config_change=True)
    assert "continuing with the new values" in capsys.readouterr().out
    assert load_checkpoint(quick_run / "latest.pt")["config"]["lr"] == 2e-4  # nothing was trained or saved


# ------------------------------------------------------------------------------------- resume after SIGKILL
def _cli(runs: Path, data: Path, iters: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "facesr", "train", "srgan", "--quick", "--data", str(data), "--runs", str(runs),
            "--iters", str(iters), *TINY, *extra]


@pytest.mark.slow
def test_sigkill_between_periodic_checkpoints_resumes_from_the_time_based_one(sample_root: Path, tmp_path: Path,
                                                                            assert_same_run) -> None:
    """checkpoint_minutes tiny (latest.pt after about every iteration), checkpoint_every past the end: the run is
    killed at a seeded moment after a seeded iteration's log row, and resumes from a time-based latest.pt."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "FACESR_QUICK": "0"}
    iters, extra = 16, ("--set", "checkpoint_every=1000", "--set", "checkpoint_minutes=0.0001")
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    kw = {"env": env, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    uninterrupted = subprocess.Popen(_cli(clean, sample_root, iters, *extra), **kw)
    victim = subprocess.Popen(_cli(killed, sample_root, iters, *extra), **kw)
    rng = random.Random("sigkill between periodic checkpoints")
    k, fraction = rng.choice([4, 6, 8]), rng.uniform(0.0, 0.1)
    deadline = time.monotonic() + 240
    while last_logged_iteration(killed / "srgan" / "log.csv") < k and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(fraction)  # maybe in the middle of writing latest.pt
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    latest = killed / "srgan" / "latest.pt"
    killed_at, logged = load_checkpoint(latest)["iter"], last_logged_iteration(killed / "srgan" / "log.csv")
    assert k - 1 <= killed_at < iters  # a time-based checkpoint: no periodic one comes before the end

    resumed = subprocess.run(_cli(killed, sample_root, iters, *extra), timeout=300, **kw)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"from iteration {killed_at}" in resumed.stdout
    out, _ = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, out[-2000:]

    b = assert_same_run(clean / "srgan", killed / "srgan")  # the log's losses too: the window was checkpointed
    assert b["iter"] == iters
    # the logs of the resumed run hold each iteration once
    assert list(read_run_logs(killed / "srgan")[0]["iter"]) == list(range(2, iters + 1, 2))
    assert not list((killed / "srgan").glob(".*.tmp"))
    assert b["run_info"]["iterations_trained_twice"] == max(0, logged - killed_at)
    print(f"killed after iteration {k}'s log row: resumed from {killed_at}, the last log row was {logged}, "
          f"{max(0, logged - killed_at)} iterations (at log granularity) trained twice")


def test_batch_order_is_a_function_of_seed_and_iteration() -> None:
    full = list(IterationBatchSampler(24, 4, seed=3, start_iter=0, total_iters=20))
    tail = list(IterationBatchSampler(24, 4, seed=3, start_iter=13, total_iters=20))
    assert tail == full[13:]
    epoch = [i for batch in full[:6] for i, _ in batch]
    assert sorted(epoch) == list(range(24))  # each image once per epoch (24 // 4 batches)
    assert full[0] != list(IterationBatchSampler(24, 4, seed=4, start_iter=0, total_iters=1))[0]
    with pytest.raises(FacesrError, match="batch_size=30"):
        IterationBatchSampler(24, 30, seed=0, start_iter=0, total_iters=1)


# -------------------------------------------------------------------------------------- schedules and EMA
def test_cosine_restart_schedule_matches_mmediting() -> None:
    cfg = get_config("srgan", quick=False)
    base, low = 2e-4, 1e-7
    assert lr_at(cfg, base, 0) == pytest.approx(base)
    assert lr_at(cfg, base, 75_000) == pytest.approx(low + 0.5 * (base - low))
    assert lr_at(cfg, base, 149_999) == pytest.approx(low, rel=1e-3)
    assert lr_at(cfg, base, 150_000) == pytest.approx(base)  # restart, weight 1
    assert lr_at(cfg, base, 225_000) == pytest.approx(low + 0.5 * (base - low))
    assert lr_at(cfg, base, 300_000) == low  # an extended run stays at eta_min


def test_multistep_schedule_halves_at_the_milestones() -> None:
    cfg = get_config("esrgan_gan", quick=False)
    assert lr_at(cfg, 1e-4, 49_999) == 1e-4
    assert lr_at(cfg, 1e-4, 50_000) == 5e-5
    assert lr_at(cfg, 1e-4, 150_000) == 2.5e-5
    assert lr_at(cfg, 1e-4, 399_999) == 1e-4 / 16


def test_ema_update_and_warmup() -> None:
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10**6) == 0.999
    assert ema_decay_at(0.0, 50) == 0.0
    net, ema = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    w_net, w_ema = net.weight.detach().clone(), ema.weight.detach().clone()
    EMA(ema, net, 0.999).update(10**6)
    assert torch.allclose(ema.weight, 0.999 * w_ema + 0.001 * w_net)
    without = EMA(ema, net, 0.0)
    without.update(5)
    assert torch.equal(without.ready().weight, net.weight)


def test_ema_follows_in_place_loads_and_conversions() -> None:
    """The cached (ema, net) tensor pairs stay right after load_state_dict (resume) and .to() (buffers too)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    updater = EMA(ema, net, 0.9)
    updater.update(10**6)
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    other(torch.randn(2, 3, 8, 8))  # running stats and num_batches_tracked change
    net.load_state_dict(other.state_dict())  # what a resume does: in-place copies
    ema.load_state_dict(other.state_dict())
    net.double()
    ema.double()  # parameters keep their objects (new data), buffers are new tensors
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        net[0].weight.add_(1.0)
    updater.update(10**6)
    src = net.state_dict()
    for key, value in ema.state_dict().items():
        if value.dtype.is_floating_point:
            assert torch.equal(value, before[key].mul(0.9).add(src[key], alpha=1 - 0.9)), key
        else:
            assert torch.equal(value, src[key]), key


def _per_tensor_ema(net_ema: torch.nn.Module, net: torch.nn.Module, decay: float, updates: int) -> None:
    """The kit's EMA before the multi-tensor one: a loop over rebuilt state dicts (the reference formula)."""
    d = ema_decay_at(decay, updates)
    src = dict(net.state_dict())
    with torch.no_grad():
        for key, value in net_ema.state_dict().items():
            if value.dtype.is_floating_point and d > 0:
                value.mul_(d).add_(src[key].to(value.dtype), alpha=1.0 - d)
            else:
                value.copy_(src[key])


def test_multi_tensor_ema_is_bit_identical_to_the_per_tensor_formula() -> None:
    """On RCAN (frozen parameters) and SwinIR (float and integer buffers); a skipped step changes nothing."""
    from facesr.models import build_generator

    nets = {"rcan": {"n_resgroups": 1, "n_resblocks": 2, "n_feats": 16, "reduction": 8},
            "swinir": {"embed_dim": 12, "depths": [2], "num_heads": [2], "window_size": 4, "img_size": 16}}
    for name, args in nets.items():
        torch.manual_seed(0)
        net = build_generator(name, **args)
        reference, ema = (build_generator(name, **args) for _ in range(2))
        ema.load_state_dict(reference.state_dict())
        fast = EMA(ema, net, 0.999)
        for k in range(12):
            with torch.no_grad():  # a training step's worth of change
                for p in net.parameters():
                    p.add_(torch.randn_like(p), alpha=1e-2)
            _per_tensor_ema(reference, net, 0.999, k)
            fast.update(k, applied=torch.ones(()) if k % 2 else None)
            for key, value in reference.state_dict().items():
                assert torch.equal(ema.state_dict()[key], value), (name, k, key)
        before = {key: v.clone() for key, v in ema.state_dict().items()}
        fast.update(12, applied=torch.zeros(()))  # a skipped step
        assert all(torch.equal(before[key], v) for key, v in ema.state_dict().items()), name


def test_ema_decay_0_does_nothing_until_the_ema_is_read() -> None:
    net, ema = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    old = ema.weight.detach().clone()
    updater = EMA(ema, net, 0.0)
    for k in range(5):
        updater.update(k)
    assert torch.equal(ema.weight, old)  # no copy per iteration
    assert updater.ready() is ema and torch.equal(ema.weight, net.weight) and torch.equal(ema.bias, net.bias)


def test_an_older_log_csv_keeps_its_rows_under_the_new_header(tmp_path: Path) -> None:
    from facesr.training.logs import RunLogs, log_columns

    old = "iter,lr,l_pix,data_time,step_time,samples_per_s\n2,0.0002,0.5,0.1,0.2,8\n4,0.0002,0.4,0.1,0.2,8\n6,0.0002,0.3,0.1,0.2,8\n"
    (tmp_path / "log.csv").write_text(old)
    RunLogs(tmp_path, ["l_pix"], 4, tensorboard=False).close()  # a resume at iteration 4 by this kit
    log = read_run_logs(tmp_path)[0]
    assert list(log.columns) == log_columns(["l_pix"])
    assert list(log["iter"]) == [2, 4] and list(log["l_pix"]) == [0.5, 0.4] and log["skipped"].isna().all()


def test_an_older_kits_adam_state_resumes_into_fused_adam() -> None:
    """Optimizer.load_state_dict takes the saved groups' options: an older kit's for-loop Adam state must not turn
    the fused step (and its on-device skip) off."""
    from facesr.training.run_folder import as_fused
    from facesr.training.step import build_nets, train_step

    nets = build_nets(_tiny_cfg(), torch.device("cpu"))
    params = nets.optimizer_g.param_groups[0]["params"]
    older = torch.optim.Adam(params, lr=2e-4)  # what checkpoints of the kit before fused Adam hold
    for p in params:
        p.grad = torch.ones_like(p)
    older.step()
    nets.optimizer_g.load_state_dict(as_fused(older.state_dict()))
    assert nets.optimizer_g.param_groups[0]["fused"]
    train_step(nets, torch.rand(2, 3, 16, 16), torch.rand(2, 3, 64, 64), torch.amp.GradScaler("cuda", enabled=False))
    assert float(nets.skipped) == 0.0 and all(float(s["step"]) == 2 for s in nets.optimizer_g.state.values())


def test_rng_state_survives_a_checkpoint(tmp_path: Path) -> None:
    set_rng_state(get_rng_state(0, 0))
    state = get_rng_state(seed=5, iteration=7)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    save_checkpoint({"rng": state}, tmp_path / "rng.pt")
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert torch.load(tmp_path / "rng.pt", weights_only=True)["rng"]["data"] == {"seed": 5, "iter": 7}


# ------------------------------------------------------------------------------------------- GPU problems
def test_cuda_capability_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla V100-SXM2-16GB")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 0))
    with pytest.raises(FacesrError, match=r"sm_70.*download\.pytorch\.org/whl/cu126"):
        check_cuda_arch()
    for cap in ((7, 5), (8, 9), (12, 0)):  # listed, or binary compatible within the major version
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0, c=cap: c)
        check_cuda_arch()
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_80", "compute_70"])  # PTX JIT covers 7.0
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 0))
    check_cuda_arch()


def test_has_kernel_for() -> None:
    assert has_kernel_for((7, 0), [])  # unknown build: torch decides
    assert has_kernel_for((8, 6), ["sm_75", "sm_80"]) and not has_kernel_for((7, 5), ["sm_80", "sm_90"])
    assert has_kernel_for((12, 0), ["sm_100", "sm_120"]) and not has_kernel_for((10, 3), ["sm_90", "sm_120"])
    assert has_kernel_for((7, 0), ["sm_80", "compute_60"]) and not has_kernel_for((7, 0), ["compute_75"])
    assert not has_kernel_for((9, 0), ["sm_90a", "sm_100a"])  # arch-specific entries are skipped, not parsed


def test_old_gpu_fails_with_one_line_through_the_cli(monkeypatch: pytest.MonkeyPatch, capsys, sample_root) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla V100-SXM2-16GB")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90", "sm_120"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 0))
    assert main(["train", "srgan", "--quick", "--data", str(sample_root), "--runs", "/nonexistent/runs"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "V100" in err and "cu126" in err and "\n" not in err


def test_out_of_memory_keeps_the_last_checkpoint(monkeypatch, sample_root: Path, tmp_path: Path) -> None:
    import facesr.training.loop as train_module

    real_step, calls = train_module.train_step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", step)
    run = tmp_path / "srgan"
    run.mkdir()
    (run / ".latest.pt.k2j4.tmp").write_bytes(b"torn")  # left by a process killed mid-write
    (run / "run_info.json.tmp").write_text("{")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(FacesrError) as info:
        train(_tiny_cfg(), data_root=sample_root, runs_dir=tmp_path)
    msg = str(info.value)
    assert "out of memory at iteration 3" in msg and "--set batch_size=1" in msg and "--set gt_patch=32" in msg
    assert "iteration 2) is intact" in msg
    assert load_checkpoint(run / "latest.pt")["iter"] == 2
    assert not (run / ".latest.pt.k2j4.tmp").exists() and (run / "notes.txt").read_text() == "mine"
    assert not (run / "run_info.json.tmp").exists()
    assert sorted(p.name for p in run.glob("*.pt")) == ["iter_000002.pt", "latest.pt"]


# ------------------------------------------------------------------------------------------------ data root
def test_train_takes_its_data_root_as_it_is_and_the_cli_builds_quick_mode_s(
    sample_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train() builds nothing (a missing data root is one line, nothing written); building quick mode's sample
    data is the caller's step: the CLI's train does it when --data names none."""
    import facesr.data.sample as sample

    monkeypatch.setattr(sample, "default_sample_root", lambda edition=None: tmp_path / "sample")
    cfg = _tiny_cfg(iters=1)
    assert cfg.data_root == str(tmp_path / "sample")
    with pytest.raises(FacesrError, match=r"data root .*sample does not exist; run .python -m facesr sample-data"):
        train(cfg, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "sample").exists() and not (tmp_path / "runs").exists()
    counts = {"train/GT": 2, "val/LQ": 1, "val/GT": 1, "test/LQ": 1}
    built, tiny = [], sample.copy_data_subset(sample_root, tmp_path / "tiny", counts)
    monkeypatch.setattr(sample, "ensure_sample_data", lambda root, edition: built.append((root, edition)) or tiny)
    assert main(["train", "srgan", "--quick", "--runs", str(tmp_path / "runs"), *TINY, "--iters", "1"]) == 0
    assert built == [(tmp_path / "sample", cfg.edition)] and (tmp_path / "runs" / "srgan" / "latest.pt").is_file()
    assert sample.ensure_quick_data(sample_root, cfg.edition) == sample_root and len(built) == 1  # others untouched


# ---------------------------------------------------------------------------------------------- CLI errors
def test_cli_errors_are_one_line_exit_2(capsys, sample_root: Path, tmp_path: Path) -> None:
    def run(*argv: str) -> str:
        assert main(["train", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
        return err

    assert "srgan, esrgan, esrgan_gan, msrresnet20" in run("srgann", "--quick")
    assert "batch_size" in run("srgan", "--quick", "--set", "batch_sise=2")
    assert "nowhere" in run("srgan", "--quick", "--data", str(tmp_path / "nowhere"), "--runs", str(tmp_path))

    bad = tmp_path / "runs" / "srgan"
    bad.mkdir(parents=True)
    (bad / "latest.pt").write_bytes(b"not a checkpoint")
    assert "latest.pt" in run("srgan", "--quick", "--data", str(sample_root), "--runs", str(tmp_path / "runs"))
    assert (bad / "latest.pt").read_bytes() == b"not a checkpoint"  # the user's file is left alone

    from facesr.models import RRDBNet

    other = tmp_path / "rrdb.pt"
    save_checkpoint({"net_g": RRDBNet(num_blocks=1).state_dict()}, other)
    msg = run("srgan", "--quick", "--data", str(sample_root), "--runs", str(tmp_path / "r2"), "--init", str(other))
    assert "RRDBNet" in msg and "MSRResNet" in msg

    msg = run("esrgan_gan", "--quick", "--data", str(sample_root), "--runs", str(tmp_path / "r3"))
    assert "--init RUN_OR_CKPT" in msg and "esrgan" in msg
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


# ------------------------------------------------------------------------------------------------ GAN run
@pytest.mark.slow
def test_gan_run_from_an_init_checkpoint(sample_root: Path, tmp_path: Path) -> None:
    from facesr.models import RRDBNet

    small = {"mid_channels": 16, "num_blocks": 1, "growth_channels": 8}  # validation at 512x512 stays cheap
    init = RRDBNet(**small)
    save_checkpoint({"net_g": init.state_dict(), "net_g_ema": init.state_dict()}, tmp_path / "esrgan.pt")
    cfg = get_config("esrgan_gan", quick=True, iters=2, val_every=2, checkpoint_every=2, log_every=1,
                     generator_args=small)
    run = train(cfg, data_root=sample_root, runs_dir=tmp_path / "runs", init=tmp_path / "esrgan.pt")
    ckpt = load_checkpoint(run / "latest.pt")
    for key in ("net_d", "optimizer_d", "scheduler_d"):
        assert key in ckpt
    assert not all(torch.equal(v, ckpt["net_g"][k]) for k, v in init.state_dict().items())
    log, val = read_run_logs(run)
    terms = ["l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake"]
    assert list(log["iter"]) == [1, 2] and np.isfinite(log[terms].to_numpy()).all()
    assert len(val) == 1 and math.isfinite(val["psnr"].iloc[0])


def test_gpu_degradation_path_runs_on_any_device() -> None:
    """The CUDA path of prepare_batch (the workers' draws, then degradation, crop and flip on the device), here
    on the CPU: a pure function of the sample seeds, each sample of its own seed only."""
    from torch.utils.data import default_collate

    from facesr.data.pairs import worker_item
    from facesr.training.step import build_nets, pair_recipe, prepare_batch

    cfg = _tiny_cfg()
    nets = build_nets(cfg, torch.device("cpu"))
    nets.gpu_degrade = True  # what build_nets sets on CUDA
    recipe = pair_recipe(cfg, on_device=True)
    gt_full = np.random.default_rng(0).random((2, 512, 512, 3), dtype=np.float32)

    def pairs(seeds: list[tuple[int, int, int]], first: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        batch = default_collate([worker_item(gt_full[first + i], s, recipe) for i, s in enumerate(seeds)])
        return prepare_batch(batch, cfg, nets, torch.device("cpu"))

    seeds = [(0, 5, 0), (0, 5, 1)]  # (seed, iteration, index in the global batch)
    lq, gt = pairs(seeds)
    assert lq.shape == (2, 3, 16, 16) and gt.shape == (2, 3, 64, 64)
    again_lq, again_gt = pairs(seeds)
    assert torch.equal(lq, again_lq) and torch.equal(gt, again_gt)  # a pure function of the sample seeds
    assert not torch.equal(lq, pairs([(0, 6, 0), (0, 6, 1)])[0])
    lq1, gt1 = pairs(seeds[1:], first=1)  # the second sample alone gives the same pair
    assert torch.equal(lq1[0], lq[1]) and torch.equal(gt1[0], gt[1])
    # every GT crop is a 64x64 window of its full image at a multiple of 4, flipped or not (random values:
    # the window's top-left pixel is unique)
    for i in range(2):
        full = torch.from_numpy(gt_full[i]).permute(2, 0, 1)
        flipped = not (full[0] == gt[i, 0, 0, 0]).any()
        window = gt[i].flip(-1) if flipped else gt[i]
        top, left = (int(v) for v in (full[0] == window[0, 0, 0]).nonzero()[0])
        assert top % 4 == 0 and left % 4 == 0 and torch.equal(window, full[:, top : top + 64, left : left + 64])


# ------------------------------------------------------------------------------------------ non-finite steps
def _nan_batches(monkeypatch: pytest.MonkeyPatch, bad: set[int]) -> None:
    """Put a NaN pixel into the LQ batch of each iteration in ``bad`` (1-based)."""
    import facesr.training.loop as loop

    real, calls = loop.prepare_batch, []

    def prepare(*args, **kwargs):
        calls.append(1)
        lq, gt = real(*args, **kwargs)
        if len(calls) in bad:
            lq = lq.clone()
            lq[0, 0, 0, 0] = float("nan")
        return lq, gt

    monkeypatch.setattr(loop, "prepare_batch", prepare)


def test_a_nan_batch_is_skipped_counted_and_the_run_goes_on(sample_root: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _nan_batches(monkeypatch, {3})
    cfg = _tiny_cfg(iters=5, log_every=1, checkpoint_every=1, keep_last=10, ema_decay=0.999)
    run = train(cfg, data_root=sample_root, runs_dir=tmp_path)
    before, after, later = (load_checkpoint(run / f"iter_00000{i}.pt") for i in (2, 3, 4))
    for key in ("net_g", "net_g_ema"):
        assert all(torch.equal(before[key][k], after[key][k]) for k in before[key]), key
        assert not all(torch.equal(after[key][k], later[key][k]) for k in after[key]), key  # it trains on
    for x, y in zip(before["optimizer_g"]["state"].values(), after["optimizer_g"]["state"].values(), strict=True):
        assert all(torch.equal(x[k], y[k]) for k in ("exp_avg", "exp_avg_sq", "step"))
    log = read_run_logs(run)[0].set_index("iter")
    assert list(log["skipped"]) == [0, 0, 1, 0, 0]
    assert math.isnan(log.loc[3, "l_pix"]) and np.isfinite(log.drop(index=3)["l_pix"]).all()
    assert log.loc[4, "lr"] == pytest.approx(lr_at(cfg, cfg.lr, 3))  # the iteration counted: lr and data go on
    assert load_checkpoint(run / "latest.pt")["run_info"]["skipped_steps"] == 1


def test_a_nan_gan_step_leaves_both_nets_and_the_discriminator_statistics_alone() -> None:
    from facesr.training.step import build_nets, train_step

    small = {"mid_channels": 8, "num_blocks": 1, "growth_channels": 4}
    cfg = get_config("esrgan_gan", quick=True, generator_args=small, perceptual_weight=0.0, batch_size=2)
    torch.manual_seed(0)
    nets = build_nets(cfg, torch.device("cpu"))
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    lq, gt = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 128, 128)
    train_step(nets, lq, gt, scaler)  # Adam's moments exist
    state = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in
             (("g", nets.net_g), ("d", nets.net_d))}
    moments = [{k: v.clone() for k, v in s.items()} for opt in (nets.optimizer_g, nets.optimizer_d)
               for s in opt.state.values()]
    bad_gt = gt.clone()
    bad_gt[1, 2, 5, 5] = float("inf")
    losses = train_step(nets, lq, bad_gt, scaler)
    assert float(nets.skipped) == 1.0 and not torch.isfinite(losses["l_pix"])
    flagged = [n for n, f in zip(nets.check_names(), nets.nonfinite.tolist(), strict=True) if f]
    assert "l_pix" in flagged and "gradient norm of net_g" in flagged
    for name, net in (("g", nets.net_g), ("d", nets.net_d)):  # BatchNorm running stats of D included
        assert all(torch.equal(state[name][k], v) for k, v in net.state_dict().items()), name
    after = [s for opt in (nets.optimizer_g, nets.optimizer_d) for s in opt.state.values()]
    assert all(torch.equal(m[k], s[k]) for m, s in zip(moments, after, strict=True) for k in m)
    train_step(nets, lq, gt, scaler)  # a finite step again: applied, D's statistics move
    running = next(k for k in state["d"] if k.endswith("running_mean"))
    assert float(nets.skipped) == 0.0 and not torch.equal(state["d"][running], nets.net_d.state_dict()[running])


def test_max_bad_steps_stops_with_one_line_and_the_last_checkpoint_untouched(
    sample_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _nan_batches(monkeypatch, set(range(3, 20)))
    argv = ["train", "srgan", "--quick", "--data", str(sample_root), "--runs", str(tmp_path), "--iters", "8", *TINY,
            "--set", "log_every=3", "--set", "max_bad_steps=2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # the progress bar is on stderr too, above it
    assert err.startswith("error: 2 training steps in a row were not finite (max_bad_steps), the last at iteration 4: "
                          "l_pix, gradient norm of net_g not finite"), err
    assert "--set grad_clip=1.0" in err and "--set lr=2e-05" in err and "iteration 2) is intact" in err
    run = tmp_path / "srgan"
    assert load_checkpoint(run / "latest.pt")["iter"] == 2  # checkpoint_every=2: none at 4, where it stopped
    assert sorted(p.name for p in run.glob("*.pt")) == ["iter_000002.pt", "latest.pt"]
    assert last_logged_iteration(run / "log.csv") == 3


# ------------------------------------------------------------------------------------ the loop's device reads
def test_loop_reads_nothing_back_between_log_steps(sample_root: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The real train() on the meta device, where every read of a device value back to the host fails: the
    device data path (degradation, crop, flip from the workers' draws), the steps, the EMA, the skip counts
    and the stop/checkpoint decisions of iterations 1-5 read nothing; the first read is the log step at
    iteration 6 (its non-finite check)."""
    import torch.optim.optimizer as optimizer

    import facesr.training.loop as loop

    supported = optimizer._get_fused_kernels_supported_devices()  # fused Adam has a meta kernel; allow it
    monkeypatch.setattr(optimizer, "_get_fused_kernels_supported_devices", lambda: [*supported, "meta"])
    with pytest.raises(RuntimeError, match="meta"):
        bool(torch.ones((), device="meta"))  # what any read there does
    real, calls = loop.log_and_save, []

    def log_and_save(run, it, lr):
        calls.append(it)
        return real(run, it, lr)

    monkeypatch.setattr(loop, "log_and_save", log_and_save)
    cfg = _tiny_cfg(iters=6, log_every=6, val_every=6, checkpoint_every=6, ema_decay=0.999)  # none due before 6
    with pytest.raises(RuntimeError, match="meta"):
        train(cfg, data_root=sample_root, runs_dir=tmp_path, device="meta")
    assert calls == [1, 2, 3, 4, 5, 6]  # the iterations before the log step ran whole, the read came at 6
    assert not (tmp_path / "srgan" / "latest.pt").exists()


# ------------------------------------------------------------------------------- deterministic and compile
def test_deterministic_is_on_during_the_run_and_restored_after(sample_root: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import facesr.training.loop as loop

    real, seen = loop.train_step, []

    def step(*args, **kwargs):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic))
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", step)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    train(_tiny_cfg(iters=2, deterministic=True), data_root=sample_root, runs_dir=tmp_path)
    assert seen == [(True, True)] * 2
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark) == before


def _cannot_compile() -> str:
    import shutil

    if not torch._dynamo.is_dynamo_supported():
        return f"torch.compile does not support Python {sys.version_info.major}.{sys.version_info.minor} here"
    if not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++")):
        return "no C++ compiler: torch.compile's CPU backend (inductor) builds C++"
    return ""


@pytest.mark.slow
def test_a_tiny_config_trains_compiled(sample_root: Path, tmp_path: Path) -> None:
    reason = _cannot_compile()  # asked here, not at collection: it imports torch._dynamo
    if reason:
        pytest.skip(reason)
    run = train(_tiny_cfg(iters=2, compile=True), data_root=sample_root, runs_dir=tmp_path)  # about a minute on 2 cores
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["iter"] == 2 and not any(k.startswith("_orig_mod") for k in ckpt["net_g"])  # the plain module's
    assert np.isfinite(read_run_logs(run)[0]["l_pix"]).all()

