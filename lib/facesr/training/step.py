"""One training iteration: the nets of a run, batch preparation (GPU degradation, crops), the step, validation.

Kept apart from the loop (:mod:`facesr.training.loop`) so that ``benchmarks/train_step.py`` times exactly
the step the trainer runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from facesr.training.distributed import Ranks, wrap
from facesr.training.schedule import make_ema


@dataclass
class Nets:
    """Networks, losses and optimizers of one run, plus the numerics chosen for the device.

    ``net_g``/``net_d`` are the plain modules (optimizers, EMA and checkpoints use them); ``step_g``/``step_d``
    are what the step calls: the same modules, or their DistributedDataParallel wrappers under torchrun.
    """

    net_g: nn.Module
    net_g_ema: nn.Module
    optimizer_g: torch.optim.Optimizer
    pixel_loss: nn.Module
    step_g: nn.Module | None = None
    net_d: nn.Module | None = None
    step_d: nn.Module | None = None
    optimizer_d: torch.optim.Optimizer | None = None
    perceptual_loss: nn.Module | None = None
    gan_loss: nn.Module | None = None
    amp_dtype: torch.dtype | None = None  # None = full fp32
    channels_last: bool = False
    gpu_degrade: bool = False
    device_type: str = "cpu"
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
        self.step_g = self.step_g or self.net_g
        self.step_d = self.step_d or self.net_d


def amp_dtype_for(cfg: Any, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run: bf16 where the card has it (Ampere, sm_80, and newer), else fp16 with a
    GradScaler unless ``cfg.allow_fp16`` is off (SwinIR: fp16 overflows in its attention), then fp32 (None).
    The CPU always trains in fp32."""
    if device.type != "cuda" or not cfg.amp:
        return None
    if torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16
    return torch.float16 if getattr(cfg, "allow_fp16", True) else None


def build_nets(cfg: Any, device: torch.device, ranks: Ranks | None = None) -> Nets:
    """Generator (+ EMA copy), discriminator and losses for ``cfg`` on ``device`` (wrapped for DDP under torchrun)."""
    from facesr.losses import PerceptualLoss, RelativisticGANLoss, build_pixel_loss
    from facesr.models import ModifiedVGG, build_generator

    ranks = ranks or Ranks()
    cuda = device.type == "cuda"
    memory_format = torch.channels_last if cuda and cfg.channels_last else torch.contiguous_format
    net_g = build_generator(cfg.generator, **cfg.generator_args).to(device, memory_format=memory_format)
    nets = Nets(
        net_g=net_g,
        net_g_ema=make_ema(net_g),
        optimizer_g=torch.optim.Adam([p for p in net_g.parameters() if p.requires_grad], lr=cfg.lr,
                                     betas=tuple(cfg.betas)),
        pixel_loss=build_pixel_loss(cfg.pixel_loss, loss_weight=cfg.pixel_weight).to(device),
        step_g=wrap(net_g, ranks, device),
        amp_dtype=amp_dtype_for(cfg, device),
        channels_last=memory_format is torch.channels_last,
        gpu_degrade=cuda and cfg.gpu_degrade,
        device_type=device.type,
        grad_clip=float(getattr(cfg, "grad_clip", 0.0) or 0.0),
    )
    if cfg.gan_weight > 0:
        nets.net_d = ModifiedVGG(in_channels=3, mid_channels=64).to(device, memory_format=memory_format)
        nets.optimizer_d = torch.optim.Adam(nets.net_d.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
        nets.step_d = wrap(nets.net_d, ranks, device, sync_batchnorm=True)
        nets.gan_loss = RelativisticGANLoss(loss_weight=cfg.gan_weight)
    if cfg.perceptual_weight > 0 and cfg.perceptual_layers:
        nets.perceptual_loss = PerceptualLoss(
            layer_weights=cfg.perceptual_layers,
            criterion="l1",
            perceptual_weight=cfg.perceptual_weight,
            weights=cfg.vgg_weights,
        ).to(device, memory_format=memory_format)
    return nets


def pair_recipe(cfg: Any, on_device: bool) -> Any:
    """How a run makes its training pairs (:class:`facesr.data.pairs.PairRecipe`): its edition's degradation,
    crop, ``gt_usm`` / ``usm_target``, and whether the device degrades (the CUDA path) or the workers do."""
    from facesr.data.pairs import PairRecipe
    from facesr.data.second_order import SecondOrderSettings
    from facesr.editions import get_edition

    degradation = get_edition(cfg.edition).degradation
    second_order = SecondOrderSettings(gt_usm=cfg.gt_usm) if degradation == "second_order" else None
    return PairRecipe(degradation=degradation, gt_patch=cfg.gt_patch, flip=True, on_device=on_device,
                      second_order=second_order, usm_target=cfg.usm_target)


def train_dataset(cfg: Any, gt_dir: Any, on_device: bool) -> Any:
    """The run's :class:`facesr.data.datasets.TrainDataset`: pairs made in the workers, or draws for the device."""
    from facesr.data.datasets import TrainDataset

    recipe = pair_recipe(cfg, on_device)
    return TrainDataset(gt_dir, gt_patch=recipe.gt_patch, flip=recipe.flip, degrade=not on_device, cache=cfg.cache,
                        seed=cfg.seed, degradation=recipe.degradation, second_order=recipe.second_order,
                        usm_target=recipe.usm_target)


def prepare_batch(batch: dict, cfg: Any, nets: Nets, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(lq, gt) on ``device``: the workers' pairs, or (the GPU path) the pairs made there from the workers' draws.

    Every sample is drawn from a generator seeded by its ``seed`` entry ((seed, iteration, index in the global
    batch), from :class:`facesr.training.schedule.IterationBatchSampler`), so the batch a rank trains on does not
    depend on how many ranks share the global batch. The GPU path reads nothing back from the device
    (:func:`facesr.data.pairs.pairs_on_device`).
    """
    from facesr.data.pairs import pairs_on_device

    if nets.gpu_degrade:
        lq, gt = pairs_on_device(batch, pair_recipe(cfg, on_device=True), device)
    else:
        gt = batch["gt"].to(device, non_blocking=True)
        lq = batch["lq"].to(device, non_blocking=True)
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


def _optimizer_step(nets: Nets, optimizer: torch.optim.Optimizer, net: nn.Module, scaler: Any) -> None:
    if nets.grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the loss-scaled ones
        torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.grad is not None], nets.grad_clip)
    scaler.step(optimizer)


def train_step(nets: Nets, lq: torch.Tensor, gt: torch.Tensor, scaler: Any) -> dict[str, torch.Tensor]:
    """One iteration: generator step, then (GAN runs) one discriminator step; returns detached loss terms.

    GAN order as MMEditing's ESRGAN: G loss = pixel + perceptual + relativistic GAN with D frozen and
    D(gt) detached; then D on real and fake halves (their gradients are summed before the single D step).
    With ``grad_clip`` > 0 the gradient norm of each net is clipped to it before its optimizer step.
    """
    nets.step_g.train()
    with _autocast(nets):
        sr = nets.step_g(lq)
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
        with _autocast(nets):  # D frozen: the plain module, no gradient of D to synchronise
            real_g = nets.net_d(gt).detach()
            fake_g = nets.net_d(sr)
        losses["l_g_gan"] = nets.gan_loss.generator_loss(real_g.float(), fake_g.float())
        l_g = l_g + losses["l_g_gan"]
    nets.optimizer_g.zero_grad(set_to_none=True)
    scaler.scale(l_g).backward()
    _optimizer_step(nets, nets.optimizer_g, nets.net_g, scaler)
    if nets.net_d is not None:
        _set_requires_grad(nets.net_d, True)
        with _autocast(nets):
            fake_d = nets.step_d(sr.detach()).float()
            real_d = nets.step_d(gt).float()
        losses["l_d_real"] = nets.gan_loss.discriminator_loss_real(real_d, fake_d)
        losses["l_d_fake"] = nets.gan_loss.discriminator_loss_fake(fake_d, real_d)
        nets.optimizer_d.zero_grad(set_to_none=True)
        scaler.scale(losses["l_d_real"] + losses["l_d_fake"]).backward()
        _optimizer_step(nets, nets.optimizer_d, nets.net_d, scaler)
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
