"""One training iteration: the nets of a run, batch preparation (GPU degradation, crops), the step, validation.

Kept apart from the loop (:mod:`facesr.training.loop`) so that ``benchmarks/train_step.py`` times exactly
the step the trainer runs.

A step never reads a value back from the device: whether it is applied is decided there. A step whose
loss terms or gradient norms are not all finite is skipped (weights, optimizer state, EMA and the
discriminator's BatchNorm statistics stay as they were) by fused Adam's ``found_inf`` input, the mechanism
torch's GradScaler uses to skip fp16 overflows; ``Nets.skipped`` and ``Nets.nonfinite`` say what happened
and the loop counts them on the device too (:mod:`facesr.training.guard`).

``compile``: the generator's training forward and backward go through ``torch.compile`` in its "default"
mode: inductor fuses the element-wise work around the convolutions (activations, residual adds, pixel
shuffles) and leaves the convolutions to cuDNN. Not "reduce-overhead": CUDA graphs keep a memory pool of
their own, and at the course's batch the step is long enough that kernel launches cost little; not
"max-autotune": it spends many minutes of a Colab session autotuning. The first step compiles (about a
minute); the EMA net, validation and checkpoints use the plain module.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from facesr.losses import LossTerm, RelativisticGANLoss, TermContext, run_terms, term_weight
from facesr.models import ModifiedVGG, build_generator, generator_record
from facesr.training.distributed import Ranks, wrap
from facesr.training.schedule import EMA, make_ema
from facesr.training.teacher import load_teacher, uses_teacher


@dataclass
class Nets:
    """Networks, losses and optimizers of one run, plus the numerics chosen for the device.

    ``net_g``/``net_d`` are the plain modules (optimizers, EMA and checkpoints use them); ``step_g``/``step_d``
    are what the step calls: the same modules, their DistributedDataParallel wrappers under torchrun, or the
    compiled generator (``compile``). ``terms`` holds the run's loss terms by log name (their records and
    modules, :mod:`facesr.losses`). ``skipped`` (0-d float, 1 = the last step was not applied) and
    ``nonfinite`` (one bool per name in :meth:`check_names`) describe the last step, on the device.
    """

    net_g: nn.Module
    net_g_ema: nn.Module
    optimizer_g: torch.optim.Optimizer
    terms: dict[str, tuple[LossTerm, nn.Module]] = field(default_factory=dict)
    step_g: nn.Module | None = None
    net_d: nn.Module | None = None
    step_d: nn.Module | None = None
    optimizer_d: torch.optim.Optimizer | None = None
    gan_loss: nn.Module | None = None
    amp_dtype: torch.dtype | None = None  # None = full fp32
    channels_last: bool = False
    gpu_degrade: bool = False
    device_type: str = "cpu"
    grad_clip: float = 0.0
    ema: EMA | None = None
    skipped: torch.Tensor | None = None
    nonfinite: torch.Tensor | None = None
    guarded_buffers: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.step_g = self.net_g if self.step_g is None else self.step_g  # not `or`: a compiled module has no bool
        self.step_d = self.net_d if self.step_d is None else self.step_d
        if self.ema is None:
            self.ema = EMA(self.net_g_ema, self.net_g, 0.0)

    def loss_names(self) -> tuple[str, ...]:
        """The log names of the loss terms a step returns: the generator's, then the discriminator's."""
        return tuple(self.terms) + tuple(n for term, _ in self.terms.values() for n in term.discriminator_terms)

    def check_names(self) -> tuple[str, ...]:
        """What a step checks for finiteness: its loss terms, then the gradient norm of each net it trains."""
        norms = ("gradient norm of net_g",) + (("gradient norm of net_d",) if self.net_d is not None else ())
        return self.loss_names() + norms


def amp_dtype_for(cfg: Any, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run: bf16 where the card has it (Ampere, sm_80, and newer) and the generator's
    record allows it, else fp16 with a GradScaler unless the record (SwinIR: fp16 overflows in its attention)
    or ``cfg.allow_fp16`` rules it out, then fp32 (None). The CPU always trains in fp32."""
    if device.type != "cuda" or not cfg.amp:
        return None
    record = generator_record(cfg.generator)
    if record.bf16 and torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16
    return torch.float16 if record.fp16 and getattr(cfg, "allow_fp16", True) else None


def uses_channels_last(cfg: Any, device: torch.device) -> bool:
    """channels_last for this run: on CUDA, when ``cfg.channels_last`` is on and the generator's record says it
    is convolutional (``channels_last``; not SwinIR, which works on token sequences past its first convolution);
    the discriminator, VGG, the batches and validation follow the generator.

    Args:
        cfg: The run's TrainConfig.
        device: The training device.
    """
    return device.type == "cuda" and bool(cfg.channels_last) and generator_record(cfg.generator).channels_last


def _adam(params: Any, lr: float, betas: Any) -> torch.optim.Adam:
    # fused: one kernel per step, and a found_inf input that skips the step on the device (see train_step)
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=True)


def _batchnorm_buffers(*nets: nn.Module | None) -> list[torch.Tensor]:
    """The buffers a training forward changes (BatchNorm statistics), to be restored after a skipped step."""
    out = []
    for net in nets:
        for module in net.modules() if net is not None else ():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                out += [b for b in module.buffers(recurse=False) if b is not None]
    return out


def build_nets(cfg: Any, device: torch.device, ranks: Ranks | None = None, teacher: nn.Module | None = None) -> Nets:
    """Generator (+ EMA copy), discriminator and losses for ``cfg`` on ``device`` (wrapped for DDP under torchrun,
    compiled with ``cfg.compile``); the loss terms are those of :func:`facesr.losses.run_terms`.

    A distillation run's ``teacher`` (:func:`facesr.training.teacher.load_teacher`'s, loaded here when not given)
    goes to ``device`` in the run's memory format; it stays outside every net the run saves or counts.
    """
    ranks = ranks or Ranks()
    memory_format = torch.channels_last if uses_channels_last(cfg, device) else torch.contiguous_format
    net_g = build_generator(cfg.generator, **cfg.generator_args).to(device, memory_format=memory_format)
    net_g_ema = make_ema(net_g)
    step_g = wrap(net_g, ranks, device)
    if getattr(cfg, "compile", False):
        step_g = torch.compile(step_g, mode="default", dynamic=False)
    nets = Nets(
        net_g=net_g,
        net_g_ema=net_g_ema,
        optimizer_g=_adam([p for p in net_g.parameters() if p.requires_grad], cfg.lr, cfg.betas),
        step_g=step_g,
        amp_dtype=amp_dtype_for(cfg, device),
        channels_last=memory_format is torch.channels_last,
        # the meta device stands in for a GPU in the tests: it takes the device data path too
        gpu_degrade=device.type in ("cuda", "meta") and cfg.gpu_degrade,
        device_type=device.type,
        grad_clip=float(getattr(cfg, "grad_clip", 0.0) or 0.0),
        ema=EMA(net_g_ema, net_g, cfg.ema_decay),
    )
    if cfg.gan_weight > 0:
        nets.net_d = ModifiedVGG(in_channels=3, mid_channels=64).to(device, memory_format=memory_format)
        nets.optimizer_d = _adam(nets.net_d.parameters(), cfg.lr_d, cfg.betas)
        nets.step_d = wrap(nets.net_d, ranks, device, sync_batchnorm=True)
        nets.gan_loss = RelativisticGANLoss(loss_weight=cfg.gan_weight)
    if teacher is None and uses_teacher(cfg):
        teacher = load_teacher(cfg)
    if teacher is not None:
        teacher = teacher.to(device, memory_format=memory_format)
    context = TermContext(net_d=nets.net_d, teacher=teacher)
    for term in run_terms(cfg):
        module = term.build(cfg, term_weight(cfg, term), context)
        nets.terms[term.name] = (term, module.to(device, memory_format=memory_format))  # VGG: the batches' layout
    nets.guarded_buffers = _batchnorm_buffers(nets.net_g, nets.net_d)  # after SyncBatchNorm took the layers over
    return nets


def pair_recipe(cfg: Any, on_device: bool) -> Any:
    """How the run of ``cfg`` makes its training pairs (:func:`facesr.data.pairs.run_recipe`): its edition's
    degradation with the config's settings of it, crop, ``gt_usm`` / ``usm_target``, and whether the device
    degrades (the CUDA path) or the workers do."""
    from facesr.data.pairs import run_recipe
    from facesr.editions import get_edition

    return run_recipe(get_edition(cfg.edition).degradation, cfg.gt_patch, on_device, course=cfg.course,
                      second_order=cfg.second_order, gt_usm=cfg.gt_usm, usm_target=cfg.usm_target)


def train_dataset(cfg: Any, gt_dir: Any, on_device: bool) -> Any:
    """The run's :class:`facesr.data.datasets.TrainDataset`: pairs made in the workers, or draws for the device."""
    from facesr.data.datasets import TrainDataset

    recipe = pair_recipe(cfg, on_device)
    return TrainDataset(gt_dir, gt_patch=recipe.gt_patch, flip=recipe.flip, degrade=not on_device,
                        settings=recipe.course, cache=cfg.cache, seed=cfg.seed, degradation=recipe.degradation,
                        second_order=recipe.second_order, usm_target=recipe.usm_target)


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


def _poisoned(loss: torch.Tensor) -> torch.Tensor:
    """``loss`` itself (times exactly 1) when finite, else times NaN, so that its gradients are not finite either.

    Under torchrun a loss that is not finite on one rank then makes the averaged gradients of every rank
    non-finite, so every rank skips the same step without comparing notes.
    """
    return loss * torch.where(torch.isfinite(loss), 1.0, float("nan"))


def _grad_norm(nets: Nets, optimizer: torch.optim.Optimizer, net: nn.Module, scaler: Any) -> torch.Tensor:
    """The total 2-norm of the true (unscaled) gradients of ``net``; clipped to ``grad_clip`` when that is on.

    The same arithmetic as ``torch.nn.utils.clip_grad_norm_``, kept on the device (no read back).
    """
    scaler.unscale_(optimizer)  # a no-op without fp16; with it, it also records the overflow for scaler.update
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), device=next(net.parameters()).device)
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    if nets.grad_clip > 0:
        torch._foreach_mul_(grads, torch.clamp(nets.grad_clip / (norm + 1e-6), max=1.0))
    return norm


def _apply(optimizer: torch.optim.Optimizer, skipped: torch.Tensor) -> None:
    """Fused Adam's step, skipped on the device when ``skipped`` is 1 (its step counters stay as they were)."""
    optimizer.found_inf = skipped
    try:
        optimizer.step()
    finally:
        del optimizer.found_inf


def _generator_terms(nets: Nets, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each of the run's loss terms of the generator, by log name (fp32), from the step's ``sr``/``gt``/``lq``.

    A GAN run's discriminator is frozen for them (and unfrozen by the discriminator's step).
    """
    if nets.net_d is not None:
        _set_requires_grad(nets.net_d, False)
    losses = {}
    for name, (term, module) in nets.terms.items():
        with _autocast(nets) if term.autocast else contextlib.nullcontext():
            losses[name] = module(*(inputs[key] for key in term.inputs)).float()
    return losses


def train_step(nets: Nets, lq: torch.Tensor, gt: torch.Tensor, scaler: Any) -> dict[str, torch.Tensor]:
    """One iteration: generator step, then (GAN runs) one discriminator step; returns detached loss terms.

    The generator's loss is the sum of the run's terms (:func:`facesr.losses.run_terms`, in their order). GAN
    order as MMEditing's ESRGAN: G loss = pixel + perceptual + relativistic GAN with D frozen and
    D(gt) detached; then D on real and fake halves (their gradients are summed before the single D step).
    D's gradients are computed before either net steps (D's pass does not depend on G's new weights), so
    that both steps are applied, or skipped, together. With ``grad_clip`` > 0 the gradient norm of each net
    is clipped to it before its optimizer step.

    A step with a loss term or gradient norm that is not finite is not applied (see the module docstring);
    ``nets.skipped`` and ``nets.nonfinite`` record it on the device.
    """
    saved = [b.clone() for b in nets.guarded_buffers]
    nets.step_g.train()
    with _autocast(nets):
        sr = nets.step_g(lq)
    inputs = {"sr": sr.float(), "gt": gt, "lq": lq}
    losses = _generator_terms(nets, inputs)
    l_g = None
    for value in losses.values():  # in the terms' order, one addition at a time
        l_g = value if l_g is None else l_g + value
    nets.optimizer_g.zero_grad(set_to_none=True)
    scaler.scale(_poisoned(l_g)).backward()
    norms = {"gradient norm of net_g": _grad_norm(nets, nets.optimizer_g, nets.net_g, scaler)}
    if nets.net_d is not None:
        _set_requires_grad(nets.net_d, True)
        with _autocast(nets):
            fake_d = nets.step_d(sr.detach()).float()
            real_d = nets.step_d(gt).float()
        losses["l_d_real"] = nets.gan_loss.discriminator_loss_real(real_d, fake_d)
        losses["l_d_fake"] = nets.gan_loss.discriminator_loss_fake(fake_d, real_d)
        nets.optimizer_d.zero_grad(set_to_none=True)
        scaler.scale(_poisoned(losses["l_d_real"] + losses["l_d_fake"])).backward()
        norms["gradient norm of net_d"] = _grad_norm(nets, nets.optimizer_d, nets.net_d, scaler)
    checks = {**losses, **norms}
    nets.nonfinite = ~torch.isfinite(torch.stack([checks[n].detach().float().reshape(()) for n in nets.check_names()]))
    nets.skipped = nets.nonfinite.any().float()
    _apply(nets.optimizer_g, nets.skipped)
    if nets.net_d is not None:
        _apply(nets.optimizer_d, nets.skipped)
    scaler.update()  # fp16: a skipped step backs the loss scale off, as a GradScaler overflow does
    for buf, old in zip(nets.guarded_buffers, saved, strict=True):
        buf.copy_(torch.where(nets.skipped > 0, old, buf))
    return {key: value.detach() for key, value in losses.items()}


@torch.no_grad()
def validate(net: nn.Module, val_set: Any, device: torch.device, channels_last: bool = False) -> tuple[float, float]:
    """Mean PSNR and SSIM (RGB, no border crop) over the whole val set on uint8-rounded outputs, in full fp32.

    Args:
        net: The network to score (the run's EMA generator).
        val_set: Items with ``lq`` and ``gt`` tensors (:class:`facesr.data.datasets.ValDataset`).
        device: Where ``net`` is.
        channels_last: Feed the LQ images in channels_last, the layout the run trains in (``Nets.channels_last``).
    """
    from facesr.metrics import exact_fp32, psnr, ssim, tensor_to_uint8

    net.eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    p_values, s_values = [], []
    for item in val_set:
        with exact_fp32():  # the same score on every card (no TF32)
            sr = net(item["lq"].unsqueeze(0).to(device, memory_format=memory_format))[0]
        sr_u8, gt_u8 = tensor_to_uint8(sr), tensor_to_uint8(item["gt"])
        p_values.append(psnr(sr_u8, gt_u8))
        s_values.append(ssim(sr_u8, gt_u8))
    return float(np.mean(p_values)), float(np.mean(s_values))
