"""The report's figures: training curves, PSNR against iterations, face grids with crops, real-world grids.

Every function returns a matplotlib Figure (save it with :func:`facesr.report.style.save_figure`); each
model keeps its colour from :data:`facesr.report.style.MODEL_COLORS` in every figure.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from facesr.errors import FacesrError
from facesr.report.runs import iteration_column, loss_columns, metric_column
from facesr.report.style import model_color, model_label, pyplot

# Crop boxes as fractions (top, bottom, left, right) of an FFHQ-aligned face, any resolution.
DEFAULT_CROPS: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.35, 0.50, 0.20, 0.80),
    "mouth": (0.68, 0.82, 0.30, 0.70),
}
_CROP_COLORS = ("yellow", "cyan", "magenta")
_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (1, 3)))


def _draw_loss_panel(
    ax: object,
    name: str,
    log: pd.DataFrame,
    log_scale: str | None,
    ylabel: str = "loss",
    fade: bool = False,
    empty_note: bool = False,
) -> None:
    """Every loss term of one run's training log on ``ax``, in the run's colour, one line style per term.

    Args:
        log_scale: the log-axis rule. ``"any"``: non-positive values are left out and the axis goes
            logarithmic when any value is positive (notebook 06's panels); ``"all"``: values drawn as
            they are, logarithmic only when every value is positive (a run's own curves); None: linear.
        ylabel: the loss axis label.
        fade: draw every term after the first at 0.75 alpha.
        empty_note: say "no training log yet" on an empty panel.
    """
    color = model_color(name)
    terms = loss_columns(log)
    if log.empty or not terms:
        if empty_note:
            ax.text(0.5, 0.5, "no training log yet", ha="center", va="center", transform=ax.transAxes)
    else:
        x = log[iteration_column(log)]
        for i, term in enumerate(terms):
            y = log[term].where(log[term] > 0) if log_scale == "any" else log[term]
            style = {"alpha": 1.0 if i == 0 else 0.75} if fade else {}
            ax.plot(x, y, color=color, linestyle=_LINESTYLES[i % len(_LINESTYLES)], label=term, **style)
        positive = log[terms] > 0
        if (log_scale == "any" and positive.any().any()) or (log_scale == "all" and positive.all().all()):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.set(title=f"{model_label(name)}: training loss", xlabel="iterations", ylabel=ylabel)
    ax.grid(True, alpha=0.3)


def _draw_psnr_axis(
    ax: object, vals: Mapping[str, pd.DataFrame], bicubic_psnr: float | None, title: str, **line_style: object
) -> None:
    """Val PSNR against iterations of each run in its colour (empty logs skipped), bicubic as a dashed line."""
    for name, val in vals.items():
        if val.empty:
            continue
        x, y = val[iteration_column(val)], val[metric_column(val, "psnr")]
        ax.plot(x, y, marker="o", color=model_color(name), label=model_label(name), **line_style)
    if bicubic_psnr is not None:
        ax.axhline(bicubic_psnr, color=model_color("bicubic"), linestyle="--",
                   label=f"{model_label('bicubic')} ({bicubic_psnr:.2f} dB)")
    ax.set(title=title, xlabel="iterations", ylabel="PSNR (dB)")
    ax.grid(True, alpha=0.3)


def plot_loss_curves(logs: Mapping[str, pd.DataFrame], log_scale: bool = True) -> object:
    """Training-loss curves, one panel per model: every loss term of its log, in the model's colour.

    Args:
        logs: ``{run name: training log}`` (the first table of :func:`facesr.training.read_run_logs`).
        log_scale: logarithmic loss axis (GAN terms differ by orders of magnitude).
    """
    plt = pyplot()
    n = max(len(logs), 1)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[max(len(logs), 1):]:
        ax.set_visible(False)
    if not logs:
        axes[0, 0].text(0.5, 0.5, "no runs yet: train notebooks 03-05 first", ha="center", va="center")
        axes[0, 0].set_axis_off()
    for ax, (name, log) in zip(axes.flat, logs.items(), strict=False):
        _draw_loss_panel(ax, name, log, "any" if log_scale else None,
                         ylabel="loss (log scale)" if log_scale else "loss", fade=True, empty_note=True)
    fig.tight_layout()
    return fig


def plot_psnr_curves(
    vals: Mapping[str, pd.DataFrame], bicubic_psnr: float | None = None, title: str = "Validation PSNR"
) -> object:
    """Val PSNR against iterations of all models on one axis, with the bicubic baseline as a line.

    Args:
        vals: ``{run name: validation log}``.
        bicubic_psnr: the baseline (dB), drawn dashed; None or NaN leaves it out.
        title: the axes title.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    finite = bicubic_psnr is not None and math.isfinite(bicubic_psnr)
    _draw_psnr_axis(ax, vals, bicubic_psnr if finite else None, title, markersize=3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no validation yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def plot_run_curves(name: str, log: pd.DataFrame, val: pd.DataFrame, bicubic_psnr: float | None = None) -> object:
    """One run's training loss and val PSNR side by side (the curves of notebooks 03-05).

    Args:
        name: the run name (colour and label).
        log: its training log.
        val: its validation log.
        bicubic_psnr: the baseline (dB); None takes the ``bicubic_psnr`` the trainer logs in ``val``.
    """
    plt = pyplot()
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(12, 4))
    _draw_loss_panel(ax_loss, name, log, "all")
    if bicubic_psnr is None and "bicubic_psnr" in val.columns and not val.empty:
        bicubic_psnr = float(val["bicubic_psnr"].iloc[-1])  # the trainer logs it beside every validation
    _draw_psnr_axis(ax_psnr, {name: val}, bicubic_psnr, f"{model_label(name)}: validation PSNR")
    if ax_psnr.get_legend_handles_labels()[0]:
        ax_psnr.legend(fontsize=8)
    fig.tight_layout()
    return fig


def crop_box(shape: tuple[int, ...], box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """Pixel rows/columns ``(top, bottom, left, right)`` of a fractional box in an image of ``shape``.

    Args:
        shape: the image shape (height, width, ...).
        box: fractions (top, bottom, left, right) with 0 <= top < bottom <= 1 and 0 <= left < right <= 1.
    """
    top, bottom, left, right = box
    if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
        raise ValueError(f"crop box must be fractions with 0 <= top < bottom <= 1 and 0 <= left < right <= 1, "
                         f"got {box}")
    h, w = shape[:2]
    return (int(round(top * h)), max(int(round(bottom * h)), int(round(top * h)) + 1),
            int(round(left * w)), max(int(round(right * w)), int(round(left * w)) + 1))


def crop(img: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The fractional ``box`` of ``img`` (works at 128 and 512 alike).

    Args:
        img: the image.
        box: fractions (top, bottom, left, right), as in :func:`crop_box`.
    """
    t, b, l_, r = crop_box(img.shape, box)
    return img[t:b, l_:r]


def _generators(nets: Mapping[str, object]) -> dict[str, object]:
    """``nets`` with every run folder or checkpoint path loaded (generators pass through)."""
    from facesr.infer import load_generator

    return {run: load_generator(n) if isinstance(n, str | os.PathLike) else n for run, n in nets.items()}


def comparison_images(
    nets: Mapping[str, object], data_root: str | os.PathLike, name: str | int = 0, tta: bool | str | None = None
) -> dict[str, np.ndarray]:
    """``{"lq", "bicubic", <run>..., "gt"}`` images of one val face (file name or index) for the grid.

    Args:
        nets: ``{run name: generator or run folder / checkpoint path}``.
        data_root: data root with val/LQ and val/GT.
        name: val file name or index into the sorted val list.
        tta: self-ensemble for the networks: None, "hflip" or "x8" (see :mod:`facesr.infer`).
    """
    from facesr.data import find_data_root
    from facesr.images import list_images, read_image
    from facesr.infer import upscale
    from facesr.metrics import bicubic_upscale

    root = find_data_root(data_root)
    lq_path = list_images(root / "val" / "LQ")[name] if isinstance(name, int) else root / "val" / "LQ" / name
    lq = read_image(lq_path)
    images = {"lq": lq, "bicubic": bicubic_upscale(lq, 4)}
    for run, net_g in _generators(nets).items():
        images[run] = upscale(net_g, lq, tta=tta)
    images["gt"] = read_image(root / "val" / "GT" / lq_path.name)
    return images


def plot_comparison(
    images: Mapping[str, np.ndarray],
    crops: Mapping[str, tuple[float, float, float, float]] | None = None,
    title: str | None = None,
) -> object:
    """Columns LQ | bicubic | models... | GT; first row whole faces, one more row per zoomed crop.

    Titles carry each SR image's PSNR to the GT (when a ``"gt"`` image is given); crop boxes are
    outlined on the whole faces.

    Args:
        images: ``{"lq", "bicubic", <run>..., "gt"}`` from :func:`comparison_images`.
        crops: ``{name: fractional box}``; None for :data:`DEFAULT_CROPS`.
        title: the figure title.
    """
    from matplotlib.patches import Rectangle

    from facesr.metrics import psnr

    plt = pyplot()
    crops = DEFAULT_CROPS if crops is None else crops
    names = list(images)
    # Row heights follow each crop's aspect ratio (a wide eye strip gets a short row, no white gaps).
    ratios = [1.0] + [(b - t) / (r - l_) for t, b, l_, r in crops.values()]
    fig, axes = plt.subplots(len(ratios), len(names), figsize=(2.4 * len(names), 2.4 * sum(ratios) + 0.6),
                             squeeze=False, gridspec_kw={"height_ratios": ratios})
    gt = images.get("gt")
    for j, key in enumerate(names):
        img = images[key]
        label = model_label(key)
        if gt is not None and key not in ("lq", "gt") and img.shape == gt.shape:
            label += f"\n{psnr(img, gt):.2f} dB"
        axes[0, j].imshow(img, interpolation="nearest")
        axes[0, j].set_title(label, fontsize=9, color=model_color(key))
        for c_idx, (crop_name, box) in enumerate(crops.items()):
            t, b, l_, r = crop_box(img.shape, box)
            axes[0, j].add_patch(Rectangle((l_ - 0.5, t - 0.5), r - l_, b - t, fill=False,
                                           edgecolor=_CROP_COLORS[c_idx % len(_CROP_COLORS)], lw=1))
            axes[1 + c_idx, j].imshow(crop(img, box), interpolation="nearest")
            if j == 0:
                axes[1 + c_idx, j].set_ylabel(crop_name, fontsize=9)
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_val_outputs(run_dir: str | os.PathLike, data_root: str | os.PathLike, n: int = 3) -> object:
    """LQ | bicubic | SR | GT for the first ``n`` val faces of a run (its best checkpoint).

    Args:
        run_dir: the run folder.
        data_root: data root with val/LQ and val/GT.
        n: how many val faces.
    """
    from facesr.data import find_data_root
    from facesr.images import list_images
    from facesr.infer import load_generator
    from facesr.metrics import psnr

    run_dir = Path(run_dir)
    names = [p.name for p in list_images(find_data_root(data_root) / "val" / "LQ")[:n]]
    net_g = load_generator(run_dir)
    plt = pyplot()
    fig, axes = plt.subplots(len(names), 4, figsize=(9.6, 2.5 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        images = comparison_images({run_dir.name: net_g}, data_root, name)
        for j, (key, img) in enumerate(images.items()):
            label = model_label(key)
            if key not in ("lq", "gt"):
                label += f" {psnr(img, images['gt']):.2f} dB"
            axes[i, j].imshow(img)
            axes[i, j].set_title(f"{name}: {label}" if j == 0 else label, fontsize=8, color=model_color(key))
            axes[i, j].set(xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def real_world_images(
    nets: Mapping[str, object], data_root: str | os.PathLike, tta: bool | str | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """``{file name: {"lq", "bicubic", <run>...}}`` for every real-world LQ in the data root's ``test_real/``.

    Args:
        nets: ``{run name: generator or run folder / checkpoint path}``.
        data_root: data root holding ``test_real/`` (images of any size, no GT).
        tta: self-ensemble for the networks: None, "hflip" or "x8".

    Raises:
        FacesrError: the data root has no ``test_real/`` or it holds no images.
    """
    from facesr.data import REAL_WORLD, real_world_dir
    from facesr.images import list_images, read_image
    from facesr.infer import upscale
    from facesr.metrics import bicubic_upscale

    folder = real_world_dir(data_root)
    paths = list_images(folder) if folder is not None else []
    if not paths:
        raise FacesrError(f"no real-world LQ images in {Path(data_root) / REAL_WORLD}; put the course's "
                          "real-world LQ images there (any size, no GT)")  # fmt: skip
    generators = _generators(nets)
    grid: dict[str, dict[str, np.ndarray]] = {}
    for path in paths:
        lq = read_image(path)
        grid[path.name] = {"lq": lq, "bicubic": bicubic_upscale(lq, 4)}
        grid[path.name].update({run: upscale(net_g, lq, tta=tta) for run, net_g in generators.items()})
    return grid


def plot_real_world(
    grid: Mapping[str, Mapping[str, np.ndarray]], title: str = "Real-world LQ images (no GT): x4 outputs"
) -> object:
    """One row per real-world LQ: LQ | bicubic | models..., each panel titled with its label and size.

    Args:
        grid: ``{file name: {"lq", "bicubic", <run>...}}`` from :func:`real_world_images`.
        title: the figure title.
    """
    plt = pyplot()
    names = list(grid)
    columns = list(grid[names[0]]) if names else []
    fig, axes = plt.subplots(max(len(names), 1), max(len(columns), 1), squeeze=False,
                             figsize=(2.3 * max(len(columns), 2), 2.5 * max(len(names), 1) + 0.6))  # fmt: skip
    if not names:
        axes[0, 0].text(0.5, 0.5, "no real-world LQ images", ha="center", va="center")
    for i, name in enumerate(names):
        for j, key in enumerate(columns):
            ax, img = axes[i, j], grid[name][key]
            ax.imshow(img, interpolation="nearest")
            ax.set_title(f"{model_label(key)} {img.shape[1]}x{img.shape[0]}", fontsize=8, color=model_color(key))
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
    fig.suptitle(title)
    fig.tight_layout()
    return fig
