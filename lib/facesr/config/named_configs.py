"""The named training configs of each edition: the report's three experiments and the kit's in-budget recipes.

Each edition of the course (:mod:`facesr.editions`) has its own configs: ``srgan`` is the edition's baseline
(MMEditing's settings for 2022 and 2023, BasicSR's for 2024 and 2025), ``esrgan`` and ``esrgan_gan`` the seed
report's two other experiments under that edition's degradation and schedule, and the in-budget configs fill
the edition's limit: msrresnet20, swinir and rcan under 2022's 1,821,085 parameters; msrresnet26, swinir and
rcan sized to 2,276,356 for 2023-2025 (msrresnet20 stays there for comparisons), then Omni-SR, SPAN, RealPLKSR,
DAT-light and ATD-light sized to each limit by :func:`facesr.models.size_to_budget`
(:mod:`facesr.config.sized_networks`). The MSRResNets are the baseline deepened; every other in-budget config
comes from a network's record (:mod:`facesr.models.record`: the largest of its sizes within the limit, its own
settings), so a network registered with :func:`facesr.models.register_generator` gets one too. Each in-budget
config has an MSE finish (``*_l2``) that starts from it and a distillation config (``*_kd``,
:mod:`facesr.config.distillation`) taught by notebook 04's RRDBNet, and each config's ``why`` says why it is set
as it is. :func:`facesr.config.get_config` returns
a copy of one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from facesr.config.distillation import KD_SUFFIX, kd_config
from facesr.config.sized_networks import STEP_COST, sized_network_why
from facesr.config.train_config import TrainConfig
from facesr.editions import DEFAULT_YEAR, EDITIONS, Edition, edition_year, get_edition
from facesr.errors import FacesrError
from facesr.models.record import GeneratorRecord
from facesr.models.registry import generator_record, generator_records, registry_version

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


# The report's RRDBNet, ESRGAN's 64/23/32.
RRDBNET_ARGS = {"mid_channels": 64, "num_blocks": 23, "growth_channels": 32}
MSE_FINISH_ITERS = 30_000
_MSRRESNET26_PARAMS = 2_256_131  # MSRResNet-16's 1,517,571 + 10 blocks of 73,856

# Peak memory of one training step (GiB: fp32, fp16/bf16 autocast) of the configs sized for 2023-2025 and of
# the 2024/2025 report configs, as ``python benchmarks/train_memory.py --edition YEAR`` prints it (the same in
# each of those editions: BasicSR's MSRResNet costs what MMEditing's does, its LeakyReLUs work in place).
_STEP_GIB: dict[str, tuple[float, float]] = {
    "srgan": (3.2, 1.6),
    "esrgan": (29.0, 14.7),
    "msrresnet20": (3.5, 1.8),
    "msrresnet26": (3.8, 2.0),
    "swinir": (6.1, 4.8),
    "rcan": (4.2, 2.1),
}


def _memory(edition: Edition, name: str) -> str:
    fp32, half = _STEP_GIB[name]
    return (f"One step takes about {fp32} GiB in fp32 and {half} GiB under fp16/bf16 autocast "
            f"(benchmarks/train_memory.py --edition {edition.year})")


def _recipe_150(edition: Edition, name: str) -> str:
    """The in-budget recipe of 2023-2025 in words (2022's is :data:`_RECIPE`)."""
    text = (
        f"Recipe shared with the {edition.year} edition's other in-budget configs, so they compare at equal "
        "iterations with each other and with srgan: the baseline's 300k iterations as one cosine period down to "
        "1e-7 after 5k iterations of linear warm-up, EMA weights (decay 0.999) validated and exported, then the "
        f"MSE finish {name}_l2. The reasons were measured on 2022's data: each restart of the course's schedule "
        "cost about 0.1 dB before it recovered, and picking the best of many noisy single-iteration validations "
        "flatters the val score, which the average avoids. "
    )
    if edition.degradation == "second_order":
        text += (
            "Adam betas (0.9, 0.99), BasicSR's, as the baseline. Data: the second-order degradation with gt_usm "
            "on and usm_target off: each LQ is made from the USM-sharpened GT, as the course's pipeline makes its "
            "LQ, but the loss compares the output with the plain GT, which is what val and test PSNR score (the "
            "baseline keeps the course's usm_target on, so part of any gain over srgan is this choice). Against "
            "the sharpened GT the net learns to sharpen, which costs PSNR against the plain GT; the best reported "
            "2025 result (27.03877 test) trained on a degradation without USM. "
        )
    return text


def _msrresnet_why_150(edition: Edition, blocks: int) -> str:
    limit = edition.param_limit
    net = "BasicSR MSRResNet" if edition.degradation == "second_order" else "MSRResNet"
    if blocks == 26:
        head = (
            f"{net}-26 (2,256,131 parameters, {100 * 2_256_131 / limit:.1f} % of the {limit:,} limit) is the "
            "largest MSRResNet under it (27 blocks have 2,329,987). In 2023 a 26-block run was reported below a "
            "24-block one (2,108,419 parameters: 29.7899 val, 29.49933 test with a PSNR loss over 500k "
            "iterations), a single comparison with nothing reported on its noise; on 2022's data 16 -> 20 blocks "
            "gained 0.058 dB at 300k iterations. "
        )
    else:
        head = (
            f"{net}-20 (1,812,995 parameters, {100 * 1_812_995 / limit:.1f} % of the {limit:,} limit): 2022's "
            f"in-budget network, kept in {edition.year} to compare across editions; msrresnet26 fills this "
            "edition's limit. "
        )
    if edition.degradation == "second_order":
        head += (
            "BasicSR's network, as the baseline (srgan): the comparison with srgan isolates depth and recipe, and "
            "export --format basicsr writes a file the course's own BasicSR code loads. In 2024 MSRResNet-24 "
            "reached 26.5656 val, 26.65289 test over 300k iterations, and MSRResNet-20 with flips, rotations and "
            "brightness/contrast jitter 26.5617 / 26.63871. "
        )
    return (
        head + _recipe_150(edition, f"msrresnet{blocks}")
        + "Its own settings are the baseline's: full 128->512 images, batch 8, Adam 2e-4, L1, no gradient "
        f"clipping (the 0.1-scaled init gives small, steady gradients). {_memory(edition, f'msrresnet{blocks}')}: "
        "it fits a 16 GB T4 with room to spare."
    )


def _swinir_why_150(edition: Edition) -> str:
    limit = edition.param_limit
    return (
        f"SwinIR with embed 78 and 6 groups of 6 blocks (2,251,758 parameters, {100 * 2_251_758 / limit:.1f} % "
        f"of the {limit:,} limit) is the largest SwinIR with window 8, mlp_ratio 2, 6 heads, pixelshuffledirect "
        "and 1conv under it: with 4 groups of 6 the largest is embed 90 (2,018,118; embed 96 has 2,287,008), "
        "which leaves 11 % of the budget unused. It is the network of the best reported 2024 SwinIR (MSE, bf16, "
        "EMA 0.999, gradient clip 1: 26.55 val, 26.62 test)"
        + (", so that result is a check on the kit's run" if edition.year == 2024 else "")
        + "; 36 narrower blocks cost more activation memory and time per step than 24 wide ones (see 2022's "
        "swinir). "
        + _recipe_150(edition, "swinir")
        + "What transformers need on top: the warm-up, gradient-norm clipping at 1.0, bf16 autocast where the "
        "card has it and fp32 otherwise (allow_fp16=False: fp16 overflows in its attention). LQ patches of 64 "
        f"(gt_patch 256, SwinIR-light's) at batch 8. {_memory(edition, 'swinir')}, so it fits a 16 GB T4, where "
        "it runs in fp32. img_size 64 is that patch: the shifted-window masks are precomputed for it; change "
        "it together with gt_patch. Adam lr 2e-4 (SwinIR-light's); the official drop-path rate 0.1."
    )


def _rcan_why_150(edition: Edition) -> str:
    limit = edition.param_limit
    return (
        "RCAN with the authors' 64 features, 4 residual groups of 6 channel-attention blocks and reduction 16 "
        f"(2,270,075 parameters, {100 * 2_270_075 / limit:.1f} % of the {limit:,} limit, the 24 of the frozen "
        "mean shift included) fills the limit at that width: 2022's 3 groups of 6 plus one group; 3x8 has "
        "2,233,147, and 5x5, 3x9 or 4x7 go over (a 2025 RCAN with 20 blocks, 1,824,595 parameters, scored 26.61 "
        "test). A plain CNN at LQ resolution until its upsampler, fp16-safe (GradScaler) on a T4. "
        + _recipe_150(edition, "rcan")
        + "Its own lr: 1e-4, the authors' (it scales the input to 0-255 inside). Otherwise the baseline's "
        f"settings: full 128->512 images, batch 8, no clipping. {_memory(edition, 'rcan')}: it fits a 16 GB T4 "
        "with room to spare."
    )


def _basicsr_baseline_why(edition: Edition) -> str:
    return (
        f"The {edition.year} course baseline as its train_SRResNet_x4_FFHQ_300k.yml runs it (RealESRNetModel): "
        "BasicSR MSRResNet-16 (1,517,571 parameters), L1, Adam 2e-4 with betas (0.9, 0.99), cosine annealing "
        "with restarts [150k, 150k] (weights 1, 1) down to 1e-7, 300k iterations, no warm-up, EMA 0.999 "
        "(validated and exported), batch 8, full 128->512 images (gt_size 512: no crop), horizontal flips; the "
        "second-order degradation with the USM-sharpened GT as its input and as the target (gt_usm, usm_target "
        f"on). {_memory(edition, 'srgan')}."
    )


def _basicsr_esrgan_why(edition: Edition) -> str:
    return (
        "RRDBNet 64/23/32 (16,697,987 parameters, over the limit: for the report's comparison, not the "
        f"leaderboard) trained exactly as this edition's srgan (BasicSR's settings, the same data and USM "
        "choices), so that the comparison with srgan isolates the network, as the seed report's esrgan did under "
        f"2022's settings. {_memory(edition, 'esrgan')}: full 128->512 images at batch 8 need a 40 GB card in "
        "fp32 or a 24 GB one in bf16; on a 16 GB T4 use batch_size 4, which halves the activations."
    )


_COURSE_ESRGAN_WHY = (
    "RRDBNet 64/23/32 (16,697,987 parameters, over the limit: for the report's comparison, not the leaderboard), "
    "the seed report's ESRGAN experiment, trained exactly as srgan so that the comparison isolates the network. One "
    f"step takes about {_STEP_GIB['esrgan'][0]} GiB in fp32 and {_STEP_GIB['esrgan'][1]} GiB under fp16/bf16 "
    "autocast (benchmarks/train_memory.py --configs esrgan): full 128->512 images at batch 8 need a 40 GB card in "
    "fp32 or a 24 GB one in bf16; on a 16 GB T4 use batch_size 4, which halves the activations."
)


_COURSE_GAN_WHY = (
    "The seed report's GAN fine-tune of esrgan (MMEditing's ESRGAN recipe: ModifiedVGG discriminator on 128x128 GT "
    "crops, relativistic average GAN loss weight 5e-3, VGG19 conv5_4 perceptual loss weight 1, L1 weight 1e-2, lr "
    "1e-4 for both nets halved at 50k, 100k, 200k and 300k, 400k iterations, no EMA as the report had none). Its "
    "crops hold a sixteenth of esrgan's full images' pixels, so batch 8 needs no smaller batch on a 16 GB T4. It "
    "lowers PSNR: it is for the report's visual comparison, not the leaderboard."
)


def _basicsr_gan_why(edition: Edition) -> str:
    return (
        "The seed report's GAN fine-tune of esrgan (MMEditing's ESRGAN recipe: ModifiedVGG discriminator on "
        "128x128 GT crops, relativistic average GAN loss weight 5e-3, VGG19 conv5_4 perceptual loss weight 1, L1 "
        "weight 1e-2, lr 1e-4 for both nets halved at 50k, 100k, 200k and 300k, 400k iterations) from this "
        f"edition's esrgan, on the {edition.year} degradation. From BasicSR it takes what the baseline uses: Adam "
        "betas (0.9, 0.99) and EMA 0.999 (the exported weights are the average). Real-ESRGAN's own GAN stage "
        "uses a U-Net discriminator with spectral norm and a multi-layer perceptual loss, which the kit does not "
        "have; keeping the report's discriminator and losses keeps the experiment the same across editions, "
        "only the data changes. It lowers PSNR (the 2024 SwinIR with a GAN loss lost 1.3 dB val): it is for "
        "the report's visual comparison, not the leaderboard."
    )


def _mse_finish(first: TrainConfig) -> TrainConfig:
    """The short L2 stage after ``first``: from its EMA weights, at a tenth of its lr, same data and net."""
    why = _MSE_FINISH_WHY.format(first=first.name)
    if first.edition != DEFAULT_YEAR:  # the last sentence speaks of 2022's peers
        why = why[: why.index(" Nobody reported")] + (
            " Nobody reported an L1-then-L2 finish in any edition; a PSNR (MSE) loss from the start was: in 2023 "
            "MSRResNet-24 with it gave the best reported val, 29.7899.")
    return dataclasses.replace(
        first,
        name=f"{first.name}_l2",
        init=first.name,
        pixel_loss="l2",
        lr=first.lr / 10,
        iters=MSE_FINISH_ITERS,
        warmup_iters=500,
        why=why,
    )


def _gan_finetune(esrgan: TrainConfig, **changes: Any) -> TrainConfig:
    """The report's GAN fine-tune of ``esrgan`` (MMEditing's ESRGAN recipe), with ``changes`` on top."""
    return dataclasses.replace(
        esrgan,
        name="esrgan_gan",
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
        init="esrgan",
        **changes,
    )


def _baseline(edition: Edition) -> TrainConfig:
    """The edition's own baseline (srgan): MMEditing's settings for the course editions, BasicSR's after."""
    if edition.degradation == "course":
        # The course baseline as the original report ran it: MSRResNet-16, L1, full images, 300k iterations.
        # No EMA (ema_decay 0): the report had none, so net_g_ema == net_g and the run reproduces it.
        return TrainConfig(name="srgan", edition=edition.year, ema_decay=0.0)
    return TrainConfig(name="srgan", edition=edition.year, generator="msrresnet_basicsr",
                       generator_args=dict(generator_record("msrresnet_basicsr").defaults), betas=(0.9, 0.99),
                       ema_decay=0.999,
                       gt_usm=True, usm_target=True, why=_basicsr_baseline_why(edition))


def _msrresnet_configs(edition: Edition, budget: TrainConfig) -> dict[str, TrainConfig]:
    """The baseline's network deepened to fill the limit (msrresnet20; msrresnet26 under the 150 % limit)."""
    record = generator_record(budget.generator)  # MMEditing's MSRResNet, or BasicSR's for the second order
    wide = edition.param_limit >= _MSRRESNET26_PARAMS  # the 150 % limit of 2023-2025: sizes that fill it
    return {
        f"msrresnet{blocks}": dataclasses.replace(
            budget, name=f"msrresnet{blocks}", generator_args={**budget.generator_args, record.depth_arg: blocks},
            why=_msrresnet_why_150(edition, blocks) if wide else _MSRRESNET_WHY)
        for blocks in ((20, 26) if wide else (20,))
    }  # fmt: skip


def _record_why(edition: Edition, record: GeneratorRecord, n: int, args: dict) -> str:
    """The why of a registered network's in-budget config that the kit has no words of its own for."""
    limit = edition.param_limit
    recipe = _recipe_150(edition, record.name) if limit >= _MSRRESNET26_PARAMS else _RECIPE.format(name=record.name)
    own = ", ".join(f"{key}={value!r}" for key, value in record.train_settings.items())
    return (f"{record.describe(args)} ({n:,} parameters, {100 * n / limit:.1f} % of the {limit:,} limit) is the "
            f"largest size in its record (facesr.models.generator_record({record.name!r}).sizes) under the limit. "
            + recipe + (f"Its own settings, from its record: {own}." if own else "The baseline's settings otherwise."))


def _record_configs(edition: Edition, budget: TrainConfig) -> dict[str, TrainConfig]:
    """An in-budget config of every registered network with a size that fits the edition's limit."""
    configs = {}
    for record in generator_records():
        found = record.size_for(edition.param_limit)
        if found is None:
            continue
        n, args = found
        if record.name in _WHYS:
            why = _WHYS[record.name](edition)
        elif record.name in STEP_COST:  # the networks sized by size_to_budget
            recipe = (_recipe_150(edition, record.name) if edition.param_limit >= _MSRRESNET26_PARAMS
                      else _RECIPE.format(name=record.name))
            why = sized_network_why(edition, record, n, args, recipe)
        else:
            why = _record_why(edition, record, n, args)
        try:
            configs[record.name] = dataclasses.replace(
                budget, name=record.name, generator=record.name, generator_args=args, allow_fp16=record.fp16,
                **record.train_settings, why=why)
        except TypeError as err:
            raise FacesrError(f"generator record {record.name!r}: its train_settings {dict(record.train_settings)} "
                              f"are not all TrainConfig fields ({err})") from None
    return configs


# The kit's words for the in-budget configs of its own spandrel networks (2022's limit, then 2023-2025's).
_WHYS: dict[str, Callable[[Edition], str]] = {
    "swinir": lambda ed: _swinir_why_150(ed) if ed.param_limit >= _MSRRESNET26_PARAMS else _SWINIR_WHY,
    "rcan": lambda ed: _rcan_why_150(ed) if ed.param_limit >= _MSRRESNET26_PARAMS else _RCAN_WHY,
}


def _build_edition_configs(edition: Edition) -> dict[str, TrainConfig]:
    """Every named config of ``edition``: its baseline, the report's other two experiments, the in-budget ones."""
    srgan = _baseline(edition)
    course = edition.degradation == "course"
    # The report's over-budget RRDBNet 64/23/32 (16.7M parameters), the baseline's recipe otherwise.
    esrgan = dataclasses.replace(srgan, name="esrgan", generator="rrdbnet", generator_args=dict(RRDBNET_ARGS),
                                 why=_COURSE_ESRGAN_WHY if course else _basicsr_esrgan_why(edition))
    # The report's GAN fine-tune of the esrgan generator; no EMA where the report had none.
    gan = (_gan_finetune(esrgan, ema_decay=0.0, why=_COURSE_GAN_WHY) if course
           else _gan_finetune(esrgan, why=_basicsr_gan_why(edition)))
    # The fixed-budget recipe of the in-budget configs: one cosine period after a linear warm-up, EMA weights;
    # on the second-order editions trained against the plain GT (usm_target off; see _recipe_150).
    budget = dataclasses.replace(srgan, scheduler="cosine", iters=300_000, warmup_iters=5000, periods=[],
                                 restart_weights=[], ema_decay=0.999, usm_target=course, why="")
    configs = {"srgan": srgan, "esrgan": esrgan, "esrgan_gan": gan}
    in_budget = {**_msrresnet_configs(edition, budget), **_record_configs(edition, budget)}
    clash = set(in_budget) & set(configs)
    if clash:
        raise FacesrError(f"generator {', '.join(sorted(clash))} has the name of a report config; register it "
                          "under another name")
    configs.update(in_budget)
    for name in in_budget:
        configs[f"{name}_l2"] = _mse_finish(configs[name])  # the MSE finish of each in-budget config
    for name in in_budget:
        configs[f"{name}{KD_SUFFIX}"] = kd_config(configs[name], edition)  # taught by notebook 04's RRDBNet
    return configs


# The seed report's experiments, in every edition; the other configs are in-budget recipes.
REPORT_CONFIGS = ("srgan", "esrgan", "esrgan_gan")


@functools.lru_cache(maxsize=1)
def _configs_at(version: int) -> dict[int, dict[str, TrainConfig]]:
    """Every edition's named configs for the generators registered at ``version`` of the registry."""
    return {year: _build_edition_configs(edition) for year, edition in EDITIONS.items()}


def configs_by_edition() -> dict[int, dict[str, TrainConfig]]:
    """Every edition's named configs (year -> name -> config), rebuilt when a generator is registered.

    Treat them as read-only: :func:`facesr.config.get_config` copies one.
    """
    return _configs_at(registry_version())


def edition_configs(edition: int | str | Edition | None = None) -> dict[str, TrainConfig]:
    """The named configs of ``edition`` (None: :func:`facesr.editions.get_edition`'s); use get_config to change one."""
    return configs_by_edition()[edition_year(edition)]


def config_names(edition: int | str | Edition | None = None) -> list[str]:
    """The config names of ``edition`` (None: :func:`facesr.editions.get_edition`'s), in table order."""
    return list(edition_configs(edition))


def in_budget_names(edition: int | str | Edition | None = None) -> list[str]:
    """The first stages of the in-budget configs that fill ``edition``'s limit (their ``_l2`` finishes follow).

    2022: msrresnet20, swinir, rcan; 2023-2025: msrresnet26, swinir, rcan (msrresnet20 is there too, smaller);
    then every registered network with a size within the limit (its record's ``sizes``).
    """
    ed = get_edition(edition)
    msr = "msrresnet26" if "msrresnet26" in edition_configs(ed) else "msrresnet20"
    return [msr] + [record.name for record in generator_records() if record.size_for(ed.param_limit)]
