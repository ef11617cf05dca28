"""SPAN (Wan et al., CVPR-W 2024) from spandrel, with the authors' state-dict names: trained with its
re-parameterisable branches, counted, submitted and exported in its fused inference form.

Every convolution of SPAN is a ``Conv3XC``: in training a 1x1 skip (``sk``) beside a 1x1 -> 3x3 -> 1x1
chain (``conv.0-2``, twice the channels inside); in eval mode it runs one 3x3 convolution (``eval_conv``)
whose weights are those branches summed into one kernel (``update_params``), which gives the same outputs
up to float rounding. The authors' checkpoints hold all of it; spandrel detects SPAN by these keys.

The training form has about 5.5 times the parameters of the fused one; the net that makes the predictions
(and the one the NTIRE efficient-SR challenge SPAN won counts) is the fused one, so the kit counts, submits
and exports that (docs/course.md section 10 says why the course's count applies to it). ``SPAN(fused=True)``
builds it directly: each ``Conv3XC`` is a :class:`FusedConv3XC` holding only ``eval_conv``, under the same
key; :func:`fuse_span` makes it from a trained net. In the training form ``eval_conv`` is frozen (it is
recomputed from the branches, never trained), so optimizers, DDP and gradient clipping leave it alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesr.errors import FacesrError
from facesr.models.spandrel_support import require_spandrel

require_spandrel()  # one clear line instead of ModuleNotFoundError
from spandrel.architectures.SPAN import SPAN as _SpandrelSPAN  # noqa: E402
from spandrel.architectures.SPAN.__arch.span import Conv3XC  # noqa: E402


class FusedConv3XC(nn.Module):
    """A ``Conv3XC`` in its inference form: one 3x3 convolution (``eval_conv``, the authors' key), and the
    block's LeakyReLU(0.05) where it has one.

    Args:
        c_in: Input channels.
        c_out: Output channels.
        relu: Apply LeakyReLU(0.05) after the convolution (as the ``Conv3XC`` it replaces).
    """

    def __init__(self, c_in: int, c_out: int, relu: bool = False) -> None:
        super().__init__()
        self.eval_conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
        self.has_relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.eval_conv(x)
        return F.leaky_relu(out, negative_slope=0.05) if self.has_relu else out


def _conv3xcs(net: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, module) of every ``Conv3XC`` or :class:`FusedConv3XC` of ``net``, in module order."""
    return [(parent, name, child) for parent in net.modules() for name, child in parent.named_children()
            if isinstance(child, (Conv3XC, FusedConv3XC))]  # fmt: skip


class SPAN(_SpandrelSPAN):
    """spandrel's SPAN with the kit's defaults: x4, RGB in [0, 1] in and out, the authors' key names.

    The defaults are the authors' x4 model (48 channels, 6 blocks). The input is centred on the DIV2K mean
    and scaled by ``img_range`` inside; the output is not scaled back (the authors' design).

    Args:
        num_in_ch: Input channels.
        num_out_ch: Output channels.
        feature_channels: Channels of every block (the width; the six blocks are fixed).
        upscale: Upscale factor.
        bias: Kept for the authors' signature (unused inside).
        norm: Centre and scale the input inside (the authors' models do).
        img_range: The input scale inside.
        rgb_mean: The mean subtracted inside.
        fused: Build the inference form: one 3x3 convolution per ``Conv3XC`` (see the module docstring).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 48,
        upscale: int = 4,
        bias: bool = True,
        norm: bool = True,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = (0.4488, 0.4371, 0.4040),
        fused: bool = False,
    ) -> None:
        if feature_channels < 1 or upscale not in (1, 2, 3, 4, 8):
            raise FacesrError(f"SPAN feature_channels={feature_channels} must be positive and upscale={upscale} "
                              "1, 2, 3, 4 or 8")
        super().__init__(num_in_ch=num_in_ch, num_out_ch=num_out_ch, feature_channels=feature_channels,
                         upscale=upscale, bias=bias, norm=norm, img_range=img_range, rgb_mean=tuple(rgb_mean))
        self.fused = fused
        for parent, name, conv in _conv3xcs(self):
            if fused:
                setattr(parent, name, FusedConv3XC(conv.sk.in_channels, conv.sk.out_channels, conv.has_relu))
            else:
                conv.eval_conv.requires_grad_(False)  # recomputed from the branches, never trained

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, C, H * upscale, W * upscale)."""
        return super().forward(x)


@torch.no_grad()
def fuse_span(net: SPAN) -> SPAN:
    """The inference form of a trained SPAN: every ``Conv3XC``'s branches summed into its ``eval_conv``.

    The result holds the authors' inference weights under their keys (``*.eval_conv.*``, ``conv_cat``,
    ``upsampler.0``), is in eval mode on the device of ``net``, and gives the outputs of ``net.eval()`` up to
    float rounding; ``net`` itself is left as it was.
    """
    if net.fused:
        return net
    hp = dict(net.hyperparameters)
    fused = SPAN(num_in_ch=hp["num_in_ch"], num_out_ch=hp["num_out_ch"], feature_channels=hp["feature_channels"],
                 upscale=hp["upscale"], bias=hp["bias"], norm=hp["norm"], img_range=hp["img_range"],
                 rgb_mean=hp["rgb_mean"], fused=True)
    names = {id(m): n for n, m in net.named_modules()}
    branches = [names[id(conv)] for _, _, conv in _conv3xcs(net)]
    state = {k: v for k, v in net.state_dict().items() if not any(k.startswith(f"{b}.") for b in branches)}
    for branch, (_, _, conv) in zip(branches, _conv3xcs(net), strict=True):
        state[f"{branch}.eval_conv.weight"], state[f"{branch}.eval_conv.bias"] = _fused_kernel(conv)
    param = next(net.parameters())
    fused.to(param.device, param.dtype).load_state_dict(state, strict=True)
    return fused.eval()


def _fused_kernel(conv: Conv3XC) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3x3 kernel and bias of a ``Conv3XC``'s branches, by the authors' ``update_params`` (on a copy: it
    writes the result into the module it runs on)."""
    copy = deepcopy(conv)
    copy.update_params()
    return copy.eval_conv.weight.detach(), copy.eval_conv.bias.detach()
