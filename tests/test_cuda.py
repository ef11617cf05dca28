"""GPU checks (marker ``cuda``; skipped without a GPU): GPU degradations and JPEG codecs, AMP steps, channels_last,
OOM, 2-GPU torchrun; the training iteration without a synchronisation, a skipped fp16 step, a deterministic resume.

Run them on a GPU machine with ``python -m pytest -m cuda``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facesr.config import get_config
from facesr.errors import FacesrError

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

# Small versions of every registered generator: the point is the numerics of a step, not the size.
SMALL_GENERATORS = {
    "msrresnet": {"mid_channels": 16, "num_blocks": 2},
    "rrdbnet": {"mid_channels": 16, "num_blocks": 1, "growth_channels": 8},
    "swinir": {"embed_dim": 24, "depths": [2], "num_heads": [2], "window_size": 8, "img_size": 32},
    "rcan": {"n_resgroups": 1, "n_resblocks": 2, "n_feats": 16, "reduction": 8},
}


def _config(generator: str, **kw: object):
    from facesr.models import GENERATORS

    if generator not in GENERATORS:
        pytest.skip(f"{generator} is not in this kit's registry")
    base = {"srgan": "msrresnet", "esrgan": "rrdbnet", "swinir": "swinir", "rcan": "rcan"}
    name = next((c for c, g in base.items() if g == generator), "srgan")
    return get_config(name, quick=True, generator=generator, generator_args=SMALL_GENERATORS[generator],
                      **{"gt_patch": 128, "batch_size": 2, **kw})


def test_degrade_batch_on_cuda_has_the_cpu_distribution() -> None:
    """Same seeds on both devices (the generators differ by device, so samples differ): same distribution."""
    import cv2
    from skimage import data

    from facesr.data.degradations import lq_bicubic_psnr
    from facesr.data.degradations_torch import degrade_batch

    im = cv2.resize(data.astronaut(), (512, 512), interpolation=cv2.INTER_AREA)
    batch = torch.from_numpy(im).permute(2, 0, 1).float().div(255)[None].repeat(8, 1, 1, 1)
    means = {}
    for device in ("cpu", "cuda"):
        gens = [torch.Generator(device=device).manual_seed(s) for s in range(8)]
        lqs = [degrade_batch(batch.to(device), gens) for _ in range(6)]  # 48 samples
        lq = torch.cat(lqs).cpu()
        assert lq.shape == (48, 3, 128, 128) and torch.isfinite(lq).all()
        means[device] = np.mean([lq_bicubic_psnr(x.permute(1, 2, 0).numpy(), im) for x in lq])
    assert abs(means["cpu"] - means["cuda"]) < 0.8, means  # docs/course.md section 3: std about 1.7 dB per sample
    assert abs(means["cuda"] - 21.78) < 0.8, means


def _face(size: int) -> np.ndarray:
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)


def test_torch_jpeg_codecs_on_cuda_match_opencv_and_the_cpu() -> None:
    from facesr.data.degradations import jpeg_roundtrip_uint8
    from facesr.data.jpeg_torch import jpeg_libjpeg_list, jpeg_torch

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((64, 64), (37, 53), (5, 3), (130, 96))]
    qualities = [50, 75, 95, 12]
    outs = jpeg_libjpeg_list([torch.from_numpy(im).permute(2, 0, 1).cuda() for im in images], qualities)
    for out, im, q in zip(outs, images, qualities, strict=True):  # integer arithmetic: bit-exact on the GPU too
        np.testing.assert_array_equal(out.permute(1, 2, 0).cpu().numpy(), jpeg_roundtrip_uint8(im, q))
    x = torch.from_numpy(_face(96)).permute(2, 0, 1).float().div(255)[None].repeat(2, 1, 1, 1)
    q = torch.tensor([55.5, 90.0])
    diff = (jpeg_torch(x.cuda(), q.cuda()).cpu() - jpeg_torch(x, q)).abs()
    assert diff.mean() < 1e-4 and diff.max() < 0.1  # float DCT: a rare rounding flip between devices


def test_course_degradation_on_cuda_reads_nothing_back() -> None:
    """degrade_batch defaults to the torch JPEG on CUDA (TORCH_JPEG_ON_CUDA), which gives the LQ of the OpenCV
    one-trip path bit for bit; apply_degradation_batch with it makes no synchronising call."""
    from facesr.data.degradations import sample_params
    from facesr.data.degradations_torch import (
        TORCH_JPEG_ON_CUDA,
        apply_degradation_batch,
        degrade_batch,
        params_to_tensor,
    )

    x = torch.from_numpy(_face(512)).permute(2, 0, 1).float().div(255)[None].repeat(4, 1, 1, 1).cuda()

    def gens() -> list[torch.Generator]:
        return [torch.Generator(device="cuda").manual_seed(s) for s in range(4)]

    assert TORCH_JPEG_ON_CUDA
    assert torch.equal(degrade_batch(x, gens()), degrade_batch(x, gens(), jpeg="opencv"))
    table = params_to_tensor([sample_params(np.random.default_rng(s)) for s in range(4)])
    apply_degradation_batch(x, table, gens(), jpeg="torch")  # warm-up: resize matrices and FFT plans cached
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        lq = apply_degradation_batch(x, table, gens(), jpeg="torch")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert lq.shape == (4, 3, 128, 128) and torch.isfinite(lq).all()


def test_second_order_on_cuda_matches_the_cpu_and_reads_nothing_back() -> None:
    from torch.utils.data import default_collate

    from facesr.data.degradations import lq_bicubic_psnr
    from facesr.data.second_order import SecondOrderSettings, apply_second_order
    from facesr.data.second_order_draws import sample_second_order_params

    im = _face(512)
    x = torch.from_numpy(im).permute(2, 0, 1).float().div(255)[None].repeat(8, 1, 1, 1)
    params = default_collate([sample_second_order_params(np.random.default_rng(s)) for s in range(8)])
    # Without noise the params alone decide the LQ: CUDA and CPU agree up to float error (rare 8-bit flips).
    quiet = SecondOrderSettings(gaussian_noise_prob=1.0, noise_range=(0.0, 0.0), gaussian_noise_prob2=1.0,
                                noise_range2=(0.0, 0.0))  # fmt: skip
    silent = dict(params, noise1_gaussian=torch.ones(8, dtype=torch.bool), noise2_gaussian=torch.ones(8, dtype=torch.bool),
                  noise1_sigma=torch.zeros(8, dtype=torch.float64), noise2_sigma=torch.zeros(8, dtype=torch.float64))
    lq_cpu, target_cpu = apply_second_order(x, silent, settings=quiet)
    lq_gpu, target_gpu = apply_second_order(x.cuda(), silent, settings=quiet)
    diff = (lq_gpu.cpu() - lq_cpu).abs()
    assert diff.mean() < 1e-3 and (diff > 0).float().mean() < 0.01, (diff.mean(), (diff > 0).float().mean())
    torch.testing.assert_close(target_gpu.cpu(), target_cpu, atol=1e-4, rtol=0)
    # With noise (from CUDA generators): the same distribution; and no synchronising call once warm.
    gens = [torch.Generator(device="cuda").manual_seed(s) for s in range(8)]
    apply_second_order(x.cuda(), params, gens)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        lq, _ = apply_second_order(x.cuda(), params, gens)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    cpu = apply_second_order(x, params, [torch.Generator().manual_seed(s) for s in range(8)])[0]
    psnr_gpu = np.mean([lq_bicubic_psnr(t.permute(1, 2, 0).cpu().numpy(), im) for t in lq])
    psnr_cpu = np.mean([lq_bicubic_psnr(t.permute(1, 2, 0).numpy(), im) for t in cpu])
    assert abs(psnr_gpu - psnr_cpu) < 0.8, (psnr_gpu, psnr_cpu)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("generator", list(SMALL_GENERATORS))
def test_one_amp_step_of_each_generator_is_finite(generator: str, dtype: torch.dtype) -> None:
    from facesr.training.step import amp_dtype_for, build_nets, train_step

    cfg = _config(generator)
    device = torch.device("cuda")
    if dtype == torch.float16 and not cfg.allow_fp16:
        # the config refuses fp16 (SwinIR's attention overflows): on a card without bf16 it trains in fp32
        assert amp_dtype_for(cfg, device) in (torch.bfloat16, None)
        pytest.skip(f"{generator} never trains in fp16")
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    nets = build_nets(cfg, device)
    nets.amp_dtype = dtype
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    lq, gt = torch.rand(2, 3, 32, 32, device=device), torch.rand(2, 3, 128, 128, device=device)
    losses = train_step(nets, lq, gt, scaler)
    assert all(torch.isfinite(v) for v in losses.values()), losses
    assert all(torch.isfinite(p).all() for p in nets.net_g.parameters())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_one_amp_gan_step_is_finite(dtype: torch.dtype) -> None:
    from facesr.training.step import build_nets, train_step

    cfg = get_config("esrgan_gan", quick=True, generator_args=SMALL_GENERATORS["rrdbnet"], vgg_weights="random")
    nets = build_nets(cfg, torch.device("cuda"))
    nets.amp_dtype = dtype
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    lq, gt = torch.rand(2, 3, 32, 32, device="cuda"), torch.rand(2, 3, 128, 128, device="cuda")
    losses = train_step(nets, lq, gt, scaler)
    assert set(losses) == {"l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake"}
    assert all(torch.isfinite(v) for v in losses.values()), losses


@pytest.mark.parametrize("dtype", [None, torch.bfloat16, torch.float16], ids=["fp32", "bf16", "fp16"])
def test_a_training_iteration_on_cuda_reads_nothing_back(dtype: torch.dtype | None) -> None:
    """The step (fused Adam gated by found_inf), the EMA, the loss window and the skip counts of the loop make
    no synchronising call once warm (torch.cuda.set_sync_debug_mode raises on one)."""
    from facesr.training.guard import BadSteps
    from facesr.training.logs import LossWindow
    from facesr.training.step import build_nets, train_step

    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    cfg = _config("msrresnet", ema_decay=0.999, grad_clip=1.0)
    device = torch.device("cuda")
    nets = build_nets(cfg, device)
    nets.amp_dtype = dtype
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**8, enabled=dtype == torch.float16)  # no overflow
    window, bad = LossWindow(cfg.batch_size), BadSteps(nets.check_names(), 20, device, 0)
    lq, gt = torch.rand(2, 3, 32, 32, device=device), torch.rand(2, 3, 128, 128, device=device)

    def iteration(k: int) -> None:
        losses = train_step(nets, lq, gt, scaler)
        nets.ema.update(k, applied=1 - nets.skipped)
        window.add(losses, 0.0, nets.skipped)
        bad.add(nets.skipped, nets.nonfinite)

    iteration(0)  # warm: optimizer state, scaler, cuDNN
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for k in (1, 2):
            iteration(k)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    row = window.row(3, cfg.lr, device)
    assert row["skipped"] == 0 and np.isfinite(row["l_pix"])
    bad.check(cfg, "nothing")


def test_a_nan_batch_with_fp16_is_skipped_and_backs_the_scale_off() -> None:
    from facesr.training.step import build_nets, train_step

    nets = build_nets(_config("msrresnet"), torch.device("cuda"))
    nets.amp_dtype = torch.float16
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**10)
    lq, gt = torch.rand(2, 3, 32, 32, device="cuda"), torch.rand(2, 3, 128, 128, device="cuda")
    train_step(nets, lq, gt, scaler)
    weights = {k: v.clone() for k, v in nets.net_g.state_dict().items()}
    moments = [{k: v.clone() for k, v in s.items()} for s in nets.optimizer_g.state.values()]
    scale = scaler.get_scale()
    lq[0, 0, 0, 0] = float("nan")
    train_step(nets, lq, gt, scaler)
    assert float(nets.skipped) == 1.0 and scaler.get_scale() == scale / 2
    assert all(torch.equal(weights[k], v) for k, v in nets.net_g.state_dict().items())
    assert all(torch.equal(m[k], s[k]) for m, s in zip(moments, nets.optimizer_g.state.values(), strict=True) for k in m)


def test_deterministic_resume_on_cuda_is_bit_exact(sample_root: Path, tmp_path: Path) -> None:
    """With deterministic on, a run resumed from its iteration-2 checkpoint ends where the uninterrupted one does."""
    import shutil

    from facesr.training import train
    from facesr.weights.checkpoints import load_checkpoint

    cfg = _config("msrresnet", iters=4, gt_patch=64, checkpoint_every=2, keep_last=3, val_every=100, log_every=1,
                  deterministic=True, ema_decay=0.999)
    whole = train(cfg, data_root=sample_root, runs_dir=tmp_path / "whole", device="cuda")
    resumed = tmp_path / "resumed" / cfg.name
    resumed.mkdir(parents=True)
    shutil.copy(whole / "iter_000002.pt", resumed / "latest.pt")
    train(cfg, data_root=sample_root, runs_dir=tmp_path / "resumed", device="cuda")
    a, b = load_checkpoint(whole / "latest.pt"), load_checkpoint(resumed / "latest.pt")
    assert a["iter"] == b["iter"] == 4
    for key in ("net_g", "net_g_ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert len(a["rng"]["cuda"]) == 1  # the training device's CUDA RNG state only


@pytest.mark.parametrize("generator", list(SMALL_GENERATORS))
def test_channels_last_equals_contiguous(generator: str) -> None:
    from facesr.models import build_generator

    cfg = _config(generator)
    torch.manual_seed(0)
    net = build_generator(generator, **cfg.generator_args).cuda().eval()
    lq = torch.rand(2, 3, 32, 32, device="cuda")
    with torch.no_grad():
        plain = net(lq)
        net_cl = net.to(memory_format=torch.channels_last)
        cl = net_cl(lq.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl.float(), plain.float(), atol=1e-4, rtol=1e-3)


def test_out_of_memory_gives_the_one_line_message(monkeypatch: pytest.MonkeyPatch, sample_root: Path,
                                                   tmp_path: Path) -> None:
    import facesr.training.loop as loop
    from facesr.training import train

    def step(*args, **kwargs):  # a real CUDA allocation failure, far beyond any card
        torch.empty(1 << 50, dtype=torch.uint8, device="cuda")

    monkeypatch.setattr(loop, "train_step", step)
    cfg = _config("msrresnet", iters=2, gt_patch=64)
    with pytest.raises(FacesrError, match=r"CUDA ran out of memory at iteration 1 .*--set batch_size=1"):
        train(cfg, data_root=sample_root, runs_dir=tmp_path, device="cuda")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpu_torchrun_run(sample_root: Path, tmp_path: Path) -> None:
    from facesr.training import read_run_logs
    from facesr.weights.checkpoints import load_checkpoint

    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "facesr",
            "train", "srgan", "--quick", "--data", str(sample_root), "--runs", str(tmp_path), "--iters", "4",
            "--set", "batch_size=4", "--set", "log_every=2", "--set", "checkpoint_every=2", "--set", "val_every=4"]
    done = subprocess.run(argv, env={**os.environ, "FACESR_QUICK": "0"}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    ckpt = load_checkpoint(tmp_path / "srgan" / "latest.pt")
    assert ckpt["iter"] == 4 and ckpt["run_info"]["gpu_count"] == 2
    log, val = read_run_logs(tmp_path / "srgan")
    assert list(log["iter"]) == [2, 4] and list(val["iter"]) == [4]
