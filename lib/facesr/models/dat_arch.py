"""DAT (Chen et al., ICCV 2023) from spandrel, with the authors' state-dict names, for the kit's training.

spandrel's DAT keeps the keys of the authors' code (``conv_first``, ``before_RG``, ``layers.N.blocks.M`` dual
aggregation blocks, ``norm``, ``conv_after_body``, ``upsample``), so their checkpoints load strictly. Blocks
alternate spatial window attention (rectangular windows of ``split_size``) and channel attention; both
attentions run a depth-wise convolution branch through **BatchNorm**, so DAT has running statistics:
:func:`facesr.training.averaging.average_run` refuses it (the mean of running statistics is not the statistics
of the averaged weights), and the EMA averages them with the weights as it does every buffer.

Building on the meta device (the kit counts parameters there) takes spandrel's constructor's ``.item()`` of
its drop-path rates on the CPU; everything else stays on meta.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from facesr.errors import FacesrError
from facesr.models.spandrel_support import require_spandrel

require_spandrel()  # one clear line instead of ModuleNotFoundError
from spandrel.architectures.DAT import DAT as _SpandrelDAT  # noqa: E402


class _LinspaceOnCpu(TorchFunctionMode):
    """``torch.linspace`` on the CPU whatever the default device: the drop-path rates DAT reads with ``.item()``."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is torch.linspace:
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


@contextlib.contextmanager
def _meta_safe() -> Iterator[None]:
    meta = torch.empty(()).device.type == "meta"
    with _LinspaceOnCpu() if meta else contextlib.nullcontext():
        yield


class DAT(_SpandrelDAT):
    """spandrel's DAT with the kit's defaults: x4, RGB in [0, 1] in and out, the authors' key names.

    The defaults are the authors' DAT-light x4 (embed 60, one group of 18 blocks, 6 heads, windows 8x32,
    expansion 2, ``3conv``, ``pixelshuffledirect``: 572,766 parameters).

    Args:
        upscale: Upscale factor.
        in_chans: Input (and output) channels.
        img_size: The input size the shifted-window masks are precomputed for (the training LQ size).
        embed_dim: Channels (the width); divisible by each of ``num_heads`` (even counts: the two spatial
            attentions take half the heads and half the channels each).
        split_size: Height and width of the spatial attention windows.
        depth: Blocks per residual group.
        num_heads: Attention heads per residual group.
        expansion_factor: Hidden width of the feed-forward networks relative to ``embed_dim``.
        img_range: The range the network works in (1.0 for [0, 1] images).
        resi_connection: ``"1conv"`` or ``"3conv"`` at the end of the body.
        upsampler: ``"pixelshuffledirect"`` (lightweight) or ``"pixelshuffle"``.
        **kwargs: The other official arguments (``qkv_bias``, ``drop_path_rate``, ...), passed on unchanged.
    """

    def __init__(
        self,
        upscale: int = 4,
        in_chans: int = 3,
        img_size: int = 64,
        embed_dim: int = 60,
        split_size: Sequence[int] = (8, 32),
        depth: Sequence[int] = (18,),
        num_heads: Sequence[int] = (6,),
        expansion_factor: float = 2.0,
        img_range: float = 1.0,
        resi_connection: str = "3conv",
        upsampler: str = "pixelshuffledirect",
        **kwargs: Any,
    ) -> None:
        if embed_dim < 16 or len(depth) != len(num_heads) or not depth or any(h % 2 or embed_dim % h for h in num_heads):
            raise FacesrError(f"DAT depth={list(depth)} and num_heads={list(num_heads)} need one length, each head "
                              f"count even (its two spatial attentions take half each), embed_dim={embed_dim} "
                              "divisible by each and at least 16 (its channel interaction divides it by 16)")
        if upsampler not in ("pixelshuffledirect", "pixelshuffle") or resi_connection not in ("1conv", "3conv"):
            raise FacesrError(f"DAT upsampler={upsampler!r} / resi_connection={resi_connection!r}: use "
                              "'pixelshuffledirect' or 'pixelshuffle', '1conv' or '3conv'")
        with _meta_safe():
            super().__init__(upscale=upscale, in_chans=in_chans, img_size=img_size, embed_dim=embed_dim,
                             split_size=list(split_size), depth=list(depth), num_heads=list(num_heads),
                             expansion_factor=expansion_factor, img_range=img_range,
                             resi_connection=resi_connection, upsampler=upsampler, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, C, H * upscale, W * upscale)."""
        if self.training and x.shape[0] < 2:
            # its channel interaction pools each sample to 1x1 before a BatchNorm, which needs 2 values
            raise FacesrError("DAT trains with BatchNorm in its attention and needs at least 2 samples per batch "
                              f"(on each rank), got {x.shape[0]}; raise batch_size")
        return super().forward(x)
