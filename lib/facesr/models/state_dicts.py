"""What a state dict holds, read off its key names and shapes: which network (for messages) and the
(generator, kwargs) that rebuild it (kit, MMEditing and BasicSR names; spandrel's detection for the rest).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from facesr.models.spandrel_support import spandrel_arch_id


def _max_index(keys: list[str], pattern: str) -> int:
    idx = [int(m.group(1)) for k in keys if (m := re.match(pattern, k))]
    return max(idx) + 1 if idx else 0


def _shape(sd: Mapping[str, object], key: str) -> tuple[int, ...] | None:
    value = sd.get(key)
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def is_basicsr_msrresnet(sd: Mapping[str, object]) -> bool:
    """True for a BasicSR MSRResNet state dict (``body.N.conv1.*`` blocks and an ``upconv1``).

    Its key names and forward differ from the kit's MMEditing MSRResNet, so its weights load into
    ``msrresnet_basicsr`` (:class:`MSRResNetBasicSR`), not into ``msrresnet``.
    """
    return "upconv1.weight" in sd and any(isinstance(k, str) and re.match(r"body\.\d+\.conv1\.", k) for k in sd)


def _upscale_suffix(sd: Mapping[str, object], up_key: str, second_key: str) -> str:
    """``", x2"`` / ``", x3"`` for one-stage upsamplers (``up_key`` has 4 or 9 times conv_first's channels)."""
    first, up1 = _shape(sd, "conv_first.weight"), _shape(sd, up_key)
    if second_key in sd or not (first and up1):
        return ""
    return {4: ", x2", 9: ", x3"}.get(up1[0] // max(first[0], 1), "")


def describe_state_dict(sd: Mapping[str, object]) -> str:
    """Say which network a state dict (kit / MMEditing / BasicSR key names) holds.

    Examples: ``"RRDBNet, 23 blocks, 64 channels"``, ``"MSRResNet, 16 blocks, 64 channels"``,
    ``"BasicSR MSRResNet, 16 blocks, 64 channels"``, ``"ModifiedVGG, 64 channels"``, ``"SwinIR (spandrel)"`` (any architecture spandrel detects, when it is
    installed), ``"unknown network"``. Non-default growth channels or
    upscale factors are appended (``", growth 16"``, ``", x2"``).
    """
    keys = [k for k in sd if isinstance(k, str)]
    first = _shape(sd, "conv_first.weight")
    last = _shape(sd, "conv_last.weight")
    if any(k.startswith("body.") and ".rdb1." in k for k in keys):
        blocks = _max_index(keys, r"body\.(\d+)\.")
        channels = first[0] if first else "?"
        text = f"RRDBNet, {blocks} blocks, {channels} channels"
        growth = _shape(sd, "body.0.rdb1.conv1.weight")
        if growth and growth[0] != 32:
            text += f", growth {growth[0]}"
        if first and last and first[1] == 4 * last[0]:
            text += ", x2"
        return text
    if any(k.startswith("trunk_net.") for k in keys) or "upsample1.upsample_conv.weight" in sd:
        blocks = _max_index(keys, r"trunk_net\.(\d+)\.")
        channels = first[0] if first else "?"
        suffix = _upscale_suffix(sd, "upsample1.upsample_conv.weight", "upsample2.upsample_conv.weight")
        return f"MSRResNet, {blocks} blocks, {channels} channels{suffix}"
    if is_basicsr_msrresnet(sd):
        blocks = _max_index(keys, r"body\.(\d+)\.")
        channels = first[0] if first else "?"
        suffix = _upscale_suffix(sd, "upconv1.weight", "upconv2.weight")
        return f"BasicSR MSRResNet, {blocks} blocks, {channels} channels{suffix}"
    if "conv0_0.weight" in sd and "linear2.weight" in sd:
        return f"ModifiedVGG, {_shape(sd, 'conv0_0.weight')[0]} channels"
    arch = spandrel_arch_id(sd)  # None without spandrel
    return f"{arch} (spandrel)" if arch else "unknown network"


def generator_architecture(sd: Mapping[str, object]) -> tuple[str, dict] | None:
    """The (generator name, kwargs) that rebuild a kit, MMEditing or BasicSR state dict; None if it is no generator.

    Read off key names and shapes: block counts, channels, growth channels and the upscale factor. BasicSR's
    MSRResNet (``body.N.conv1``, ``upconv1``) gives ``msrresnet_basicsr`` with BasicSR's argument names.
    """
    keys = [k for k in sd if isinstance(k, str)]
    if "conv_first.weight" not in sd:
        return None
    first = sd["conv_first.weight"]  # (mid, in_channels, 3, 3)
    mid = int(first.shape[0])
    last = sd.get("conv_last.weight")
    out_channels = int(last.shape[0]) if last is not None else 3
    if (n := _max_index(keys, r"trunk_net\.(\d+)\.")) > 0:
        up1 = sd.get("upsample1.upsample_conv.weight")
        if up1 is None:
            return None
        # x4 has two x2 upsamplers; x2 or x3 has one (64 -> 4*64 or 9*64 channels before the shuffle)
        scale = 4 if "upsample2.upsample_conv.weight" in sd else 3 if int(up1.shape[0]) == 9 * mid else 2
        return "msrresnet", dict(
            in_channels=int(first.shape[1]),
            out_channels=out_channels,
            mid_channels=mid,
            num_blocks=n,
            upscale_factor=scale,
        )
    if is_basicsr_msrresnet(sd):
        up1 = sd["upconv1.weight"]  # (mid * s * s, mid, 3, 3)
        scale = 4 if "upconv2.weight" in sd else 3 if int(up1.shape[0]) == 9 * mid else 2
        return "msrresnet_basicsr", dict(
            num_in_ch=int(first.shape[1]),
            num_out_ch=out_channels,
            num_feat=mid,
            num_block=_max_index(keys, r"body\.(\d+)\."),
            upscale=scale,
        )
    n = _max_index(keys, r"body\.(\d+)\.")
    growth = sd.get("body.0.rdb1.conv1.weight")
    if n > 0 and growth is not None:
        in_ch = int(first.shape[1])
        # x2 RRDBNet pixel-unshuffles its input first, so conv_first sees 4x the channels
        scale, in_channels = (2, in_ch // 4) if in_ch == 4 * out_channels else (4, in_ch)
        return "rrdbnet", dict(
            in_channels=in_channels,
            out_channels=out_channels,
            mid_channels=mid,
            num_blocks=n,
            growth_channels=int(growth.shape[0]),
            upscale_factor=scale,
        )
    return None
