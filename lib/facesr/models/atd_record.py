"""ATD's record (:class:`facesr.models.record.GeneratorRecord`), beside ``atd_arch.py``, which needs spandrel at
import: the record does not, so configs naming it validate and ``params`` lists it without it.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from facesr.models.record import GeneratorRecord, SizeKnobs
from facesr.models.spandrel_support import require_spandrel

# The authors' ATD-light x4: embed 48, 4 groups of 6 blocks, 4 heads, window 16, 64 tokens of 8, categories of 128.
ATD_ARGS = {"upscale": 4, "in_chans": 3, "img_size": 64, "embed_dim": 48, "depths": [6, 6, 6, 6],
            "num_heads": [4, 4, 4, 4], "window_size": 16, "category_size": 128, "num_tokens": 64, "reducted_dim": 8,
            "convffn_kernel_size": 7, "mlp_ratio": 1.0, "img_range": 1.0, "upsampler": "pixelshuffledirect"}


def build_atd(**kwargs: Any) -> nn.Module:
    """The kit's ATD (:class:`facesr.models.atd_arch.ATD`) with official constructor arguments."""
    require_spandrel()
    from facesr.models.atd_arch import ATD

    return ATD(**kwargs)


RECORD = GeneratorRecord(
    name="atd",
    build=build_atd,
    title="ATD-light",
    label=lambda a: f"ATD {a['embed_dim']}, {len(a['depths'])}x{list(a['depths'])[0]}, window {a['window_size']}",
    defaults=ATD_ARGS,
    # 2 groups of 2 blocks; masks for quick mode's 16x16 LQ crops
    quick={"iters": 240, "generator_args": {"depths": [2, 2], "num_heads": [4, 4], "img_size": 16}},
    quick_note="ATD keeps 2 groups of 2 blocks",
    channels_last=False,  # token sequences past its first convolution
    fp16=False,  # spandrel has not checked it in fp16: bf16 where the card has it, else fp32
    # size_to_budget("atd", YEAR): the largest ATD within each limit (2022; 2023-2025)
    sizes={1_819_236: {**ATD_ARGS, "embed_dim": 64, "depths": [6] * 6, "num_heads": [4] * 6},
           2_254_598: {**ATD_ARGS, "embed_dim": 80, "depths": [6] * 5, "num_heads": [4] * 5}},
    train_settings={"batch_size": 8, "gt_patch": 256, "grad_clip": 1.0},
    color="#c5b0d5",
    basicsr_why_not="BasicSR has no ATD",
    spandrel="ATD",
    spandrel_args=("upscale", "in_chans", "img_size", "embed_dim", "depths", "num_heads", "window_size",
                   "category_size", "num_tokens", "reducted_dim", "convffn_kernel_size", "mlp_ratio", "img_range",
                   "upsampler"),
    knobs=SizeKnobs(width="embed_dim", widths=tuple(range(16, 257, 4)),
                    depths=tuple({"depths": [6] * g, "num_heads": [4] * g} for g in (4, 5, 6))),
)
