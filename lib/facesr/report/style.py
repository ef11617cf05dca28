"""The look every report figure shares: models in order, one colour and label each, page sizes, PDF + PNG files.

A model keeps its colour in every figure of the report (curves, grids, histograms), so a reader matches
a line to a face column at a glance; names the report does not know get a stable colour of their own.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from facesr.atomic import atomic_write
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


# Report figures are drawn at the size they are printed, so a font size is a font size on the page: the full
# text width of a page with 1-inch margins (6.5 in on US letter, 6.27 on A4 scales it by 0.96) or one column
# of a two-column layout. LaTeX's \includegraphics[width=\linewidth] then scales them by at most a few %.
FULL_WIDTH = 6.5
COLUMN_WIDTH = 3.25
REPORT_WIDTHS = (COLUMN_WIDTH, FULL_WIDTH)
REPORT_DPI = 300  # the PNG copy: print resolution at that size
MIN_FONT_PT = 8  # the smallest text of any report figure, in points at its printed size
REPORT_RC: dict[str, object] = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "legend.title_fontsize": 8, "figure.titlesize": 9, "lines.linewidth": 1.0,
    "lines.markersize": 3, "axes.linewidth": 0.6, "grid.linewidth": 0.5, "legend.framealpha": 0.85,
}  # fmt: skip
F = TypeVar("F", bound=Callable[..., Any])


def report_figure(function: F) -> F:
    """Decorator of a figure function: everything it draws gets the report's font sizes and line widths.

    Text keeps the size it was created with, so the rc settings only need to hold while the figure is drawn.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with pyplot().rc_context(REPORT_RC):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def report_width(width: float) -> float:
    """The report width (:data:`FULL_WIDTH` or :data:`COLUMN_WIDTH`) nearest to ``width`` inches."""
    return min(REPORT_WIDTHS, key=lambda w: abs(w - width))


def _hide_title(fig: object) -> object | None:
    """Hide the figure's suptitle, out of the layout too (the caption says it); return it to be shown again."""
    title = getattr(fig, "_suptitle", None)  # matplotlib >= 3.7 has no public getter for the Text itself
    if title is None or not title.get_visible():
        return None
    title.set_visible(False)
    title.set_in_layout(False)
    return title


def save_figure(fig: object, figures_dir: str | os.PathLike, name: str, dpi: int = REPORT_DPI) -> tuple[Path, Path]:
    """Write ``fig`` as ``figures_dir/name.png`` and ``figures_dir/name.pdf``; return both paths (PNG, PDF).

    The PDF is vector: lines and text stay lines and text, and images drawn with ``interpolation="none"``
    keep their own pixels (the viewer scales them); the PNG is the same page at ``dpi``. Both are exactly
    the figure's size (no tight bounding box), which is set to the report width nearest to it
    (:data:`FULL_WIDTH` or :data:`COLUMN_WIDTH`, height in proportion) when it is another. A figure title
    (suptitle) is left out of both files, as the report's caption says it; the figure stays open for display,
    title included. Each file is written atomically.

    Args:
        fig: a matplotlib Figure.
        figures_dir: the folder (created if missing).
        name: the file stem; any suffix is dropped.
        dpi: the PNG's resolution (300: print quality at report size).
    """
    width, height = fig.get_size_inches()
    if abs(width - report_width(width)) > 1e-6:  # a figure drawn elsewhere: scaled to the page, fonts not
        fig.set_size_inches(report_width(width), height * report_width(width) / width)
    title = _hide_title(fig)
    stem = Path(figures_dir) / Path(name).stem

    def writer(file_format: str, **options: object) -> Callable[[Any], None]:
        return lambda fh: fig.savefig(fh, format=file_format, facecolor="white", **options)

    try:
        written = [atomic_write(stem.with_suffix(".png"), writer("png", dpi=dpi)),
                   atomic_write(stem.with_suffix(".pdf"), writer("pdf", metadata={"CreationDate": None}))]  # fmt: skip
    finally:
        if title is not None:
            title.set_visible(True)
            title.set_in_layout(True)
    record_saved(stem.parent, written)  # the manifest beside the figures: what made them (facesr.report.manifest)
    return written[0], written[1]
