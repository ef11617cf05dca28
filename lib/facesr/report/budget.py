"""Parameter counts against an edition's limit: ``python -m facesr params`` and the report's parameter table."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch

from facesr.editions import Edition, get_edition
from facesr.errors import FacesrError
from facesr.models import ModifiedVGG, RRDBNet, build_generator, count_parameters, perceptual_vgg_params


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
    from facesr.config.named_configs import edition_configs

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


def parameter_budget_table(edition: int | str | Edition | None = None) -> pd.DataFrame:
    """The report's parameter table of an edition, counted from the networks (built on the meta device).

    Rows: the edition's srgan, esrgan and in-budget configs as it sizes them (swinir and rcan left out, with a
    note, when spandrel is not installed), and "ESRGAN (discriminator)": RRDBNet + ModifiedVGG + VGG19
    features[:35], everything a GAN step runs. Every parameter counts, frozen ones too, as the handout counts
    them. Only generators are held to the limit: ``within_limit`` is empty for the GAN row.

    Args:
        edition: Whose configs and limit (:func:`facesr.editions.get_edition`; None: ``FACESR_EDITION``, else 2022).
    """
    from facesr.config.named_configs import edition_configs, in_budget_names
    from facesr.report.style import model_label

    ed = get_edition(edition)
    configs = edition_configs(ed.year)
    rows: list[tuple[str, str, int, bool | None]] = []

    def add(label: str, name: str) -> int | None:
        cfg = configs[name]
        try:
            with torch.device("meta"):
                n = count_parameters(build_generator(cfg.generator, **cfg.generator_args))
        except FacesrError as err:  # spandrel missing: the report's own networks still get their rows
            print(f"parameter table without {name}: {err}")
            return None
        rows.append((label, generator_label(cfg.generator, cfg.generator_args), n, n <= ed.param_limit))
        return n

    add("SRGAN", "srgan")
    rrdb = add("ESRGAN", "esrgan")
    with torch.device("meta"):
        disc = count_parameters(ModifiedVGG(3, 64))
    rows.append(("ESRGAN (discriminator)", "RRDBNet + ModifiedVGG + VGG19 features[:35] (not a generator)",
                 rrdb + disc + perceptual_vgg_params(), None))
    for name in in_budget_names(ed.year):
        add(model_label(name), name)
    df = pd.DataFrame(rows, columns=["model", "networks", "params", "within_limit"])
    df.insert(3, "limit", ed.param_limit)
    df["within_limit"] = df["within_limit"].astype(object)
    return df
