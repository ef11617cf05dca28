"""``get_config``: a copy of a named config of an edition, shrunk in quick mode, with overrides; its checks.

A config is a plain :class:`facesr.config.train_config.TrainConfig` dataclass; the named ones, per edition, are
:mod:`facesr.config.named_configs`. ``get_config(name, edition=...)`` picks one; ``TrainConfig.edition`` records it in
config.json, and ``get_edition(cfg.edition).degradation`` is the degradation a run trains on. Notebooks take
overrides by keyword (``get_config("srgan", batch_size=4)``), the CLI by ``--set key=value`` (parsed to the
field's type by :func:`parse_overrides`).

Quick mode (``quick=True``, ``--quick`` or the environment variable ``FACESR_QUICK=1``) shrinks any
config to CPU size on the bundled sample data; tests, the demo notebooks and CI use it.

The lr schedule follows ``iters``: when ``iters`` differs from the named config's (``--iters``, quick
mode) and ``periods`` / ``milestones`` / ``warmup_iters`` are not given too, they are stretched in proportion.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from facesr.config.named_configs import REPORT_CONFIGS, configs_by_edition
from facesr.config.parsing import check_field, coerce_field, field_names, parse_assignments
from facesr.config.quick_mode import quick_from_env, shrink, smoke_from_env
from facesr.config.train_config import TrainConfig
from facesr.editions import EDITIONS, Edition, edition_year
from facesr.errors import FacesrError

# Dict fields whose overrides are merged into the named config's entries instead of replacing them.
MERGED = ("generator_args", "loss_weights", "course", "second_order")


def parse_overrides(items: list[str] | None) -> dict:
    """``["batch_size=4", "generator_args.num_blocks=20"]`` -> ``{"batch_size": 4, "generator_args": {...}}``.

    Values are parsed to the field's type (lists/dicts as Python literals, e.g. ``periods=[1000,1000]``);
    ``dict_field.key=value`` sets one entry of a dict field. Unknown keys raise FacesrError with close matches.
    """
    return parse_assignments(TrainConfig, items)


def _rescale(values: list, old_iters: int, new_iters: int) -> list:
    return [max(1, round(v * new_iters / old_iters)) for v in values]


def _not_in_edition(name: str, year: int) -> FacesrError:
    """The error for a config another edition has but ``year`` does not (msrresnet26 in 2022), with the numbers."""
    from facesr.models import count_generator

    limit = EDITIONS[year].param_limit
    by_edition = configs_by_edition()
    others = [y for y, configs in by_edition.items() if name in configs]
    cfg = by_edition[others[0]][name]
    n = count_generator(cfg.generator, cfg.generator_args)  # exact, on the meta device
    fitting = [c for c, other in by_edition[year].items() if c not in REPORT_CONFIGS and other.generator == cfg.generator
               and c.endswith("_l2") == name.endswith("_l2") and c.endswith("_kd") == name.endswith("_kd")]
    over = f"has {n:,} parameters, over the {year} limit of {limit:,} (by {n - limit:,})" if n > limit else (
        f"is not one of the {year} edition's configs")
    instead = f"use {' or '.join(fitting)}, or " if fitting else ""
    return FacesrError(f"config {name!r} ({cfg.generator} {cfg.generator_args}) {over}; for {year} {instead}"
                       f"pick edition {', '.join(map(str, others))}")


def get_config(
    name: str, quick: bool | None = None, smoke: bool | None = None, edition: int | str | Edition | None = None,
    **overrides: Any,
) -> TrainConfig:
    """A copy of the named config of an edition, shrunk in quick mode, with keyword overrides applied last.

    Args:
        name: One of the edition's configs (:func:`config_names`): srgan, esrgan, esrgan_gan, msrresnet20,
            msrresnet26 (2023-2025), swinir, rcan, and the ``_l2`` finishes of the in-budget ones.
        quick: Shrink to CPU size on the sample data (:mod:`facesr.config.quick_mode`); None reads
            ``FACESR_QUICK=1`` from the environment.
        smoke: In quick mode, shrink further to the tests' size; None reads ``FACESR_SMOKE=1``.
        edition: 2022, 2023, 2024 or 2025; None reads ``FACESR_EDITION`` from the environment, else 2022.
        **overrides: Field values. The dict fields :data:`MERGED` are merged into the config's own
            (``generator_args`` is replaced when ``generator`` names another network); every other field,
            ``perceptual_layers`` included, is replaced.

    Raises:
        FacesrError: an unknown name or edition, a config the edition does not have (msrresnet26 is over
            2022's limit: the line gives the numbers), a bad override.
    """
    year = edition_year(edition)
    configs = configs_by_edition()[year]
    if name not in configs:
        if any(name in other for other in configs_by_edition().values()):
            raise _not_in_edition(name, year)
        close = difflib.get_close_matches(str(name), configs, n=2, cutoff=0.4)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise FacesrError(f"unknown config {name!r}{hint}; known configs of the {year} edition: {', '.join(configs)}")
    if quick is None:
        quick = bool(overrides.pop("quick", False)) or quick_from_env()
    else:
        overrides.pop("quick", None)
    for key in overrides:
        check_field(TrainConfig, key)
    cfg = copy.deepcopy(configs[name])  # in-place edits of the returned config must not reach the named ones
    if quick:
        cfg = shrink(cfg, smoke=smoke_from_env() if smoke is None else smoke)
    base = copy.deepcopy(cfg)  # what the schedule below is stretched from
    for key, value in overrides.items():
        value = coerce_field(TrainConfig, key, value)
        # merged into the config's own, unless the generator changes too: another net's arguments do not mix
        other_net = key == "generator_args" and overrides.get("generator", base.generator) != base.generator
        if key in MERGED and not other_net:
            value = {**getattr(cfg, key), **value}
        setattr(cfg, key, value)
    # The schedule follows iters unless it was given explicitly.
    if cfg.iters != base.iters:
        if "periods" not in overrides and cfg.periods:
            cfg.periods = _rescale(base.periods, base.iters, cfg.iters)
            # rounding must not leave iterations after the last period (lr would sit at eta_min)
            cfg.periods[-1] += cfg.iters - sum(cfg.periods)
        if "milestones" not in overrides and cfg.milestones:
            cfg.milestones = _rescale(base.milestones, base.iters, cfg.iters)
        if "warmup_iters" not in overrides and base.warmup_iters:
            # stays a warm-up (at least 1) and leaves iterations after it (validate_config's rule)
            cfg.warmup_iters = min(cfg.iters - 1, _rescale([base.warmup_iters], base.iters, cfg.iters)[0])
    validate_config(cfg)
    return cfg


def validate_config(cfg: TrainConfig) -> None:
    """FacesrError for values that cannot train (checked before any file is touched)."""
    from facesr.data.pairs import run_recipe
    from facesr.losses import PIXEL_LOSSES
    from facesr.models import GENERATORS

    if cfg.edition not in EDITIONS:
        raise FacesrError(f"edition={cfg.edition!r} is not a known edition; known editions: "
                          f"{', '.join(map(str, EDITIONS))}")
    if cfg.generator not in GENERATORS:
        raise FacesrError(f"generator={cfg.generator!r} is unknown; known: {', '.join(GENERATORS)} (or register "
                          "it: facesr.models.register_generator)")
    for key in ("iters", "batch_size", "val_every", "checkpoint_every", "log_every", "keep_last"):
        if getattr(cfg, key) < 1:
            raise FacesrError(f"{key}={getattr(cfg, key)} must be at least 1")
    if cfg.num_workers < 0:
        raise FacesrError(f"num_workers={cfg.num_workers} must be 0 or more")
    if cfg.worker_timeout < 0:
        raise FacesrError(f"worker_timeout={cfg.worker_timeout} must be 0 (wait for ever) or a number of seconds")
    if cfg.scheduler not in ("cosine_restart", "cosine", "multistep"):
        raise FacesrError(f"scheduler={cfg.scheduler!r} must be 'cosine_restart', 'cosine' or 'multistep'")
    if not 0 <= cfg.warmup_iters < cfg.iters:
        raise FacesrError(f"warmup_iters={cfg.warmup_iters} must be in [0, iters={cfg.iters})")
    if cfg.checkpoint_minutes < 0:
        raise FacesrError(f"checkpoint_minutes={cfg.checkpoint_minutes} must be 0 (off) or a number of minutes")
    if cfg.max_bad_steps < 1:
        raise FacesrError(f"max_bad_steps={cfg.max_bad_steps} must be at least 1")
    if cfg.grad_clip < 0:
        raise FacesrError(f"grad_clip={cfg.grad_clip} must be 0 (off) or a positive max gradient norm")
    if cfg.scheduler == "cosine_restart" and (not cfg.periods or len(cfg.periods) != len(cfg.restart_weights)):
        raise FacesrError(
            f"periods={cfg.periods} and restart_weights={cfg.restart_weights} must be non-empty and of equal length"
        )
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise FacesrError(f"ema_decay={cfg.ema_decay} must be in [0, 1)")
    if cfg.is_gan and cfg.gt_patch != 128:
        raise FacesrError(f"a GAN run needs gt_patch=128 (the ModifiedVGG discriminator takes 128x128), got {cfg.gt_patch}")
    if not cfg.distill_weight >= 0 or (cfg.distill_weight > 0 and not cfg.teacher):
        raise FacesrError(f"distill_weight={cfg.distill_weight} must be >= 0, and > 0 only with a teacher "
                          "(teacher=RUN_OR_CKPT: a run name, run folder or checkpoint; the _kd configs distil from esrgan)")
    if cfg.pixel_loss not in PIXEL_LOSSES:
        raise FacesrError(f"pixel_loss={cfg.pixel_loss!r} must be l1, charbonnier or l2")
    _check_loss_weights(cfg)
    # the degradation sections (and the crop) as the run's pairs will take them: one line naming a bad one
    run_recipe(EDITIONS[cfg.edition].degradation, cfg.gt_patch, False, course=cfg.course,
               second_order=cfg.second_order, gt_usm=cfg.gt_usm, usm_target=cfg.usm_target)


def _check_loss_weights(cfg: TrainConfig) -> None:
    """Each entry of ``loss_weights`` is the weight (a number >= 0) of a term registered without a field."""
    from facesr.losses import loss_terms

    fields = set(field_names(TrainConfig))
    known = [t.weight for t in loss_terms() if t.weight not in fields]
    for key, value in cfg.loss_weights.items():
        if key not in known:
            names = f"registered: {', '.join(known)}" if known else "none is registered (facesr.losses.register_loss_term)"
            raise FacesrError(f"loss_weights.{key}: no loss term has this weight; {names}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise FacesrError(f"loss_weights.{key}={value!r} must be a number >= 0")
