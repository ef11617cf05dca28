"""One training iteration (pixel or GAN), batch preparation (GPU degradation) and validation.

Kept apart from :mod:`facesr.train` (run folders, resume, logs) so that ``benchmarks/train_step.py``
times exactly the step the trainer runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from facesr.engine_utils import make_ema


@dataclass
class Nets:
    """Networks, losses and optimizers of one run, plus the numerics chosen for the device."""

    net_g: nn.Module
    net_g_ema: nn.Module
    optimizer_g: torch.optim.Optimizer
    pixel_loss: nn.Module
    net_d: nn.Module | None = None
    optimizer_d: torch.optim.Optimizer | None = None
    perceptual_loss: nn.Module | None = None
    gan_loss: nn.Module | None = None
    amp_dtype: torch.dtype | None = None  # None = full fp32
    channels_last: bool = False
    gpu_degrade: bool = False
    device_type: str = "cpu"


def build_nets(cfg: Any, device: torch.device) -> Nets:
    """Generator (+ EMA copy), discriminator and losses for ``cfg`` on ``device``."""
    from facesr.losses import PerceptualLoss, RelativisticGANLoss, build_pixel_loss
    from facesr.models import ModifiedVGG, build_generator

    cuda = device.type == "cuda"
    amp_dtype = None
    if cuda and cfg.amp:
        # bf16 needs no loss scaling; native from Ampere (sm_80) on. Older cards (T4, V100) use fp16.
        amp_dtype = torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16
    memory_format = torch.channels_last if cuda and cfg.channels_last else torch.contiguous_format
    net_g = build_generator(cfg.generator, **cfg.generator_args).to(device, memory_format=memory_format)
    nets = Nets(
        net_g=net_g,
        net_g_ema=make_ema(net_g),
        optimizer_g=torch.optim.Adam(net_g.parameters(), lr=cfg.lr, betas=tuple(cfg.betas)),
        pixel_loss=build_pixel_loss(cfg.pixel_loss, loss_weight=cfg.pixel_weight).to(device),
        amp_dtype=amp_dtype,
        channels_last=memory_format is torch.channels_last,
        gpu_degrade=cuda and cfg.gpu_degrade,
        device_type=device.type,
    )
    if cfg.gan_weight > 0:
        nets.net_d = ModifiedVGG(in_channels=3, mid_channels=64).to(device, memory_format=memory_format)
        nets.optimizer_d = torch.optim.Adam(nets.net_d.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
        nets.gan_loss = RelativisticGANLoss(loss_weight=cfg.gan_weight)
    if cfg.perceptual_weight > 0 and cfg.perceptual_layers:
        nets.perceptual_loss = PerceptualLoss(
            layer_weights=cfg.perceptual_layers,
            criterion="l1",
            perceptual_weight=cfg.perceptual_weight,
            weights=cfg.vgg_weights,
        ).to(device, memory_format=memory_format)
    return nets


def batch_seed(seed: int, k: int) -> int:
    """Seed of iteration ``k``'s GPU degradation and crop (a pure function: resumes reproduce it)."""
    return int(np.random.SeedSequence([seed, 2, k]).generate_state(1, np.uint64)[0] >> 1)


def prepare_batch(batch: dict, k: int, cfg: Any, nets: Nets, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(lq, gt) on ``device``; on the GPU path degrade the full GT there, then crop the pair."""
    gt = batch["gt"].to(device, non_blocking=True)
    if not nets.gpu_degrade:
        lq = batch["lq"].to(device, non_blocking=True)
    else:
        from facesr.degradations import degrade_batch

        gen = torch.Generator(device=device)
        gen.manual_seed(batch_seed(cfg.seed, k))
        lq = degrade_batch(gt, generator=gen)
        if cfg.gt_patch:
            p, scale = cfg.gt_patch, gt.shape[-1] // lq.shape[-1]
            lqs, gts = [], []
            for i in range(gt.shape[0]):  # one random paired crop per sample, on the LQ grid
                top, left = (torch.randint(0, (s - p) // scale + 1, (1,), generator=gen, device=device).item() * scale
                             for s in gt.shape[-2:])
                gts.append(gt[i, :, top : top + p, left : left + p])
                lqs.append(lq[i, :, top // scale : (top + p) // scale, left // scale : (left + p) // scale])
            lq, gt = torch.stack(lqs), torch.stack(gts)
    if nets.channels_last:
        lq, gt = lq.contiguous(memory_format=torch.channels_last), gt.contiguous(memory_format=torch.channels_last)
    return lq, gt


def _autocast(nets: Nets) -> contextlib.AbstractContextManager:
    if nets.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=nets.device_type, dtype=nets.amp_dtype)


def _set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


def train_step(nets: Nets, lq: torch.Tensor, gt: torch.Tensor, scaler: Any) -> dict[str, torch.Tensor]:
    """One iteration: generator step, then (GAN runs) one discriminator step; returns detached loss terms.

    GAN order as MMEditing's ESRGAN: G loss = pixel + perceptual + relativistic GAN with D frozen and
    D(gt) detached; then D on real and fake halves (their gradients are summed before the single D step).
    """
    nets.net_g.train()
    with _autocast(nets):
        sr = nets.net_g(lq)
    sr32 = sr.float()
    l_pix = nets.pixel_loss(sr32, gt)
    losses = {"l_pix": l_pix}
    l_g = l_pix
    if nets.perceptual_loss is not None:
        with _autocast(nets):
            l_percep = nets.perceptual_loss(sr32, gt)
        losses["l_percep"] = l_percep.float()
        l_g = l_g + losses["l_percep"]
    if nets.net_d is not None:
        _set_requires_grad(nets.net_d, False)
        with _autocast(nets):
            real_g = nets.net_d(gt).detach()
            fake_g = nets.net_d(sr)
        losses["l_g_gan"] = nets.gan_loss.generator_loss(real_g.float(), fake_g.float())
        l_g = l_g + losses["l_g_gan"]
    nets.optimizer_g.zero_grad(set_to_none=True)
    scaler.scale(l_g).backward()
    scaler.step(nets.optimizer_g)
    if nets.net_d is not None:
        _set_requires_grad(nets.net_d, True)
        with _autocast(nets):
            fake_d = nets.net_d(sr.detach()).float()
            real_d = nets.net_d(gt).float()
        losses["l_d_real"] = nets.gan_loss.discriminator_loss_real(real_d, fake_d)
        losses["l_d_fake"] = nets.gan_loss.discriminator_loss_fake(fake_d, real_d)
        nets.optimizer_d.zero_grad(set_to_none=True)
        scaler.scale(losses["l_d_real"] + losses["l_d_fake"]).backward()
        scaler.step(nets.optimizer_d)
    scaler.update()
    return {key: value.detach() for key, value in losses.items()}


@torch.no_grad()
def validate(net: nn.Module, val_set: Any, device: torch.device) -> tuple[float, float]:
    """Mean PSNR and SSIM (RGB, no border crop) over the whole val set on uint8-rounded outputs, in fp32."""
    from facesr.metrics import psnr, ssim, tensor_to_uint8

    net.eval()
    p_values, s_values = [], []
    for item in val_set:
        sr = net(item["lq"].unsqueeze(0).to(device))[0]
        sr_u8, gt_u8 = tensor_to_uint8(sr), tensor_to_uint8(item["gt"])
        p_values.append(psnr(sr_u8, gt_u8))
        s_values.append(ssim(sr_u8, gt_u8))
    return float(np.mean(p_values)), float(np.mean(s_values))
