"""The distillation configs of each edition: ``<in-budget config>_kd``, the in-budget net taught by notebook 04's
over-budget RRDBNet.

Each ``_kd`` config is its first stage (the same network, data, recipe and length) with ``teacher="esrgan"``
and ``distill_weight`` 1: the loss adds ``L1(sr, teacher(lq))`` on the same batch beside ``L1(sr, gt)``
(:mod:`facesr.training.teacher`), so the comparison with the plain config isolates the teacher. The teacher
is the run ``esrgan`` beside the student's run folder (the same ``runs_dir``): a run name, as ``init`` names
runs; ``--set teacher=RUN_OR_CKPT`` (notebook 07: ``TEACHER``) points at another run or file.
"""

from __future__ import annotations

import dataclasses

from facesr.config.train_config import TrainConfig
from facesr.editions import Edition

KD_SUFFIX = "_kd"
TEACHER_RUN = "esrgan"  # notebook 04's run of the edition's esrgan config
DISTILL_WEIGHT = 1.0
# GFLOP of one forward of RRDBNet 64/23/32 at batch 8, by GT patch (None: full 128x128 LQ), counted with
# torch.utils.flop_counter on the meta device.
_TEACHER_GFLOP = {None: "4,699", 256: "1,175"}

# The public results the recipe rests on (docs/course.md sections 9 and 10).
_EVIDENCE = (
    "Output distillation, an L1 term to a larger teacher's output beside the GT term, is the baseline of the "
    "SR distillation literature: on the bicubic x4 benchmarks the methods built on it report up to 0.5 dB over "
    "training the student alone (DUKD, Zhang et al., ECCV 2024) and up to 0.46 dB over earlier distillation "
    "(MTKD, Jiang et al., 2024); MiPKD (Li et al., ICLR 2025) found that few methods beat this plain term when "
    "the student is shallower than the teacher, and that almost all underperform training without distillation "
    "when it is both shallower and narrower, which is the case here. So it is an experiment to run beside its "
    "plain config, not a sure gain. "
)


def _kd_why(edition: Edition, first: TrainConfig) -> str:
    gap = ("In 2022 the report's RRDBNet reached 29.1578 val, 0.26 dB above the MSRResNet-16 baseline's "
           "28.8984 and above every reported in-budget result (peer A's MSRResNet-20: 29.0122 after 2.75M "
           "iterations; docs/course.md section 9). "
           if edition.year == 2022 else
           f"The {edition.year} edition has no published RRDBNet result; train esrgan first and check that its val "
           "PSNR is above the student's before distilling. ")
    return (
        f"{first.name} taught by notebook 04's RRDBNet 64/23/32 (16,697,987 parameters, over the limit: a teacher "
        f"is not submitted). The loss adds {DISTILL_WEIGHT:g} x L1(sr, teacher(lq)) on the same batch to "
        f"{first.name}'s L1(sr, gt), equal weights; the teacher is frozen in eval mode, runs under the same "
        "autocast without gradients, is loaded on every rank under torchrun, and is never saved in the student's "
        "checkpoints nor counted in its parameters. Everything else is " + first.name + "'s, so the two runs "
        "compare. " + gap + _EVIDENCE + f"Its cost: one RRDBNet forward per iteration, {_TEACHER_GFLOP[first.gt_patch]} "
        "GFLOP at this config's batch and patch, more than many students' whole training step (MSRResNet-20's "
        "is 2,226 GFLOP on full images, SwinIR's 387 on its patches): a _kd run takes a few times as long as "
        "its plain config (the notebooks' plan_run and benchmarks/train_step.py time it with the step). "
        f"teacher='{TEACHER_RUN}' is the run of that name in the student's runs folder; a teacher of another "
        "edition or scale is refused."
    )


def kd_config(first: TrainConfig, edition: Edition) -> TrainConfig:
    """The distillation config ``<first.name>_kd`` of the in-budget config ``first``."""
    return dataclasses.replace(first, name=f"{first.name}{KD_SUFFIX}", teacher=TEACHER_RUN,
                               distill_weight=DISTILL_WEIGHT, why=_kd_why(edition, first))
