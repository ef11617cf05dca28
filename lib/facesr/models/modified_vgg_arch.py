"""ModifiedVGG, the 128x128 ESRGAN discriminator, with MMEditing 0.x state-dict names.

Init is PyTorch's default, as in MMEditing (its ``init_weights`` does nothing for this net).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ModifiedVGG(nn.Module):
    """VGG-style discriminator for 128x128 inputs, one logit per image.

    Stage 0 has ``conv0_0`` (3x3, bias) and ``conv0_1`` (4x4 stride 2) + ``bn0_1``; stages 1-4 have
    ``convI_0`` (3x3) + ``bnI_0`` and ``convI_1`` (4x4 stride 2) + ``bnI_1``; channels mid * (1, 2, 4,
    8, 8). Five stride-2 convs take 128 to 4, so the head is ``linear1`` (mid*8*4*4 -> 100) and
    ``linear2`` (100 -> 1).

    Args:
        in_channels: Channels of the input image.
        mid_channels: Channels of stage 0.
    """

    input_size = 128

    def __init__(self, in_channels: int = 3, mid_channels: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        widths = [mid_channels, mid_channels * 2, mid_channels * 4, mid_channels * 8, mid_channels * 8]

        self.conv0_0 = nn.Conv2d(in_channels, mid_channels, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(mid_channels, mid_channels, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(mid_channels, affine=True)
        for i in range(1, 5):
            c_in, c_out = widths[i - 1], widths[i]
            self.add_module(f"conv{i}_0", nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False))
            self.add_module(f"bn{i}_0", nn.BatchNorm2d(c_out, affine=True))
            self.add_module(f"conv{i}_1", nn.Conv2d(c_out, c_out, 4, 2, 1, bias=False))
            self.add_module(f"bn{i}_1", nn.BatchNorm2d(c_out, affine=True))
        self.linear1 = nn.Linear(widths[4] * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def _check_input(self, x: object) -> None:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"ModifiedVGG expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(f"ModifiedVGG expects a 4-D (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"ModifiedVGG expects a floating-point tensor, got dtype {x.dtype}")
        _, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(
                f"ModifiedVGG expects {self.in_channels} input channels, got shape {tuple(x.shape)}"
            )
        if h != self.input_size or w != self.input_size:
            raise ValueError(
                f"ModifiedVGG expects 128x128 inputs (B, {self.in_channels}, 128, 128), "
                f"got shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, in_channels, 128, 128) float. Returns logits (B, 1)."""
        self._check_input(x)
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))  # (B, C, 64, 64)
        for i in range(1, 5):
            feat = self.lrelu(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)))
        # stage 4 output: (B, 8C, 4, 4)
        feat = feat.flatten(1)
        feat = self.lrelu(self.linear1(feat))
        return self.linear2(feat)
