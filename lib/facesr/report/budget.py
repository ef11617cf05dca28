"""Parameter counts against an edition's limit: ``python -m facesr params`` and the report's parameter table."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch

from facesr.editions import Edition, get_edition
from facesr.errors import FacesrError
from facesr.models import (
    ModifiedVGG,
    RRDBNet,
    count_generator,
    count_parameters,
    generator_record,
    perceptual_vgg_params,
)
from facesr.models.sizing import inference_args


def generator_label(name: str, args: Mapping[str, object]) -> str:
    """A short name of a generator and its size: ``"MSRResNet-20"``, ``"SwinIR 84, 4x6, window 8"``, ...

    Args:
        name: Its name in :data:`GENERATORS` (its record's ``label`` makes the text).
        args: Its ``build_generator`` kwargs (missing ones are the record's defaults).
    """
    return generator_record(name).describe(args)


def _count(generator: str, args: Mapping[str, object]) -> int | None:
    """The exact parameter count of the form that is submitted (meta device: no memory, no init cost; SPAN
    fused); None when spandrel is missing."""
    try:
        return count_generator(generator, args)
    except FacesrError:  # spandrel missing: the table still prints, saying so
        return None


def _config_rows(edition: Edition) -> list[tuple[str, int | None, bool]]:
    """(label, count or None without spandrel, is a generator) of the edition's generators, as configured.

    Those that fit come first, then the first depth past the limit of each net sized by depth (its record's
    ``depth_arg``), then the configs over the limit (the report's RRDBNet).
    """
    from facesr.config.named_configs import edition_configs

    rows: list[tuple[str, int | None, bool]] = []
    over: list[tuple[str, int | None, bool]] = []
    depths: dict[str, int] = {}
    for cfg_name, cfg in edition_configs(edition.year).items():
        if cfg_name.endswith(("_l2", "_kd")) or cfg.is_gan:  # a finish, fine-tune or distillation: its first
            continue  # stage's generator
        note = ", the course baseline" if cfg_name == edition.baseline_config else ""
        n = _count(cfg.generator, cfg.generator_args)
        label = generator_label(cfg.generator, inference_args(cfg.generator, cfg.generator_args))
        if n is not None and generator_record(cfg.generator).fuse is not None:  # SPAN: counted fused
            note += f", trains with {count_generator(cfg.generator, cfg.generator_args, trained=True):,}"
        row = (f"{label} ({cfg_name} config{note})", n, True)
        (over if n is not None and n > edition.param_limit else rows).append(row)
        depth_arg = generator_record(cfg.generator).depth_arg
        if depth_arg is not None:
            depth = int({**generator_record(cfg.generator).defaults, **cfg.generator_args}[depth_arg])
            depths[cfg.generator] = max(depths.get(cfg.generator, 0), depth)
    for generator, depth in depths.items():  # the next size of each, the first that does not fit
        args = {generator_record(generator).depth_arg: depth + 1}
        rows.append((generator_label(generator, args), _count(generator, args), True))
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
            n = count_generator(cfg.generator, cfg.generator_args)
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
