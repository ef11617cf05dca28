"""MSRResNet (modified SRResNet), the course baseline generator, with MMEditing 0.x names and init.

State-dict keys match MMEditing 0.x exactly (``conv_first``, ``trunk_net.N.conv1/conv2``,
``upsample1.upsample_conv``, ``upsample2.upsample_conv``, ``conv_hr``, ``conv_last``), so MMEditing
weights load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesr.errors import FacesrError
from facesr.models.record import GeneratorRecord


@torch.no_grad()
def default_init_weights(module: nn.Module, scale: float = 1.0) -> None:
    """Kaiming-normal init (fan_in, gain sqrt 2, bias 0) of every conv/linear in ``module``, scaled.

    Same as MMEditing's ``default_init_weights``: a scale of 0.1 keeps residual branches small at the
    start, which ESRGAN found makes deep networks without BN train stably.

    Args:
        module: The module whose ``nn.Conv2d`` / ``nn.Linear`` children are initialised.
        scale: Factor applied to the weights after the Kaiming init.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in", nonlinearity="relu")
            m.weight.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResidualBlockNoBN(nn.Module):
    """Residual block without BatchNorm: ``x + conv2(relu(conv1(x)))``.

    Args:
        mid_channels: Channels of both convs.
    """

    def __init__(self, mid_channels: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        default_init_weights(self, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class PixelShufflePack(nn.Module):
    """Conv to ``out_channels * scale**2`` channels, then pixel shuffle (no activation, as MMEditing).

    Args:
        in_channels: Input channels.
        out_channels: Channels after the shuffle.
        scale_factor: Upsampling ratio.
        upsample_kernel: Kernel size of the conv.
    """

    def __init__(self, in_channels: int, out_channels: int, scale_factor: int, upsample_kernel: int = 3) -> None:
        super().__init__()
        self.scale_factor = scale_factor
        self.upsample_conv = nn.Conv2d(
            in_channels, out_channels * scale_factor * scale_factor, upsample_kernel,
            padding=(upsample_kernel - 1) // 2,
        )
        default_init_weights(self, 1.0)  # unscaled, as MMEditing's PixelShufflePack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, C*s*s, H, W) -> (B, C, H*s, W*s)
        return F.pixel_shuffle(self.upsample_conv(x), self.scale_factor)


class MSRResNet(nn.Module):
    """Modified SRResNet (MMEditing 0.x): residual blocks without BN and a bilinear global skip.

    Args:
        in_channels: Channels of the input image.
        out_channels: Channels of the output image.
        mid_channels: Feature channels.
        num_blocks: Number of residual blocks in ``trunk_net``.
        upscale_factor: 2, 3 (one pixel-shuffle stage) or 4 (two x2 stages).
    """

    supported_upscale_factors = (2, 3, 4)

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        mid_channels: int = 64,
        num_blocks: int = 16,
        upscale_factor: int = 4,
    ) -> None:
        super().__init__()
        if upscale_factor not in self.supported_upscale_factors:
            raise FacesrError(
                f"MSRResNet upscale_factor={upscale_factor!r} is not supported; use one of "
                f"{list(self.supported_upscale_factors)}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mid_channels = mid_channels
        self.num_blocks = num_blocks
        self.upscale_factor = upscale_factor

        self.conv_first = nn.Conv2d(in_channels, mid_channels, 3, 1, 1, bias=True)
        self.trunk_net = nn.Sequential(*[ResidualBlockNoBN(mid_channels) for _ in range(num_blocks)])
        if upscale_factor in (2, 3):
            self.upsample1 = PixelShufflePack(mid_channels, mid_channels, upscale_factor, upsample_kernel=3)
        else:
            self.upsample1 = PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3)
            self.upsample2 = PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3)
        self.conv_hr = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1, bias=True)
        self.conv_last = nn.Conv2d(mid_channels, out_channels, 3, 1, 1, bias=True)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

        # Smaller init for the head/tail convs (ESRGAN); the residual blocks scale themselves.
        for m in (self.conv_first, self.conv_hr, self.conv_last):
            default_init_weights(m, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, in_channels, H, W). Returns (B, out_channels, H*s, W*s)."""
        feat = self.lrelu(self.conv_first(x))
        out = self.trunk_net(feat)
        out = self.upsample1(out)  # (B, C, H*2, W*2), or *3 / *2 for x3 / x2
        if self.upscale_factor == 4:
            out = self.upsample2(out)  # (B, C, H*4, W*4)
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        # Global skip: the network only learns the residual over a bilinear upscale.
        base = F.interpolate(x, scale_factor=self.upscale_factor, mode="bilinear", align_corners=False)
        return out + base


# MSRResNet-16 learns past bicubic in quick mode at lr 2e-4 (0.27 dB after 400 iterations of 0.2 s on 2 CPU
# cores; 5e-4 gets no further and 1e-3 stays below bicubic). Its in-budget configs (msrresnet20, msrresnet26)
# are the baseline deepened, named by depth (facesr.config.named_configs), so it has no sizes of its own.
RECORD = GeneratorRecord(
    name="msrresnet",
    build=MSRResNet,
    title="MSRResNet",
    label=lambda a: f"MSRResNet-{a['num_blocks']}",
    defaults={"in_channels": 3, "out_channels": 3, "mid_channels": 64, "num_blocks": 16, "upscale_factor": 4},
    quick={"iters": 400, "lr": 2e-4},
    channels_last=True,
    depth_arg="num_blocks",
    basicsr_why_not="the kit's msrresnet is MMEditing's MSRResNet (other key names and no LeakyReLU after the "
                    "pixel shuffles), so BasicSR's MSRResNet would compute something else; train "
                    "msrresnet_basicsr for a BasicSR file",
)
