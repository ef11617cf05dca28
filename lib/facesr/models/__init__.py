"""The kit's networks, parameter counting against each edition's limit, and state-dict descriptions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch
import torch.nn as nn

from facesr.editions import Edition, get_edition
from facesr.errors import FacesrError
from facesr.models.modified_vgg_arch import ModifiedVGG
from facesr.models.msrresnet_arch import MSRResNet
from facesr.models.msrresnet_basicsr_arch import MSRResNetBasicSR
from facesr.models.rrdbnet_arch import RRDBNet
from facesr.models.vgg_arch import VGGFeatureExtractor
from facesr.models.zoo import SPANDREL_GENERATORS, spandrel_arch_id

__all__ = [
    "GENERATORS",
    "PARAM_LIMIT",
    "MSRResNet",
    "MSRResNetBasicSR",
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
    "param_limit",
    "perceptual_vgg_params",
]

# The 2022 edition's limit, kept for the callers that predate the editions; new code uses param_limit(edition).
PARAM_LIMIT = 1_821_085

# Name -> class or builder. swinir and rcan come from spandrel, imported only when one is built: they are
# listed (and configs naming them validate) without spandrel; building one without it is a clear error.
GENERATORS: dict[str, Callable[..., nn.Module]] = {"msrresnet": MSRResNet, "msrresnet_basicsr": MSRResNetBasicSR,
                                                   "rrdbnet": RRDBNet, **SPANDREL_GENERATORS}


def count_parameters(net: nn.Module) -> int:
    """Number of parameters of ``net`` as the handout counts them: ``sum(p.numel() for p in net.parameters())``.

    Frozen parameters count too (RCAN's mean shift, an EMA copy with ``requires_grad`` off); buffers
    (SwinIR's attention masks and position indices, BatchNorm statistics) do not.
    """
    return sum(p.numel() for p in net.parameters())


def param_limit(edition: int | str | Edition | None = None) -> int:
    """The most generator parameters a submission of ``edition`` may have (None: :func:`get_edition`'s).

    2022: 1,821,085 (120 % of MSRResNet-16); 2023-2025: 2,276,356 (150 %). A net with exactly the limit fits.
    """
    return get_edition(edition).param_limit


def check_param_budget(net: nn.Module, edition: int | str | Edition | None = None) -> int:
    """Return the parameter count of ``net`` (see :func:`count_parameters`); FacesrError if over the limit.

    Args:
        net: The generator.
        edition: Whose limit applies (:func:`facesr.editions.get_edition`; None: ``FACESR_EDITION``, else 2022).
    """
    ed = get_edition(edition)
    n = count_parameters(net)
    if n > ed.param_limit:
        raise FacesrError(
            f"{type(net).__name__} has {n:,} parameters, over the course limit of {ed.param_limit:,} of the "
            f"{ed.year} edition (by {n - ed.param_limit:,}); use fewer blocks or channels"
        )
    return n


def build_generator(name: str, **kwargs: object) -> nn.Module:
    """Build a generator from :data:`GENERATORS` by name (case-insensitive) with its keyword arguments.

    Args:
        name: ``msrresnet``, ``msrresnet_basicsr``, ``rrdbnet``, ``swinir`` or ``rcan`` (the last two need
            spandrel).
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


def perceptual_vgg_params() -> int:
    """All parameters (frozen included) of the perceptual loss's VGG19 ``features[:35]``: 20,024,384.

    Counted on a :class:`VGGFeatureExtractor` cut at layer ``'34'`` (conv5_4), built on the meta
    device with random init: no memory, no download.
    """
    with torch.device("meta"):
        vgg = VGGFeatureExtractor(["34"], weights=None)
    return sum(p.numel() for p in vgg.parameters())


def generator_label(name: str, args: Mapping[str, object]) -> str:
    """A short name of a generator and its size: ``"MSRResNet-20"``, ``"SwinIR 84, 4x6, window 8"``, ...

    Args:
        name: Its name in :data:`GENERATORS`.
        args: Its ``build_generator`` kwargs (missing ones are the class defaults).
    """
    if name == "msrresnet":
        return f"MSRResNet-{args.get('num_blocks', 16)}"
    if name == "msrresnet_basicsr":
        return f"BasicSR MSRResNet-{args.get('num_block', 16)}"
    if name == "rrdbnet":
        return (f"RRDBNet {args.get('mid_channels', 64)}/{args.get('num_blocks', 23)}/"
                f"{args.get('growth_channels', 32)}")
    if name == "swinir":
        depths = list(args.get("depths", [6, 6, 6, 6]))
        return (f"SwinIR {args.get('embed_dim', 84)}, {len(depths)}x{depths[0]}, "
                f"window {args.get('window_size', 8)}")
    if name == "rcan":
        return (f"RCAN {args.get('n_feats', 64)}, {args.get('n_resgroups', 3)} groups x "
                f"{args.get('n_resblocks', 6)} blocks")
    return name


_MSR_BLOCKS = {"msrresnet": "num_blocks", "msrresnet_basicsr": "num_block"}  # each one's block-count argument


def _config_rows(edition: Edition) -> list[tuple[str, int | None, bool]]:
    """(label, count or None without spandrel, is a generator) of the edition's generators, as configured."""
    from facesr.config import edition_configs

    configs = edition_configs(edition.year)
    rows: list[tuple[str, int | None, bool]] = []
    over: list[tuple[str, int | None, bool]] = []  # the report's over-budget RRDBNet, listed last
    msr_blocks: dict[str, int] = {}
    for cfg_name, cfg in configs.items():
        if cfg_name.endswith("_l2") or cfg.is_gan:  # a finish or fine-tune: its first stage's generator
            continue
        note = ", the course baseline" if cfg_name == edition.baseline_config else ""
        label = f"{generator_label(cfg.generator, cfg.generator_args)} ({cfg_name} config{note})"
        try:
            with torch.device("meta"):  # exact shapes, no memory, no init cost
                n: int | None = count_parameters(build_generator(cfg.generator, **cfg.generator_args))
        except FacesrError:  # spandrel missing: the table still prints, saying so
            n = None
        if cfg.generator in _MSR_BLOCKS:
            blocks = int(cfg.generator_args.get(_MSR_BLOCKS[cfg.generator], 16))
            msr_blocks[cfg.generator] = max(msr_blocks.get(cfg.generator, 0), blocks)
        (over if cfg.generator == "rrdbnet" else rows).append((label, n, True))
    for generator, blocks in msr_blocks.items():  # the next MSRResNet size, the first that does not fit
        args = {_MSR_BLOCKS[generator]: blocks + 1}
        with torch.device("meta"):
            rows.append((generator_label(generator, args), count_parameters(build_generator(generator, **args)), True))
    return rows + over


def parameter_table(edition: int | str | Edition | None = None) -> str:
    """The table printed by ``python -m facesr params``: the edition's networks against its limit.

    The rows are the edition's own configs as it sizes them (baseline, in-budget configs, RRDBNet), the next
    MSRResNet size (the first that does not fit), and the GAN run's discriminator and perceptual network.

    Args:
        edition: Whose configs and limit (:func:`facesr.editions.get_edition`; None: ``FACESR_EDITION``, else 2022).
    """
    ed = get_edition(edition)
    limit = ed.param_limit
    rows = _config_rows(ed)
    with torch.device("meta"):
        rrdb, disc = count_parameters(RRDBNet()), count_parameters(ModifiedVGG(3, 64))
    vgg = perceptual_vgg_params()
    rows.append(("ModifiedVGG(3, 64) (ESRGAN D)", disc, False))
    rows.append(("VGG19 features[:35] (perceptual)", vgg, False))
    rows.append(("ESRGAN total (G + D + perceptual)", rrdb + disc + vgg, False))

    name_w = max(len(r[0]) for r in rows)
    lines = [f"{'network':<{name_w}}  {'parameters':>12}  fits the {ed.year} limit of {limit:,}",
             "-" * (name_w + 44)]
    for name, n, is_generator in rows:
        if n is None:
            lines.append(f"{name:<{name_w}}  {'?':>12}  needs spandrel: pip install 'spandrel>=0.4'")
            continue
        if is_generator:
            fits = f"yes ({100 * n / limit:.1f} %)" if n <= limit else f"NO (+{n - limit:,})"
        else:
            fits = "n/a (not a generator)"
        lines.append(f"{name:<{name_w}}  {n:>12,}  {fits}")
    lines.append(f"Edition {ed.year}: the limit of {limit:,} ({ed.limit_rule}) applies to the generator's "
                 "parameters, frozen ones included.")
    return "\n".join(lines)
