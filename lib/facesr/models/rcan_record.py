"""RCAN's record (:class:`facesr.models.record.GeneratorRecord`), beside ``rcan_arch.py``, which needs spandrel
at import: the record does not, so configs naming RCAN validate and ``params`` lists it without it.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from facesr.models.record import GeneratorRecord
from facesr.models.spandrel_support import require_spandrel

# The official constructor arguments the kit's RCAN class defaults to (the 2022 size: 3 groups of 6 blocks);
# one more group fills the 150 % limit of 2023-2025 (docs/course.md section 10).
RCAN_ARGS = {"scale": 4, "n_resgroups": 3, "n_resblocks": 6, "n_feats": 64, "reduction": 16}
RCAN_ARGS_150 = {**RCAN_ARGS, "n_resgroups": 4}


def build_rcan(**kwargs: Any) -> nn.Module:
    """The kit's RCAN (:class:`facesr.models.rcan_arch.RCAN`) with official constructor arguments."""
    require_spandrel()
    from facesr.models.rcan_arch import RCAN

    return RCAN(**kwargs)


RECORD = GeneratorRecord(
    name="rcan",
    build=build_rcan,
    title="RCAN",
    label=lambda a: f"RCAN {a['n_feats']}, {a['n_resgroups']} groups x {a['n_resblocks']} blocks",
    defaults=RCAN_ARGS,
    quick={"iters": 300, "generator_args": {"n_resgroups": 2, "n_resblocks": 2}},
    quick_note="RCAN keeps 2 groups of 2 blocks",
    channels_last=True,  # a plain CNN at LQ resolution until its upsampler; fp16-safe with a GradScaler
    sizes={1_786_531: RCAN_ARGS, 2_270_075: RCAN_ARGS_150},
    train_settings={"lr": 1e-4},  # the authors': it scales its input to 0-255 inside
    color="#17becf",
    basicsr_why_not="BasicSR's RCAN names its layers differently from the official RCAN the kit uses",
    spandrel="RCAN",
    spandrel_args=("scale", "n_resgroups", "n_resblocks", "n_feats", "reduction", "n_colors", "rgb_range", "norm",
                   "kernel_size"),
)
