"""DAT's record (:class:`facesr.models.record.GeneratorRecord`), beside ``dat_arch.py``, which needs spandrel at
import: the record does not, so configs naming it validate and ``params`` lists it without it.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from facesr.models.record import GeneratorRecord, SizeKnobs
from facesr.models.spandrel_support import require_spandrel

# The authors' DAT-light x4: embed 60, one group of 18 blocks, 6 heads, windows 8x32, expansion 2.
DAT_ARGS = {"upscale": 4, "in_chans": 3, "img_size": 64, "embed_dim": 60, "split_size": [8, 32], "depth": [18],
            "num_heads": [6], "expansion_factor": 2.0, "img_range": 1.0, "resi_connection": "3conv",
            "upsampler": "pixelshuffledirect"}


def build_dat(**kwargs: Any) -> nn.Module:
    """The kit's DAT (:class:`facesr.models.dat_arch.DAT`) with official constructor arguments."""
    require_spandrel()
    from facesr.models.dat_arch import DAT

    return DAT(**kwargs)


RECORD = GeneratorRecord(
    name="dat",
    build=build_dat,
    title="DAT-light",
    label=lambda a: f"DAT {a['embed_dim']}, {len(a['depth'])}x{list(a['depth'])[0]}, windows "
                    f"{a['split_size'][0]}x{a['split_size'][1]}",
    defaults=DAT_ARGS,
    # one group of 2 blocks; masks for quick mode's 16x16 LQ crops
    quick={"iters": 240, "generator_args": {"depth": [2], "num_heads": [6], "img_size": 16}},
    quick_note="DAT keeps 2 of its blocks",
    channels_last=False,  # token sequences past its first convolution
    fp16=False,  # spandrel marks it unsafe in fp16: bf16 where the card has it, else fp32
    # size_to_budget("dat", YEAR): the largest DAT within each limit (2022; 2023-2025)
    sizes={1_814_613: {**DAT_ARGS, "embed_dim": 108, "depth": [9, 9], "num_heads": [6, 6]},
           2_255_216: {**DAT_ARGS, "embed_dim": 138, "depth": [14], "num_heads": [6]}},
    train_settings={"batch_size": 8, "gt_patch": 256, "grad_clip": 1.0},
    color="#9edae5",
    basicsr_why_not="BasicSR has no DAT",
    spandrel="DAT",
    spandrel_args=("upscale", "in_chans", "img_size", "embed_dim", "split_size", "depth", "num_heads",
                   "expansion_factor", "img_range", "resi_connection", "upsampler"),
    knobs=SizeKnobs(width="embed_dim", widths=tuple(range(24, 385, 6)),
                    depths=tuple({"depth": [n] * g, "num_heads": [6] * g}
                                for g, n in ((1, 14), (1, 16), (1, 18), (1, 20), (1, 22), (1, 24), (2, 9), (2, 12)))),
)
