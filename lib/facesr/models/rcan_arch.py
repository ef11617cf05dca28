"""RCAN (Zhang et al., ECCV 2018) from spandrel, with the authors' state-dict names, fixed for training.

spandrel's RCAN keeps the keys of the authors' EDSR-PyTorch code (``sub_mean``, ``head.0``,
``body.G.body.B.body.{0,2}`` convs, ``body.G.body.B.body.3.conv_du`` channel attention, ``tail.0``
upsampler, ``tail.1``, ``add_mean``), so official checkpoints load strictly. Two things it gets wrong for
training, fixed here:

- its forward scales the input by ``rgb_range`` in place (``x *= self.rgb_range``): the caller's LQ batch
  would come back multiplied by 255 (and a second forward on it, as in self-ensembles, would see garbage);
- its ``sub_mean`` / ``add_mean`` 1x1 convs (the DIV2K mean shift, 24 parameters) are left trainable,
  while the authors freeze them (``requires_grad = False`` is set on the module, not on its parameters).

They stay parameters, so the handout's count (``sum(p.numel() for p in model.parameters())``) includes them.
"""

from __future__ import annotations

from typing import Any

import torch

from facesr.errors import FacesrError
from facesr.models.spandrel_support import off_meta_device, require_spandrel

require_spandrel()  # one clear line instead of ModuleNotFoundError
from spandrel.architectures.RCAN import RCAN as _SpandrelRCAN  # noqa: E402


class RCAN(_SpandrelRCAN):
    """spandrel's RCAN with the kit's defaults: x4, RGB in [0, 1] in/out, input untouched, mean shift frozen.

    The defaults are the in-budget ``rcan`` config: 3 residual groups of 6 blocks, 64 features,
    1,786,531 parameters (24 of them the frozen mean shift). ``rgb_range`` 255 is the authors': the
    network scales the [0, 1] input to 0-255 inside and divides its output back.

    Args:
        scale: Upscale factor (2, 3, 4 or 8).
        n_resgroups: Residual groups.
        n_resblocks: Residual channel-attention blocks per group.
        n_feats: Feature channels.
        reduction: Channel reduction of the channel attention.
        **kwargs: The other official arguments (``n_colors``, ``rgb_range``, ``norm``, ``kernel_size``,
            ``res_scale``, ``act_mode``, ``unshuffle_mod``), passed on unchanged.
    """

    def __init__(
        self,
        scale: int = 4,
        n_resgroups: int = 3,
        n_resblocks: int = 6,
        n_feats: int = 64,
        reduction: int = 16,
        **kwargs: Any,
    ) -> None:
        if scale not in (1, 2, 3, 4, 8) or n_feats % reduction:
            raise FacesrError(
                f"RCAN scale={scale} must be 1, 2, 3, 4 or 8 and n_feats={n_feats} divisible by "
                f"reduction={reduction}"
            )
        with off_meta_device() as meta:
            super().__init__(scale=scale, n_resgroups=n_resgroups, n_resblocks=n_resblocks, n_feats=n_feats,
                             reduction=reduction, **kwargs)
        if meta:
            self.to("meta")
        for p in (*self.sub_mean.parameters(), *self.add_mean.parameters()):
            p.requires_grad_(False)  # the authors' frozen mean shift (spandrel leaves it trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, C, H * scale, W * scale); ``x`` itself is left as it was."""
        return super().forward(x.clone())  # spandrel's forward runs ``x *= rgb_range`` on its argument
