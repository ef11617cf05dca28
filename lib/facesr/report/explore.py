"""Figures of notebooks 01 (data exploration) and 02 (degradation demo): data, degradation steps, histograms.

Each function returns a matplotlib Figure sized to read well in a report (save it with
:func:`facesr.report.style.save_figure`); GT, LQ and bicubic keep the colours of
:data:`facesr.report.style.MODEL_COLORS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from facesr.report.style import FULL_WIDTH, MODEL_COLORS, model_color, pyplot, report_figure

CHANNELS = ("red", "green", "blue")


def _as_uint8(img: np.ndarray) -> np.ndarray:
    """uint8 view of an image in [0, 255] (uint8) or [0, 1] (float), for display and histograms.

    Anything else goes to float64 first, so ``x * 255`` is rounded from float64 whatever the input dtype
    (:func:`facesr.data.degradations.to_uint8` works in the input's own precision).
    """
    if img.dtype == np.uint8:
        return img
    from facesr.data.degradations import to_uint8  # late: importing this module needs no OpenCV

    return to_uint8(np.asarray(img, dtype=np.float64))


def dataset_summary(report: object) -> pd.DataFrame:
    """One row per folder of a :class:`facesr.data.check.DatasetReport`: images, pixel sizes, size on disk (MB).

    Args:
        report: what :func:`facesr.data.check.check_dataset` found. The optional ``test_real`` folder
            (real-world LQ, any size) gets a last row when the data root has it.
    """
    from facesr.data.check import LAYOUT, REAL_WORLD
    from facesr.data.images import list_images

    rows = []
    for sub in (*LAYOUT, REAL_WORLD) if REAL_WORLD in report.counts else LAYOUT:
        folder = report.root / sub
        files = list_images(folder) if folder.is_dir() else []
        sizes = report.sizes.get(sub, {})
        rows.append(
            {
                "folder": sub,
                "images": report.counts.get(sub, 0),
                "pixel size (WxH)": ", ".join(f"{w}x{h}" for h, w in sorted(sizes)) or "-",
                "disk (MB)": round(sum(f.stat().st_size for f in files) / 1e6, 1),
            }
        )
    return pd.DataFrame(rows)


@report_figure
def show_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    size: float | None = None,
    suptitle: str | None = None,
) -> object:
    """A grid of images (uint8 or float [0, 1]) with optional titles; pixels drawn unsmoothed.

    Args:
        images: the images, any sizes.
        titles: one title per image.
        ncols: images per row.
        size: inches per image; None: the report width shared by ``ncols`` images.
        suptitle: the figure title (shown in the notebook, left out of the saved files).
    """
    plt = pyplot()
    n = max(1, len(images))
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    size = FULL_WIDTH / ncols if size is None else size
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.35) * nrows + 0.1), squeeze=False,
                             layout="constrained")  # fmt: skip
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(_as_uint8(images[i]), interpolation="none")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


@report_figure
def channel_histograms(groups: Mapping[str, Sequence[np.ndarray]], bins: int = 64) -> object:
    """Per-channel intensity histograms, one panel per RGB channel, one line per group of images.

    Args:
        groups: ``{label: images}``; a label "GT", "LQ" or "bicubic" gets the report's colour for it,
            others the matplotlib cycle.
        bins: bins over 0-255.
    """
    plt = pyplot()
    edges = np.linspace(0, 256, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig, axes = plt.subplots(1, 3, figsize=(FULL_WIDTH, 2.4), sharey=True, layout="constrained")
    styles = ("-", "--", ":", "-.")
    for g, (label, images) in enumerate(groups.items()):
        pixels = np.concatenate([_as_uint8(img).reshape(-1, 3) for img in images])
        for c, ax in enumerate(axes):
            hist, _ = np.histogram(pixels[:, c], bins=edges)
            color = model_color(label.lower()) if label.lower() in MODEL_COLORS else f"C{g}"
            ax.plot(centres, hist / max(1, hist.sum()), styles[g % len(styles)], color=color,
                    label=f"{label} ({len(images)} images)")  # fmt: skip
    for c, ax in enumerate(axes):
        ax.set_title(f"{CHANNELS[c]} channel")
        ax.set_xlabel("intensity (0-255)")
        ax.set_xlim(0, 255)
    axes[0].set_ylabel("fraction of pixels")
    axes[-1].legend(fontsize=8)
    fig.suptitle("Per-channel intensity histograms")
    return fig


def _show_kernel(fig: object, ax: object, kernel: np.ndarray, title: str = "blur kernel") -> None:
    im = ax.imshow(kernel, cmap="viridis", interpolation="none")
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("x offset (px)")
    ax.set_ylabel("y offset (px)")
    c = kernel.shape[0] // 2
    ticks = [0, c, kernel.shape[0] - 1]
    ax.set_xticks(ticks, [str(t - c) for t in ticks])
    ax.set_yticks(ticks, [str(t - c) for t in ticks])
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="weight")


@report_figure
def plot_degradation_steps(steps: Mapping[str, np.ndarray], kernel: np.ndarray, params: object) -> object:
    """The kernel, then every intermediate image of one degradation, each titled with its size.

    Args:
        steps: ``{step name: image}`` from :func:`facesr.report.widgets.degradation_steps`.
        kernel: the blur kernel drawn first.
        params: the degradation parameters (the figure title: shown in the notebook, left out of the files).
    """
    plt = pyplot()
    n = len(steps) + 1
    ncols = 4
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(FULL_WIDTH, (FULL_WIDTH / ncols + 0.35) * nrows), squeeze=False,
                             layout="constrained")  # fmt: skip
    _show_kernel(fig, axes.flat[0], kernel, f"blur kernel ({kernel.shape[0]}x{kernel.shape[1]})")
    for ax, (name, img) in zip(axes.flat[1:], steps.items(), strict=False):
        ax.imshow(_as_uint8(img), interpolation="none")
        ax.set_title(f"{name}\n{img.shape[1]}x{img.shape[0]} px", fontsize=8)
        ax.set_axis_off()
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    fig.suptitle(str(params), fontsize=9)
    return fig


@report_figure
def plot_second_order_steps(
    steps: Mapping[str, np.ndarray],
    kernels: Mapping[str, np.ndarray | None],
    gt: np.ndarray | None = None,
    psnr: float | None = None,
    title: str = "",
) -> object:
    """The second-order degradation as a picture strip: stage 1, stage 2 and the final step, one row each.

    Each row starts with its kernel (blank when the stage has none), then the image after every step of
    that stage with its size; the last row ends with the LQ and, when ``gt`` and ``psnr`` are given, its
    bicubic x4 with the PSNR against the GT.

    Args:
        steps: ``{step name: image}`` in order, as :func:`facesr.report.second_order_panel.render_second_order`
            returns them (names starting "1 ", "2 ", "final " or "LQ"; the GT ones go in the first row).
        kernels: ``{"kernel 1": ..., "kernel 2": ..., "final sinc": ...}``, None for a stage without one.
        gt: the uint8 GT the PSNR compares with (for the bicubic panel).
        psnr: the LQ's bicubic x4 PSNR (dB).
        title: the figure title.
    """
    plt = pyplot()
    rows: list[list[tuple[str, np.ndarray]]] = [[], [], []]
    for name, img in steps.items():
        row = 1 if name.startswith("2 ") else 2 if name.startswith(("final", "LQ")) else 0
        rows[row].append((name, img))
    if gt is not None and psnr is not None and "LQ" in steps:
        from facesr.metrics import bicubic_upscale

        lq8 = _as_uint8(steps["LQ"])
        rows[2].append((f"bicubic x4: {psnr:.2f} dB", bicubic_upscale(lq8, gt.shape[0] // lq8.shape[0])))
    ncols = 1 + max(len(r) for r in rows)
    side = FULL_WIDTH / ncols
    fig, axes = plt.subplots(3, ncols, figsize=(FULL_WIDTH, 3 * (side + 0.4)), squeeze=False, layout="constrained")
    labels = ("kernel 1", "kernel 2", "final sinc")
    for r, (row, label) in enumerate(zip(rows, labels, strict=True)):
        kernel = kernels.get(label)
        if kernel is not None:
            _show_kernel(fig, axes[r, 0], kernel, f"{label} ({kernel.shape[0]}x{kernel.shape[1]})")
        else:
            axes[r, 0].set_axis_off()
            axes[r, 0].set_title(f"no {label}", fontsize=8)
        for c in range(1, ncols):
            ax = axes[r, c]
            ax.set_axis_off()
            if c - 1 < len(row):
                name, img = row[c - 1]
                ax.imshow(_as_uint8(img), interpolation="none")
                ax.set_title(f"{name}\n{img.shape[1]}x{img.shape[0]} px", fontsize=8,
                             color=model_color("lq") if name == "LQ" else "black")  # fmt: skip
    for r, label in enumerate(("stage 1", "stage 2", "final step")):
        axes[r, 0].annotate(label, xy=(-0.6, 0.5), xycoords="axes fraction", rotation=90, va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


@report_figure
def plot_degradation_result(
    kernel: np.ndarray, lq: np.ndarray, sr: np.ndarray, gt: np.ndarray, psnr: float, params: object
) -> object:
    """Kernel | LQ | bicubic x4 with its PSNR | GT: the figure of the interactive panel.

    Args:
        kernel: the blur kernel.
        lq: the degraded image.
        sr: its bicubic x4.
        gt: the GT face.
        psnr: PSNR of ``sr`` against ``gt`` (dB).
        params: the degradation parameters (the figure title).
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(FULL_WIDTH, 2.1), layout="constrained")
    _show_kernel(fig, axes[0], kernel)
    for ax, img, title, key in (
        (axes[1], lq, f"LQ {lq.shape[1]}x{lq.shape[0]}", "lq"),
        (axes[2], sr, f"bicubic x4: {psnr:.2f} dB", "bicubic"),
        (axes[3], gt, f"GT {gt.shape[1]}x{gt.shape[0]}", "gt"),
    ):
        ax.imshow(_as_uint8(img), interpolation="none")
        ax.set_title(title, fontsize=8, color=model_color(key))
        ax.set_axis_off()
    fig.suptitle(str(params), fontsize=9)
    return fig


@report_figure
def plot_psnr_histogram(
    values: Sequence[float], references: Mapping[str, float] | None = None, title: str = "", bins: int = 30
) -> object:
    """Histogram of bicubic PSNRs (dB) over random degradations, with their mean and optional reference lines.

    Args:
        values: PSNRs, e.g. from :func:`facesr.data.degradations.bicubic_psnr_samples`.
        references: ``{label: PSNR}`` drawn as dashed vertical lines (e.g. the real val LQ of the same face).
        title: the figure title (shown in the notebook, left out of the saved files).
        bins: histogram bins.
    """
    plt = pyplot()
    values = np.asarray(values, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(FULL_WIDTH, 2.6), layout="constrained")
    from matplotlib.ticker import MaxNLocator

    ax.hist(values, bins=min(bins, max(5, len(values) // 2)), color=model_color("bicubic"), alpha=0.8, label=f"{len(values)} random LQs")
    mean, std = float(values.mean()), float(values.std())
    ax.axvline(mean, color="black", lw=1.5, label=f"mean {mean:.2f} dB (std {std:.2f})")
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axvline(value, color=f"C{i + 1}", lw=1.5, ls="--", label=f"{label}: {value:.2f} dB")
    ax.set_xlabel("PSNR of bicubic x4 to GT (dB)")
    ax.set_ylabel("number of degradations")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    ax.legend(fontsize=8)
    return fig
