"""The figures of notebook 06 that go into the report, one function per cell, shared with ``python -m facesr report``.

Each function draws one figure (or one per face), saves it as PDF and PNG into the figures folder when one
is given (:func:`facesr.report.style.save_figure`) and returns it, so the notebook and the command line make
the same files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from facesr.report.runs import read_logs, run_parents

QUALITATIVE = "06_qualitative_{face}"  # one figure per val face of the grid
IMAGE_COLUMNS = ("lq", "bicubic", "gt")  # the grids' columns that are not runs


def _save(fig: object, figures_dir: str | os.PathLike | None, name: str) -> None:
    from facesr.report.style import save_figure

    if figures_dir is not None:
        print("saved", *save_figure(fig, figures_dir, name))


def show_loss_curves(runs: Mapping[str, Path], figures_dir: str | os.PathLike | None = None) -> object:
    """Every run's training-loss terms, each model and the stages that continue it in one panel, saved as
    ``06_loss_curves``.

    Args:
        runs: ``{run name: run folder}``; a run's ``config.json`` ``init`` says which run it continues.
        figures_dir: where to save it (None: not saved).
    """
    from facesr.report.curves import plot_loss_curves

    fig = plot_loss_curves({name: log for name, (log, _) in read_logs(runs).items()}, parents=run_parents(runs))
    _save(fig, figures_dir, "06_loss_curves")
    return fig


def show_psnr_curves(
    runs: Mapping[str, Path], bicubic_psnr: float | None = None, figures_dir: str | os.PathLike | None = None
) -> object:
    """Val PSNR of every run on one iteration axis (stages chained) with bicubic and a zoom on the best runs,
    saved as ``06_psnr_curves``.

    Args:
        runs: ``{run name: run folder}``.
        bicubic_psnr: the floor (dB); None takes the one the trainer logs in the runs' ``val.csv``.
        figures_dir: where to save it (None: not saved).
    """
    from facesr.report.curves import plot_psnr_curves

    vals = {name: val for name, (_, val) in read_logs(runs).items()}
    if bicubic_psnr is None:
        logged = [float(v["bicubic_psnr"].iloc[-1]) for v in vals.values() if "bicubic_psnr" in v and not v.empty]
        bicubic_psnr = logged[0] if logged else None
    fig = plot_psnr_curves(vals, bicubic_psnr=bicubic_psnr, parents=run_parents(runs))
    _save(fig, figures_dir, "06_psnr_curves")
    return fig


def show_qualitative(
    nets: Mapping[str, object],
    data_root: str | os.PathLike,
    faces: Iterable[str | int] = (0, 1),
    crops: Mapping[str, tuple[float, float, float, float]] | None = None,
    columns: Sequence[str] | None = None,
    figures_dir: str | os.PathLike | None = None,
    trust: bool = False,
) -> list[object]:
    """LQ | bicubic | models | GT of each val face with eye and mouth crops, saved as ``06_qualitative_<face>``.

    Args:
        nets: ``{run name: generator or run folder}``; only those among ``columns`` are run.
        data_root: data root with val/LQ and val/GT.
        faces: val images (index or file name).
        crops: ``{name: fractional box}`` (None: eyes and mouth).
        columns: the grid's columns (:func:`facesr.report.figures.report_columns`); None: every net.
        figures_dir: where to save them (None: not saved).
        trust: unpickle run folders' checkpoints in full, which runs code from them (only for trusted files).
    """
    from facesr.report.figures import comparison_images, plot_comparison

    shown = {name: net for name, net in nets.items() if columns is None or name in columns}
    unknown = [c for c in columns or () if c not in (*IMAGE_COLUMNS, *nets)]
    if unknown:
        print(f"left out of the grids (no such run): {', '.join(unknown)}; the runs are {', '.join(nets) or 'none'}")
    figs = []
    for face in faces:
        key = int(face) if str(face).isdigit() else face
        images = comparison_images(shown, data_root, key, trust=trust)
        fig = plot_comparison(images, crops, title=f"val face {face}", columns=columns)
        _save(fig, figures_dir, QUALITATIVE.format(face=face))
        figs.append(fig)
    return figs


def make_report_figures(
    run: str | os.PathLike,
    figures_dir: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    models: str | Sequence[str] | None = None,
    faces: Iterable[str | int] = (0, 1),
    edition: int | None = None,
    trust: bool = False,
) -> dict[str, Path]:
    """What ``python -m facesr report`` makes before the skeleton: the figures and tables of notebook 06.

    From the runs beside ``run`` (the edition's report and in-budget runs, their MSE finishes, and ``run``):
    the loss and PSNR curves and the machine table always (from the run folders); with a data root also the
    qualitative and real-world grids of ``models`` and, when the figures folder has none yet, the PSNR table.

    Args:
        run: the submitted run's folder.
        figures_dir: where to write them.
        data_root: data root with val/ (and test_real/); None: only what the run folders give.
        models: the grids' columns (``REPORT_MODELS``; :func:`facesr.report.figures.report_columns`).
        faces: val faces of the qualitative grid.
        edition: the course edition (None: the run's own).
        trust: unpickle checkpoints in full, which runs code from them (only for trusted files).

    Returns:
        ``{run name: run folder}`` of the runs found.
    """
    from facesr.config.named_configs import REPORT_CONFIGS, in_budget_names
    from facesr.editions import choose_edition, run_edition
    from facesr.inference.predict import load_generator
    from facesr.report.figures import report_columns
    from facesr.report.runs import find_runs
    from facesr.report.steps import show_real_world
    from facesr.report.tables import machine_table, psnr_table, save_table

    run_dir = Path(run).expanduser()
    ed = choose_edition(edition, run_edition(run_dir))
    names = list(dict.fromkeys([*REPORT_CONFIGS, *in_budget_names(ed.year), run_dir.name]))
    runs = find_runs(run_dir.parent, names, verbose=False, finishes=True)
    show_loss_curves(runs, figures_dir)
    show_psnr_curves(runs, figures_dir=figures_dir)
    print("saved", *save_table(machine_table(runs), figures_dir, "machine_table"))
    if data_root is None:
        return runs
    if not (Path(figures_dir) / "psnr_table.csv").is_file():
        print("saved", *save_table(psnr_table(runs, data_root, trust=trust, edition=ed.year), figures_dir, "psnr_table"))
    columns = report_columns(models, ed.baseline_config, run_dir.name)
    nets = {name: load_generator(path, trust=trust) for name, path in runs.items() if name in columns}
    show_qualitative(nets, data_root, faces, columns=columns, figures_dir=figures_dir)
    show_real_world(nets, data_root, figures_dir, columns=columns)
    return runs
