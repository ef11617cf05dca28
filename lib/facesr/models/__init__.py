"""The kit's networks, parameter counting against the course limit, and state-dict descriptions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch
import torch.nn as nn

from facesr.errors import FacesrError
from facesr.models.modified_vgg_arch import ModifiedVGG
from facesr.models.msrresnet_arch import MSRResNet
from facesr.models.rrdbnet_arch import RRDBNet
from facesr.models.vgg_arch import VGGFeatureExtractor
from facesr.models.zoo import SPANDREL_GENERATORS, spandrel_arch_id

__all__ = [
    "GENERATORS",
    "PARAM_LIMIT",
    "MSRResNet",
    "ModifiedVGG",
    "RRDBNet",
    "VGGFeatureExtractor",
    "build_generator",
    "check_param_budget",
    "count_parameters",
    "describe_state_dict",
    "generator_architecture",
    "is_basicsr_msrresnet",
    "parameter_table",
    "perceptual_vgg_params",
]

# The course's limit on generator parameters (MSRResNet with 20 blocks fits, 21 does not).
PARAM_LIMIT = 1_821_085

# Name -> class or builder. swinir and rcan come from spandrel, imported only when one is built: they are
# listed (and configs naming them validate) without spandrel; building one without it is a clear error.
GENERATORS: dict[str, Callable[..., nn.Module]] = {"msrresnet": MSRResNet, "rrdbnet": RRDBNet,
                                                   **SPANDREL_GENERATORS}


def count_parameters(net: nn.Module) -> int:
    """Number of parameters of ``net`` as the handout counts them: ``sum(p.numel() for p in net.parameters())``.

    Frozen parameters count too (RCAN's mean shift, an EMA copy with ``requires_grad`` off); buffers
    (SwinIR's attention masks and position indices, BatchNorm statistics) do not.
    """
    return sum(p.numel() for p in net.parameters())


def check_param_budget(net: nn.Module) -> int:
    """Return the parameter count of ``net`` (see :func:`count_parameters`); FacesrError if over :data:`PARAM_LIMIT`."""
    n = count_parameters(net)
    if n > PARAM_LIMIT:
        raise FacesrError(
            f"{type(net).__name__} has {n:,} parameters, over the course limit of {PARAM_LIMIT:,} "
            f"(by {n - PARAM_LIMIT:,}); use fewer blocks or channels"
        )
    return n


def build_generator(name: str, **kwargs: object) -> nn.Module:
    """Build a generator from :data:`GENERATORS` by name (case-insensitive) with its keyword arguments.

    Args:
        name: ``msrresnet``, ``rrdbnet``, ``swinir`` or ``rcan`` (the last two need spandrel).
        **kwargs: The network's constructor arguments (for swinir and rcan the official ones).
    """
    key = str(name).lower()
    if key not in GENERATORS:
        raise FacesrError(f"unknown generator {name!r}; known generators: {', '.join(sorted(GENERATORS))}")
    cls = GENERATORS[key]
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise FacesrError(f"bad arguments for generator {name!r} {kwargs}: {exc}") from exc


def _max_index(keys: list[str], pattern: str) -> int:
    idx = [int(m.group(1)) for k in keys if (m := re.match(pattern, k))]
    return max(idx) + 1 if idx else 0


def _shape(sd: Mapping[str, object], key: str) -> tuple[int, ...] | None:
    value = sd.get(key)
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def is_basicsr_msrresnet(sd: Mapping[str, object]) -> bool:
    """True for a BasicSR MSRResNet state dict (``body.N.conv1.*`` blocks and an ``upconv1``).

    Its key names and layout differ from the kit's MMEditing MSRResNet, so its weights do not transfer.
    """
    return "upconv1.weight" in sd and any(isinstance(k, str) and re.match(r"body\.\d+\.conv1\.", k) for k in sd)


def describe_state_dict(sd: Mapping[str, object]) -> str:
    """Say which network a state dict (kit / MMEditing / BasicSR key names) holds.

    Examples: ``"RRDBNet, 23 blocks, 64 channels"``, ``"MSRResNet, 16 blocks, 64 channels"``,
    ``"ModifiedVGG, 64 channels"``, ``"SwinIR (spandrel)"`` (any architecture spandrel detects, when it is
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
        text = f"MSRResNet, {blocks} blocks, {channels} channels"
        up1 = _shape(sd, "upsample1.upsample_conv.weight")
        if "upsample2.upsample_conv.weight" not in sd and up1 and first:
            ratio = up1[0] // max(first[0], 1)
            text += {4: ", x2", 9: ", x3"}.get(ratio, "")
        return text
    if is_basicsr_msrresnet(sd):
        blocks = _max_index(keys, r"body\.(\d+)\.")
        channels = first[0] if first else "?"
        return f"BasicSR MSRResNet, {blocks} blocks, {channels} channels"
    if "conv0_0.weight" in sd and "linear2.weight" in sd:
        return f"ModifiedVGG, {_shape(sd, 'conv0_0.weight')[0]} channels"
    arch = spandrel_arch_id(sd)  # None without spandrel
    return f"{arch} (spandrel)" if arch else "unknown network"


def generator_architecture(sd: Mapping[str, object]) -> tuple[str, dict] | None:
    """The (generator name, kwargs) that rebuild a kit/MMEditing-named state dict, or None if it is no generator.

    Read off key names and shapes: block counts, channels, growth channels and the upscale factor.
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


def perceptual_vgg_params() -> int:
    """All parameters (frozen included) of the perceptual loss's VGG19 ``features[:35]``: 20,024,384.

    Counted on a :class:`VGGFeatureExtractor` cut at layer ``'34'`` (conv5_4), built on the meta
    device with random init: no memory, no download.
    """
    with torch.device("meta"):
        vgg = VGGFeatureExtractor(["34"], weights=None)
    return sum(p.numel() for p in vgg.parameters())


def _spandrel_rows() -> list[tuple[str, int | None, bool]]:
    """The in-budget spandrel generators at their defaults (= the swinir and rcan configs); None without spandrel."""
    rows: list[tuple[str, int | None, bool]] = []
    for label, name in (("SwinIR 84, 4x6, window 8 (swinir config)", "swinir"),
                        ("RCAN 64, 3 groups x 6 blocks (rcan config)", "rcan")):
        try:
            rows.append((label, count_parameters(build_generator(name)), True))
        except FacesrError:  # spandrel missing: the table still prints, saying so
            rows.append((label, None, True))
    return rows


def parameter_table() -> str:
    """The table printed by ``python -m facesr params``: each network's count against the limit."""
    # Built on the meta device: exact shapes, no memory, no init cost, no download.
    with torch.device("meta"):
        rrdb, disc = count_parameters(RRDBNet()), count_parameters(ModifiedVGG(3, 64))
        rows: list[tuple[str, int | None, bool]] = [
            ("MSRResNet-16 (course baseline)", count_parameters(MSRResNet(num_blocks=16)), True),
            ("MSRResNet-20 (msrresnet20 config)", count_parameters(MSRResNet(num_blocks=20)), True),
            ("MSRResNet-21", count_parameters(MSRResNet(num_blocks=21)), True),
            *_spandrel_rows(),
            ("RRDBNet 64/23/32 (ESRGAN G)", rrdb, True),
            ("ModifiedVGG(3, 64) (ESRGAN D)", disc, False),
        ]
    vgg = perceptual_vgg_params()
    rows.append(("VGG19 features[:35] (perceptual)", vgg, False))
    rows.append(("ESRGAN total (G + D + perceptual)", rrdb + disc + vgg, False))

    name_w = max(len(r[0]) for r in rows)
    lines = [f"{'network':<{name_w}}  {'parameters':>12}  fits {PARAM_LIMIT:,} limit", "-" * (name_w + 40)]
    for name, n, is_generator in rows:
        if n is None:
            lines.append(f"{name:<{name_w}}  {'?':>12}  needs spandrel: pip install 'spandrel>=0.4'")
            continue
        if is_generator:
            fits = "yes" if n <= PARAM_LIMIT else f"NO (+{n - PARAM_LIMIT:,})"
        else:
            fits = "n/a (not a generator)"
        lines.append(f"{name:<{name_w}}  {n:>12,}  {fits}")
    lines.append(f"The limit applies to the generator's parameters, frozen ones included (limit {PARAM_LIMIT:,}).")
    return "\n".join(lines)
