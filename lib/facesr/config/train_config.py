"""``TrainConfig``: every setting of a training run, with the same field names in notebooks, the CLI
(``--set key=value``) and a run's config.json; ``print(cfg)`` shows :func:`config_table`.

The named configs of each edition are :mod:`facesr.config.named_configs`; :func:`facesr.config.get_config` makes a copy
of one, in quick mode and with overrides.
"""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass, field
from typing import Any

from facesr.config.parsing import coerce_field, field_names
from facesr.config.quick_mode import quick_note
from facesr.editions import DEFAULT_YEAR
from facesr.errors import FacesrError


@dataclass
class TrainConfig:
    """Every setting of a training run. Field names are the same in notebooks, the CLI and config.json."""

    name: str = "srgan"
    edition: int = DEFAULT_YEAR  # the course edition: its limit, data and degradation (facesr.editions)
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
    # second-order editions (2024, 2025) only; the course degradation has no sharpening
    gt_usm: bool = True  # sharpen the GT (unsharp mask) before degrading it, as the course's pipeline does
    usm_target: bool = True  # train against the sharpened GT (the course's); False: the plain GT val/test score
    # the edition's degradation settings over the course's values, in the section named like its degradation
    # (facesr.data.pairs.degradation_settings): any field of DegradationSettings (2022, 2023) or
    # SecondOrderSettings (2024, 2025), e.g. --set second_order.jpeg_range=[80,95]; empty = the course's
    course: dict = field(default_factory=dict)
    second_order: dict = field(default_factory=dict)
    # losses
    pixel_loss: str = "l1"
    pixel_weight: float = 1.0
    gan_weight: float = 0.0  # > 0 makes a GAN run (ModifiedVGG discriminator, relativistic loss)
    perceptual_layers: dict = field(default_factory=dict)  # e.g. {"34": 1.0}; empty = no perceptual loss
    perceptual_weight: float = 0.0
    vgg_weights: str = "imagenet"  # "imagenet", a local vgg19 .pth path, or "random"
    # knowledge distillation (facesr.training.teacher): distill_weight * L1(sr, teacher(lq)) on the same batch; the
    # teacher is a run name under runs_dir, a run folder or a checkpoint (the _kd configs: "esrgan", notebook 04's run)
    teacher: str | None = None
    distill_weight: float = 0.0  # > 0 with a teacher adds the l_distill term
    # the weights of loss terms registered without a field here (facesr.losses.register_loss_term), by weight name
    loss_weights: dict = field(default_factory=dict)  # e.g. {"fft_weight": 0.1}; empty = none of them
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
    allow_fp16: bool = True  # False: fp32 on cards without bf16; a record with fp16=False (SwinIR) never uses fp16
    channels_last: bool = True  # CUDA only, for generators whose record says so (not SwinIR: facesr.models.record)
    tensorboard: bool = True  # written only if tensorboard is installed
    # losing nothing to interrupts and bad steps, and speed (facesr.training.loop / step); none changes what is trained
    checkpoint_minutes: float = 10.0  # also write latest.pt this long after the last write; 0 = only checkpoint_every
    max_bad_steps: int = 20  # stop after this many non-finite steps in a row (each is skipped, not applied)
    deterministic: bool = False  # deterministic GPU algorithms for a bit-exact GPU resume (slower); the CPU is anyway
    compile: bool = False  # torch.compile the generator for training, mode "default" (see facesr.training.step)
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
