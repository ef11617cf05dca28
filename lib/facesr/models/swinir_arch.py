"""SwinIR (Liang et al., ICCV-W 2021) from spandrel, with the authors' state-dict names, for the kit's training.

spandrel's SwinIR gives the same outputs as the authors' ``network_swinir.py`` for the same weights, and its
keys are theirs (``conv_first``, ``layers.N.residual_group.blocks.M.attn.qkv``, ``conv_after_body``,
``upsample.0``, ...), so official checkpoints load strictly. The subclass adds no module and changes no
computation; it gives the kit's defaults (the in-budget ``swinir`` config), checks the arguments that
would silently build another network, and builds on the meta device (where spandrel's constructor fails).

Buffers, not parameters (so the handout's count leaves them out): ``attn.relative_position_index`` in
every block and ``attn_mask`` in every shifted block, precomputed for ``img_size``. An input of another
size gets its mask rebuilt on each forward (on the CPU, then copied to the input's device), which is
correct but costs time: train at ``img_size`` (the LQ patch) and let only validation and inference differ.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from facesr.errors import FacesrError
from facesr.models.spandrel_support import off_meta_device, require_spandrel

require_spandrel()  # one clear line instead of ModuleNotFoundError
from spandrel.architectures.SwinIR import SwinIR as _SpandrelSwinIR  # noqa: E402

_UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")


def _check_args(img_size: int, window_size: int, depths: Sequence[int], embed_dim: int,
                num_heads: Sequence[int], upsampler: str, resi_connection: str) -> None:
    if img_size <= window_size or img_size % window_size:
        # at img_size <= window_size the official code drops the shifted windows: another network
        raise FacesrError(
            f"SwinIR img_size={img_size} must be a multiple of window_size={window_size} and larger than it; "
            "use the training LQ size (e.g. 32 for gt_patch=128, 128 for full images)"
        )
    if len(depths) != len(num_heads) or not depths:
        raise FacesrError(f"SwinIR depths={list(depths)} and num_heads={list(num_heads)} need one length")
    if any(embed_dim % h for h in num_heads):
        raise FacesrError(f"SwinIR embed_dim={embed_dim} must be divisible by each of num_heads={list(num_heads)}")
    if upsampler not in _UPSAMPLERS:
        raise FacesrError(f"SwinIR upsampler={upsampler!r} must be one of {', '.join(map(repr, _UPSAMPLERS))}")
    if resi_connection not in ("1conv", "3conv"):
        raise FacesrError(f"SwinIR resi_connection={resi_connection!r} must be '1conv' or '3conv'")


class SwinIR(_SpandrelSwinIR):
    """spandrel's SwinIR with the kit's defaults: x4, RGB in [0, 1] in and out, official key names.

    The defaults are the in-budget ``swinir`` config: 1,766,292 parameters. ``img_range`` 1.0 (with the
    DIV2K mean subtracted inside) is what takes and gives [0, 1]; the authors' SR models use it too.

    Args:
        upscale: Upscale factor.
        in_chans: Input (and output) channels.
        img_size: The input size the attention masks are precomputed for (the training LQ size).
        window_size: Side of the attention windows; inputs are reflect-padded to a multiple of it.
        img_range: Input range the network works in (1.0 for [0, 1] images).
        depths: Swin blocks per residual group (RSTB).
        embed_dim: Feature channels.
        num_heads: Attention heads per residual group.
        mlp_ratio: Hidden width of the MLPs relative to ``embed_dim``.
        upsampler: ``"pixelshuffledirect"`` (lightweight: one conv + shuffle), ``"pixelshuffle"``,
            ``"nearest+conv"`` or ``""`` (x1).
        resi_connection: ``"1conv"`` or ``"3conv"`` at the end of each group.
        **kwargs: The other official arguments (``qkv_bias``, ``drop_path_rate``, ``ape``, ``patch_norm``,
            ``use_checkpoint``, ``start_unshuffle``, ...), passed on unchanged.
    """

    def __init__(
        self,
        upscale: int = 4,
        in_chans: int = 3,
        img_size: int = 64,
        window_size: int = 8,
        img_range: float = 1.0,
        depths: Sequence[int] = (6, 6, 6, 6),
        embed_dim: int = 84,
        num_heads: Sequence[int] = (6, 6, 6, 6),
        mlp_ratio: float = 2.0,
        upsampler: str = "pixelshuffledirect",
        resi_connection: str = "1conv",
        **kwargs: Any,
    ) -> None:
        _check_args(img_size, window_size, depths, embed_dim, num_heads, upsampler, resi_connection)
        with off_meta_device() as meta, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.meshgrid")  # spandrel's call, nothing to act on
            super().__init__(
                upscale=upscale, in_chans=in_chans, img_size=img_size, window_size=window_size,
                img_range=img_range, depths=list(depths), embed_dim=embed_dim, num_heads=list(num_heads),
                mlp_ratio=mlp_ratio, upsampler=upsampler, resi_connection=resi_connection, **kwargs,
            )  # fmt: skip
        if meta:
            self.to("meta")
