"""The report's face figures: qualitative grids with crops, val outputs of a run, real-world grids.

Every function returns a matplotlib Figure (save it with :func:`facesr.report.style.save_figure`); each
model keeps its colour from :data:`facesr.report.style.MODEL_COLORS` in every figure. The training curves
are in :mod:`facesr.report.curves`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from facesr.errors import FacesrError
from facesr.report.style import FULL_WIDTH, model_color, model_label, pyplot, report_figure

# Crop boxes as fractions (top, bottom, left, right) of an FFHQ-aligned face, any resolution.
DEFAULT_CROPS: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.35, 0.50, 0.20, 0.80),
    "mouth": (0.68, 0.82, 0.30, 0.70),
}
_CROP_COLORS = ("yellow", "cyan", "magenta")


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


def _generators(nets: Mapping[str, object], trust: bool = False) -> dict[str, object]:
    """``nets`` with every run folder or checkpoint path loaded (generators pass through)."""
    from facesr.inference.predict import load_generator

    return {run: load_generator(net, trust=trust) if isinstance(net, str | os.PathLike) else net
            for run, net in nets.items()}  # fmt: skip


def comparison_images(
    nets: Mapping[str, object],
    data_root: str | os.PathLike,
    name: str | int = 0,
    tta: bool | str | None = None,
    trust: bool = False,
) -> dict[str, np.ndarray]:
    """``{"lq", "bicubic", <run>..., "gt"}`` images of one val face (file name or index) for the grid.

    Args:
        nets: ``{run name: generator or run folder / checkpoint path}``.
        data_root: data root with val/LQ and val/GT.
        name: val file name or index into the sorted val list.
        tta: self-ensemble for the networks: None, "hflip" or "x8" (see :mod:`facesr.inference.tta`).
        trust: unpickle checkpoints given as paths in full, which runs code from them (only trusted files).
    """
    from facesr.data.check import find_data_root
    from facesr.data.images import list_images, read_image
    from facesr.inference.predict import upscale
    from facesr.metrics import bicubic_upscale

    root = find_data_root(data_root)
    lq_path = list_images(root / "val" / "LQ")[name] if isinstance(name, int) else root / "val" / "LQ" / name
    lq = read_image(lq_path)
    images = {"lq": lq, "bicubic": bicubic_upscale(lq, 4)}
    for run, net_g in _generators(nets, trust).items():
        images[run] = upscale(net_g, lq, tta=tta)
    images["gt"] = read_image(root / "val" / "GT" / lq_path.name)
    return images


REAL_WORLD_MAX_HEIGHT = 3.6  # inches of faces in the real-world grid: the five-page report has room for it
COMPARISON_MAX_HEIGHT = 4.0  # inches of faces and crops in a qualitative grid


def report_columns(
    models: str | Sequence[str] | None, baseline: str | None = None, submitted: str | None = None
) -> list[str]:
    """The columns of the qualitative and real-world grids (``REPORT_MODELS`` / ``--models``).

    Args:
        models: comma-separated names or a list (``lq``, ``bicubic``, ``gt`` and run names), in order; empty
            or None: LQ, bicubic, ``baseline``, ``submitted``, GT.
        baseline: the edition's baseline run (``srgan``).
        submitted: the submitted run.
    """
    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models or [])
    names = [m for m in names if m]
    if not names:
        names = ["lq", "bicubic", *(m for m in (baseline, submitted) if m), "gt"]
    return list(dict.fromkeys(names))


def _pick(images: Mapping[str, np.ndarray], columns: Sequence[str] | None) -> list[str]:
    """The keys of ``images`` to show: ``columns`` in their order (those it lacks left out), else all."""
    return [c for c in columns if c in images] if columns is not None else list(images)


MAX_SIDE = 1.3  # inches: the widest a face panel of a grid gets (five columns fill the page)
_LINE_IN = 8 / 72 * 1.25  # one line of 8-pt text
_LABEL_IN = 0.42  # the row labels left of a grid (two lines of 8-pt text, turned)
_GAP_IN = 0.05  # between the panels of a grid


def _wrapped(label: str, inches: float) -> str:
    """``label`` broken into lines that fit ``inches`` at 8 pt (about 15 characters per inch)."""
    import textwrap

    return textwrap.fill(label, width=max(6, int(inches * 15)), break_long_words=False)


def grid_side(columns: int, aspects: Sequence[float], max_height: float) -> float:
    """The width in inches of a face grid's panels: :data:`MAX_SIDE`, or less where the page width or ``max_height``
    (the rows, ``aspects`` their height / width) would be passed."""
    return min(MAX_SIDE, (FULL_WIDTH - _LABEL_IN - _GAP_IN * (columns - 1)) / columns,
               (max_height - _GAP_IN * (len(aspects) - 1)) / sum(aspects))  # fmt: skip


def _face_grid(columns: int, aspects: Sequence[float], title_lines: int, max_height: float) -> tuple[object, list, float]:
    """A page-wide figure with a grid of image panels placed by hand, centred: ``(fig, axes[row][column], side)``.

    Every panel of a column is ``side`` inches wide (at most :data:`MAX_SIDE`, less where the page width or
    ``max_height`` would be passed), a row as high as its aspect ratio (height / width) makes it; titles of
    ``title_lines`` lines go above the first row, labels left of the first column.
    """
    plt = pyplot()
    gap, title_h, bottom = _GAP_IN, title_lines * _LINE_IN + 0.06, 0.04
    side = grid_side(columns, aspects, max_height)
    height = title_h + side * sum(aspects) + gap * (len(aspects) - 1) + bottom
    fig = plt.figure(figsize=(FULL_WIDTH, height))
    left = (FULL_WIDTH - (_LABEL_IN + columns * side + gap * (columns - 1))) / 2 + _LABEL_IN
    top, axes = height - title_h, []
    for aspect in aspects:
        row_h = side * aspect
        axes.append([fig.add_axes(((left + j * (side + gap)) / FULL_WIDTH, (top - row_h) / height, side / FULL_WIDTH,
                                   row_h / height)) for j in range(columns)])  # fmt: skip
        top -= row_h + gap
    for ax in (a for row in axes for a in row):
        ax.set(xticks=[], yticks=[])
    return fig, axes, side


@report_figure
def plot_comparison(
    images: Mapping[str, np.ndarray],
    crops: Mapping[str, tuple[float, float, float, float]] | None = None,
    title: str | None = None,
    columns: Sequence[str] | None = None,
) -> object:
    """Columns LQ | bicubic | models... | GT; first row whole faces, one more row per zoomed crop.

    Titles carry each SR image's PSNR to the GT (when a ``"gt"`` image is given); crop boxes are
    outlined on the whole faces. The report width, panels placed by hand (:func:`_face_grid`); every image is
    embedded with its own pixels in a PDF (``interpolation="none"``).

    Args:
        images: ``{"lq", "bicubic", <run>..., "gt"}`` from :func:`comparison_images`.
        crops: ``{name: fractional box}``; None for :data:`DEFAULT_CROPS`.
        title: a figure title (shown in the notebook, left out of the saved files: the caption says it).
        columns: the images to show, in order (:func:`report_columns`); None: all of ``images``.
    """
    from matplotlib.patches import Rectangle

    from facesr.metrics import psnr

    crops = DEFAULT_CROPS if crops is None else crops
    names = _pick(images, columns)
    gt = images.get("gt")
    shape = images[names[0]].shape if names else (1, 1)
    # Row heights follow each crop's aspect ratio (a wide eye strip gets a short row, no white gaps).
    aspects = [ratio * shape[0] / shape[1] for ratio in [1.0] + [(b - t) / (r - l_) for t, b, l_, r in crops.values()]]
    side = grid_side(max(len(names), 1), aspects, COMPARISON_MAX_HEIGHT)
    labels = []
    for key in names:
        label = _wrapped(model_label(key), side)
        if gt is not None and key not in ("lq", "gt") and images[key].shape == gt.shape:
            label += f"\n{psnr(images[key], gt):.2f} dB"
        labels.append(label)
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    fig, axes, _ = _face_grid(max(len(names), 1), aspects, lines, COMPARISON_MAX_HEIGHT)
    for j, (key, label) in enumerate(zip(names, labels, strict=True)):
        img = images[key]
        axes[0][j].imshow(img, interpolation="none", aspect="auto")
        axes[0][j].set_title(label, fontsize=8, color=model_color(key))
        for c_idx, (crop_name, box) in enumerate(crops.items()):
            t, b, l_, r = crop_box(img.shape, box)
            axes[0][j].add_patch(Rectangle((l_ - 0.5, t - 0.5), r - l_, b - t, fill=False,
                                           edgecolor=_CROP_COLORS[c_idx % len(_CROP_COLORS)], lw=0.8))
            axes[1 + c_idx][j].imshow(crop(img, box), interpolation="none", aspect="auto")
            if j == 0:
                axes[1 + c_idx][j].set_ylabel(crop_name, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


@report_figure
def plot_val_outputs(
    run_dir: str | os.PathLike, data_root: str | os.PathLike, n: int = 3, trust: bool = False
) -> object:
    """LQ | bicubic | SR | GT for the first ``n`` val faces of a run (its best checkpoint).

    Args:
        run_dir: the run folder.
        data_root: data root with val/LQ and val/GT.
        n: how many val faces.
        trust: unpickle the run's checkpoint in full, which runs code from it (only for trusted files).
    """
    from facesr.data.check import find_data_root
    from facesr.data.images import list_images
    from facesr.inference.predict import load_generator
    from facesr.metrics import psnr

    run_dir = Path(run_dir)
    names = [p.name for p in list_images(find_data_root(data_root) / "val" / "LQ")[:n]]
    net_g = load_generator(run_dir, trust=trust)
    plt = pyplot()
    fig, axes = plt.subplots(len(names), 4, figsize=(FULL_WIDTH, (FULL_WIDTH / 4 + 0.2) * len(names)), squeeze=False,
                             layout="constrained")  # fmt: skip
    for i, name in enumerate(names):
        images = comparison_images({run_dir.name: net_g}, data_root, name)
        for j, (key, img) in enumerate(images.items()):
            label = model_label(key)
            if key not in ("lq", "gt"):
                label += f" {psnr(img, images['gt']):.2f} dB"
            axes[i, j].imshow(img, interpolation="none")
            axes[i, j].set_title(label, fontsize=8, color=model_color(key))
            axes[i, j].set(xticks=[], yticks=[])
        axes[i, 0].set_ylabel(name, fontsize=8)
    return fig


def real_world_images(
    nets: Mapping[str, object], data_root: str | os.PathLike, tta: bool | str | None = None, trust: bool = False
) -> dict[str, dict[str, np.ndarray]]:
    """``{file name: {"lq", "bicubic", <run>...}}`` for every real-world LQ in the data root's ``test_real/``.

    Args:
        nets: ``{run name: generator or run folder / checkpoint path}``.
        data_root: data root holding ``test_real/`` (images of any size, no GT).
        tta: self-ensemble for the networks: None, "hflip" or "x8".
        trust: unpickle checkpoints given as paths in full, which runs code from them (only trusted files).

    Raises:
        FacesrError: the data root has no ``test_real/`` or it holds no images.
    """
    from facesr.data.check import REAL_WORLD, real_world_dir
    from facesr.data.images import list_images, read_image
    from facesr.inference.predict import upscale
    from facesr.metrics import bicubic_upscale

    folder = real_world_dir(data_root)
    paths = list_images(folder) if folder is not None else []
    if not paths:
        raise FacesrError(f"no real-world LQ images in {Path(data_root) / REAL_WORLD}; put the course's "
                          "real-world LQ images there (any size, no GT)")  # fmt: skip
    generators = _generators(nets, trust)
    grid: dict[str, dict[str, np.ndarray]] = {}
    for path in paths:
        lq = read_image(path)
        grid[path.name] = {"lq": lq, "bicubic": bicubic_upscale(lq, 4)}
        grid[path.name].update({run: upscale(net_g, lq, tta=tta) for run, net_g in generators.items()})
    return grid


@report_figure
def plot_real_world(
    grid: Mapping[str, Mapping[str, np.ndarray]],
    title: str | None = None,
    columns: Sequence[str] | None = None,
) -> object:
    """One row per real-world LQ: LQ | bicubic | models..., titled with the model above the first row.

    Each row is labelled with its file name and the LQ's size and keeps its image's aspect ratio; the grid is
    placed by hand (:func:`_face_grid`) within :data:`REAL_WORLD_MAX_HEIGHT`, centred on the report width.
    Every image is embedded with its own pixels in a PDF (``interpolation="none"``).

    Args:
        grid: ``{file name: {"lq", "bicubic", <run>...}}`` from :func:`real_world_images`.
        title: a figure title (shown in the notebook, left out of the saved files: the caption says it).
        columns: the images to show, in order (:func:`report_columns`; ``gt`` is skipped: there is none);
            None: all of them.
    """
    plt = pyplot()
    names = list(grid)
    if not names:
        fig, ax = plt.subplots(figsize=(FULL_WIDTH, 1.0))
        ax.text(0.5, 0.5, "no real-world LQ images", ha="center", va="center")
        ax.set_axis_off()
        return fig
    keys = _pick(grid[names[0]], columns)
    aspects = [grid[n]["lq"].shape[0] / grid[n]["lq"].shape[1] for n in names]
    side = grid_side(len(keys), aspects, REAL_WORLD_MAX_HEIGHT)
    labels = [_wrapped(model_label(key), side) for key in keys]
    lines = max(label.count("\n") + 1 for label in labels)
    fig, axes, _ = _face_grid(len(keys), aspects, lines, REAL_WORLD_MAX_HEIGHT)
    for i, name in enumerate(names):
        for j, key in enumerate(keys):
            axes[i][j].imshow(grid[name][key], interpolation="none", aspect="auto")
            if i == 0:
                axes[i][j].set_title(labels[j], fontsize=8, color=model_color(key))
        lq = grid[name]["lq"]
        axes[i][0].set_ylabel(f"{name}\n{lq.shape[1]}x{lq.shape[0]}", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
