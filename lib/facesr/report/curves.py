"""The report's training curves: loss terms, val PSNR against iterations, training stages against a baseline.

Every function returns a matplotlib Figure at report size (:data:`facesr.report.style.FULL_WIDTH`, fonts of
at least 8 pt; save it with :func:`facesr.report.style.save_figure`); each model keeps its colour from
:func:`facesr.report.style.model_color` in every figure. A run that continues another one (an MSE finish
after its first stage, the GAN fine-tune after ``esrgan``) is drawn after it on one iteration axis
(:func:`chain_runs`), as its weights continue them.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import pandas as pd

from facesr.report.runs import iteration_column, loss_columns, metric_column, parent_by_name
from facesr.report.style import FULL_WIDTH, model_color, model_label, pyplot, report_figure

_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (1, 3)))
ZOOM_DB = 1.0  # the zoomed PSNR panel shows the runs whose best val PSNR is within this of the best run's
CHAINED = "iterations (stages one after the other)"

Logs = tuple[pd.DataFrame, pd.DataFrame]  # (training log, validation log) of one run


def _shift(df: pd.DataFrame, offset: int) -> pd.DataFrame:
    """A log with ``offset`` added to its iterations (an empty log stays as it is)."""
    if df.empty or offset == 0:
        return df
    col = iteration_column(df)
    return df.assign(**{col: df[col] + offset})


def _last_iteration(*frames: pd.DataFrame) -> int:
    ends = [int(df[iteration_column(df)].max()) for df in frames if not df.empty]
    return max(ends, default=0)


def chain_stages(stages: Mapping[str, Logs]) -> dict[str, Logs]:
    """Consecutive training stages on one iteration axis: each stage's logs start where the one before ended.

    Args:
        stages: ``{run name: (training log, validation log)}`` in training order (a first stage, then e.g. its
            MSE finish, which starts from the first stage's weights at its own iteration 0).
    """
    chained, offset = {}, 0
    for name, (log, val) in stages.items():
        chained[name] = (_shift(log, offset), _shift(val, offset))
        offset += _last_iteration(log, val)
    return chained


def default_parents(names: list[str]) -> dict[str, str]:
    """``{run: the run it continues}`` among ``names`` by the kit's naming (:func:`facesr.report.runs.parent_by_name`)."""
    return {name: parent for name in names if (parent := parent_by_name(name, names)) is not None}


def chain_runs(logs: Mapping[str, Logs], parents: Mapping[str, str] | None = None) -> dict[str, Logs]:
    """Every run's logs on the iteration axis of the runs it continues: a run starts where its parent ended.

    Args:
        logs: ``{run name: (training log, validation log)}``.
        parents: ``{run: the run it continues}`` (:func:`facesr.report.runs.run_parents` reads them from the
            run folders); None: by the kit's naming. Parents outside ``logs`` and cycles are ignored.
    """
    parents = default_parents(list(logs)) if parents is None else dict(parents)
    offsets: dict[str, int] = {}

    def offset(name: str, seen: tuple[str, ...] = ()) -> int:
        parent = parents.get(name)
        if parent is None or parent not in logs or parent in seen:
            return 0
        if parent not in offsets:
            offsets[parent] = offset(parent, (*seen, name))
        return offsets[parent] + _last_iteration(*logs[parent])

    return {name: (_shift(log, offset(name)), _shift(val, offset(name))) for name, (log, val) in logs.items()}


def run_chains(names: list[str], parents: Mapping[str, str]) -> list[list[str]]:
    """The runs grouped by the first stage they continue, each group in training order: ``[[esrgan, esrgan_gan], ...]``."""
    def root(name: str, seen: tuple[str, ...] = ()) -> str:
        parent = parents.get(name)
        return name if parent is None or parent not in names or parent in seen else root(parent, (*seen, name))

    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(root(name), []).append(name)
    return [sorted(group, key=lambda n: (n != root_name, names.index(n))) for root_name, group in groups.items()]


def _iteration_axis(ax: object) -> None:
    """At most five iteration ticks, thousands as k (300k, not 300000): page-wide panels of three stay legible."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if abs(x) >= 1000 else f"{x:g}"))


def _draw_loss_lines(ax: object, name: str, log: pd.DataFrame, styles: Mapping[str, object] | None = None,
                     labelled: bool = True) -> bool:
    """Every loss term of one run's log on ``ax`` in the run's colour, one line style per term; whether any.

    Args:
        styles: ``{term: line style}`` shared by the runs of a panel (None: by the term's place in this log).
        labelled: label each line with its term (for a legend of this run alone).
    """
    terms = loss_columns(log)
    if log.empty or not terms:
        return False
    x = log[iteration_column(log)]
    for i, term in enumerate(terms):
        y = log[term].where(log[term] > 0)  # log scale: non-positive values are left out
        style = styles[term] if styles is not None else _LINESTYLES[i % len(_LINESTYLES)]
        ax.plot(x, y, color=model_color(name), linestyle=style, label=term if labelled else "_nolegend_",
                alpha=1.0 if i == 0 else 0.8)  # fmt: skip
    return True


def chain_title(chain: list[str]) -> str:
    """A panel title for a run and the stages that continue it: "SwinIR + MSE finish", "ESRGAN (RRDBNet), then
    ESRGAN+GAN" (a stage whose label extends its first stage's says both)."""
    labels = [model_label(name) for name in chain]
    if len(labels) == 2 and labels[1].startswith(labels[0]):
        return labels[1]
    return ", then ".join(labels)


def _chain_legend(ax: object, chain: list[str], styles: Mapping[str, object]) -> None:
    """One legend per panel: each stage by its colour, each loss term by its line style."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=model_color(n), label=model_label(n)) for n in chain] if len(chain) > 1 else []
    handles += [Line2D([], [], color="black" if len(chain) > 1 else model_color(chain[0]), linestyle=style,
                       label=term) for term, style in styles.items()]  # fmt: skip
    ax.legend(handles=handles, fontsize=8, handlelength=2.4, ncol=2 if len(handles) > 3 else 1)


@report_figure
def plot_loss_curves(
    logs: Mapping[str, pd.DataFrame], log_scale: bool = True, parents: Mapping[str, str] | None = None
) -> object:
    """Training-loss curves, one panel per model and the stages that continue it, on one shared loss axis.

    Each panel draws every loss term of its runs, each run in its colour and after the run it continues
    (:func:`chain_runs`); the loss axis is shared by all panels, so levels compare across models.

    Args:
        logs: ``{run name: training log}`` (the first table of :func:`facesr.training.read_run_logs`).
        log_scale: logarithmic loss axis (GAN terms differ from pixel losses by orders of magnitude).
        parents: ``{run: the run it continues}``; None: by the kit's naming.
    """
    plt = pyplot()
    empty = pd.DataFrame(columns=["iter"])
    chained = {name: log for name, (log, _) in chain_runs({n: (lg, empty) for n, lg in logs.items()}, parents).items()}
    chains = run_chains(list(logs), default_parents(list(logs)) if parents is None else parents)
    n = max(len(chains), 1)
    cols = min(n, 3)  # up to three panels a row across the page
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(FULL_WIDTH, 1.85 * rows + 0.2), squeeze=False, sharey=True,
                             layout="constrained")  # fmt: skip
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    if not logs:
        axes[0, 0].text(0.5, 0.5, "no runs yet: train notebooks 03-05 or 07 first", ha="center", va="center")
        axes[0, 0].set_axis_off()
        return fig
    drawn = False
    for ax, chain in zip(axes.flat, chains, strict=False):
        terms = dict.fromkeys(t for name in chain for t in loss_columns(chained[name]))
        styles = {term: _LINESTYLES[i % len(_LINESTYLES)] for i, term in enumerate(terms)}
        for name in chain:
            drawn |= _draw_loss_lines(ax, name, chained[name], styles, labelled=False)
        if ax.get_lines():
            _chain_legend(ax, chain, styles)
        else:
            ax.text(0.5, 0.5, "no training log yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(textwrap.fill(chain_title(chain), width=int(FULL_WIDTH / cols * 15)), color=model_color(chain[-1]))
        _iteration_axis(ax)
        ax.grid(True, alpha=0.3)
    fig.supxlabel(CHAINED if any(len(chain) > 1 for chain in chains) else "iterations", fontsize=8)
    if log_scale and drawn:
        axes[0, 0].set_yscale("log")  # shared: every panel
    for row in axes:
        row[0].set_ylabel("loss (log scale)" if log_scale and drawn else "loss")
    return fig


def _best(val: pd.DataFrame) -> float:
    return float(val[metric_column(val, "psnr")].max()) if not val.empty else -math.inf


def _draw_psnr_axis(ax: object, vals: Mapping[str, pd.DataFrame], bicubic_psnr: float | None, **line_style: object) -> None:
    """Val PSNR against iterations of each run in its colour (empty logs skipped), bicubic as a dashed line."""
    for name, val in vals.items():
        if val.empty:
            continue
        x, y = val[iteration_column(val)], val[metric_column(val, "psnr")]
        ax.plot(x, y, marker="o", color=model_color(name), label=model_label(name), **line_style)
    if bicubic_psnr is not None:
        ax.axhline(bicubic_psnr, color=model_color("bicubic"), linestyle="--",
                   label=f"{model_label('bicubic')} ({bicubic_psnr:.2f} dB)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, alpha=0.3)


def _draw_zoom(ax: object, vals: Mapping[str, pd.DataFrame], bicubic_psnr: float | None, zoom_db: float) -> None:
    """The runs within ``zoom_db`` of the best run's best val PSNR, on a y range of ``zoom_db`` below it."""
    best = max(_best(v) for v in vals.values())
    near = {name: val for name, val in vals.items() if _best(val) >= best - zoom_db}
    floor = bicubic_psnr if bicubic_psnr is not None and best - zoom_db <= bicubic_psnr <= best else None
    _draw_psnr_axis(ax, near, floor, markersize=3)
    ax.set_ylim(best - zoom_db - 0.05 * zoom_db, best + 0.1 * zoom_db)
    ax.set_title(f"within {zoom_db:g} dB of the best")


@report_figure
def plot_psnr_curves(
    vals: Mapping[str, pd.DataFrame],
    bicubic_psnr: float | None = None,
    title: str | None = None,
    parents: Mapping[str, str] | None = None,
    zoom_db: float | None = ZOOM_DB,
) -> object:
    """Val PSNR against iterations of all models on one axis, bicubic as a line, and a zoom on the best runs.

    A run that continues another is drawn after it (:func:`chain_runs`). The right panel shows only the runs
    whose best val PSNR is within ``zoom_db`` of the best one's, so the close in-budget runs are not squashed
    by bicubic and the GAN run.

    Args:
        vals: ``{run name: validation log}``.
        bicubic_psnr: the baseline (dB), drawn dashed; None or NaN leaves it out.
        title: a figure title (shown in the notebook, left out of the saved files: the caption says it).
        parents: ``{run: the run it continues}``; None: by the kit's naming.
        zoom_db: the zoomed panel's range (dB); None: no zoomed panel.
    """
    plt = pyplot()
    empty = pd.DataFrame(columns=["iter"])
    chained = {name: val for name, (_, val) in chain_runs({n: (empty, v) for n, v in vals.items()}, parents).items()}
    any_val = any(not v.empty for v in chained.values())
    panels = 2 if zoom_db and any_val else 1
    fig, axes = plt.subplots(1, panels, figsize=(FULL_WIDTH, 2.5), squeeze=False, layout="constrained")
    ax = axes[0, 0]
    finite = bicubic_psnr is not None and math.isfinite(bicubic_psnr)
    _draw_psnr_axis(ax, chained, bicubic_psnr if finite else None, markersize=3)
    links = default_parents(list(chained)) if parents is None else parents
    chain = any(not val.empty and links.get(name) in chained for name, val in chained.items())
    for axis in axes.flat:
        axis.set_xlabel(CHAINED if chain else "iterations")
        _iteration_axis(axis)
    if panels == 2:
        _draw_zoom(axes[0, 1], {n: v for n, v in chained.items() if not v.empty}, bicubic_psnr if finite else None,
                   float(zoom_db))  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), columnspacing=1.0,
                   handlelength=1.6)  # three labels of up to ~25 characters fill the page width
    else:
        ax.text(0.5, 0.5, "no validation yet", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return fig


@report_figure
def plot_run_curves(name: str, log: pd.DataFrame, val: pd.DataFrame, bicubic_psnr: float | None = None) -> object:
    """One run's training loss and val PSNR side by side (the curves of notebooks 03-05).

    Args:
        name: the run name (colour and label).
        log: its training log.
        val: its validation log.
        bicubic_psnr: the baseline (dB); None takes the ``bicubic_psnr`` the trainer logs in ``val``.
    """
    plt = pyplot()
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.5), layout="constrained")
    if _draw_loss_lines(ax_loss, name, log):
        if (log[loss_columns(log)] > 0).all().all():
            ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=8)
    ax_loss.set(title=f"{model_label(name)}: training loss", xlabel="iterations", ylabel="loss")
    ax_loss.grid(True, alpha=0.3)
    if bicubic_psnr is None and "bicubic_psnr" in val.columns and not val.empty:
        bicubic_psnr = float(val["bicubic_psnr"].iloc[-1])  # the trainer logs it beside every validation
    _draw_psnr_axis(ax_psnr, {name: val}, bicubic_psnr)
    ax_psnr.set(title=f"{model_label(name)}: validation PSNR", xlabel="iterations")
    if ax_psnr.get_legend_handles_labels()[0]:
        ax_psnr.legend(fontsize=8)
    return fig


def _logged_bicubic(vals: list[pd.DataFrame]) -> float | None:
    logged = [float(v["bicubic_psnr"].iloc[-1]) for v in vals if "bicubic_psnr" in v.columns and not v.empty]
    return logged[0] if logged else None


@report_figure
def plot_stage_curves(
    stages: Mapping[str, Logs], baselines: Mapping[str, Logs] | None = None, bicubic_psnr: float | None = None
) -> object:
    """Training stages against baseline runs: training loss (left, log scale) and val PSNR (right).

    The stages are drawn one after the other (:func:`chain_stages`: an MSE finish continues where its first
    stage ended), solid; the baselines from iteration 0, dashed. The loss panel shows the first loss term of
    each log: an L2 loss sits far below an L1 one, so compare the shapes, not the levels.

    Args:
        stages: ``{run name: (training log, validation log)}`` in training order.
        baselines: ``{run name: (training log, validation log)}`` to compare with (e.g. notebook 03's srgan).
        bicubic_psnr: the floor (dB), drawn dashed; None takes the ``bicubic_psnr`` the trainer logs.
    """
    plt = pyplot()
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.7), layout="constrained")
    runs = {name: (logs, "-") for name, logs in chain_stages(stages).items()}
    runs.update({name: (logs, "--") for name, logs in (baselines or {}).items() if name not in runs})
    for name, ((log, _), style) in runs.items():
        terms = loss_columns(log)
        if not log.empty and terms:
            y = log[terms[0]].where(log[terms[0]] > 0)  # log scale: non-positive values are left out
            ax_loss.plot(log[iteration_column(log)], y, style, color=model_color(name),
                         label=f"{model_label(name)} ({terms[0]})")  # fmt: skip
    if ax_loss.get_lines():
        ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=8)
    ax_loss.set(title="Training loss", xlabel=CHAINED, ylabel="loss (log scale)")
    ax_loss.grid(True, alpha=0.3)
    if bicubic_psnr is None:
        bicubic_psnr = _logged_bicubic([v for (_, v), _ in runs.values()])
    finite = bicubic_psnr is not None and math.isfinite(bicubic_psnr)
    for style in ("-", "--"):
        vals = {name: val for name, ((_, val), s) in runs.items() if s == style}
        _draw_psnr_axis(ax_psnr, vals, bicubic_psnr if finite and style == "-" else None, linestyle=style,
                        markersize=3)  # fmt: skip
    ax_psnr.set(title="Validation PSNR", xlabel=CHAINED)
    if ax_psnr.get_legend_handles_labels()[0]:
        ax_psnr.legend(fontsize=8)
    return fig
