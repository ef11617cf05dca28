"""Named training configs: the report's three experiments and the kit's in-budget recipes.

The in-budget configs (msrresnet20, swinir, rcan; each under the 1,821,085-parameter limit) share one
fixed-budget recipe and each has an MSE finish (msrresnet20_l2, swinir_l2, rcan_l2) that starts from it.

A config is a plain :class:`TrainConfig` dataclass. Notebooks take overrides by keyword
(``get_config("srgan", batch_size=4)``), the CLI by ``--set key=value`` (parsed to the field's type by
:func:`parse_overrides`). ``print(cfg)`` shows the table of :func:`config_table`.

Quick mode (``quick=True``, ``--quick`` or the environment variable ``FACESR_QUICK=1``) shrinks any
config to CPU size on the bundled sample data; tests, the demo notebooks and CI use it.

The lr schedule follows ``iters``: when ``iters`` differs from the named config's (``--iters``, quick
mode) and ``periods`` / ``milestones`` / ``warmup_iters`` are not given too, they are stretched in proportion.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import textwrap
from dataclasses import dataclass, field
from typing import Any

from facesr.config_parsing import check_field, coerce_field, field_names, parse_assignments
from facesr.errors import FacesrError
from facesr.quick_mode import quick_from_env, quick_note, shrink, smoke_from_env

# The in-budget configs share one fixed-budget recipe, so that they compare at equal iterations: the course's
# 300k iterations as one cosine period after a linear warm-up, EMA weights, then a short MSE finish (*_l2).
_RECIPE = (
    "Recipe shared with the other in-budget configs, so they compare at equal iterations: 300k iterations "
    "(the course's) as one cosine period down to 1e-7 after 5k iterations of linear warm-up (each restart of "
    "the course's schedule costs about 0.1 dB before it recovers), EMA weights (decay 0.999, warm-up at the "
    "start) validated and exported, then the MSE finish {name}_l2. EMA, because single-iteration validation "
    "peaks are noisy and picking the best of many noisy checkpoints on the val set flatters the val score "
    "(test ran about 0.165 dB below val for every peer); the average is smoother and costs nothing at test "
    "time. Longer runs gain little (peer A: +0.033 dB from 250k to 500k iterations); --iters changes the "
    "length, and the warm-up follows in proportion. "
)
_MSRRESNET_WHY = (
    "MSRResNet-20 (1,812,995 parameters) is the largest MSRResNet under the 1,821,085 limit (21 blocks do "
    "not fit); RRDBNet scores higher but is 9x over the limit. " + _RECIPE.format(name="msrresnet20") +
    "L1 kept, not Charbonnier: with MMEditing's eps of 1e-12, sqrt(x^2 + eps) differs from |x| by at most "
    "1e-6, so Charbonnier would change the name, not the training (peer A used it; its effect alone was "
    "never measured). Its own settings are the course's: full 128->512 images, batch 8, Adam 2e-4; faces are "
    "aligned, so the network sees the same global layout at train and test time, and the comparison with "
    "srgan isolates the recipe. No gradient clipping: this CNN's 0.1-scaled init gives small, steady "
    "gradients. One step takes about 3.5 GiB in fp32 and 1.8 GiB under fp16/bf16 autocast "
    "(benchmarks/train_memory.py; peer A measured 3.5 GB on the GPU): it fits a 16 GB T4 with room to spare."
)
_SWINIR_WHY = (
    "SwinIR with embed 84 and 4 groups of 6 blocks (1,766,292 parameters, 97.0 % of the 1,821,085 limit) is "
    "the largest SwinIR with window 8, mlp_ratio 2, pixelshuffledirect and 1conv under the limit (embed 90 "
    "has 2,018,118). It is SwinIR-light (embed 60, 4x6, 929,628) widened, so the lightweight recipe carries "
    "over. The other candidate, embed 66 with 6x6 blocks (1,634,826), spends about the same FLOPs per pixel "
    "on 36 narrower blocks with 11-channel heads: 7 % fewer parameters, 26 % more activation memory and "
    "about 35 % more CPU time per step. " + _RECIPE.format(name="swinir") +
    "What transformers need on top: the warm-up, gradient-norm clipping at 1.0 (about 2 at init, so it "
    "trims the first steps and later spikes only; Adam is indifferent to the scale otherwise), bf16 "
    "autocast where the card has it and fp32 otherwise (allow_fp16=False: fp16 overflows in its attention). "
    "Its own patch: LQ 64 (gt_patch 256, SwinIR-light's patch) at the course's batch 8, because full 128x128 "
    "LQ at batch 8 would need about 17 GiB for one step in fp32; at LQ 64 one step takes about 4.3 GiB in "
    "fp32, less in bf16 (benchmarks/train_memory.py), so it fits a 16 GB T4, where it runs in fp32. "
    "img_size 64 is that patch: the shifted-window masks are precomputed for it and only validation on full "
    "128x128 images rebuilds them; change it together with gt_patch. Adam lr 2e-4 (SwinIR-light's); the "
    "official drop-path rate 0.1."
)
_RCAN_WHY = (
    "RCAN with the authors' 64 features, 3 residual groups of 6 channel-attention blocks and reduction 16 "
    "(1,786,531 parameters, 98.1 % of the 1,821,085 limit, the 24 of the frozen DIV2K mean shift included "
    "as the handout counts them) fills the limit at that width; 3x7 or 4x5 blocks go over 1.9M. A plain "
    "CNN at LQ resolution until its upsampler: fp16-safe (GradScaler) on a T4, where SwinIR must run in "
    "fp32, so it is the fastest of the three there. " + _RECIPE.format(name="rcan") +
    "Its own lr: 1e-4, the authors'; it scales the input to 0-255 inside (rgb_range 255), and its gradient "
    "norm at init is about 6x MSRResNet-20's. Otherwise msrresnet20's settings: full 128->512 images, batch "
    "8, no clipping. One step takes about 3.6 GiB in fp32 and 1.8 GiB in fp16 (benchmarks/train_memory.py): "
    "it fits a 16 GB T4 with room to spare."
)
_MSE_FINISH_WHY = (
    "The MSE finish of {first}: 30k iterations (a tenth of the first stage) from {first}'s EMA weights "
    "(init='{first}': train {first} first) with pixel_loss='l2' at a tenth of its lr, the same network, data, "
    "batch and patch, one cosine period after 500 iterations of warm-up (Adam starts with empty moments), "
    "EMA 0.999. The leaderboard scores PSNR, a log of the MSE: L1 drives the net to the median of the "
    "plausible HR images, L2 to their mean, which is what PSNR rewards; a short L2 stage at low lr moves "
    "there after the robust L1 stage. Nobody reported an L1-then-L2 finish on this data (peer B's low-lr "
    "fine-tune of a 1M-iteration MSRResNet-16 reached 28.96 dB val)."
)


@dataclass
class TrainConfig:
    """Every setting of a training run. Field names are the same in notebooks, the CLI and config.json."""

    name: str = "srgan"
    generator: str = "msrresnet"
    generator_args: dict = field(default_factory=lambda: {"mid_channels": 64, "num_blocks": 16})
    # data
    data_root: str = "data/FFHQ"
    runs_dir: str = "checkpoints"
    batch_size: int = 8
    gt_patch: int | None = None  # None = full 512x512 GT / 128x128 LQ as the course baseline
    num_workers: int = 2
    worker_timeout: float = 600.0  # seconds a batch may take before the workers count as stuck; 0 = wait for ever
    gpu_degrade: bool = True  # degrade on the GPU (degrade_batch) when training on CUDA
    cache: bool = False  # decode all training GT into RAM once
    # losses
    pixel_loss: str = "l1"
    pixel_weight: float = 1.0
    gan_weight: float = 0.0  # > 0 makes a GAN run (ModifiedVGG discriminator, relativistic loss)
    perceptual_layers: dict = field(default_factory=dict)  # e.g. {"34": 1.0}; empty = no perceptual loss
    perceptual_weight: float = 0.0
    vgg_weights: str = "imagenet"  # "imagenet", a local vgg19 .pth path, or "random"
    # optimisation
    iters: int = 300_000
    lr: float = 2e-4
    lr_d: float = 1e-4
    betas: tuple = (0.9, 0.999)
    scheduler: str = "cosine_restart"  # "cosine" (one period over iters), or "multistep"
    warmup_iters: int = 0  # linear lr warm-up before any scheduler; 0 = none
    periods: list = field(default_factory=lambda: [150_000, 150_000])
    restart_weights: list = field(default_factory=lambda: [1.0, 1.0])
    eta_min: float = 1e-7
    milestones: list = field(default_factory=list)
    gamma: float = 0.5
    grad_clip: float = 0.0  # max gradient norm of each net before its step; 0 = off
    ema_decay: float = 0.999  # 0 = no averaging (net_g_ema is a copy of net_g)
    init: str | None = None  # run name, run folder or checkpoint to initialise the generator from
    # bookkeeping
    val_every: int = 5000
    checkpoint_every: int = 5000
    log_every: int = 100
    keep_last: int = 3
    seed: int = 0
    amp: bool = True  # CUDA only: bf16 where supported, else fp16 with a GradScaler (see allow_fp16)
    allow_fp16: bool = True  # False: fp32 on cards without bf16 (SwinIR's attention overflows in fp16)
    channels_last: bool = True  # CUDA only
    tensorboard: bool = True  # written only if tensorboard is installed
    quick: bool = False
    why: str = ""

    def __str__(self) -> str:
        return config_table(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython shows the table
        p.text(config_table(self))

    def to_dict(self) -> dict:
        """JSON-friendly dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise FacesrError (a config.json from another kit?)."""
        known = field_names(cls)
        unknown = [k for k in d if k not in known]
        if unknown:
            raise FacesrError(f"unknown config field(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return cls(**{k: coerce_field(cls, k, v) for k, v in d.items()})

    @property
    def is_gan(self) -> bool:
        return self.gan_weight > 0


_SRGAN = TrainConfig()
# The fixed-budget recipe of the in-budget configs: one cosine period after a linear warm-up, EMA weights.
_BUDGET = dataclasses.replace(_SRGAN, scheduler="cosine", iters=300_000, warmup_iters=5000, periods=[],
                              restart_weights=[], ema_decay=0.999)
# Official constructor arguments; the kit's SwinIR and RCAN classes default to the same values.
SWINIR_ARGS = {"upscale": 4, "in_chans": 3, "img_size": 64, "window_size": 8, "img_range": 1.0,
               "depths": [6, 6, 6, 6], "embed_dim": 84, "num_heads": [6, 6, 6, 6], "mlp_ratio": 2.0,
               "upsampler": "pixelshuffledirect", "resi_connection": "1conv"}
RCAN_ARGS = {"scale": 4, "n_resgroups": 3, "n_resblocks": 6, "n_feats": 64, "reduction": 16}
MSE_FINISH_ITERS = 30_000


def _mse_finish(first: TrainConfig) -> TrainConfig:
    """The short L2 stage after ``first``: from its EMA weights, at a tenth of its lr, same data and net."""
    return dataclasses.replace(
        first,
        name=f"{first.name}_l2",
        init=first.name,
        pixel_loss="l2",
        lr=first.lr / 10,
        iters=MSE_FINISH_ITERS,
        warmup_iters=500,
        why=_MSE_FINISH_WHY.format(first=first.name),
    )

CONFIGS: dict[str, TrainConfig] = {
    # The course baseline as the original report ran it: MSRResNet-16, L1, full images, 300k iterations.
    # No EMA (ema_decay 0): the report had none, so net_g_ema == net_g and the run reproduces it.
    "srgan": dataclasses.replace(_SRGAN, name="srgan", ema_decay=0.0),
    # The report's over-budget RRDBNet 64/23/32 (16.7M parameters), same recipe.
    "esrgan": dataclasses.replace(
        _SRGAN,
        name="esrgan",
        generator="rrdbnet",
        generator_args={"mid_channels": 64, "num_blocks": 23, "growth_channels": 32},
        ema_decay=0.0,
    ),
    # The report's GAN fine-tune of the esrgan generator (MMEditing's ESRGAN recipe).
    "esrgan_gan": dataclasses.replace(
        _SRGAN,
        name="esrgan_gan",
        generator="rrdbnet",
        generator_args={"mid_channels": 64, "num_blocks": 23, "growth_channels": 32},
        gt_patch=128,  # ModifiedVGG needs 128x128 inputs
        pixel_weight=1e-2,
        gan_weight=5e-3,
        perceptual_layers={"34": 1.0},
        perceptual_weight=1.0,
        iters=400_000,
        lr=1e-4,
        lr_d=1e-4,
        scheduler="multistep",
        periods=[],
        restart_weights=[],
        milestones=[50_000, 100_000, 200_000, 300_000],
        gamma=0.5,
        ema_decay=0.0,
        init="esrgan",
    ),
    "msrresnet20": dataclasses.replace(
        _BUDGET,
        name="msrresnet20",
        generator_args={"mid_channels": 64, "num_blocks": 20},
        why=_MSRRESNET_WHY,
    ),
    "swinir": dataclasses.replace(
        _BUDGET,
        name="swinir",
        generator="swinir",
        generator_args=dict(SWINIR_ARGS),
        batch_size=8,
        gt_patch=256,
        grad_clip=1.0,
        allow_fp16=False,
        why=_SWINIR_WHY,
    ),
    "rcan": dataclasses.replace(
        _BUDGET,
        name="rcan",
        generator="rcan",
        generator_args=dict(RCAN_ARGS),
        lr=1e-4,
        why=_RCAN_WHY,
    ),
}
for _name in ("msrresnet20", "swinir", "rcan"):  # the MSE finish of each in-budget config
    CONFIGS[f"{_name}_l2"] = _mse_finish(CONFIGS[_name])

def parse_overrides(items: list[str] | None) -> dict:
    """``["batch_size=4", "generator_args.num_blocks=20"]`` -> ``{"batch_size": 4, "generator_args": {...}}``.

    Values are parsed to the field's type (lists/dicts as Python literals, e.g. ``periods=[1000,1000]``);
    ``dict_field.key=value`` sets one entry of a dict field. Unknown keys raise FacesrError with close matches.
    """
    return parse_assignments(TrainConfig, items)


def _rescale(values: list, old_iters: int, new_iters: int) -> list:
    return [max(1, round(v * new_iters / old_iters)) for v in values]


def get_config(name: str, quick: bool | None = None, smoke: bool | None = None, **overrides: Any) -> TrainConfig:
    """A copy of the named config, shrunk in quick mode, with keyword overrides applied last.

    Args:
        name: One of ``CONFIGS`` (srgan, esrgan, esrgan_gan, msrresnet20, swinir, rcan, their ``_l2``).
        quick: Shrink to CPU size on the sample data (:mod:`facesr.quick_mode`); None reads
            ``FACESR_QUICK=1`` from the environment.
        smoke: In quick mode, shrink further to the tests' size; None reads ``FACESR_SMOKE=1``.
        **overrides: Field values. ``generator_args`` is merged into the config's; every other field,
            ``perceptual_layers`` included, is replaced.
    """
    if name not in CONFIGS:
        close = difflib.get_close_matches(str(name), CONFIGS, n=2, cutoff=0.4)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise FacesrError(f"unknown config {name!r}{hint}; known configs: {', '.join(CONFIGS)}")
    if quick is None:
        quick = bool(overrides.pop("quick", False)) or quick_from_env()
    else:
        overrides.pop("quick", None)
    for key in overrides:
        check_field(TrainConfig, key)
    cfg = copy.deepcopy(CONFIGS[name])  # in-place edits of the returned config must not reach CONFIGS
    if quick:
        cfg = shrink(cfg, smoke=smoke_from_env() if smoke is None else smoke)
    base = copy.deepcopy(cfg)  # what the schedule below is stretched from
    for key, value in overrides.items():
        value = coerce_field(TrainConfig, key, value)
        if isinstance(value, dict) and key == "generator_args":
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
    from facesr.losses import PIXEL_LOSSES
    from facesr.models import GENERATORS

    if cfg.generator not in GENERATORS:
        raise FacesrError(f"generator={cfg.generator!r} is unknown; known: {', '.join(GENERATORS)}")
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
    if cfg.pixel_loss not in PIXEL_LOSSES:
        raise FacesrError(f"pixel_loss={cfg.pixel_loss!r} must be l1, charbonnier or l2")


def config_table(cfg: TrainConfig) -> str:
    """The config as an aligned two-column text table (what ``print(cfg)`` shows)."""
    rows = [(k, v) for k, v in cfg.to_dict().items() if k != "why"]
    width = max(len(k) for k, _ in rows)
    lines = [f"TrainConfig {cfg.name!r}" + (" (QUICK MODE: CPU-size run on the sample data)" if cfg.quick else "")]
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    if cfg.quick:
        lines.append(f"  {quick_note(cfg)}")
    if cfg.why:
        lines.append(textwrap.fill(cfg.why, width=108, initial_indent="  why: ", subsequent_indent="       "))
    return "\n".join(lines)
