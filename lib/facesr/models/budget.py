"""The parameter budget: counting as the handout counts, each edition's limit, and the check against it."""

from __future__ import annotations

import torch
import torch.nn as nn

from facesr.editions import Edition, get_edition
from facesr.errors import FacesrError
from facesr.models.vgg_arch import VGGFeatureExtractor


def count_parameters(net: nn.Module) -> int:
    """Number of parameters of ``net`` as the handout counts them: ``sum(p.numel() for p in net.parameters())``.

    Frozen parameters count too (RCAN's mean shift, an EMA copy with ``requires_grad`` off); buffers
    (SwinIR's attention masks and position indices, BatchNorm statistics) do not.
    """
    return sum(p.numel() for p in net.parameters())


def param_limit(edition: int | str | Edition | None = None) -> int:
    """The most generator parameters a submission of ``edition`` may have (None: :func:`get_edition`'s).

    2022: 1,821,085 (120 % of MSRResNet-16); 2023-2025: 2,276,356 (150 %). A net with exactly the limit fits.
    """
    return get_edition(edition).param_limit


def check_param_budget(net: nn.Module, edition: int | str | Edition | None = None) -> int:
    """Return the parameter count of ``net`` (see :func:`count_parameters`); FacesrError if over the limit.

    Args:
        net: The generator.
        edition: Whose limit applies (:func:`facesr.editions.get_edition`; None: ``FACESR_EDITION``, else 2022).
    """
    ed = get_edition(edition)
    n = count_parameters(net)
    if n > ed.param_limit:
        raise FacesrError(
            f"{type(net).__name__} has {n:,} parameters, over the course limit of {ed.param_limit:,} of the "
            f"{ed.year} edition (by {n - ed.param_limit:,}); use fewer blocks or channels"
        )
    return n


def perceptual_vgg_params() -> int:
    """All parameters (frozen included) of the perceptual loss's VGG19 ``features[:35]``: 20,024,384.

    Counted on a :class:`VGGFeatureExtractor` cut at layer ``'34'`` (conv5_4), built on the meta
    device with random init: no memory, no download.
    """
    with torch.device("meta"):
        vgg = VGGFeatureExtractor(["34"], weights=None)
    return sum(p.numel() for p in vgg.parameters())
