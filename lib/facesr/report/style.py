"""The look every report figure shares: the models in order, one colour and one label per model, PNG files.

A model keeps its colour in every figure of the report (curves, grids, histograms), so a reader matches
a line to a face column at a glance; names the report does not know get a stable colour of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from facesr.report.manifest import record as record_saved

# The report's own models (the seed report's three and the in-budget MSRResNets, named by depth), each with
# its colour (tab10 colours, distinguishable when printed) and label. The in-budget configs of the other
# networks (SwinIR, RCAN, any registered one) take theirs from the network's record (facesr.models.record);
# an MSE finish is drawn in a darker shade of its first stage's colour.
_OWN: dict[str, tuple[str, str]] = {
    "bicubic": ("#7f7f7f", "Bicubic"),
    "srgan": ("#1f77b4", "SRGAN (MSRResNet-16)"),
    "msrresnet20": ("#2ca02c", "MSRResNet-20"),
    "msrresnet26": ("#6b8e23", "MSRResNet-26"),
    "esrgan": ("#d62728", "ESRGAN (RRDBNet)"),
    "esrgan_gan": ("#ff7f0e", "ESRGAN+GAN"),
    "lq": ("#8c564b", "LQ"),
    "gt": ("#000000", "GT"),
}
_OWN_IN_BUDGET = ("msrresnet20", "msrresnet26")
_FINISH, _FINISH_LABEL = "_l2", " + MSE finish"
_FALLBACK_COLORS = ("#e377c2", "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a")  # none of the report's own


def _darker(color: str, factor: float = 0.62) -> str:
    """``color`` (#rrggbb) with each channel scaled by ``factor``: an MSE finish beside its first stage."""
    return "#" + "".join(f"{round(int(color[i : i + 2], 16) * factor):02x}" for i in (1, 3, 5))


def _record_styles() -> dict[str, tuple[str, str]]:
    """(colour, label) of each registered network's in-budget config and its MSE finish."""
    from facesr.models import generator_records

    out: dict[str, tuple[str, str]] = {}
    for record in generator_records():
        if record.sizes:
            color = record.color or _FALLBACK_COLORS[sum(map(ord, record.name)) % len(_FALLBACK_COLORS)]
            out[record.name] = (color, record.title)
            out[record.name + _FINISH] = (_darker(color), record.title + _FINISH_LABEL)
    return out


def _in_budget_styles() -> dict[str, tuple[str, str]]:
    """(colour, label) of every in-budget config, each followed by its MSE finish, in the report's order."""
    out: dict[str, tuple[str, str]] = {}
    for name in _OWN_IN_BUDGET:
        color, label = _OWN[name]
        out[name], out[name + _FINISH] = (color, label), (_darker(color), label + _FINISH_LABEL)
    return {**out, **_record_styles()}


def _styles() -> dict[str, tuple[str, str]]:
    return {**_OWN, **_in_budget_styles()}


def model_order() -> tuple[str, ...]:
    """The models of the report in the order every table and legend lists them: the baseline, the in-budget
    configs each followed by its MSE finish (the MSRResNets, then each registered network's), the ESRGANs."""
    return ("srgan", *_in_budget_styles(), "esrgan", "esrgan_gan")


# The same, for the networks registered when the module was imported (the kit's own); the functions below
# also know the networks registered later.
MODEL_ORDER: tuple[str, ...] = model_order()
MODEL_COLORS: dict[str, str] = {name: color for name, (color, _) in _styles().items()}
MODEL_LABELS: dict[str, str] = {name: label for name, (_, label) in _styles().items()}


def model_color(name: str) -> str:
    """The colour of ``name`` in every figure (unknown names get a stable colour of their own)."""
    style = _styles().get(name)
    return style[0] if style else _FALLBACK_COLORS[sum(map(ord, name)) % len(_FALLBACK_COLORS)]


def model_label(name: str) -> str:
    """The display name of a run or config (the run name itself when it is not one of the report's)."""
    style = _styles().get(name)
    return style[1] if style else name


def pyplot() -> object:
    """``matplotlib.pyplot``, imported late: the library must import without matplotlib configured."""
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: object, figures_dir: str | os.PathLike, name: str, dpi: int = 150) -> Path:
    """Write ``fig`` as ``figures_dir/name.png`` and return the path; the figure stays open for display.

    Args:
        fig: a matplotlib Figure.
        figures_dir: the folder (created if missing).
        name: the file name; any suffix is replaced by ``.png``.
        dpi: 150 reads well at report size.
    """
    path = Path(figures_dir) / f"{Path(name).stem}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    record_saved(path.parent, [path])  # the manifest beside the figures: what made it (facesr.report.manifest)
    return path
