"""The bugs a GPU would show, proven without one: optimizer state in another layout on resume, the resize
caches' growth, what an out-of-memory error keeps alive, TF32 in scoring, host-to-device copies in an
iteration, and plan_run's out-of-memory line. (The checks that need a GPU: tests/test_cuda.py.)
"""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

import pytest
import torch

from facesr.config import get_config
from facesr.training import train
from facesr.weights.checkpoints import load_checkpoint, save_checkpoint


def _tiny_cfg(**kw: object):
    base = {"generator_args": {"mid_channels": 16, "num_blocks": 2}, "gt_patch": 64, "batch_size": 2,
            "log_every": 2, "checkpoint_every": 2, "val_every": 1000, "iters": 6, "num_workers": 0}
    return get_config("srgan", quick=True, **{**base, **kw})


# ------------------------------------------------------------------------- 1. optimizer state layout on resume
def test_a_checkpoint_with_channels_last_moments_resumes_bit_identical(sample_root: Path, tmp_path: Path,
                                                                       assert_same_run) -> None:
    """What a CUDA run's checkpoint holds (Adam's moments channels_last, as its parameters) resumed where the
    parameters are contiguous: the same weights as resuming the same checkpoint with contiguous moments."""
    cfg = _tiny_cfg()
    whole = train(cfg, data_root=sample_root, runs_dir=tmp_path / "whole")
    ckpt = load_checkpoint(whole / "iter_000004.pt")
    for folder in ("plain", "channels_last"):
        (tmp_path / folder / cfg.name).mkdir(parents=True)
    shutil.copy(whole / "iter_000004.pt", tmp_path / "plain" / cfg.name / "latest.pt")
    moved = 0
    for state in ckpt["optimizer_g"]["state"].values():
        for key in ("exp_avg", "exp_avg_sq"):
            if state[key].ndim == 4:
                state[key] = state[key].contiguous(memory_format=torch.channels_last)
                moved += 1
    assert moved and not all(s["exp_avg"].is_contiguous() for s in ckpt["optimizer_g"]["state"].values())
    save_checkpoint(ckpt, tmp_path / "channels_last" / cfg.name / "latest.pt")
    assert not all(s["exp_avg"].is_contiguous() for s in load_checkpoint(
        tmp_path / "channels_last" / cfg.name / "latest.pt")["optimizer_g"]["state"].values())  # torch.save kept it

    plain = train(cfg, data_root=sample_root, runs_dir=tmp_path / "plain")
    channels_last = train(cfg, data_root=sample_root, runs_dir=tmp_path / "channels_last")
    b = assert_same_run(plain, channels_last)
    assert b["iter"] == 6
    reference = load_checkpoint(whole / "latest.pt")  # and both end where the uninterrupted run does
    assert all(torch.equal(reference["net_g"][k], v) for k, v in b["net_g"].items())


def test_restored_state_takes_each_parameters_layout_dtype_and_device() -> None:
    from facesr.training.run_folder import load_optimizer
    from facesr.training.step import build_nets

    nets = build_nets(_tiny_cfg(), torch.device("cpu"))
    conv = nets.net_g.conv_first.weight
    nets.net_g.to(memory_format=torch.channels_last)  # the parameters as a CUDA run has them
    assert not conv.is_contiguous()
    params = nets.optimizer_g.param_groups[0]["params"]
    older = torch.optim.Adam(params, lr=2e-4)
    for p in params:
        p.grad = torch.ones_like(p)
    older.step()
    saved = older.state_dict()
    for state in saved["state"].values():  # saved from contiguous parameters, in double precision
        state["exp_avg"] = state["exp_avg"].contiguous().double()
    load_optimizer(nets.optimizer_g, saved)
    for p in params:
        for key in ("exp_avg", "exp_avg_sq"):
            value = nets.optimizer_g.state[p][key]
            assert value.stride() == p.stride() and value.dtype == p.dtype and value.device == p.device, key
    assert nets.optimizer_g.param_groups[0]["fused"]


# ------------------------------------------------------------------------------------------ 2. resize caches
def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident size from /proc")
def test_the_resize_tables_of_every_size_stay_small() -> None:
    """Every width from 512 to 32-512 and back in the three modes (the tables the course degradation's draws
    need over a run; the images one row high, so the sweep costs the tables only): the process keeps far less
    than the 1.4 GB the dense cached matrices took. benchmarks/degradations.py --section resize-memory
    prints the figure for 512x512 images."""
    from facesr.data.opencv_resize import resize_taps, resize_torch

    img = torch.rand(3, 1, 512)
    gc.collect()
    before = _resident_mb()
    for mode in ("bilinear", "area", "bicubic"):
        for size in range(32, 513):
            resize_torch(resize_torch(img, (1, size), mode), (1, 512), mode)
            resize_taps(512, size, mode), resize_taps(size, 512, mode)  # the tables of resize_matrix too
    gc.collect()
    grown = _resident_mb() - before
    assert grown < 150, f"the resize sweep kept {grown:.0f} MB"
    idx, weight = resize_taps(512, 32, "area")  # the largest table: 18 taps of 32 outputs
    assert idx.shape == weight.shape == (18, 32)
