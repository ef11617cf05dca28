"""The look every report figure shares: the models in order, one colour and one label per model, PNG files.

A model keeps its colour in every figure of the report (curves, grids, histograms), so a reader matches
a line to a face column at a glance; names the report does not know get a stable colour of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

# The models of the report, in the order every table and legend lists them.
MODEL_ORDER: tuple[str, ...] = ("srgan", "msrresnet20", "esrgan", "esrgan_gan")

# One colour per model, the same in every figure (tab10 colours, distinguishable when printed).
MODEL_COLORS: dict[str, str] = {
    "bicubic": "#7f7f7f",
    "srgan": "#1f77b4",
    "msrresnet20": "#2ca02c",
    "esrgan": "#d62728",
    "esrgan_gan": "#ff7f0e",
    "lq": "#8c564b",
    "gt": "#000000",
}
MODEL_LABELS: dict[str, str] = {
    "bicubic": "Bicubic",
    "srgan": "SRGAN (MSRResNet-16)",
    "msrresnet20": "MSRResNet-20",
    "esrgan": "ESRGAN (RRDBNet)",
    "esrgan_gan": "ESRGAN+GAN",
    "lq": "LQ",
    "gt": "GT",
}
_FALLBACK_COLORS = ("#9467bd", "#e377c2", "#bcbd22", "#17becf", "#8c564b")


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
    return path
