"""The generators the kit trains, by name: ``build_generator(name, **kwargs)``.

swinir and rcan come from spandrel and are imported only when one is built: they are listed (and configs
naming them validate) without spandrel; building one without it is one clear line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

from facesr.errors import FacesrError
from facesr.models.msrresnet_arch import MSRResNet
from facesr.models.msrresnet_basicsr_arch import MSRResNetBasicSR
from facesr.models.rrdbnet_arch import RRDBNet
from facesr.models.spandrel_support import require_spandrel


def build_swinir(**kwargs: Any) -> nn.Module:
    """The kit's SwinIR (:class:`facesr.models.swinir_arch.SwinIR`) with official constructor arguments."""
    require_spandrel()  # one clear line when it is missing or too old, also once the module is imported
    from facesr.models.swinir_arch import SwinIR

    return SwinIR(**kwargs)


def build_rcan(**kwargs: Any) -> nn.Module:
    """The kit's RCAN (:class:`facesr.models.rcan_arch.RCAN`) with official constructor arguments."""
    require_spandrel()
    from facesr.models.rcan_arch import RCAN

    return RCAN(**kwargs)


# Name -> class or builder.
GENERATORS: dict[str, Callable[..., nn.Module]] = {"msrresnet": MSRResNet, "msrresnet_basicsr": MSRResNetBasicSR,
                                                   "rrdbnet": RRDBNet, "swinir": build_swinir, "rcan": build_rcan}


def build_generator(name: str, **kwargs: object) -> nn.Module:
    """Build a generator from :data:`GENERATORS` by name (case-insensitive) with its keyword arguments.

    Args:
        name: ``msrresnet``, ``msrresnet_basicsr``, ``rrdbnet``, ``swinir`` or ``rcan`` (the last two need
            spandrel).
        **kwargs: The network's constructor arguments (for swinir and rcan the official ones).
    """
    key = str(name).lower()
    if key not in GENERATORS:
        raise FacesrError(f"unknown generator {name!r}; known generators: {', '.join(sorted(GENERATORS))}")
    cls = GENERATORS[key]
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise FacesrError(f"bad arguments for generator {name!r} {kwargs}: {exc}") from exc
