"""Training losses with MMEditing 0.x semantics: pixel losses, VGG perceptual loss, relativistic GAN loss.

All losses use mean reduction and return a scalar tensor already multiplied by their weight, so the
trainer only sums them (docs/course.md section 6).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

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
