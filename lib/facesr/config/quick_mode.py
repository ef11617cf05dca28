"""Quick mode: any named config shrunk to CPU size on the bundled sample data.

Two sizes, both on the sample data (24 training faces, 8 val pairs):

- **quick** (``get_config(..., quick=True)``, ``--quick``, ``FACESR_QUICK=1``): the demo's. Big enough that
  the models visibly learn on 2 CPU cores in minutes: 64x64 GT crops for training (a step costs a
  sixteenth of a full 512x512 one; validation stays on the full 128 -> 512 images), one cosine period after
  a short linear warm-up, EMA as the config says. RRDBNet keeps 2 of its 23 blocks and SwinIR 2 of its 4
  groups of 2 blocks, because a full validation of the deep nets takes minutes on a CPU.
- **smoke** (``FACESR_SMOKE=1`` on top of quick): the tests'. The fewest iterations that still run every
  step a notebook shows (log rows, a validation, checkpoints, curves), so CI executes every notebook cell
  in seconds per notebook; the numbers it gives mean nothing.

What each size changes is a plain dict here and in each network's record (its ``quick`` entry, beside the
network), so ``print(get_config(name, quick=True))`` and these tables say the same thing.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

# Every quick config (data_root is the sample data; see default_sample_root).
QUICK = {
    "batch_size": 4,
    "gt_patch": 64,
    "scheduler": "cosine",
    "periods": [],
    "restart_weights": [],
    "num_workers": 0,
    "keep_last": 2,
    "vgg_weights": "random",
    "tensorboard": False,
    "cache": False,
}
# Per generator: the length, lr and size of a quick run are its record's ``quick`` (facesr.models.record),
# measured on the sample data on 2 CPU cores; a record without them gets this length and the config's lr.
# The in-budget configs of 2023-2025 shrink by the same rules as 2022's: an MSRResNet keeps its blocks,
# SwinIR and RCAN keep 2 groups of 2 blocks at their configured width.
QUICK_ITERS = 300
# A GAN step runs G, D (4 passes) and VGG19 (about 2 s on the CPU): batch 2 on the 128x128 crops
# ModifiedVGG needs, few iterations.
QUICK_GAN = {"batch_size": 2, "gt_patch": 128, "iters": 24}
QUICK_WARMUP_SHARE = 0.05  # of the quick iterations; a config without warm-up gets this one too
QUICK_FINISH_SHARE = 0.25  # an MSE finish (a config with an init and pixel_loss l2) is this share of its stage
QUICK_VALIDATIONS = 3  # validations (and checkpoints) per quick run, the last at its last iteration
QUICK_LOG_ROWS = 20

QUICK_RUNS = "quick"  # quick runs live in RUNS_DIR/quick: a real run never meets a quick one of the same name
SMOKE = {"iters": 4, "val_every": 4, "checkpoint_every": 2, "log_every": 1}
SMOKE_GAN = {"iters": 2, "val_every": 2, "checkpoint_every": 1, "log_every": 1}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def quick_from_env() -> bool:
    """``FACESR_QUICK=1``: notebooks, the CLI and the demo's kernels shrink every config."""
    return _env_flag("FACESR_QUICK")


def smoke_from_env() -> bool:
    """``FACESR_SMOKE=1``: quick mode at the tests' size (see the module docstring)."""
    return _env_flag("FACESR_SMOKE")


def quick_runs_dir(runs_dir: str | os.PathLike) -> str:
    """The quick-mode runs folder of ``runs_dir``: its ``quick/`` (already that folder: as it is)."""
    return str(runs_dir) if os.path.basename(os.path.normpath(runs_dir)) == QUICK_RUNS else os.path.join(runs_dir, QUICK_RUNS)


def quick_changes(cfg: Any, smoke: bool = False) -> dict[str, Any]:
    """The field values quick (or smoke) mode gives ``cfg`` (a named TrainConfig, before overrides)."""
    from facesr.data.sample import default_sample_root
    from facesr.models import generator_record

    family = generator_record(cfg.generator).quick  # FacesrError naming the known ones for an unknown generator
    changes: dict[str, Any] = {**QUICK, "iters": QUICK_ITERS,
                               **{k: v for k, v in family.items() if k != "generator_args"}}
    changes["generator_args"] = {**cfg.generator_args, **family.get("generator_args", {})}
    if cfg.is_gan:
        changes.update(QUICK_GAN, lr=cfg.lr)  # a fine-tune keeps its own lr
    elif cfg.init and cfg.pixel_loss == "l2":  # an MSE finish: a short stage at a tenth of its first stage's lr
        finish_lr = family["lr"] / 10 if "lr" in family else cfg.lr  # cfg.lr: already the finish's own tenth
        changes.update(iters=max(1, round(changes["iters"] * QUICK_FINISH_SHARE)), lr=finish_lr)
    iters = changes["iters"]
    changes.update(
        warmup_iters=max(1, round(iters * QUICK_WARMUP_SHARE)),
        val_every=-(-iters // QUICK_VALIDATIONS),  # rounded up: no extra validation just before the end
        checkpoint_every=-(-iters // QUICK_VALIDATIONS),
        log_every=max(1, iters // QUICK_LOG_ROWS),
    )
    if smoke:
        changes.update(SMOKE_GAN if cfg.is_gan else SMOKE)
        changes["warmup_iters"] = 1
    return dict(changes, data_root=str(default_sample_root(cfg.edition)), runs_dir=quick_runs_dir(cfg.runs_dir), quick=True)


def shrink(cfg: Any, smoke: bool = False) -> Any:
    """``cfg`` at quick (or smoke) size: a new config, ``cfg`` itself is left as it was."""
    return dataclasses.replace(cfg, **quick_changes(cfg, smoke))


def quick_note(cfg: Any) -> str:
    """One line for the config table: what quick mode changed and why."""
    from facesr.models import generator_record

    net = generator_record(cfg.generator).quick_note or "the network is the config's"
    return (f"note: quick mode trains {cfg.iters} iterations on {cfg.gt_patch}x{cfg.gt_patch} GT crops of the sample "
            f"data (validation on the full 128->512 images), one cosine period after {cfg.warmup_iters} warm-up "
            f"iterations; {net}, because a full-size validation takes minutes on 2 CPU cores"
            + ("; GAN runs use batch 2 on the 128x128 crops the discriminator needs" if cfg.is_gan else ""))
