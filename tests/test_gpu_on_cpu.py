"""The bugs a GPU would show, proven without one: optimizer state in another layout on resume, the resize
caches' growth, what an out-of-memory error keeps alive, TF32 in scoring, host-to-device copies in an
iteration, and plan_run's out-of-memory line. (The checks that need a GPU: tests/test_cuda.py.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
