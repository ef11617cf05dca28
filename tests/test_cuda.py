"""GPU checks (marker ``cuda``; skipped without a GPU), each one a bug a GPU would show.

GPU degradations and JPEG codecs against the CPU (full fp32, TF32 off); the host running ahead of the GPU
while it prepares a batch, and no memory growth over hundreds of degradations; bf16 only on compute
capability 8 and newer, and a step in the precision the kit picks for this card; a training iteration
without a synchronisation, a skipped fp16 step; resume CPU to CUDA and back, deterministic resumes;
memory back near its baseline after a caught out-of-memory error; evaluate's PSNR the same on CUDA and
the CPU; end-to-end runs (2024 edition, a GAN run with a skipped fp16 step, compile); x8 TTA on 512x512
images under 14 GiB; 2-GPU torchrun. What can be proven without a GPU is in tests/test_gpu_on_cpu.py.

Run them on a GPU machine with ``python -m pytest -m cuda``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from facesr.config import get_config
from facesr.metrics import exact_fp32

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

# bf16 from compute capability 8 (Ampere) on: torch.cuda.is_bf16_supported() is True on a T4 or V100 too in torch
# 2.14 (emulated, slow), so it is not what decides; facesr.training.step.amp_dtype_for reads the capability.
HAS_BF16 = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
GIB = 2**30

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


@pytest.fixture()
def no_tf32():
    """The CPU/GPU comparisons in full fp32 (TF32 off in cuBLAS and cuDNN), as the kit scores."""
    with exact_fp32():
        yield


def test_torch_jpeg_codecs_on_cuda_match_opencv_and_the_cpu(no_tf32: None) -> None:
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


def test_second_order_on_cuda_matches_the_cpu_and_reads_nothing_back(no_tf32: None) -> None:
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


# ------------------------------------------------------------------------------------------ the host runs ahead
def _pinned(batch: object) -> object:
    """A collated batch in page-locked memory, as the trainer's DataLoader (pin_memory=True) hands it over."""
    if isinstance(batch, dict):
        return {k: _pinned(v) for k, v in batch.items()}
    return batch.pin_memory() if torch.is_tensor(batch) else batch


def _device_batches(edition: int, root: Path, batch_size: int, iterations: range) -> tuple:
    """(cfg, nets, pinned batches) of quick srgan's GPU data path for ``edition`` (its degradation)."""
    from torch.utils.data import default_collate

    from facesr.training.step import build_nets, train_dataset

    cfg = get_config("srgan", quick=True, edition=edition, gt_patch=64, batch_size=batch_size)
    nets = build_nets(cfg, torch.device("cuda"))
    assert nets.gpu_degrade
    ds = train_dataset(cfg, root / "train" / "GT", on_device=True)
    batches = [_pinned(default_collate([ds[(j % len(ds), (0, k, j))] for j in range(batch_size)]))
               for k in iterations]
    return cfg, nets, batches


def _sleep_cycles(seconds: float) -> int:
    """The ``torch.cuda._sleep`` argument that keeps the stream busy for about ``seconds``."""
    torch.cuda.synchronize()
    t = time.perf_counter()
    torch.cuda._sleep(10**8)
    torch.cuda.synchronize()
    return int(10**8 * seconds / (time.perf_counter() - t))


@pytest.mark.parametrize("edition", [2022, 2024], ids=["course", "second_order"])
def test_the_host_runs_ahead_of_the_gpu_while_it_prepares_a_batch(edition: int, sample_root: Path) -> None:
    """With the stream busy (torch.cuda._sleep), preparing a real pinned batch on the device takes the host far
    less than the sleep: nothing in it waits for the GPU (a copy from pageable memory, a read back) and every
    table comes with the pinned batch. set_sync_debug_mode cannot see a pageable copy's wait; this can."""
    from facesr.training.step import prepare_batch

    cfg, nets, batches = _device_batches(edition, sample_root, 2, range(4))
    device = torch.device("cuda")
    for batch in batches[:2]:  # warm: cuFFT plans, constant tables, the allocator
        prepare_batch(batch, cfg, nets, device)
    cycles = _sleep_cycles(2.0)
    for batch in batches[2:]:
        torch.cuda.synchronize()
        torch.cuda._sleep(cycles)
        t = time.perf_counter()
        lq, gt = prepare_batch(batch, cfg, nets, device)
        host = time.perf_counter() - t
        torch.cuda.synchronize()
        total = time.perf_counter() - t
        assert total > 1.5 and host < 0.25 * total, (host, total)  # the host did not wait for the sleep
        assert lq.shape == (2, 3, 16, 16) and torch.isfinite(lq).all()


@pytest.mark.parametrize("edition", [2022, 2024], ids=["course", "second_order"])
def test_no_memory_growth_over_300_iterations_of_the_degradation(edition: int, sample_root: Path) -> None:
    """300 batches, each sample with its own resize sizes: what the degradation keeps between iterations (its
    bounded resize tables, the constant tables) stops growing after the first ones."""
    from facesr.training.step import prepare_batch

    cfg, nets, batches = _device_batches(edition, sample_root, 2, range(300))
    device = torch.device("cuda")
    allocated = []
    for k, batch in enumerate(batches):
        lq, gt = prepare_batch(batch, cfg, nets, device)
        del lq, gt
        if k in (29, 299):
            torch.cuda.synchronize()
            allocated.append(torch.cuda.memory_allocated(device))
    assert allocated[1] - allocated[0] < 16 * 2**20, [a / 2**20 for a in allocated]


# ------------------------------------------------------------------------------------------------ precision
def test_bf16_only_from_compute_capability_8(monkeypatch: pytest.MonkeyPatch) -> None:
    from facesr.training.step import amp_dtype_for

    device = torch.device("cuda")
    cnn, swinir = _config("msrresnet"), _config("swinir")
    assert amp_dtype_for(cnn, device) == (torch.bfloat16 if HAS_BF16 else torch.float16)
    assert amp_dtype_for(swinir, device) == (torch.bfloat16 if HAS_BF16 else None)  # never fp16 (allow_fp16 off)
    assert amp_dtype_for(_config("msrresnet", amp=False), device) is None
    # a T4 or V100: is_bf16_supported() may say True (emulation); the kit still picks fp16 there
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (7, 5))
    assert amp_dtype_for(cnn, device) == torch.float16 and amp_dtype_for(swinir, device) is None


@pytest.mark.parametrize("generator", list(SMALL_GENERATORS))
def test_one_step_of_each_generator_in_the_precision_the_kit_picks_here(generator: str) -> None:
    """build_nets' own choice of autocast dtype for this card (bf16 from sm_80, else fp16 or fp32), its own
    scaler, nothing overwritten."""
    from facesr.training.step import amp_dtype_for, build_nets, train_step

    cfg = _config(generator)
    device = torch.device("cuda")
    nets = build_nets(cfg, device)
    assert nets.amp_dtype == amp_dtype_for(cfg, device)
    assert nets.amp_dtype == (torch.bfloat16 if HAS_BF16 else (torch.float16 if cfg.allow_fp16 else None))
    scaler = torch.amp.GradScaler("cuda", enabled=nets.amp_dtype == torch.float16)  # as the trainer makes it
    lq, gt = torch.rand(2, 3, 32, 32, device=device), torch.rand(2, 3, 128, 128, device=device)
    for _ in range(2):
        losses = train_step(nets, lq, gt, scaler)
    assert float(nets.skipped) == 0.0 and all(torch.isfinite(v) for v in losses.values()), losses
    assert all(torch.isfinite(p).all() for p in nets.net_g.parameters())


def _kit_picks(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype | None) -> None:
    """build_nets picks ``dtype`` (as it does on another card): fp16 on any card, bf16 where the card has it."""
    import facesr.training.step as step

    if dtype == torch.bfloat16 and not HAS_BF16:
        pytest.skip("bf16 needs compute capability 8 or newer")
    monkeypatch.setattr(step, "amp_dtype_for", lambda cfg, device: dtype)


@pytest.mark.parametrize("generator", [g for g in SMALL_GENERATORS if g != "swinir"])
def test_one_fp16_step_of_each_generator_that_trains_in_fp16(generator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A T4's precision (fp16 with a GradScaler) on any card."""
    from facesr.training.step import build_nets, train_step

    _kit_picks(monkeypatch, torch.float16)
    nets = build_nets(_config(generator), torch.device("cuda"))
    assert nets.amp_dtype == torch.float16
    scaler = torch.amp.GradScaler("cuda")
    lq, gt = torch.rand(2, 3, 32, 32, device="cuda"), torch.rand(2, 3, 128, 128, device="cuda")
    losses = train_step(nets, lq, gt, scaler)
    assert all(torch.isfinite(v) for v in losses.values()), losses
    assert all(torch.isfinite(p).all() for p in nets.net_g.parameters())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_one_amp_gan_step_is_finite(dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch) -> None:
    from facesr.training.step import build_nets, train_step

    _kit_picks(monkeypatch, dtype)
    cfg = get_config("esrgan_gan", quick=True, generator_args=SMALL_GENERATORS["rrdbnet"], vgg_weights="random")
    nets = build_nets(cfg, torch.device("cuda"))
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    lq, gt = torch.rand(2, 3, 32, 32, device="cuda"), torch.rand(2, 3, 128, 128, device="cuda")
    losses = train_step(nets, lq, gt, scaler)
    assert set(losses) == {"l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake"}
    assert all(torch.isfinite(v) for v in losses.values()), losses


@pytest.mark.parametrize("dtype", [None, torch.bfloat16, torch.float16], ids=["fp32", "bf16", "fp16"])
def test_a_training_iteration_on_cuda_reads_nothing_back(dtype: torch.dtype | None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The step (fused Adam gated by found_inf), the EMA, the loss window and the skip counts of the loop make
    no synchronising call once warm (torch.cuda.set_sync_debug_mode raises on one)."""
    from facesr.training import distributed
    from facesr.training.guard import BadSteps
    from facesr.training.logs import LossWindow
    from facesr.training.step import build_nets, train_step

    _kit_picks(monkeypatch, dtype)
    cfg = _config("msrresnet", ema_decay=0.999, grad_clip=1.0)
    device = torch.device("cuda")
    nets = build_nets(cfg, device)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**8, enabled=dtype == torch.float16)  # no overflow
    window, bad = LossWindow(cfg.batch_size), BadSteps(nets.check_names(), 20, device, 0)
    lq, gt = torch.rand(2, 3, 32, 32, device=device), torch.rand(2, 3, 128, 128, device=device)

    def iteration(k: int) -> None:
        distributed.seed_step(cfg.seed, k + 1, distributed.Ranks(), device)
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


def test_a_nan_batch_with_fp16_is_skipped_and_backs_the_scale_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from facesr.training.step import build_nets, train_step

    _kit_picks(monkeypatch, torch.float16)
    nets = build_nets(_config("msrresnet"), torch.device("cuda"))
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


def test_each_rank_draws_its_own_masks_and_a_resume_draws_the_same() -> None:
    from facesr.training import distributed

    def draws(rank: int, it: int) -> torch.Tensor:
        distributed.seed_step(3, it, distributed.Ranks(rank, 2, rank), torch.device("cuda"))
        return torch.rand(64, device="cuda")  # what a drop path draws

    assert not torch.equal(draws(0, 5), draws(1, 5)) and not torch.equal(draws(0, 5), draws(0, 6))
    assert torch.equal(draws(1, 5), draws(1, 5))


@pytest.mark.parametrize("generator", list(SMALL_GENERATORS))
def test_channels_last_equals_contiguous(generator: str, no_tf32: None) -> None:
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


# -------------------------------------------------------------------------------------------------- resume
def _same_nets_and_optimizer(a: dict, b: dict) -> None:
    assert a["iter"] == b["iter"]
    for key in ("net_g", "net_g_ema"):
        assert all(torch.equal(a[key][k].cpu(), b[key][k].cpu()) for k in a[key]), key
    for x, y in zip(a["optimizer_g"]["state"].values(), b["optimizer_g"]["state"].values(), strict=True):
        assert all(torch.equal(x[k].cpu(), y[k].cpu()) for k in ("exp_avg", "exp_avg_sq", "step"))


def _resume_from(whole: Path, runs: Path, name: str, it: int, transform=None) -> Path:
    """A run folder whose latest.pt is ``whole``'s iter_<it>.pt (through ``transform`` when given)."""
    from facesr.weights.checkpoints import load_checkpoint, save_checkpoint

    (runs / name).mkdir(parents=True)
    ckpt = load_checkpoint(whole / f"iter_{it:06d}.pt")
    save_checkpoint(transform(ckpt) if transform else ckpt, runs / name / "latest.pt")
    return runs


@pytest.mark.parametrize("generator", ["msrresnet", "swinir", "rcan"])
def test_deterministic_resume_on_cuda_is_bit_exact(generator: str, sample_root: Path, tmp_path: Path) -> None:
    """With deterministic on, a run resumed from its iteration-2 checkpoint ends where the uninterrupted one does."""
    from facesr.training import train
    from facesr.weights.checkpoints import load_checkpoint

    cfg = _config(generator, iters=4, gt_patch=64, checkpoint_every=2, keep_last=3, val_every=100, log_every=1,
                  deterministic=True, ema_decay=0.999)
    whole = train(cfg, data_root=sample_root, runs_dir=tmp_path / "whole", device="cuda")
    resumed = train(cfg, data_root=sample_root, runs_dir=_resume_from(whole, tmp_path / "resumed", cfg.name, 2),
                    device="cuda")
    a, b = load_checkpoint(whole / "latest.pt"), load_checkpoint(resumed / "latest.pt")
    assert a["iter"] == b["iter"] == 4
    _same_nets_and_optimizer(a, b)
    assert len(a["rng"]["cuda"]) == 1  # the training device's CUDA RNG state only


def test_a_cpu_checkpoint_resumes_on_cuda_and_a_cuda_one_on_the_cpu(sample_root: Path, tmp_path: Path) -> None:
    """CPU to CUDA: contiguous moments meet channels_last parameters (fused CUDA Adam refused them: "params,
    grads, exp_avgs, and exp_avg_sqs must have same dtype, device, and layout"). CUDA to CPU: channels_last
    moments meet contiguous parameters, and must pair with the right weights: the same as resuming the same
    checkpoint with contiguous moments."""
    from facesr.training import train
    from facesr.weights.checkpoints import load_checkpoint

    cfg = _config("msrresnet", iters=4, gt_patch=64, checkpoint_every=2, keep_last=3, val_every=100)
    on_cpu = train(cfg, data_root=sample_root, runs_dir=tmp_path / "cpu", device="cpu")
    to_cuda = train(cfg, data_root=sample_root, runs_dir=_resume_from(on_cpu, tmp_path / "to_cuda", cfg.name, 2),
                    device="cuda")
    assert load_checkpoint(to_cuda / "latest.pt")["iter"] == 4

    on_cuda = train(cfg, data_root=sample_root, runs_dir=tmp_path / "cuda", device="cuda")
    saved = load_checkpoint(on_cuda / "iter_000002.pt")["optimizer_g"]["state"].values()
    assert any(not s["exp_avg"].is_contiguous() for s in saved)  # channels_last, as the CUDA parameters were

    def contiguous(ckpt: dict) -> dict:
        for state in ckpt["optimizer_g"]["state"].values():
            state.update(exp_avg=state["exp_avg"].contiguous(), exp_avg_sq=state["exp_avg_sq"].contiguous())
        return ckpt

    as_saved = train(cfg, data_root=sample_root, runs_dir=_resume_from(on_cuda, tmp_path / "back", cfg.name, 2),
                     device="cpu")
    made_contiguous = train(cfg, data_root=sample_root, device="cpu",
                            runs_dir=_resume_from(on_cuda, tmp_path / "plain", cfg.name, 2, contiguous))
    _same_nets_and_optimizer(load_checkpoint(as_saved / "latest.pt"), load_checkpoint(made_contiguous / "latest.pt"))


# ------------------------------------------------------------------------------------------- out of memory
def test_memory_is_back_near_its_baseline_after_a_caught_out_of_memory(monkeypatch: pytest.MonkeyPatch,
                                                                        sample_root: Path, tmp_path: Path) -> None:
    """A step that holds 1 GiB of activations when the card runs out of memory: once the one line is caught,
    with the error still alive in a variable, the memory is back (the kit let go of the run and emptied the
    cache before raising)."""
    import facesr.training.loop as loop
    from facesr.training import train
    from facesr.training.memory import OutOfMemory

    def step(*args, **kwargs):
        activations = torch.empty(GIB, dtype=torch.uint8, device="cuda")  # noqa: F841 - held by this frame
        torch.empty(1 << 50, dtype=torch.uint8, device="cuda")  # a real allocation failure, far beyond any card

    monkeypatch.setattr(loop, "train_step", step)
    gc.collect()
    torch.cuda.empty_cache()
    allocated, reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    cfg = _config("msrresnet", iters=2, gt_patch=64)
    with pytest.raises(OutOfMemory, match=r"CUDA ran out of memory at iteration 1 .*batch_size=\d+ fits the") as info:
        train(cfg, data_root=sample_root, runs_dir=tmp_path, device="cuda")
    held = info.value
    assert "--set batch_size=1" in str(held) and "\n" not in str(held)
    assert torch.cuda.memory_allocated() - allocated < 32 * 2**20
    assert torch.cuda.memory_reserved() - reserved < 64 * 2**20
    assert held.__context__ is None


def test_plan_run_out_of_memory_gives_the_one_line(monkeypatch: pytest.MonkeyPatch, sample_root: Path) -> None:
    import facesr.training.step as step
    from facesr.training.memory import OutOfMemory
    from facesr.training.speed import plan_run

    monkeypatch.setattr(step, "train_step", lambda *a, **k: torch.empty(1 << 50, dtype=torch.uint8, device="cuda"))
    allocated = torch.cuda.memory_allocated()
    with pytest.raises(OutOfMemory, match=r"CUDA ran out of memory at iteration 1 .*fits the .*plan_run saves"):
        plan_run(_config("msrresnet", gt_patch=64), sample_root, iters=1, warmup=1, device="cuda")
    assert torch.cuda.memory_allocated() - allocated < 32 * 2**20


# ------------------------------------------------------------------------------------------------ inference
def test_evaluate_gives_the_same_psnr_on_cuda_and_the_cpu(mini_root: Path) -> None:
    """Scoring runs without TF32 (facesr.metrics.exact_fp32): the val PSNR does not depend on the card."""
    from facesr.inference import evaluate_variants
    from facesr.models import build_generator

    torch.manual_seed(0)
    net = build_generator("msrresnet", mid_channels=32, num_blocks=4)
    cuda = evaluate_variants(net, mini_root, (None, "x8"), device="cuda")
    cpu = evaluate_variants(net, mini_root, (None, "x8"), device="cpu")
    for tta in (None, "x8"):
        a, b = cuda[tta]["psnr"].to_numpy(), cpu[tta]["psnr"].to_numpy()
        assert np.abs(a - b).max() < 1e-3, (tta, a, b)


def _lq_folder(folder: Path, n: int, size: int) -> Path:
    from facesr.data.images import write_png

    rng = np.random.default_rng(0)
    for i in range(n):
        write_png(folder / f"{i:03d}.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return folder


@contextlib.contextmanager
def _memory_limit(limit_bytes: float):
    """The caching allocator refuses to go past ``limit_bytes`` for the duration (a smaller card)."""
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, limit_bytes / total))
    try:
        yield
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)


def test_x8_tta_keeps_running_sums_not_eight_outputs() -> None:
    from facesr.inference.tta import run_net_variants
    from facesr.models import build_generator

    net = build_generator("msrresnet", mid_channels=16, num_blocks=2).cuda().eval()
    lq = torch.rand(4, 3, 256, 256, device="cuda")
    output = 4 * 3 * 1024 * 1024 * 4  # one float SR batch
    peaks = {}
    for tta in (None, "x8"):
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        sr = run_net_variants(net, lq, (tta,))[0]
        peaks[tta] = torch.cuda.max_memory_allocated() - base
        del sr
    assert peaks["x8"] - peaks[None] < 3 * output, {k: v / output for k, v in peaks.items()}


def test_predict_with_x8_tta_on_four_512_images_stays_under_14_gib(tmp_path: Path) -> None:
    """The 2022 esrgan generator (RRDBNet 64/23/32), four 512x512 LQ images, x8 TTA, the card limited to 14 GiB
    (a T4's share): the group that does not fit goes one image at a time, and the peak stays under the limit."""
    from facesr.inference import predict
    from facesr.models import build_generator

    net = build_generator("rrdbnet", mid_channels=64, num_blocks=23, growth_channels=32).eval()
    lq_dir = _lq_folder(tmp_path / "lq", 4, 512)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    with _memory_limit(14 * GIB):
        paths = predict(net, lq_dir, tmp_path / "sr", tta="x8", batch_size=4, device="cuda")
    assert len(paths) == 4 and torch.cuda.max_memory_allocated() < 14 * GIB


def test_a_group_that_does_not_fit_is_predicted_one_image_at_a_time(tmp_path: Path) -> None:
    """The card limited to about twice what one image needs: batch 4 runs out of memory, the retry at batch 1
    does not, and the PNGs are those of batch 1."""
    from facesr.data.images import read_image
    from facesr.inference import predict
    from facesr.inference.tta import run_net_variants
    from facesr.models import build_generator

    net = build_generator("msrresnet", mid_channels=64, num_blocks=4).cuda().eval()
    lq_dir = _lq_folder(tmp_path / "lq", 4, 256)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run_net_variants(net, torch.rand(1, 3, 256, 256, device="cuda"), ("x8",))
    one = torch.cuda.max_memory_allocated() - base
    single = predict(net, lq_dir, tmp_path / "single", tta="x8", batch_size=1, device="cuda")
    with _memory_limit(torch.cuda.memory_reserved() + 2.5 * one):
        retried = predict(net, lq_dir, tmp_path / "retried", tta="x8", batch_size=4, device="cuda")
    assert all(np.array_equal(read_image(a), read_image(b)) for a, b in zip(single, retried, strict=True))


# ---------------------------------------------------------------------------------------- end-to-end runs
def test_a_2024_run_trains_on_cuda(tmp_path: Path) -> None:
    """The second-order degradation on the device, BasicSR's MSRResNet, validation and checkpoints."""
    from facesr.data.sample import ensure_sample_data
    from facesr.training import read_run_logs, train
    from facesr.weights.checkpoints import load_checkpoint

    cfg = get_config("srgan", quick=True, edition=2024, iters=4, gt_patch=64, batch_size=4, log_every=2,
                     val_every=4, checkpoint_every=4)
    run = train(cfg, data_root=ensure_sample_data(edition=2024), runs_dir=tmp_path, device="cuda")
    log, val = read_run_logs(run)
    assert list(log["iter"]) == [2, 4] and np.isfinite(log["l_pix"]).all() and (log["skipped"] == 0).all()
    assert len(val) == 1 and np.isfinite(val["psnr"]).all()
    assert load_checkpoint(run / "latest.pt")["run_info"]["gpu_count"] >= 1


def test_an_esrgan_gan_run_with_a_skipped_fp16_step(monkeypatch: pytest.MonkeyPatch, sample_root: Path,
                                                    tmp_path: Path) -> None:
    """The GAN run in fp16 (a T4's precision) with a NaN batch at iteration 2: the step is skipped and counted,
    the scaler backs off, the run goes on and saves finite weights."""
    import facesr.training.loop as loop
    from facesr.training import read_run_logs, train
    from facesr.weights.checkpoints import load_checkpoint

    _kit_picks(monkeypatch, torch.float16)
    real, calls = loop.prepare_batch, []

    def prepare(*args, **kwargs):
        calls.append(1)
        lq, gt = real(*args, **kwargs)
        return (lq * float("nan"), gt) if len(calls) == 2 else (lq, gt)

    monkeypatch.setattr(loop, "prepare_batch", prepare)
    cfg = get_config("esrgan_gan", quick=True, iters=4, generator_args=SMALL_GENERATORS["rrdbnet"], init=None,
                     vgg_weights="random", log_every=1, val_every=4, checkpoint_every=4)
    run = train(cfg, data_root=sample_root, runs_dir=tmp_path, device="cuda")
    log = read_run_logs(run)[0]
    assert list(log["skipped"]) == [0, 1, 0, 0]
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["scaler"]["scale"] < 2.0**16  # backed off from GradScaler's initial scale
    assert all(torch.isfinite(v).all() for v in ckpt["net_g"].values() if v.is_floating_point())


def test_a_compiled_run_on_cuda(sample_root: Path, tmp_path: Path) -> None:
    from facesr.training import read_run_logs, train
    from facesr.weights.checkpoints import load_checkpoint

    cfg = _config("msrresnet", iters=3, gt_patch=64, compile=True, log_every=1, val_every=3, checkpoint_every=3)
    run = train(cfg, data_root=sample_root, runs_dir=tmp_path, device="cuda")
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["iter"] == 3 and not any(k.startswith("_orig_mod") for k in ckpt["net_g"])
    assert np.isfinite(read_run_logs(run)[0]["l_pix"]).all()


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
