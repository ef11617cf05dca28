"""The record of one generator: what the kit needs to know of a network, written once beside the network.

Each network's file ends with its record (``msrresnet_arch.py``, ``msrresnet_basicsr_arch.py``,
``rrdbnet_arch.py``); a network built on spandrel keeps its record in ``<net>_record.py`` beside its
``<net>_arch.py``, because the arch module cannot be imported without spandrel while the record must be
(configs naming SwinIR validate, and ``params`` lists it, without spandrel). :mod:`facesr.models.registry`
collects them; :func:`facesr.models.registry.register_generator` adds one from anywhere (a notebook, a test).

Who reads what: the registry builds the net (``build``); quick mode shrinks it (``quick``, ``quick_note``);
``python -m facesr params`` and the report's tables label it (``label``, ``title``, ``depth_arg``); the
trainer picks its memory format and AMP dtype (``channels_last``, ``fp16``, ``bf16``); the named configs
of each edition make an in-budget config of it with an MSE finish, the largest of its ``sizes`` that fits
the edition's limit, with its ``train_settings`` (notebook 07 offers it, the report styles it with
``color``); the BasicSR export and spandrel's detection map it to the names other frameworks give it;
:func:`facesr.models.sizing.size_to_budget` searches its ``knobs`` for the largest size within a limit; a net
that trains in another form than it is submitted (SPAN's re-parameterisable branches) says how to ``fuse`` it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

from facesr.errors import FacesrError

_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class SizeKnobs:
    """The arguments :func:`facesr.models.sizing.size_to_budget` varies to size a network to a limit.

    Args:
        width: The argument that sets the width (channels); the parameter count grows with it.
        widths: Its values to try, ascending (a step that keeps heads and groups whole).
        depths: The depth settings to try, each a dict of arguments (e.g. ``{"res_num": 5}``, or
            ``{"depths": [6, 6], "num_heads": [6, 6]}`` where two arguments go together); each is tried with
            every width. ``({},)``: the depth is fixed (SPAN's six blocks).
    """

    width: str
    widths: tuple[int, ...]
    depths: tuple[Mapping[str, Any], ...] = ({},)


@dataclass(frozen=True)
class GeneratorRecord:
    """Everything the kit needs to know of one generator (``TrainConfig.generator`` names it).

    Args:
        name: The registry name (lower case, also the name of its in-budget config and run folder).
        build: The class or function that builds the net from its keyword arguments.
        title: The network's name in the report's legends and tables, e.g. ``"SwinIR"``.
        label: A short name of one size of it from its arguments (the defaults filled in), e.g.
            ``lambda a: f"MSRResNet-{a['num_blocks']}"``; None: the title.
        defaults: The constructor's default (official) arguments: labels and exports fill missing ones from it.
        quick: Quick mode's shrink (:mod:`facesr.config.quick_mode`): ``iters`` and ``lr`` of a quick run and
            the ``generator_args`` it overrides; missing ones take quick mode's defaults and the config's lr.
        quick_note: What quick mode keeps of the net, for the config table ("RRDBNet keeps 2 of its 23 blocks").
        channels_last: A convolutional net whose cuDNN kernels want channels_last on CUDA (not a transformer:
            past its first convolution it works on token sequences, where the layout only adds conversions).
        fp16: fp16 autocast (with a GradScaler) is safe on cards without bf16 (SwinIR's attention overflows).
        bf16: bf16 autocast is safe on cards that have it.
        depth_arg: For nets sized by depth alone (MSRResNet): the argument that adds one block; ``params``
            lists the first depth past the limit.
        sizes: In-budget sizes, keyed by their parameter count (the handout's count; a test counts each):
            each edition gets an in-budget config of the net (and its ``_l2`` MSE finish) at the largest size
            that fits its limit. Empty: no in-budget config.
        train_settings: That config's own settings beside the shared in-budget recipe (TrainConfig field ->
            value), e.g. SwinIR's LQ patch and gradient clipping.
        color: Its in-budget config's colour in every report figure (its MSE finish gets a darker shade).
        basicsr: BasicSR's class whose state dict has the kit's key names (``export --format basicsr``).
        basicsr_args: The kit's argument names -> BasicSR's, where they differ.
        basicsr_why_not: Why BasicSR cannot hold the net under its key names, when ``basicsr`` is None.
        spandrel: spandrel's architecture id of the net (detection of foreign state dicts).
        spandrel_class: spandrel's class of the net where its architecture id covers several (spandrel's
            ``PLKSR`` is PLKSR or RealPLKSR); empty: whatever the id builds.
        spandrel_args: The official arguments always spelled out when a state dict spandrel detects is rebuilt
            (the others only where they differ from the defaults); empty: the kit's key-based detection
            rebuilds such files (RRDBNet, which spandrel calls ESRGAN).
        knobs: The width and depth arguments :func:`facesr.models.sizing.size_to_budget` searches; None: not
            sized by the kit's search.
        fuse: For a net that trains in another form than the one it is submitted in (SPAN: re-parameterisable
            branches, fused into single convolutions for inference): the function that turns a trained net
            into its inference form, the form the course's count applies to and the kit counts, submits and
            exports. None: the trained net is its own inference form.
        fused_args: The arguments that build the inference form directly (added to the net's own).
    """

    name: str
    build: Callable[..., nn.Module]
    title: str
    label: Callable[[Mapping[str, Any]], str] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    quick: Mapping[str, Any] = field(default_factory=dict)
    quick_note: str = ""
    channels_last: bool = False
    fp16: bool = True
    bf16: bool = True
    depth_arg: str | None = None
    sizes: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    train_settings: Mapping[str, Any] = field(default_factory=dict)
    color: str | None = None
    basicsr: str | None = None
    basicsr_args: Mapping[str, str] = field(default_factory=dict)
    basicsr_why_not: str = "BasicSR has no network with its key names"
    spandrel: str | None = None
    spandrel_args: tuple[str, ...] = ()
    spandrel_class: str = ""
    knobs: SizeKnobs | None = None
    fuse: Callable[[nn.Module], nn.Module] | None = None
    fused_args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name) or self.name.endswith("_l2"):
            raise FacesrError(f"generator record name {self.name!r}: use lower-case letters, digits and _ "
                              "(starting with a letter, not ending in _l2: that names an MSE finish)")
        if not callable(self.build):
            raise FacesrError(f"generator record {self.name!r}: build must be a class or function")
        unknown = set(self.quick) - {"iters", "lr", "generator_args"}
        if unknown:
            raise FacesrError(f"generator record {self.name!r}: quick takes iters, lr and generator_args, "
                              f"not {', '.join(sorted(unknown))}")
        if any(not isinstance(n, int) or n < 1 for n in self.sizes):
            raise FacesrError(f"generator record {self.name!r}: sizes are keyed by their parameter counts")
        if (self.fuse is None) != (not self.fused_args):
            raise FacesrError(f"generator record {self.name!r}: fuse and fused_args go together")

    def describe(self, args: Mapping[str, Any]) -> str:
        """The label of the net built with ``args`` (its defaults filled in), e.g. ``"SwinIR 84, 4x6, window 8"``."""
        return self.label({**self.defaults, **args}) if self.label is not None else self.title

    def size_for(self, limit: int) -> tuple[int, dict[str, Any]] | None:
        """(parameters, arguments) of the largest of :attr:`sizes` within ``limit``; None when none fits."""
        fitting = [n for n in self.sizes if n <= limit]
        return (max(fitting), dict(self.sizes[max(fitting)])) if fitting else None
