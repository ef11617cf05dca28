"""The look every report figure shares: the models in order, one colour and one label per model, PNG files.

A model keeps its colour in every figure of the report (curves, grids, histograms), so a reader matches
a line to a face column at a glance; names the report does not know get a stable colour of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from facesr.report.manifest import record as record_saved

# The models of the report, in the order every table and legend lists them.
MODEL_ORDER: tuple[str, ...] = (
    "srgan", "msrresnet20", "msrresnet20_l2", "msrresnet26", "msrresnet26_l2", "swinir", "swinir_l2", "rcan",
    "rcan_l2", "esrgan", "esrgan_gan",
)  # fmt: skip

# One colour per model, the same in every figure (tab10 colours, distinguishable when printed; an MSE
# finish of notebook 07 gets a darker shade of its first stage's colour).
MODEL_COLORS: dict[str, str] = {
    "bicubic": "#7f7f7f",
    "srgan": "#1f77b4",
    "msrresnet20": "#2ca02c",
    "msrresnet26": "#6b8e23",
    "swinir": "#9467bd",
    "rcan": "#17becf",
    "msrresnet20_l2": "#1a661a",
    "msrresnet26_l2": "#445a16",
    "swinir_l2": "#5b3d80",
    "rcan_l2": "#0e7480",
    "esrgan": "#d62728",
    "esrgan_gan": "#ff7f0e",
    "lq": "#8c564b",
    "gt": "#000000",
}
MODEL_LABELS: dict[str, str] = {
    "bicubic": "Bicubic",
    "srgan": "SRGAN (MSRResNet-16)",
    "msrresnet20": "MSRResNet-20",
    "msrresnet26": "MSRResNet-26",
    "swinir": "SwinIR",
    "rcan": "RCAN",
    "msrresnet20_l2": "MSRResNet-20 + MSE finish",
    "msrresnet26_l2": "MSRResNet-26 + MSE finish",
    "swinir_l2": "SwinIR + MSE finish",
    "rcan_l2": "RCAN + MSE finish",
    "esrgan": "ESRGAN (RRDBNet)",
    "esrgan_gan": "ESRGAN+GAN",
    "lq": "LQ",
    "gt": "GT",
}
_FALLBACK_COLORS = ("#e377c2", "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a")  # none of the report's own


def model_color(name: str) -> str:
    """The colour of ``name`` in every figure (unknown names get a stable colour of their own)."""
    if name in MODEL_COLORS:
        return MODEL_COLORS[name]
    return _FALLBACK_COLORS[sum(map(ord, name)) % len(_FALLBACK_COLORS)]


def model_label(name: str) -> str:
    """The display name of a run or config (the run name itself when it is not one of the report's)."""
    return MODEL_LABELS.get(name, name)


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
