"""SwinIR's record (:class:`facesr.models.record.GeneratorRecord`), beside ``swinir_arch.py``, which needs
spandrel at import: the record does not, so configs naming SwinIR validate and ``params`` lists it without it.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from facesr.models.record import GeneratorRecord
from facesr.models.spandrel_support import require_spandrel

# The official constructor arguments; the kit's SwinIR class defaults to the same values (the 2022 size).
SWINIR_ARGS = {"upscale": 4, "in_chans": 3, "img_size": 64, "window_size": 8, "img_range": 1.0,
               "depths": [6, 6, 6, 6], "embed_dim": 84, "num_heads": [6, 6, 6, 6], "mlp_ratio": 2.0,
               "upsampler": "pixelshuffledirect", "resi_connection": "1conv"}
# The largest SwinIR with window 8, mlp_ratio 2, 6 heads, pixelshuffledirect and 1conv under each limit
# (docs/course.md section 10): embed 84 with 4x6 blocks, and embed 78 with 6x6 blocks.
SWINIR_ARGS_150 = {**SWINIR_ARGS, "depths": [6] * 6, "embed_dim": 78, "num_heads": [6] * 6}


def build_swinir(**kwargs: Any) -> nn.Module:
    """The kit's SwinIR (:class:`facesr.models.swinir_arch.SwinIR`) with official constructor arguments."""
    require_spandrel()  # one clear line when it is missing or too old, also once the module is imported
    from facesr.models.swinir_arch import SwinIR

    return SwinIR(**kwargs)


RECORD = GeneratorRecord(
    name="swinir",
    build=build_swinir,
    title="SwinIR",
    label=lambda a: f"SwinIR {a['embed_dim']}, {len(a['depths'])}x{list(a['depths'])[0]}, window {a['window_size']}",
    defaults=SWINIR_ARGS,
    # 2 groups of 2 blocks at the configured width; masks for quick mode's 16x16 LQ crops
    quick={"iters": 240, "generator_args": {"depths": [2, 2], "num_heads": [6, 6], "img_size": 16}},
    quick_note="SwinIR keeps 2 groups of 2 blocks",
    channels_last=False,  # token sequences past its first convolution
    fp16=False,  # fp16 overflows in its attention: bf16 where the card has it, else fp32
    sizes={1_766_292: SWINIR_ARGS, 2_251_758: SWINIR_ARGS_150},
    # LQ patches of 64 (full 128x128 LQ at batch 8 needs about 17 GiB for one step in fp32): img_size 64 is
    # that patch; gradient-norm clipping at 1.0 for the transformer's first steps and later spikes
    train_settings={"batch_size": 8, "gt_patch": 256, "grad_clip": 1.0},
    color="#9467bd",
    basicsr="SwinIR",  # the official names, which spandrel keeps
    spandrel="SwinIR",
    spandrel_args=("upscale", "in_chans", "img_size", "window_size", "img_range", "depths", "embed_dim", "num_heads",
                   "mlp_ratio", "upsampler", "resi_connection"),
)
