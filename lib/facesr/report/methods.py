"""The report's model and loss sections, written from a run's ``config.json``: the network, its training, the
loss functions as equations with the weights the run used.

Every function returns blocks of :mod:`facesr.report.document`; a run with an MSE finish (``<name>_l2``) is
described as its two stages, the first stage's config first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath

from facesr.report.bibliography import distills
from facesr.report.document import Block, Equation, Paragraph

Config = Mapping[str, object]


def _arg(args: Mapping[str, object], *names: str, default: object = None) -> object:
    for name in names:
        if name in args:
            return args[name]
    return default


def network_text(generator: str, args: Mapping[str, object]) -> str:
    """One paragraph on the generator: what it is, its size settings, its papers."""
    if generator in ("msrresnet", "msrresnet_basicsr"):
        blocks = _arg(args, "num_blocks", "num_block", default=16)
        width = _arg(args, "mid_channels", "num_feat", default=64)
        code = "BasicSR's" if generator == "msrresnet_basicsr" else "MMEditing's"
        return (f"The generator is MSRResNet ({code} layout), the SRResNet of [@ledig2017srgan] without batch "
                "normalisation as modified by ESRGAN's authors [@wang2018esrgan]: a $3\\times3$ convolution to "
                f"{width} features, {blocks} residual blocks of two $3\\times3$ convolutions with a ReLU, two "
                "pixel-shuffle $\\times2$ upsampling steps, two more convolutions, and a global skip that adds a "
                "bilinear $\\times4$ upscaling of the input, so the network learns the residual over it.")
    if generator == "rrdbnet":
        return (f"The generator is RRDBNet [@wang2018esrgan]: {_arg(args, 'num_blocks', default=23)} "
                f"residual-in-residual dense blocks of {_arg(args, 'mid_channels', default=64)} features (growth "
                f"{_arg(args, 'growth_channels', default=32)}), then two nearest-neighbour $\\times2$ upsampling "
                "steps each followed by a convolution.")
    if generator == "swinir":
        depths = list(_arg(args, "depths", default=[6, 6, 6, 6]))  # type: ignore[arg-type]
        heads = list(_arg(args, "num_heads", default=[6] * len(depths)))  # type: ignore[arg-type]
        return (f"The generator is SwinIR [@liang2021swinir] with embedding dimension {_arg(args, 'embed_dim')}: "
                f"a convolution, {len(depths)} residual Swin transformer blocks of {depths[0]} layers each "
                f"({heads[0]} attention heads, window {_arg(args, 'window_size')}, MLP ratio "
                f"{_arg(args, 'mlp_ratio')}), and the `{_arg(args, 'upsampler')}` upsampler (one convolution "
                "and a pixel shuffle $\\times4$), as in lightweight SwinIR.")
    if generator == "rcan":
        return (f"The generator is RCAN [@zhang2018rcan] with {_arg(args, 'n_feats')} features: "
                f"{_arg(args, 'n_resgroups')} residual groups of {_arg(args, 'n_resblocks')} residual "
                f"channel-attention blocks (reduction {_arg(args, 'reduction')}), each group and the whole trunk "
                "with a long skip connection, then pixel-shuffle upsampling.")
    return _record_text(generator, args)


def _record_text(generator: str, args: Mapping[str, object]) -> str:
    """The generator of any other registered network: its name, its papers and its size as the kit labels it."""
    from facesr.errors import FacesrError
    from facesr.models import generator_record
    from facesr.report.bibliography import NETWORK_PAPERS

    try:
        record = generator_record(generator)
    except FacesrError:  # a network registered in another session: its registry name only
        return f"The generator is `{generator}`."
    papers = NETWORK_PAPERS.get(record.name, ())
    cite = f" [{'; '.join('@' + key for key in papers)}]" if papers else ""
    variant = " (neosr's variant of PLKSR)" if record.name == "realplksr" else ""
    return f"The generator is {record.title}{variant}{cite}, in the size the kit labels {record.describe(args)}."


def _schedule(cfg: Config) -> str:
    iters, lr = int(cfg.get("iters", 0)), float(cfg.get("lr", 0))
    warmup = int(cfg.get("warmup_iters") or 0)
    warm = f" after {warmup:,} iterations of linear warm-up" if warmup else ""
    kind = str(cfg.get("scheduler", ""))
    if kind == "cosine":
        shape = f"one cosine period [@loshchilov2017sgdr] down to {float(cfg.get('eta_min', 0)):g}{warm}"
    elif kind == "cosine_restart":
        periods = ", ".join(f"{int(p):,}" for p in cfg.get("periods") or [])  # type: ignore[union-attr]
        shape = f"cosine annealing with restarts [@loshchilov2017sgdr] (periods {periods}){warm}"
    else:
        steps = ", ".join(f"{int(m):,}" for m in cfg.get("milestones") or [])  # type: ignore[union-attr]
        shape = f"multiplied by {cfg.get('gamma')} at iterations {steps}{warm}" if steps else f"constant{warm}"
    betas = ", ".join(f"{float(b):g}" for b in cfg.get("betas") or (0.9, 0.999))  # type: ignore[union-attr]
    return f"{iters:,} iterations of Adam [@kingma2015adam] (betas {betas}) at a learning rate of {lr:g}, {shape}"


def training_text(cfg: Config, stage: str | None = None, run: str | None = None) -> str:
    """One paragraph on how a config trains: iterations, optimiser and schedule, batch and patch, EMA, clipping.

    Args:
        cfg: the run's config.json.
        stage: "first", "second", ... for a run of several stages (None: the only one).
        run: the stage's run name, said with the stage.
    """
    patch = cfg.get("gt_patch")
    size = f"LQ patches of {int(patch) // 4}x{int(patch) // 4} pixels" if patch else "whole 128x128 LQ images"
    who = f"The {stage} stage" + (f" (run `{run}`)" if run else "") if stage else "It"
    parts = [f"{who} trained for {_schedule(cfg)}, on batches of {cfg.get('batch_size')} {size}."]
    ema = float(cfg.get("ema_decay") or 0)
    if ema > 0:
        parts.append(f"An exponential moving average of the weights with decay {ema:g} "
                     "[@polyak1992averaging] is validated and used for the predictions.")  # fmt: skip
    if float(cfg.get("grad_clip") or 0) > 0:
        parts.append(f"Gradient norms are clipped at {float(cfg['grad_clip']):g}.")  # type: ignore[arg-type]
    if cfg.get("init") and stage:
        parts.append(f"It starts from the weights of `{cfg.get('init')}`.")
    return " ".join(parts)


def _pixel(cfg: Config) -> tuple[str, str, str]:
    """(symbol, equation, what it is) of a config's pixel loss."""
    kind = str(cfg.get("pixel_loss", "l1")).lower()
    if kind in ("l2", "mse"):
        return ("\\mathcal{L}_{\\mathrm{MSE}}",
                "\\mathcal{L}_{\\mathrm{MSE}} = \\frac{1}{N}\\sum_{i=1}^{N} (\\hat{y}_i - y_i)^2",
                "the mean squared error, the error PSNR is a logarithm of")
    if kind == "charbonnier":
        return ("\\mathcal{L}_{\\mathrm{Charb}}",
                "\\mathcal{L}_{\\mathrm{Charb}} = \\frac{1}{N}\\sum_{i=1}^{N} \\sqrt{(\\hat{y}_i - y_i)^2 + "
                "\\varepsilon}, \\quad \\varepsilon = 10^{-12}", "the Charbonnier loss [@charbonnier1994]")
    return ("\\mathcal{L}_{1}", "\\mathcal{L}_{1} = \\frac{1}{N}\\sum_{i=1}^{N} \\left| \\hat{y}_i - y_i \\right|",
            "the mean absolute error (L1)")


def _weight(value: object) -> str:
    w = float(value)  # type: ignore[arg-type]
    if w == 1:
        return ""
    mantissa, _, exponent = f"{w:.0e}".partition("e")
    return (f"{w:g}\\," if 1e-2 <= w < 1e3 else f"{mantissa}\\cdot 10^{{{int(exponent)}}}\\,")


def loss_blocks(stages: Sequence[tuple[str, Config]], target: str) -> list[Block]:
    """The loss section's blocks: each stage's loss terms as equations and their weighted sum.

    Args:
        stages: ``[(run name, config)]`` in training order (one stage, or a first stage and its MSE finish).
        target: what $y$ is, e.g. "the ground-truth face".
    """
    blocks: list[Block] = [Paragraph(
        f"$\\hat{{y}} = G(x)$ is the generator's output for the LQ input $x$, $y$ {target}, and the sums run "
        "over the $N$ values (pixels and colour channels) of a batch.")]
    for name, cfg in stages:
        symbol, equation, what = _pixel(cfg)
        terms = [f"{_weight(cfg.get('pixel_weight', 1.0))}{symbol}"]
        lead = f"Stage `{name}`: the" if len(stages) > 1 else "The"
        blocks += [Paragraph(f"{lead} pixel loss is {what}:"), Equation(equation)]
        if float(cfg.get("perceptual_weight") or 0) > 0:
            layers = ", ".join(str(k) for k in dict(cfg.get("perceptual_layers") or {}))  # type: ignore[arg-type]
            blocks += [Paragraph(f"The perceptual loss [@johnson2016perceptual] compares VGG19 [@simonyan2015vgg] "
                                 f"features $\\phi_k$ (layer {layers} of `features`, before its activation, as "
                                 "ESRGAN) with an L1 distance:"),
                       Equation("\\mathcal{L}_{\\mathrm{percep}} = \\sum_k w_k \\, \\frac{1}{N_k} \\left\\| "
                                "\\phi_k(\\hat{y}) - \\phi_k(y) \\right\\|_1")]  # fmt: skip
            terms.append(f"{_weight(cfg['perceptual_weight'])}\\mathcal{{L}}_{{\\mathrm{{percep}}}}")
        if float(cfg.get("gan_weight") or 0) > 0:
            blocks += [Paragraph("The adversarial loss is the relativistic average GAN loss "
                                 "[@jolicoeur2019relativistic; @wang2018esrgan] of a discriminator $C$, with "
                                 "$D(a, b) = \\sigma(C(a) - \\mathrm{E}[C(b)])$:"),
                       Equation("\\mathcal{L}_{G}^{Ra} = -\\tfrac{1}{2}\\,\\mathrm{E}\\big[\\log(1 - D(y, \\hat{y}))"
                                "\\big] - \\tfrac{1}{2}\\,\\mathrm{E}\\big[\\log D(\\hat{y}, y)\\big]")]  # fmt: skip
            terms.append(f"{_weight(cfg['gan_weight'])}\\mathcal{{L}}_{{G}}^{{Ra}}")
        if distills(cfg):
            teacher = PurePath(str(cfg["teacher"]))  # a run name, a run folder or a checkpoint in one
            run = teacher.parent.name if teacher.suffix else teacher.name
            blocks += [Paragraph(f"The distillation loss [@hinton2015distilling] makes the output follow that of a "
                                 f"trained teacher network $T$ (the run `{run}`, frozen) on the same LQ "
                                 "input, with an L1 distance:"),
                       Equation("\\mathcal{L}_{\\mathrm{distill}} = \\frac{1}{N}\\sum_{i=1}^{N} \\left| \\hat{y}_i - "
                                "T(x)_i \\right|")]  # fmt: skip
            terms.append(f"{_weight(cfg['distill_weight'])}\\mathcal{{L}}_{{\\mathrm{{distill}}}}")
        total = " + ".join(terms)
        blocks += [Paragraph("The generator minimises" + (" the sum" if len(terms) > 1 else "")),
                   Equation(f"\\mathcal{{L}}_G = {total}")]
    return blocks
