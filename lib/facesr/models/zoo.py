"""Foreign state dicts through spandrel (chaiNNer's and ComfyUI's model zoo): which kit generator rebuilds
one, or any spandrel-supported SR network as a plain module.

Two questions about a state dict (its plain keys, as :func:`facesr.weights.checkpoints.extract_state_dict`
returns them; ``params`` / ``params_ema`` / prefixes are unwrapped there):

- :func:`spandrel_architecture`: which kit generator and kwargs rebuild it (SwinIR, RCAN, RRDBNet), or None;
- :func:`spandrel_model`: any spandrel-supported RGB super-resolution model, as a plain ``nn.Module``.

spandrel is imported only when a state dict is asked about (:mod:`facesr.models.spandrel_support`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch.nn as nn

from facesr.errors import FacesrError
from facesr.models.record import GeneratorRecord
from facesr.models.registry import build_generator, spandrel_record
from facesr.models.spandrel_support import require_spandrel, spandrel_arch_id
from facesr.models.state_dicts import generator_architecture

_DIV2K_MEAN_R = 0.4488  # RCAN's MeanShift: sub_mean.bias = -rgb_range * DIV2K mean


def _load_descriptor(sd: Mapping) -> Any | None:
    """spandrel's model descriptor of ``sd`` (a copy: spandrel renames keys in place); None if unknown."""
    spandrel = require_spandrel()
    try:
        return spandrel.ModelLoader().load_from_state_dict(dict(sd))
    except spandrel.UnsupportedModelError:
        return None
    except Exception as exc:  # detected, but the weights do not build that network
        arch = spandrel_arch_id(sd) or "a spandrel architecture"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FacesrError(f"the state dict looks like {arch} but spandrel cannot build it: {first}") from None


def _kit_kwargs(record: GeneratorRecord, model: nn.Module, sd: Mapping) -> dict:
    """The kit generator kwargs of a spandrel-built ``model``: the record's spelled-out arguments always, the
    others where they differ from the official defaults."""
    spelled = record.spandrel_args
    official = {
        name: p.default for name, p in inspect.signature(type(model).__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    hp = dict(model.hyperparameters)
    kwargs = {k: hp[k] for k in spelled if k in hp}
    kwargs.update({k: v for k, v in hp.items() if k not in kwargs and k in official and v != official[k]})
    if record.spandrel == "RCAN" and kwargs.get("norm") and "sub_mean.bias" in sd:
        # spandrel calls rgb_range undetectable and assumes 255; the mean shift's bias holds it
        kwargs["rgb_range"] = round(-float(sd["sub_mean.bias"][0]) / _DIV2K_MEAN_R)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def spandrel_architecture(sd: Mapping) -> tuple[str, dict] | None:
    """The kit generator (name, kwargs) that spandrel finds in ``sd``, so that a strict load fits; else None.

    Args:
        sd: A state dict with plain keys (SwinIR and RCAN files as their authors save them, after unwrapping).

    Returns:
        ``("swinir", {...})`` or ``("rcan", {...})`` (a registered record's ``spandrel`` id) with official
        constructor arguments for :func:`facesr.models.build_generator`; ``("rrdbnet", {...})`` for an ESRGAN
        dict with the kit's key names; None for a non-spandrel dict and for architectures no record names.
    """
    require_spandrel()
    record = spandrel_record(spandrel_arch_id(sd))
    if record is None:
        return None
    if not record.spandrel_args:  # the kit's key-based detection rebuilds it (RRDBNet: spandrel's ESRGAN)
        found = generator_architecture(sd)
        return found if found and found[0] == record.name else None
    descriptor = _load_descriptor(sd)
    if descriptor is None or record.spandrel_class not in ("", type(descriptor.model).__name__):
        return None  # another network of the same id (the original PLKSR): spandrel_model builds it as it is
    return record.name, _kit_kwargs(record, descriptor.model, sd)


def spandrel_model(sd: Mapping) -> nn.Module:
    """Any spandrel-supported RGB super-resolution model holding ``sd``, in eval mode, RGB in [0, 1] in/out.

    SwinIR and RCAN come back as the kit's classes (an RCAN from spandrel would scale the caller's input
    in place); other architectures as spandrel builds them (``descriptor.model``).

    Args:
        sd: A state dict (spandrel undoes ``module.`` prefixes and ``params_ema`` / ``params`` wrappers).

    Raises:
        FacesrError: spandrel is missing, recognises nothing in ``sd``, or finds no RGB SR model in it.
    """
    sd = require_spandrel().canonicalize_state_dict(dict(sd))
    found = spandrel_architecture(sd)
    if found is not None:
        net = build_generator(found[0], **found[1])
        net.load_state_dict(dict(sd), strict=True)
        return net.eval()
    descriptor = _load_descriptor(sd)
    if descriptor is None:
        keys = [str(k) for k in list(sd)[:3]]
        raise FacesrError(
            f"spandrel recognises no architecture in this state dict ({len(sd)} keys: {', '.join(keys)}"
            f"{', ...' if len(sd) > 3 else ''}); it is neither a kit nor a spandrel-supported model"
        )
    arch = str(descriptor.architecture.id)
    purpose = getattr(descriptor, "purpose", "?")
    channels = (getattr(descriptor, "input_channels", 0), getattr(descriptor, "output_channels", 0))
    if purpose != "SR" or channels != (3, 3):
        raise FacesrError(
            f"spandrel reads this state dict as {arch} ({purpose}, x{descriptor.scale}, {channels[0]} -> "
            f"{channels[1]} channels), not an RGB super-resolution model; use an SR checkpoint"
        )
    return descriptor.model.eval()
