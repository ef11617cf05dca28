"""Does the training degradation make LQ like the val LQ? The statistics of both over the val set, compared.

For every val pair (or the first ``limit``), the statistics of :mod:`facesr.data.lq_statistics` are measured
on the val LQ and on ``draws`` training LQ made from the same val GT by the edition's training pipeline
(:func:`facesr.data.pairs.worker_item`, the path the training workers take, without crop or flip). Using the
same GT for both takes the faces' own content out of the comparison: what differs is the degradation.

The distance between the val and the training values of a statistic is the Wasserstein-1 distance (the
earth mover's distance of the two empirical distributions: the mean shift needed to move one onto the
other), divided by the pooled standard deviation of both. Why this one: in a statistic's units W1 reads
directly (a distance of 0.3 on bicubic PSNR is 0.3 dB of mean shift), it sees a shifted mean and a different
spread alike, and it needs no histogram bins, which a few hundred (in quick mode eight) val values cannot
fill; dividing by the pooled spread puts dB, pixels and ratios on one scale, so the rows can be averaged into
one number that ranks settings (0: the same distribution; about 1: apart by their own spread).

Settings (``--set`` on ``compare-degradation``, ``settings=`` here) use the spelling a training run takes:
``course.<field>`` for :class:`facesr.data.degradations.DegradationSettings` (2022, 2023),
``second_order.<field>`` for :class:`facesr.data.second_order.SecondOrderSettings` (2024, 2025) and the
config's own ``gt_usm``, e.g. ``second_order.noise_range=[1,10]`` or ``gt_usm=false``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facesr.data.lq_statistics import STATISTICS, lq_statistics
from facesr.data.pairs import PairRecipe, run_recipe
from facesr.editions import Edition, get_edition
from facesr.errors import FacesrError

SECTIONS = ("course", "second_order")  # the config sections of the two degradations (PairRecipe's field names)
TOP_LEVEL = ("gt_usm",)  # TrainConfig fields that change the training LQ (second order: sharpen before degrading)


def degradation_recipe(edition: int | str | Edition | None = None, settings: Sequence[str] = ()) -> PairRecipe:
    """The edition's training pipeline with ``settings`` applied: full GT, no crop, no flip, made on the CPU.

    ``settings`` are parsed by the parser of ``train --set`` and turned into pairs by the trainer's own
    :func:`facesr.data.pairs.run_recipe`, so the settings that bring the training LQ closest to the val LQ can
    be passed to ``train`` as they are.

    Args:
        edition: whose degradation (None: ``FACESR_EDITION``, else 2022).
        settings: ``["second_order.jpeg_range=[80,95]", "gt_usm=false", "course.noise_sigma_range=[0,10]"]``:
            the spelling of ``train --set``; values are Python literals (lists for ranges).

    Raises:
        FacesrError: one line naming a malformed item, an unknown field, a section of the other degradation or a
            bad value.
    """
    from facesr.config import parse_overrides

    ed = get_edition(edition)
    for item in settings:
        if "=" not in str(item):
            raise FacesrError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. {ed.degradation}.<field>=VALUE")
    values = parse_overrides([str(item) for item in settings])
    others = sorted(set(values) - {*SECTIONS, *TOP_LEVEL})
    if others:
        raise FacesrError(f"--set {others[0]}=...: the training LQ is changed by "
                          f"{', '.join(f'{s}.<field>' for s in SECTIONS)} and {', '.join(TOP_LEVEL)} (second order) only")
    recipe = run_recipe(ed.degradation, None, on_device=False, course=values.get("course"),
                        second_order=values.get("second_order"), gt_usm=values.get("gt_usm", True))
    return dataclasses.replace(recipe, flip=False)


def wasserstein1(a: Sequence[float], b: Sequence[float]) -> float:
    """The Wasserstein-1 distance of two 1-D samples, ``integral |F_a - F_b|`` (non-finite values dropped)."""
    a, b = (np.sort(np.asarray(v, dtype=np.float64)) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return math.nan
    xs = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(a, xs[:-1], side="right") / len(a)
    fb = np.searchsorted(b, xs[:-1], side="right") / len(b)
    return float(np.sum(np.abs(fa - fb) * np.diff(xs)))


@dataclass
class DegradationComparison:
    """The statistics of the val LQ and of the training LQ of the same GT, and their distances.

    Args:
        edition: the edition whose pipeline made the training LQ.
        settings: the ``--set`` items applied to it (empty: the edition's own settings).
        draws: training LQ per val GT.
        val: one row per val pair: ``name`` and one column per statistic.
        train: one row per training LQ: ``name``, ``draw`` and one column per statistic.
    """

    edition: int
    settings: tuple[str, ...]
    draws: int
    val: pd.DataFrame
    train: pd.DataFrame

    def distances(self) -> pd.DataFrame:
        """One row per statistic: its unit, the val and training means, W1, W1 over the pooled spread, and the
        reference: the same normalised W1 between training draw 0 (one LQ per GT, as the val set has) and the
        other draws, i.e. what val LQ made by this very pipeline would score at this many pairs (NaN for 1 draw)."""
        first = self.train["draw"] == 0
        rows = []
        for name, stat in STATISTICS.items():
            v, t = self.val[name].to_numpy(float), self.train[name].to_numpy(float)
            w1, w1_norm = _normalised_w1(v, t)
            reference = _normalised_w1(t[first.to_numpy()], t[~first.to_numpy()])[1] if self.draws > 1 else math.nan
            rows.append({"statistic": name, "unit": stat.unit, "val_mean": _finite_mean(v),
                         "train_mean": _finite_mean(t), "w1": w1, "w1_normalised": w1_norm, "reference": reference})
        return pd.DataFrame(rows)

    @property
    def distance(self) -> float:
        """The mean normalised W1 over the statistics: one number to rank settings by (lower is closer)."""
        return float(self.distances()["w1_normalised"].mean())

    @property
    def reference(self) -> float:
        """The mean of the reference column: the distance val LQ made by this pipeline would have (noise floor)."""
        return float(self.distances()["reference"].mean())

    def summary(self) -> str:
        """What was compared, the distance table (Markdown) and the mean distance."""
        from facesr.report.tables import markdown_table

        changed = " ".join(self.settings) if self.settings else "the edition's own settings"
        return "\n".join([
            f"{len(self.val)} val pairs of edition {self.edition}: val LQ against {self.draws} training LQ per val GT "
            f"({changed})",
            markdown_table(self.distances(), {"w1_normalised": ".3f", "reference": ".3f"}).rstrip(),
            f"mean normalised W1 over the {len(STATISTICS)} statistics: {self.distance:.3f} (W1 / pooled standard "
            f"deviation; lower is closer); reference {self.reference:.3f}: one training draw per GT against the "
            "others, what val LQ made by this very pipeline would give at this many pairs",
        ])


def _normalised_w1(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(W1, W1 / the pooled standard deviation of both samples); 0 for two identical constant samples."""
    pooled = np.concatenate([a, b])
    pooled = pooled[np.isfinite(pooled)]
    w1 = wasserstein1(a, b)
    spread = float(np.std(pooled)) if len(pooled) else math.nan
    return w1, (w1 / spread if spread > 0 else 0.0 if w1 == 0 else math.nan)


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def val_pairs(data_root: str | os.PathLike) -> list[tuple[Path, Path]] | None:
    """``[(val LQ, val GT)]`` matched by file stem, in name order; None when the root has no val LQ.

    Raises:
        FacesrError: val LQ without val GT, or LQ files with no GT of the same name.
    """
    from facesr.data.images import list_images

    root = Path(data_root)
    lq = {p.stem: p for p in list_images(root / "val" / "LQ")} if (root / "val" / "LQ").is_dir() else {}
    if not lq:
        return None
    gt = {p.stem: p for p in list_images(root / "val" / "GT")} if (root / "val" / "GT").is_dir() else {}
    missing = sorted(set(lq) - set(gt))
    if missing:
        raise FacesrError(f"{len(missing)} val LQ in {root / 'val' / 'LQ'} have no GT in {root / 'val' / 'GT'} "
                          f"(e.g. {missing[0]}); check the data root")
    return [(lq[s], gt[s]) for s in sorted(lq)]


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch on one thread while degrading one image at a time (3x faster on 2 cores), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def compare_degradation(
    data_root: str | os.PathLike,
    edition: int | str | Edition | None = None,
    settings: Sequence[str] = (),
    limit: int | None = None,
    draws: int = 4,
    seed: int = 0,
) -> DegradationComparison | None:
    """Statistics of every val LQ and of ``draws`` training LQ of its GT; None (one line printed) without val LQ.

    Args:
        data_root: data root with val/LQ and val/GT.
        edition: whose training pipeline (None: ``FACESR_EDITION``, else 2022).
        settings: ``--set`` items changing the pipeline (see :func:`degradation_recipe`).
        limit: the first ``limit`` val pairs only (None or 0: all).
        draws: training LQ per val GT.
        seed: draw ``k`` of pair ``i`` comes from ``numpy.random.default_rng((seed, i, k))``.
    """
    from facesr.data.degradations import to_float
    from facesr.data.images import read_image
    from facesr.data.pairs import worker_item
    from facesr.metrics import tensor_to_uint8

    ed = get_edition(edition)
    recipe = degradation_recipe(ed, settings)  # a bad setting fails before any image is read
    if draws < 1:
        raise FacesrError(f"draws={draws}: make at least one training LQ per val GT")
    pairs = val_pairs(data_root)
    if pairs is None:
        print(f"{Path(data_root)} has no val LQ (val/LQ): nothing to compare the training LQ with")
        return None
    pairs = pairs[:limit] if limit else pairs
    val_rows, train_rows = [], []
    with _one_torch_thread():
        for i, (lq_path, gt_path) in enumerate(pairs):
            gt8 = read_image(gt_path)
            val_rows.append({"name": lq_path.name, **lq_statistics(read_image(lq_path), gt8)})
            for k in range(draws):
                lq8 = tensor_to_uint8(worker_item(to_float(gt8), (seed, i, k), recipe)["lq"])
                train_rows.append({"name": lq_path.name, "draw": k, **lq_statistics(lq8, gt8)})
    return DegradationComparison(ed.year, tuple(settings), draws, pd.DataFrame(val_rows), pd.DataFrame(train_rows))


def plot_degradation_match(comparison: DegradationComparison) -> object:
    """One panel per statistic: the val and the training values as overlaid density histograms, W1 in the title."""
    from facesr.report.style import model_color, pyplot

    plt = pyplot()
    table = comparison.distances().set_index("statistic")
    cols = 3
    rows = math.ceil(len(STATISTICS) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (name, stat) in zip(axes.flat, STATISTICS.items(), strict=False):
        v, t = (df[name].to_numpy(float) for df in (comparison.val, comparison.train))
        v, t = v[np.isfinite(v)], t[np.isfinite(t)]
        both = np.concatenate([v, t])
        low, high = (both.min(), both.max()) if len(both) else (0.0, 1.0)
        bins = np.linspace(low, high + 1e-9 if high == low else high, 16)
        ax.hist(t, bins=bins, density=True, alpha=0.55, color=model_color("srgan"),
                label=f"training LQ ({len(t)})")
        ax.hist(v, bins=bins, density=True, histtype="step", linewidth=2, color=model_color("lq"),
                label=f"val LQ ({len(v)})")
        ax.set_xlabel(f"{stat.label} ({stat.unit})")
        ax.set_title(f"W1 {table.loc[name, 'w1']:.3g} {stat.unit}, normalised {table.loc[name, 'w1_normalised']:.2f}",
                     fontsize=9)
        ax.set_yticks([])
    for ax in list(axes.flat)[len(STATISTICS):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    changed = ", ".join(comparison.settings) if comparison.settings else "the edition's own settings"
    fig.suptitle(f"val LQ against the {comparison.edition} training LQ of the same GT ({changed})", fontsize=10)
    fig.tight_layout()
    return fig


def show_degradation_match(
    data_root: str | os.PathLike,
    edition: int | str | Edition | None = None,
    settings: Sequence[str] = (),
    limit: int | None = None,
    draws: int = 4,
    figures_dir: str | os.PathLike | None = None,
    name: str = "02_degradation_match",
) -> DegradationComparison | None:
    """:func:`compare_degradation`, its summary printed, and the figure and table saved (notebook 02, the CLI).

    Args:
        data_root: data root with val/LQ and val/GT.
        edition: whose training pipeline (None: ``FACESR_EDITION``, else 2022).
        settings: ``--set`` items (see :func:`degradation_recipe`).
        limit: the first ``limit`` val pairs only (None or 0: all).
        draws: training LQ per val GT.
        figures_dir: where the figure (``name``.png) and the table (``name``.csv/.md) go; None: not saved.
        name: their file stem.
    """
    from facesr.report.style import save_figure
    from facesr.report.tables import save_table

    comparison = compare_degradation(data_root, edition, settings, limit=limit, draws=draws)
    if comparison is None:
        return None
    print(comparison.summary())
    if figures_dir is not None:
        fig = plot_degradation_match(comparison)
        print("saved", save_figure(fig, figures_dir, name), *save_table(comparison.distances(), figures_dir, name))
    return comparison

