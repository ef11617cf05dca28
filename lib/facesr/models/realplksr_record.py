"""RealPLKSR's record (:class:`facesr.models.record.GeneratorRecord`), beside ``realplksr_arch.py``, which needs
spandrel at import: the record does not, so configs naming it validate and ``params`` lists it without it.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from facesr.models.record import GeneratorRecord, SizeKnobs
from facesr.models.spandrel_support import require_spandrel

# neosr's realplksr defaults (64 channels, 28 blocks, kernel 17), with the pixel-shuffle upsampler and GroupNorm.
REALPLKSR_ARGS = {"dim": 64, "n_blocks": 28, "upscaling_factor": 4, "kernel_size": 17, "split_ratio": 0.25,
                  "use_ea": True, "norm_groups": 4, "dropout": 0.0, "dysample": False, "layer_norm": False}


def build_realplksr(**kwargs: Any) -> nn.Module:
    """The kit's RealPLKSR (:class:`facesr.models.realplksr_arch.RealPLKSR`) with neosr's constructor arguments."""
    require_spandrel()
    from facesr.models.realplksr_arch import RealPLKSR

    return RealPLKSR(**kwargs)


RECORD = GeneratorRecord(
    name="realplksr",
    build=build_realplksr,
    title="RealPLKSR",
    label=lambda a: f"RealPLKSR {a['dim']}, {a['n_blocks']} blocks, kernel {a['kernel_size']}",
    defaults=REALPLKSR_ARGS,
    quick={"iters": 300, "generator_args": {"n_blocks": 4}},
    quick_note="RealPLKSR keeps 4 of its blocks",
    channels_last=True,  # convolutions only, at LQ resolution
    fp16=False,  # spandrel marks its GroupNorm version unsafe in fp16: bf16 where the card has it, else fp32
    # size_to_budget("realplksr", YEAR): the largest RealPLKSR within each limit (2022; 2023-2025)
    sizes={1_797_504: {**REALPLKSR_ARGS, "dim": 48, "n_blocks": 12}, 2_258_480: {**REALPLKSR_ARGS, "dim": 44, "n_blocks": 18}},
    train_settings={"batch_size": 8, "gt_patch": 256},
    color="#dbdb8d",
    basicsr_why_not="BasicSR has no RealPLKSR",
    spandrel="PLKSR",
    spandrel_class="RealPLKSR",  # spandrel's PLKSR id is also the original PLKSR, which spandrel builds as it is
    spandrel_args=("dim", "n_blocks", "upscaling_factor", "kernel_size", "split_ratio", "use_ea", "norm_groups",
                   "dysample", "layer_norm"),
    knobs=SizeKnobs(width="dim", widths=tuple(range(16, 257, 4)),
                    depths=tuple({"n_blocks": n} for n in (12, 13, 14, 15, 16, 18, 20, 24, 28))),
)
