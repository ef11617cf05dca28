"""Training losses with MMEditing 0.x semantics: pixel losses, VGG perceptual loss, relativistic GAN loss, the
distillation term of a teacher's output; and the record of each term of the generator's loss (:class:`LossTerm`).

All losses use mean reduction and return a scalar tensor already multiplied by their weight, so the
trainer only sums them (docs/course.md section 6).

One record per term says what the kit needs to know of it: its log name, its weight and how to build it.
The step computes the terms a run uses (:func:`run_terms`) by name, the non-finite guard names them, and
``log.csv`` has one column each; :func:`register_loss_term` adds a term from anywhere (a notebook, a test)
without editing the library. A registered term's weight is a field of the config when the kit has one for it
(``pixel_weight``, ``perceptual_weight``, ``gan_weight``), else an entry of ``TrainConfig.loss_weights``
(``--set loss_weights.fft_weight=0.1``), saved in config.json and compared on resume like any field.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facesr.errors import FacesrError
from facesr.models.vgg_arch import VGGFeatureExtractor


class _WeightedLoss(nn.Module):
    """``loss_weight * criterion(pred, target)`` with mean reduction.

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
    """

    criterion = staticmethod(F.l1_loss)

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * self.criterion(pred, target)


class L1Loss(_WeightedLoss):
    """Mean absolute error times ``loss_weight`` (the base class's default criterion)."""


class MSELoss(_WeightedLoss):
    """Mean squared error times ``loss_weight``."""

    criterion = staticmethod(F.mse_loss)


class CharbonnierLoss(nn.Module):
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps))`` times ``loss_weight`` (MMEditing form).

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        eps (float): Keeps the gradient finite where pred == target. Default: 1e-12.
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-12) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * torch.sqrt((pred - target) ** 2 + self.eps).mean()


PIXEL_LOSSES: dict[str, type[nn.Module]] = {
    "l1": L1Loss,
    "charbonnier": CharbonnierLoss,
    "l2": MSELoss,
    "mse": MSELoss,
}


def build_pixel_loss(kind: str, loss_weight: float = 1.0) -> nn.Module:
    """Build the pixel loss named ``kind`` ("l1", "charbonnier", "l2" or "mse").

    Raises:
        FacesrError: ``kind`` is not one of the known names.
    """
    key = str(kind).lower()
    if key not in PIXEL_LOSSES:
        raise FacesrError(f"unknown pixel loss {kind!r}; use one of {', '.join(PIXEL_LOSSES)}")
    return PIXEL_LOSSES[key](loss_weight=loss_weight)


class PerceptualLoss(nn.Module):
    """VGG19 perceptual loss: ``perceptual_weight * sum_k w_k * criterion(vgg_k(sr), vgg_k(gt))``.

    The ESRGAN setting is one layer, ``'34'`` (conv5_4 before ReLU), L1 criterion, weight 1.0, no
    style term. The VGG is frozen; gradients flow only to ``sr``.

    Args:
        layer_weights (Mapping[str, float]): VGG19 ``features`` index -> weight. Default: {'34': 1.0}.
        criterion (str): "l1" or "l2" (mean reduction). Default: "l1".
        perceptual_weight (float): Multiplier of the whole loss. Default: 1.0.
        weights (str | None): VGG weights: "imagenet", a local file path, or "random"/None
            (see ``VGGFeatureExtractor``). Default: "imagenet".
        use_input_norm (bool): Normalise [0, 1] inputs with ImageNet statistics. Default: True.
    """

    def __init__(
        self,
        layer_weights: Mapping[str, float] | None = None,
        criterion: str = "l1",
        perceptual_weight: float = 1.0,
        weights: str | os.PathLike | None = "imagenet",
        use_input_norm: bool = True,
    ) -> None:
        super().__init__()
        if layer_weights is None:
            layer_weights = {"34": 1.0}
        self.layer_weights = {str(name): float(w) for name, w in layer_weights.items()}
        if criterion not in ("l1", "l2"):
            raise FacesrError(f"unknown perceptual criterion {criterion!r}; use 'l1' or 'l2'")
        self.criterion = criterion
        self.perceptual_weight = perceptual_weight
        self.vgg = VGGFeatureExtractor(
            list(self.layer_weights), weights=weights, use_input_norm=use_input_norm
        )

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """Loss for ``sr`` and ``gt`` of shape (B, 3, H, W) in [0, 1]."""
        sr_features = self.vgg(sr)
        with torch.no_grad():  # gt is a fixed target (MMEditing detaches it); saves the graph memory
            gt_features = self.vgg(gt.detach())
        loss_fn = F.l1_loss if self.criterion == "l1" else F.mse_loss
        loss = sr.new_zeros(())
        for name, weight in self.layer_weights.items():
            loss = loss + weight * loss_fn(sr_features[name], gt_features[name])
        return loss * self.perceptual_weight


class RelativisticGANLoss(nn.Module):
    """Relativistic average GAN loss with BCE-with-logits, as in MMEditing's ESRGAN.

    Generator:  ``loss_weight * 0.5 * [BCE(fake - mean(real), 1) + BCE(real - mean(fake), 0)]``.
    Discriminator (two halves, each backpropagated on its own, no ``loss_weight``):
    ``0.5 * BCE(real - mean(fake.detach()), 1)`` and ``0.5 * BCE(fake - mean(real.detach()), 0)``.

    Args:
        loss_weight (float): Weight of the generator's adversarial term. Default: 5e-3.
    """

    def __init__(self, loss_weight: float = 5e-3) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    @staticmethod
    def _bce(logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    def generator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Adversarial term of the generator; ``real_logits`` = D(gt) (detached here), ``fake_logits`` = D(sr)."""
        real_logits = real_logits.detach()
        loss_fake = self._bce(fake_logits - real_logits.mean(), True)
        loss_real = self._bce(real_logits - fake_logits.mean(), False)
        return self.loss_weight * 0.5 * (loss_fake + loss_real)

    def discriminator_loss_real(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """``0.5 * BCE(D(gt) - mean(D(sr).detach()), 1)``."""
        return 0.5 * self._bce(real_logits - fake_logits.detach().mean(), True)

    def discriminator_loss_fake(self, fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        """``0.5 * BCE(D(sr.detach()) - mean(D(gt).detach()), 0)``."""
        return 0.5 * self._bce(fake_logits - real_logits.detach().mean(), False)


class GeneratorGANLoss(nn.Module):
    """The generator's relativistic GAN term of a step: ``D(gt)`` (detached) and ``D(sr)`` through the run's
    discriminator, which the step freezes for it (its plain module: no gradient of D to synchronise).

    Args:
        net_d: The run's discriminator.
        loss_weight: Weight of the term (``gan_weight``).
    """

    def __init__(self, net_d: nn.Module, loss_weight: float = 5e-3) -> None:
        super().__init__()
        self.net_d = net_d
        self.gan = RelativisticGANLoss(loss_weight=loss_weight)

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        real = self.net_d(gt).detach()
        fake = self.net_d(sr)
        return self.gan.generator_loss(real.float(), fake.float())


class DistillationLoss(nn.Module):
    """``loss_weight * L1(sr, teacher(lq))``: the student follows a frozen teacher's output on the same batch.

    The teacher runs in eval mode without gradients (its output is a fixed target, as the GT is), under
    whatever autocast the step runs this term in. It is held outside the module tree: not a submodule, so no
    ``state_dict``, ``parameters()`` or ``.to()`` of this module, or of anything the run saves or counts,
    reaches it (:func:`facesr.training.teacher.load_teacher` puts it on the run's device).

    Args:
        teacher: The teacher generator (same scale as the student).
        loss_weight: Weight of the term (``distill_weight``).
    """

    def __init__(self, teacher: nn.Module, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._teacher = (teacher.eval().requires_grad_(False),)  # a tuple: not registered as a submodule

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def forward(self, sr: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.teacher(lq).float()
        return self.loss_weight * F.l1_loss(sr, target)


# ------------------------------------------------------------------------------ the terms of the generator's loss

TERM_INPUTS = ("sr", "gt", "lq")  # what a term may be computed from: the output (fp32), the GT, the LQ
PIXEL_TERM = "l_pix"  # in every run: the progress bar's loss, log.csv's first loss column
DISTILL_TERM = "l_distill"  # runs with a teacher: L1 to the teacher's output, its own log.csv column


@dataclass(frozen=True)
class TermContext:
    """What building a term may need besides the run's config.

    Args:
        net_d: The run's discriminator (GAN runs), else None.
        teacher: The run's teacher (runs with ``distill_weight`` > 0), loaded by
            :func:`facesr.training.teacher.load_teacher`, else None.
    """

    net_d: nn.Module | None = None
    teacher: nn.Module | None = None


@dataclass(frozen=True)
class LossTerm:
    """One term of the generator's loss, written once.

    Args:
        name: Its log name: the key the step returns, the column of log.csv, the name the guard reports.
        weight: Its weight: a field of the run's config (``perceptual_weight``), or for a term the config has no
            field for, its key in ``TrainConfig.loss_weights``.
        build: ``build(cfg, weight, context)`` -> the module that computes the weighted term.
        inputs: What the module is called with, in order: ``"sr"`` (the output, fp32), ``"gt"``, ``"lq"``.
        autocast: Computed under the run's autocast (a network runs inside), else in fp32.
        required: In every run whatever its weight (the pixel loss); else in a run whose weight is > 0 and,
            when given, ``active(cfg)`` holds.
        active: A further condition on the config (the perceptual loss needs layers).
        discriminator_terms: The log names of the discriminator's terms that come with it (the GAN term).
    """

    name: str
    weight: str
    build: Callable[[Any, float, TermContext], nn.Module]
    inputs: tuple[str, ...] = ("sr", "gt")
    autocast: bool = False
    required: bool = False
    active: Callable[[Any], bool] | None = None
    discriminator_terms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.weight.isidentifier():
            raise FacesrError(f"loss term {self.name!r} (weight {self.weight!r}): use identifiers, e.g. "
                              "name='l_fft', weight='fft_weight'")
        if not self.inputs or any(i not in TERM_INPUTS for i in self.inputs):
            raise FacesrError(f"loss term {self.name!r}: inputs {self.inputs} must name {', '.join(TERM_INPUTS)}")


def _gan_term(cfg: Any, weight: float, context: TermContext) -> nn.Module:
    if context.net_d is None:
        raise FacesrError("the relativistic GAN term needs the run's discriminator (gan_weight > 0 builds it)")
    return GeneratorGANLoss(context.net_d, loss_weight=weight)


def _distill_term(cfg: Any, weight: float, context: TermContext) -> nn.Module:
    if context.teacher is None:
        raise FacesrError("the distillation term needs the run's teacher (teacher=RUN_OR_CKPT with distill_weight > 0)")
    return DistillationLoss(context.teacher, loss_weight=weight)


# Every registered term, in the order the step adds them up and log.csv lists them (the kit's own, at the end
# of this module, first).
_TERMS: dict[str, LossTerm] = {}


def register_loss_term(term: LossTerm, replace: bool = False) -> LossTerm:
    """Add ``term`` to the terms a run may use (the same term again changes nothing) and return it.

    Args:
        term: The term's record.
        replace: Replace another term of the same name (else FacesrError).
    """
    old = _TERMS.get(term.name)
    if old is not None and old != term and not replace:
        raise FacesrError(f"a loss term named {term.name!r} is registered already; pick another name or pass "
                          "replace=True")
    taken = {n for t in _TERMS.values() if t.name != term.name for n in (t.name, *t.discriminator_terms)}
    clash = taken & {term.name, *term.discriminator_terms}
    if clash:
        raise FacesrError(f"loss term {term.name!r}: the log name(s) {', '.join(sorted(clash))} are another "
                          "term's; pick others")
    _TERMS[term.name] = term
    return term


def unregister_loss_term(name: str) -> LossTerm:
    """Remove the term ``name`` and return its record (FacesrError when unknown)."""
    if name not in _TERMS:
        raise FacesrError(f"unknown loss term {name!r}; known: {', '.join(_TERMS)}")
    return _TERMS.pop(name)


def loss_terms() -> tuple[LossTerm, ...]:
    """Every registered term, in the order the step adds them up (the kit's own first)."""
    return tuple(_TERMS.values())


def term_weight(cfg: Any, term: LossTerm) -> float:
    """The weight of ``term`` in the run of ``cfg``: its config field, else its entry in ``cfg.loss_weights``."""
    if hasattr(cfg, term.weight):
        return float(getattr(cfg, term.weight))
    return float((getattr(cfg, "loss_weights", None) or {}).get(term.weight, 0.0))


def run_terms(cfg: Any) -> tuple[LossTerm, ...]:
    """The terms the run of ``cfg`` trains on, in order (:attr:`LossTerm.required`, else a weight > 0)."""
    return tuple(t for t in _TERMS.values()
                 if t.required or (term_weight(cfg, t) > 0 and (t.active is None or t.active(cfg))))


for _term in (
    LossTerm(PIXEL_TERM, "pixel_weight", lambda cfg, w, ctx: build_pixel_loss(cfg.pixel_loss, loss_weight=w),
             required=True),
    LossTerm("l_percep", "perceptual_weight",
             lambda cfg, w, ctx: PerceptualLoss(layer_weights=cfg.perceptual_layers, criterion="l1",
                                                perceptual_weight=w, weights=cfg.vgg_weights),
             autocast=True, active=lambda cfg: bool(cfg.perceptual_layers)),
    LossTerm("l_g_gan", "gan_weight", _gan_term, autocast=True, discriminator_terms=("l_d_real", "l_d_fake")),
    LossTerm(DISTILL_TERM, "distill_weight", _distill_term, inputs=("sr", "lq"), autocast=True,
             active=lambda cfg: bool(getattr(cfg, "teacher", None))),
):
    register_loss_term(_term)
