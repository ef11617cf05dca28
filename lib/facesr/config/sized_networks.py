"""The why of the in-budget configs of the networks sized by :func:`facesr.models.size_to_budget`: Omni-SR, SPAN,
RealPLKSR, DAT-light and ATD-light (docs/course.md section 10).

Each says its size against the edition's limit, the search that found it, the release it widens, the cost of
one training step at its course settings (GFLOP and 2-core CPU seconds, beside the kit's other in-budget nets)
and the precision and memory format it trains with on a GPU (its record's capabilities).
"""

from __future__ import annotations

from facesr.editions import Edition
from facesr.models.record import GeneratorRecord

# What each network is and which official release its config widens (docs/course.md section 10).
_WORDS: dict[str, str] = {
    "omnisr": (
        "Omni-SR (Wang et al., CVPR 2023) mixes window and grid self-attention with channel attention in each "
        "block; the authors' x4 model (OmniSR_X4_DIV2K, 64 channels, 5 groups of 1 block) has 805,376 "
        "parameters and is said to beat SwinIR-light on the bicubic benchmarks at fewer parameters."
    ),
    "span": (
        "SPAN (Wan et al., CVPR-W 2024, winner of the NTIRE 2024 efficient-SR challenge) is a plain CNN whose "
        "attention has no parameters (a sigmoid of its own features); the authors' x4 model has 48 channels. "
        "It trains with re-parameterisable branches (a 1x1 skip and a 1x1-3x3-1x1 chain per convolution, about "
        "5.5 times the parameters) and is counted, submitted and exported fused, one 3x3 convolution each "
        "(docs/course.md section 10 says why the course's count applies to that form)."
    ),
    "realplksr": (
        "RealPLKSR (neosr's real-world variant of PLKSR, Lee et al. 2024) replaces attention by a 17x17 "
        "convolution over a quarter of the channels; neosr's default (64 channels, 28 blocks) has 7.4M "
        "parameters, so within the limit it is both narrower and shallower. It has no official lightweight "
        "release."
    ),
    "dat": (
        "DAT (Chen et al., ICCV 2023) alternates spatial window attention and channel attention; the authors' "
        "DAT-light x4 (embed 60, one group of 18 blocks, windows 8x32) has 572,766 parameters. Its attention "
        "branches hold BatchNorm: the EMA averages their running statistics, and `average` refuses the run."
    ),
    "atd": (
        "ATD (Zhang et al., CVPR 2024) adds attention to an adaptive dictionary of learnt tokens and category "
        "attention to window attention; the authors' ATD-light x4 (embed 48, 4 groups of 6 blocks, window 16) "
        "has 768,792 parameters."
    ),
}

# (GFLOP of one training step at the config's own batch and patch, CPU seconds of one forward+backward pass of
# 2 LQ patches of 64) of each in-budget network at its 2022 size (False) and its 2023-2025 size (True), as
# ``python benchmarks/train_step.py --fwbw --threads 2`` prints them (FACESR_EDITION=2024 for the second) on the
# kit's 2-core CPU. A shared machine: compare the networks of one run, do not plan by the seconds.
STEP_COST: dict[str, dict[bool, tuple[float, float]]] = {
    "msrresnet": {False: (2226.0, 1.08), True: (2573.9, 1.44)},
    "swinir": {False: (386.9, 1.33), True: (497.4, 2.21)},
    "rcan": {False: (1762.2, 0.69), True: (2139.1, 0.84)},
    "omnisr": {False: (1312.4, 1.35), True: (1794.8, 2.00)},
    "span": {False: (1558.8, 3.17), True: (1953.9, 2.61)},
    "realplksr": {False: (352.5, 0.77), True: (442.8, 1.30)},
    "dat": {False: (699.3, 2.36), True: (840.9, 3.04)},
    "atd": {False: (1156.5, 5.60), True: (1396.4, 6.46)},
}


def precision_words(record: GeneratorRecord) -> str:
    """How a network trains on a GPU, from its record: the AMP dtype per card and the memory format."""
    half = ("fp16 with a GradScaler on cards without bf16 (a T4)" if record.fp16
            else "fp32 on cards without bf16 (fp16 is not safe for it)")
    layout = ("channels_last on CUDA (a convolutional net: cuDNN's fast kernels want it)" if record.channels_last
              else "the default contiguous layout (past its first convolution it works on token layouts, where "
                   "channels_last only adds conversions)")
    return f"bf16 autocast where the card has it, {half}; {layout}"


def sized_network_why(edition: Edition, record: GeneratorRecord, n: int, args: dict, recipe: str) -> str:
    """The why of ``record``'s in-budget config of ``edition``: ``n`` parameters with ``args``, then ``recipe``.

    Args:
        edition: The edition.
        record: One of the networks of :data:`_WORDS`.
        n: Its parameter count at that size (the inference form's).
        args: Its ``generator_args``.
        recipe: The edition's in-budget recipe in words (shared with the other in-budget configs).
    """
    limit, wide = edition.param_limit, edition.param_limit > 2_000_000
    gflop, seconds = STEP_COST[record.name][wide]
    msr, swin, rcan = (STEP_COST[k][wide][1] for k in ("msrresnet", "swinir", "rcan"))
    msr_name = "msrresnet26" if wide else "msrresnet20"
    own = ", ".join(f"{key}={value!r}" for key, value in record.train_settings.items())
    return (
        f"{record.describe(args)} ({n:,} parameters, {100 * n / limit:.1f} % of the {limit:,} limit): the largest "
        f"size facesr.models.size_to_budget({record.name!r}, {edition.year}) finds with its width and depth knobs "
        f"(it prints every candidate it counted). {_WORDS[record.name]} One training step at its settings costs "
        f"{gflop:,.0f} GFLOP; a forward+backward pass of 2 LQ patches of 64 took {seconds:.2f} s on 2 CPU cores, "
        f"against {msr:.2f} s for {msr_name}, {swin:.2f} s for swinir and {rcan:.2f} s for rcan "
        "(benchmarks/train_step.py --fwbw --threads 2; compare, do not plan by them: the notebooks time your GPU). "
        "On a GPU: "
        f"{precision_words(record)}. " + recipe + f"Its own settings, from its record: {own} (LQ patches of 64, "
        "SwinIR-light's, at the course's batch; the attention masks are built for that patch)."
    )
