"""SPAN's record (:class:`facesr.models.record.GeneratorRecord`), beside ``span_arch.py``, which needs spandrel
at import: the record does not, so configs naming SPAN validate and ``params`` lists it without it.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from facesr.models.record import GeneratorRecord, SizeKnobs
from facesr.models.spandrel_support import require_spandrel

# The authors' x4 model (spanx4_ch48): 48 channels, six blocks.
SPAN_ARGS = {"num_in_ch": 3, "num_out_ch": 3, "feature_channels": 48, "upscale": 4, "bias": True, "norm": True,
             "img_range": 255.0}


def build_span(**kwargs: Any) -> nn.Module:
    """The kit's SPAN (:class:`facesr.models.span_arch.SPAN`) with official constructor arguments."""
    require_spandrel()
    from facesr.models.span_arch import SPAN

    return SPAN(**kwargs)


def fuse(net: nn.Module) -> nn.Module:
    """A trained SPAN's inference form (:func:`facesr.models.span_arch.fuse_span`)."""
    from facesr.models.span_arch import fuse_span

    return fuse_span(net)


RECORD = GeneratorRecord(
    name="span",
    build=build_span,
    title="SPAN",
    label=lambda a: f"SPAN {a['feature_channels']}, 6 blocks" + (", fused" if a.get("fused") else ""),
    defaults=SPAN_ARGS,
    quick={"iters": 300, "generator_args": {"feature_channels": 32}},
    quick_note="SPAN keeps its 6 blocks at 32 channels",
    channels_last=True,  # convolutions only (1x1 and 3x3) at LQ resolution
    # size_to_budget("span", YEAR): the widest SPAN within each limit, counted fused (2022; 2023-2025)
    sizes={1_798_048: {**SPAN_ARGS, "feature_channels": 100}, 2_249_008: {**SPAN_ARGS, "feature_channels": 112}},
    train_settings={"batch_size": 8, "gt_patch": 256},
    color="#c49c94",
    basicsr_why_not="BasicSR has no SPAN",
    spandrel="SPAN",
    spandrel_args=("num_in_ch", "num_out_ch", "feature_channels", "upscale"),
    knobs=SizeKnobs(width="feature_channels", widths=tuple(range(8, 257))),
    fuse=fuse,
    fused_args={"fused": True},
)
