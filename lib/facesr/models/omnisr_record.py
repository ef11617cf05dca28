"""Omni-SR's record (:class:`facesr.models.record.GeneratorRecord`), beside ``omnisr_arch.py``, which needs
spandrel at import: the record does not, so configs naming it validate and ``params`` lists it without it.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from facesr.models.record import GeneratorRecord, SizeKnobs
from facesr.models.spandrel_support import require_spandrel

# The authors' x4 model (OmniSR_X4_DIV2K): 64 channels, 5 groups of 1 OSA block, window 8.
OMNISR_ARGS = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "block_num": 1, "pe": True, "window_size": 8,
               "res_num": 5, "up_scale": 4, "bias": True}


def build_omnisr(**kwargs: Any) -> nn.Module:
    """The kit's OmniSR (:class:`facesr.models.omnisr_arch.OmniSR`) with official constructor arguments."""
    require_spandrel()
    from facesr.models.omnisr_arch import OmniSR

    return OmniSR(**kwargs)


RECORD = GeneratorRecord(
    name="omnisr",
    build=build_omnisr,
    title="Omni-SR",
    label=lambda a: f"Omni-SR {a['num_feat']}, {a['res_num']} groups of {a['block_num']} "
                    + ("block" if a["block_num"] == 1 else "blocks"),
    defaults=OMNISR_ARGS,
    quick={"iters": 300, "generator_args": {"res_num": 2}},
    quick_note="Omni-SR keeps 2 of its groups",
    channels_last=False,  # window and grid attention on rearranged token layouts past its first convolution
    fp16=False,  # attention and normalisations: bf16 where the card has it, else fp32 (no GPU has checked fp16)
    # size_to_budget("omnisr", YEAR): the largest Omni-SR within each limit (2022; 2023-2025)
    sizes={1_790_297: {**OMNISR_ARGS, "num_feat": 124, "res_num": 3},
           2_275_008: {**OMNISR_ARGS, "num_feat": 80, "res_num": 5, "block_num": 2}},
    train_settings={"batch_size": 8, "gt_patch": 256, "grad_clip": 1.0},
    color="#ff9896",
    basicsr_why_not="BasicSR has no Omni-SR",
    spandrel="OmniSR",
    spandrel_args=("num_in_ch", "num_out_ch", "num_feat", "block_num", "pe", "window_size", "res_num", "up_scale",
                   "bias"),
    knobs=SizeKnobs(width="num_feat", widths=tuple(range(16, 257, 4)),
                    depths=tuple({"res_num": r, "block_num": b} for b in (1, 2) for r in (3, 4, 5, 6, 8))),
)
