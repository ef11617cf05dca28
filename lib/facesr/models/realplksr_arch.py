"""RealPLKSR (neosr's variant of PLKSR, Lee et al. 2024) from spandrel, with its state-dict names.

PLKSR replaces attention by a partial large-kernel convolution: each block mixes channels with two 3x3
convolutions (``channel_mixer``), convolves the first quarter of its channels with one 17x17 kernel
(``lk``), applies element-wise attention (``attn``) and a 1x1 refinement, then GroupNorm (groups of
``norm_groups``: no running statistics). RealPLKSR (``feats.N``) is the variant neosr trains for real-world
degradations; the image is upsampled by a pixel shuffle, with the LQ repeated into the output as a skip.

Its eval-mode large-kernel convolution writes into the block's features in place; the kit validates and
predicts under ``torch.no_grad`` as spandrel does, where that is allowed.
"""

from __future__ import annotations

from typing import Any

import torch

from facesr.errors import FacesrError
from facesr.models.spandrel_support import require_spandrel

require_spandrel()  # one clear line instead of ModuleNotFoundError
from spandrel.architectures.PLKSR import RealPLKSR as _SpandrelRealPLKSR  # noqa: E402


class RealPLKSR(_SpandrelRealPLKSR):
    """spandrel's RealPLKSR with the kit's defaults: x4, RGB in [0, 1] in and out, neosr's key names.

    The defaults are neosr's ``realplksr`` (64 channels, 28 blocks, kernel 17: 7,389,680 parameters, over
    every limit): the kit's in-budget configs are narrower and shallower (its record's ``sizes``).

    Args:
        dim: Channels (the width); a multiple of ``norm_groups``.
        n_blocks: PLK blocks (the depth).
        upscaling_factor: Upscale factor.
        kernel_size: Side of the large kernel.
        split_ratio: Share of the channels the large kernel convolves.
        use_ea: Element-wise attention in each block.
        norm_groups: Groups of each block's GroupNorm.
        dropout: Dropout before the last convolution.
        dysample: DySample upsampling instead of the pixel shuffle.
        layer_norm: A LayerNorm at the start of each block instead of the GroupNorm at its end.
        **kwargs: Nothing else is taken (for spandrel's signature).
    """

    def __init__(
        self,
        dim: int = 64,
        n_blocks: int = 28,
        upscaling_factor: int = 4,
        kernel_size: int = 17,
        split_ratio: float = 0.25,
        use_ea: bool = True,
        norm_groups: int = 4,
        dropout: float = 0.0,
        dysample: bool = False,
        layer_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        if dim % norm_groups or int(dim * split_ratio) < 1 or n_blocks < 1 or kernel_size % 2 == 0:
            raise FacesrError(f"RealPLKSR dim={dim} must be a multiple of norm_groups={norm_groups} with "
                              f"dim * split_ratio >= 1, n_blocks={n_blocks} at least 1, kernel_size={kernel_size} odd")
        super().__init__(dim=dim, n_blocks=n_blocks, upscaling_factor=upscaling_factor, kernel_size=kernel_size,
                         split_ratio=split_ratio, use_ea=use_ea, norm_groups=norm_groups, dropout=dropout,
                         dysample=dysample, layer_norm=layer_norm, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, H * upscaling_factor, W * upscaling_factor)."""
        return super().forward(x)
