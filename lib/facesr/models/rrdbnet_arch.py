"""RRDBNet, the ESRGAN generator, with MMEditing 0.x (= BasicSR) state-dict names and init.

x4 is the classic ESRGAN layout. x2 follows MMEditing/BasicSR: the input is pixel-unshuffled by 2
first (so ``conv_first`` takes ``in_channels * 4`` channels) and the same x4 tail is used.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesr.errors import FacesrError
from facesr.models.msrresnet_arch import default_init_weights
from facesr.models.record import GeneratorRecord


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; returns ``0.2 * conv5_out + x``.

    Args:
        mid_channels: Channels of the block input and output.
        growth_channels: Channels added by each of conv1-conv4.
    """

    def __init__(self, mid_channels: int = 64, growth_channels: int = 32) -> None:
        super().__init__()
        for i in range(5):
            out_channels = mid_channels if i == 4 else growth_channels
            self.add_module(f"conv{i + 1}", nn.Conv2d(mid_channels + i * growth_channels, out_channels, 3, 1, 1))
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        default_init_weights(self, 0.1)  # conv1..conv5 in order, as MMEditing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        # Residual scaling 0.2 keeps the deep stack stable (ESRGAN).
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, returns ``0.2 * rdb3_out + x``.

    Args:
        mid_channels: Channels of the block input and output.
        growth_channels: Growth channels of the dense blocks.
    """

    def __init__(self, mid_channels: int = 64, growth_channels: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(mid_channels, growth_channels)
        self.rdb2 = ResidualDenseBlock(mid_channels, growth_channels)
        self.rdb3 = ResidualDenseBlock(mid_channels, growth_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator (MMEditing 0.x ``RRDBNet``).

    Args:
        in_channels: Channels of the input image.
        out_channels: Channels of the output image.
        mid_channels: Feature channels.
        num_blocks: Number of RRDB blocks in ``body``.
        growth_channels: Growth channels inside each dense block.
        upscale_factor: 4, or 2 (input pixel-unshuffled by 2, as MMEditing/BasicSR).
    """

    supported_upscale_factors = (2, 4)

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        mid_channels: int = 64,
        num_blocks: int = 23,
        growth_channels: int = 32,
        upscale_factor: int = 4,
    ) -> None:
        super().__init__()
        if upscale_factor not in self.supported_upscale_factors:
            raise FacesrError(
                f"RRDBNet upscale_factor={upscale_factor!r} is not supported; use one of "
                f"{list(self.supported_upscale_factors)}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mid_channels = mid_channels
        self.num_blocks = num_blocks
        self.growth_channels = growth_channels
        self.upscale_factor = upscale_factor
        first_in = in_channels * (4 // upscale_factor) ** 2  # x2: pixel-unshuffled input

        self.conv_first = nn.Conv2d(first_in, mid_channels, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(mid_channels, growth_channels) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.conv_hr = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.conv_last = nn.Conv2d(mid_channels, out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

        # MMEditing's init_weights(): every trunk/tail conv Kaiming-normal scaled by 0.1.
        for m in (self.conv_first, self.conv_body, self.conv_up1, self.conv_up2, self.conv_hr, self.conv_last):
            default_init_weights(m, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, in_channels, H, W). Returns (B, out_channels, H*s, W*s)."""
        if self.upscale_factor == 2:
            if x.shape[-2] % 2 or x.shape[-1] % 2:
                raise ValueError(f"RRDBNet x2 needs an even height and width, got {tuple(x.shape)}")
            feat = F.pixel_unshuffle(x, 2)  # (B, C*4, H/2, W/2)
        else:
            feat = x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))  # (B, C, 2h, 2w)
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))  # (B, C, 4h, 4w)
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


# Quick mode: no image skip and a 0.1-scaled init, so it starts near black and reaches about 18 dB (luminance,
# not yet colour) within 300 iterations at lr 5e-4 (2e-4: 18.1 dB), then stays there for the next thousand;
# passing bicubic takes thousands of iterations. 2 of its 23 blocks keep a full validation quick on a CPU.
RECORD = GeneratorRecord(
    name="rrdbnet",
    build=RRDBNet,
    title="RRDBNet",
    label=lambda a: f"RRDBNet {a['mid_channels']}/{a['num_blocks']}/{a['growth_channels']}",
    defaults={"in_channels": 3, "out_channels": 3, "mid_channels": 64, "num_blocks": 23, "growth_channels": 32,
              "upscale_factor": 4},
    quick={"iters": 450, "lr": 5e-4, "generator_args": {"num_blocks": 2}},
    quick_note="RRDBNet keeps 2 of its 23 blocks",
    channels_last=True,
    basicsr="RRDBNet",
    basicsr_args={"in_channels": "num_in_ch", "out_channels": "num_out_ch", "mid_channels": "num_feat",
                  "num_blocks": "num_block", "growth_channels": "num_grow_ch", "upscale_factor": "scale"},
    spandrel="ESRGAN",
)
