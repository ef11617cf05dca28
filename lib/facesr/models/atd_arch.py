"""ATD (Zhang et al., CVPR 2024) from spandrel, with the authors' state-dict names, for the kit's training.

spandrel's ATD keeps the keys of the authors' code (``conv_first``, ``layers.N.residual_group.layers.M``
blocks, ``layers.N.residual_group.td`` token dictionaries, ``norm``, ``conv_after_body``, ``upsample``), so
their checkpoints load strictly. Each block runs window self-attention (``window_size``), attention to an
adaptive token dictionary of ``num_tokens`` learnt tokens (``reducted_dim`` wide) and category attention over
groups of ``category_size`` tokens, then a convolutional feed-forward network. Layer norms only.

spandrel can read neither ``category_size`` nor ``img_size`` off a state dict: it assumes the light model's 128
for a 48-channel ATD and 256 otherwise. The kit's own files carry their arguments (checkpoint config, export
metadata), so only foreign state dicts of other widths depend on that guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from facesr.errors import FacesrError
from facesr.models.spandrel_support import require_spandrel

require_spandrel()  # one clear line instead of ModuleNotFoundError
from spandrel.architectures.ATD import ATD as _SpandrelATD  # noqa: E402


class ATD(_SpandrelATD):
    """spandrel's ATD with the kit's defaults: x4, RGB in [0, 1] in and out, the authors' key names.

    The defaults are the authors' ATD-light x4 (embed 48, 4 groups of 6 blocks, 4 heads, window 16, 64 tokens
    of 8, categories of 128, feed-forward kernel 7, mlp_ratio 1, ``pixelshuffledirect``: 768,792 parameters).

    Args:
        upscale: Upscale factor.
        in_chans: Input (and output) channels.
        img_size: The training LQ size the attention masks are precomputed for.
        embed_dim: Channels (the width); divisible by each of ``num_heads``.
        depths: Blocks per residual group.
        num_heads: Attention heads per residual group.
        window_size: Side of the attention windows (inputs are padded to a multiple of it).
        category_size: Tokens per group of the category attention.
        num_tokens: Tokens of each group's adaptive dictionary.
        reducted_dim: Width of the dictionary's tokens.
        convffn_kernel_size: Kernel of the feed-forward network's depth-wise convolution.
        mlp_ratio: Hidden width of the feed-forward networks relative to ``embed_dim``.
        img_range: The range the network works in (1.0 for [0, 1] images).
        upsampler: ``"pixelshuffledirect"`` (lightweight) or ``"pixelshuffle"``.
        **kwargs: The other official arguments (``qkv_bias``, ``resi_connection``, ...), passed on unchanged.
    """

    def __init__(
        self,
        upscale: int = 4,
        in_chans: int = 3,
        img_size: int = 64,
        embed_dim: int = 48,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (4, 4, 4, 4),
        window_size: int = 16,
        category_size: int = 128,
        num_tokens: int = 64,
        reducted_dim: int = 8,
        convffn_kernel_size: int = 7,
        mlp_ratio: float = 1.0,
        img_range: float = 1.0,
        upsampler: str = "pixelshuffledirect",
        **kwargs: Any,
    ) -> None:
        if len(depths) != len(num_heads) or not depths or any(embed_dim % h for h in num_heads):
            raise FacesrError(f"ATD depths={list(depths)} and num_heads={list(num_heads)} need one length, and "
                              f"embed_dim={embed_dim} must be divisible by each head count")
        if upsampler not in ("pixelshuffledirect", "pixelshuffle"):
            raise FacesrError(f"ATD upsampler={upsampler!r}: use 'pixelshuffledirect' or 'pixelshuffle'")
        super().__init__(upscale=upscale, in_chans=in_chans, img_size=img_size, embed_dim=embed_dim,
                         depths=list(depths), num_heads=list(num_heads), window_size=window_size,
                         category_size=category_size, num_tokens=num_tokens, reducted_dim=reducted_dim,
                         convffn_kernel_size=convffn_kernel_size, mlp_ratio=mlp_ratio, img_range=img_range,
                         upsampler=upsampler, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, C, H * upscale, W * upscale)."""
        return super().forward(x)
