"""The report's training curves: loss terms, val PSNR against iterations, training stages against a baseline.

Every function returns a matplotlib Figure (save it with :func:`facesr.report.style.save_figure`); each
model keeps its colour from :data:`facesr.report.style.MODEL_COLORS` in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from facesr.report.runs import iteration_column, loss_columns, metric_column
from facesr.report.style import model_color, model_label, pyplot

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
        axes[0, 0].text(0.5, 0.5, "no runs yet: train notebooks 03-05 or 07 first", ha="center", va="center")
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


def _shift(df: pd.DataFrame, offset: int) -> pd.DataFrame:
    """A log with ``offset`` added to its iterations (an empty log stays as it is)."""
    if df.empty or offset == 0:
        return df
    col = iteration_column(df)
    return df.assign(**{col: df[col] + offset})


Logs = tuple[pd.DataFrame, pd.DataFrame]  # (training log, validation log) of one run


def chain_stages(stages: Mapping[str, Logs]) -> dict[str, Logs]:
    """Consecutive training stages on one iteration axis: each stage's logs start where the one before ended.

    Args:
        stages: ``{run name: (training log, validation log)}`` in training order (a first stage, then e.g. its
            MSE finish, which starts from the first stage's weights at its own iteration 0).
    """
    chained, offset = {}, 0
    for name, (log, val) in stages.items():
        chained[name] = (_shift(log, offset), _shift(val, offset))
        ends = [int(df[iteration_column(df)].max()) for df in (log, val) if not df.empty]
        offset += max(ends, default=0)
    return chained


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
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(13, 4.3))
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
    ax_loss.set(title="Training loss", xlabel="iterations (stages one after the other)",
                ylabel="loss (log scale)")  # fmt: skip
    ax_loss.grid(True, alpha=0.3)
    if bicubic_psnr is None:
        logged = [float(v["bicubic_psnr"].iloc[-1]) for (_, v), _ in runs.values()
                  if "bicubic_psnr" in v.columns and not v.empty]  # fmt: skip
        bicubic_psnr = logged[0] if logged else None
    finite = bicubic_psnr is not None and math.isfinite(bicubic_psnr)
    for style in ("-", "--"):
        vals = {name: val for name, ((_, val), s) in runs.items() if s == style}
        _draw_psnr_axis(ax_psnr, vals, bicubic_psnr if finite and style == "-" else None, "Validation PSNR",
                        linestyle=style, markersize=3)  # fmt: skip
    if ax_psnr.get_legend_handles_labels()[0]:
        ax_psnr.legend(fontsize=8)
    fig.tight_layout()
    return fig
