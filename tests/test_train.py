"""The trainer: run folder, checkpoints, resume (bit-exact after SIGKILL), schedules, EMA, GPU checks, CLI errors.

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
import pandas as pd
import pytest
import torch

from facesr.checkpoints import load_checkpoint, save_checkpoint
from facesr.cli import main
from facesr.config import get_config
from facesr.errors import FacesrError
from facesr.training import read_run_logs, train
from facesr.training.device import check_cuda_arch, has_kernel_for
from facesr.training.run_folder import get_rng_state, set_rng_state
from facesr.training.schedule import IterationBatchSampler, ema_decay_at, ema_update, lr_at

# Learning check. Measured with the quick_run fixture (500 iterations, 1 CPU thread, about 140 CPU seconds):
# best val PSNR 24.620 dB vs bicubic 24.229 dB, a margin of 0.39 dB (the untrained net, bilinear plus a small
# residual, scores 23.88). Another CPU's float rounding changes the trajectory a little; 0.25 dB leaves room.
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
                "kit_version"):
        assert key in ckpt, key
    assert "net_d" not in ckpt
    assert iter_files[-1] == f"iter_{ckpt['iter']:06d}.pt"
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch", "cuda", "data"}
    log, val = read_run_logs(quick_run)
    assert list(log.columns) == ["iter", "lr", "l_pix", "data_time", "step_time", "samples_per_s"]
    assert log["iter"].iloc[-1] == ckpt["iter"] and np.isfinite(log["l_pix"]).all()
    assert {"iter", "psnr", "ssim", "best_psnr", "best_iter", "bicubic_psnr"} <= set(val.columns)
    assert val["best_psnr"].iloc[-1] == pytest.approx(val["psnr"].max(), abs=1e-4)
    assert ckpt["best"]["value"] == pytest.approx(val["psnr"].max(), abs=1e-4)


@pytest.mark.slow
def test_quick_run_beats_bicubic(quick_run: Path, sample_root: Path) -> None:
    """Learning check; PSNR recomputed here from best.pt, not only read from val.csv."""
    from facesr.checkpoints import load_weights
    from facesr.data.datasets import ValDataset
    from facesr.metrics import bicubic_upscale, psnr, tensor_to_uint8
    from facesr.models import MSRResNet

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

    from facesr.config import TrainConfig

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
def _cli(runs: Path, data: Path, iters: int) -> list[str]:
    return [sys.executable, "-m", "facesr", "train", "srgan", "--quick", "--data", str(data), "--runs", str(runs),
            "--iters", str(iters), *TINY]


@pytest.mark.slow
def test_sigkill_and_resume_is_bit_exact(sample_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "FACESR_QUICK": "0"}
    iters = 16
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    kw = {"env": env, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    uninterrupted = subprocess.Popen(_cli(clean, sample_root, iters), **kw)
    victim = subprocess.Popen(_cli(killed, sample_root, iters), **kw)
    latest = killed / "srgan" / "latest.pt"
    deadline = time.monotonic() + 240
    while not latest.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.6))  # a random moment after the first checkpoint, maybe mid-write
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = load_checkpoint(latest)["iter"]
    assert 2 <= killed_at < iters

    resumed = subprocess.run(_cli(killed, sample_root, iters), timeout=300, **kw)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"from iteration {killed_at}" in resumed.stdout
    out, _ = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, out[-2000:]

    a, b = load_checkpoint(clean / "srgan" / "latest.pt"), load_checkpoint(killed / "srgan" / "latest.pt")
    assert a["iter"] == b["iter"] == iters
    for key in ("net_g", "net_g_ema"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    exp_avg = [s["exp_avg"] for s in a["optimizer_g"]["state"].values()]
    assert all(torch.equal(x, s["exp_avg"]) for x, s in zip(exp_avg, b["optimizer_g"]["state"].values(), strict=True))
    # the logs of the resumed run hold each iteration once, with the same losses
    log_a, log_b = read_run_logs(clean / "srgan")[0], read_run_logs(killed / "srgan")[0]
    assert list(log_a["iter"]) == list(log_b["iter"]) == list(range(2, iters + 1, 2))
    assert list(log_a["l_pix"]) == list(log_b["l_pix"])
    assert not list((killed / "srgan").glob(".*.tmp"))


def test_batch_order_is_a_function_of_seed_and_iteration() -> None:
    full = list(IterationBatchSampler(24, 4, seed=3, start_iter=0, total_iters=20))
    tail = list(IterationBatchSampler(24, 4, seed=3, start_iter=13, total_iters=20))
    assert tail == full[13:]
    epoch = [i for batch in full[:6] for i, _ in batch]
    assert sorted(epoch) == list(range(24))  # each image once per epoch (24 // 4 batches)
    assert full[0] != list(IterationBatchSampler(24, 4, seed=4, start_iter=0, total_iters=1))[0]
    assert len({s for batch in full for _, s in batch}) == 80  # every sample gets its own degradation seed
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
    ema_update(ema, net, 0.999, updates=10**6)
    assert torch.allclose(ema.weight, 0.999 * w_ema + 0.001 * w_net)
    ema_update(ema, net, 0.0, updates=5)
    assert torch.equal(ema.weight, net.weight)


def test_ema_update_follows_in_place_loads_and_conversions() -> None:
    """The cached (ema, net) tensor pairs stay right after load_state_dict (resume) and .to() (buffers too)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema_update(ema, net, 0.9, updates=10**6)
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    other(torch.randn(2, 3, 8, 8))  # running stats and num_batches_tracked change
    net.load_state_dict(other.state_dict())  # what a resume does: in-place copies
    ema.load_state_dict(other.state_dict())
    net.double()
    ema.double()  # parameters keep their objects (new data), buffers are new tensors
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        net[0].weight.add_(1.0)
    ema_update(ema, net, 0.9, updates=10**6)
    src = net.state_dict()
    for key, value in ema.state_dict().items():
        if value.dtype.is_floating_point:
            assert torch.equal(value, before[key].mul(0.9).add(src[key], alpha=1 - 0.9)), key
        else:
            assert torch.equal(value, src[key]), key


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
    assert "out of memory at iteration 3" in msg and "--set batch_size=1" in msg and "--set gt_patch=128" in msg
    assert "iteration 2) is intact" in msg
    assert load_checkpoint(run / "latest.pt")["iter"] == 2
    assert not (run / ".latest.pt.k2j4.tmp").exists() and (run / "notes.txt").read_text() == "mine"
    assert not (run / "run_info.json.tmp").exists()
    assert sorted(p.name for p in run.glob("*.pt")) == ["iter_000002.pt", "latest.pt"]


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
    assert isinstance(log, pd.DataFrame)


def test_gpu_degradation_path_runs_on_any_device() -> None:
    """The CUDA path of prepare_batch (degrade_batch, then a paired crop on the LQ grid), run here on the CPU."""
    from facesr.training.step import build_nets, prepare_batch

    cfg = _tiny_cfg()
    nets = build_nets(cfg, torch.device("cpu"))
    nets.gpu_degrade = True  # what build_nets sets on CUDA
    gt_full = torch.rand(2, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    seeds = torch.tensor([[0, 5, 0], [0, 5, 1]])  # (seed, iteration, index in the global batch)
    lq, gt = prepare_batch({"gt": gt_full, "seed": seeds}, cfg, nets, torch.device("cpu"))
    assert lq.shape == (2, 3, 16, 16) and gt.shape == (2, 3, 64, 64)
    again_lq, again_gt = prepare_batch({"gt": gt_full, "seed": seeds}, cfg, nets, torch.device("cpu"))
    assert torch.equal(lq, again_lq) and torch.equal(gt, again_gt)  # a pure function of the sample seeds
    other_lq, _ = prepare_batch({"gt": gt_full, "seed": seeds + torch.tensor([0, 1, 0])}, cfg, nets,
                                torch.device("cpu"))
    assert not torch.equal(lq, other_lq)
    # each sample depends on its own seed only: the second one alone gives the same LQ and crop
    lq1, gt1 = prepare_batch({"gt": gt_full[1:], "seed": seeds[1:]}, cfg, nets, torch.device("cpu"))
    assert torch.equal(lq1[0], lq[1]) and torch.equal(gt1[0], gt[1])
    # every GT crop is a 64x64 window of its full image at a multiple of 4 (random values: the corner is unique)
    for i in range(2):
        top, left = (int(v) for v in (gt_full[i, 0] == gt[i, 0, 0, 0]).nonzero()[0])
        assert top % 4 == 0 and left % 4 == 0
        assert torch.equal(gt[i], gt_full[i, :, top : top + 64, left : left + 64])
