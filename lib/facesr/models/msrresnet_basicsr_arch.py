"""BasicSR's MSRResNet, the 2024/2025 baseline generator, with BasicSR's state-dict names, forward and init.

The course's 2024/2025 code (Real-ESRGAN on BasicSR) trains and loads this network (docs/course.md section 6).
It differs from the kit's MMEditing :class:`facesr.models.msrresnet_arch.MSRResNet` in two ways that stop
weights from transferring between them: a LeakyReLU(0.1) after each pixel shuffle, and the key names
(``conv_first``, ``body.N.conv1/conv2``, ``upconv1``, ``upconv2``, ``conv_hr``, ``conv_last``). The parameter
count is the same (1,517,571 at 64 features and 16 blocks), so the limits treat both alike.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesr.errors import FacesrError
from facesr.models.msrresnet_arch import RECORD as MMEDITING_RECORD
from facesr.models.msrresnet_arch import ResidualBlockNoBN, default_init_weights
from facesr.models.record import GeneratorRecord


class MSRResNetBasicSR(nn.Module):
    """Modified SRResNet as BasicSR builds it (``basicsr.archs.srresnet_arch.MSRResNet``), same arguments.

    Args:
        num_in_ch: Channels of the input image.
        num_out_ch: Channels of the output image.
        num_feat: Feature channels.
        num_block: Residual blocks in ``body`` (conv -> ReLU -> conv plus identity, no BN).
        upscale: 2, 3 (one conv + pixel-shuffle stage) or 4 (two x2 stages).
    """

    supported_upscales = (2, 3, 4)

    def __init__(
        self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16, upscale: int = 4
    ) -> None:
        super().__init__()
        if upscale not in self.supported_upscales:
            raise FacesrError(f"BasicSR MSRResNet upscale={upscale!r} is not supported; use one of "
                              f"{list(self.supported_upscales)}")
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat) for _ in range(num_block)])  # convs scaled by 0.1
        shuffle = 2 if upscale == 4 else upscale
        self.upconv1 = nn.Conv2d(num_feat, num_feat * shuffle * shuffle, 3, 1, 1)
        if upscale == 4:
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(shuffle)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        # BasicSR scales every conv by 0.1, the upsampler convs included (MMEditing leaves those unscaled)
        for m in (self.conv_first, self.upconv1, getattr(self, "upconv2", None), self.conv_hr, self.conv_last):
            if m is not None:
                default_init_weights(m, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, num_in_ch, H, W). Returns (B, num_out_ch, H*upscale, W*upscale)."""
        feat = self.lrelu(self.conv_first(x))
        out = self.body(feat)
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))  # (B, C, 2H, 2W), or 3H / 2H for x3 / x2
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))  # (B, C, 4H, 4W)
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        # global skip: the net learns the residual over a bilinear upscale of the input
        return out + F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)


# The same size and cost as MMEditing's MSRResNet: the same quick run.
RECORD = GeneratorRecord(
    name="msrresnet_basicsr",
    build=MSRResNetBasicSR,
    title="BasicSR MSRResNet",
    label=lambda a: f"BasicSR MSRResNet-{a['num_block']}",
    defaults={"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 16, "upscale": 4},
    quick=MMEDITING_RECORD.quick,
    channels_last=True,
    depth_arg="num_block",
    basicsr="MSRResNet",
)
