"""Omni-SR (Wang et al., CVPR 2023) from spandrel, with the authors' state-dict names, for the kit's training.

spandrel's OmniSR keeps the keys of the authors' code (``input``, ``residual_layer.N.residual_layer.M.layer``
omni self-attention blocks, ``residual_layer.N.esa``, ``output``, ``up.0``), so their checkpoints load
strictly. Each residual group (OSAG) holds ``block_num`` OSA blocks (a MobileNet-style convolution, window
and grid self-attention of ``window_size``, channel attention with 4 heads) and an ESA block; the input is
padded to a multiple of ``window_size`` and the output cropped back. Layer norms only: no running statistics.
"""

from __future__ import annotations

from typing import Any

import torch

from facesr.errors import FacesrError
from facesr.models.spandrel_support import require_spandrel

require_spandrel()  # one clear line instead of ModuleNotFoundError
from spandrel.architectures.OmniSR import OmniSR as _SpandrelOmniSR  # noqa: E402


class OmniSR(_SpandrelOmniSR):
    """spandrel's OmniSR with the kit's defaults: x4, RGB in [0, 1] in and out, the authors' key names.

    The defaults are the authors' x4 model: 64 channels, 5 groups of 1 block, window 8 (805,376 parameters).

    Args:
        num_in_ch: Input channels.
        num_out_ch: Output channels.
        num_feat: Channels (the width); a multiple of 4 (its attention has 4 heads of ``num_feat // 4``).
        block_num: OSA blocks per residual group.
        pe: Relative position bias in the window attention.
        window_size: Side of the attention windows and grid.
        res_num: Residual groups (OSAG).
        up_scale: Upscale factor.
        bias: Biases in the convolutions.
        **kwargs: Nothing else is taken (for spandrel's signature).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        block_num: int = 1,
        pe: bool = True,
        window_size: int = 8,
        res_num: int = 5,
        up_scale: int = 4,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        if num_feat % 4 or num_feat < 16 or block_num < 1 or res_num < 1:
            raise FacesrError(f"OmniSR num_feat={num_feat} must be a multiple of 4 (16 or more), block_num={block_num} "
                              f"and res_num={res_num} at least 1")
        super().__init__(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, block_num=block_num, pe=pe,
                         window_size=window_size, res_num=res_num, up_scale=up_scale, bias=bias, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, C, H * up_scale, W * up_scale)."""
        return super().forward(x)
