"""The cells notebooks 03-07 share (config and budget, curves, outputs, the leaderboard zip), written once.

Each function prints or returns what one notebook cell shows, so a notebook stays a list of settings,
one-line calls and prose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from facesr.errors import FacesrError
from facesr.report.manifest import note_runs

TEST_PREDICTIONS = "test_predictions"  # in the submitted run's folder; the Readme's predict command writes there
LEADERBOARD_ZIP = "submission.zip"  # the leaderboard zip of the run's test predictions, beside them
REAL_WORLD_PREDICTIONS = "test_real_predictions"  # in the submitted run's folder, beside test_predictions


def read_submission_tta(run_dir: str | os.PathLike) -> str | None:
    """The self-ensemble the run's leaderboard zip was made with (None: plain), from its row in
    ``RUNS_DIR/submissions.csv`` (:func:`facesr.inference.submissions.find_submission`, by the zip's sha256);
    ``"unknown"`` when the zip is missing or not logged (made outside the kit)."""
    from facesr.inference.submissions import find_submission

    zip_path = Path(run_dir) / LEADERBOARD_ZIP
    row = find_submission(Path(run_dir).parent, zip_path) if zip_path.is_file() else None
    if row is None:
        return "unknown"
    return None if row.get("self_ensemble") in (None, "", "none") else row["self_ensemble"]


def budget_line(cfg: object) -> str:
    """The generator's parameter count of a config against the course limit, as one line.

    Every parameter counts, frozen ones too, as the handout counts them (:func:`facesr.models.count_parameters`).
    The network is built on the meta device: exact count, no memory, no initialisation cost.
    """
    from facesr.models import count_generator, param_limit

    n = count_generator(cfg.generator, cfg.generator_args)  # the form that is submitted (SPAN: fused)
    limit = param_limit(cfg.edition)
    share = f"{100 * n / limit:.1f} % of the limit"
    if n <= limit:
        return f"{cfg.generator}: {n:,} parameters, within the {cfg.edition} limit of {limit:,} ({share})"
    return (
        f"{cfg.generator}: {n:,} parameters, OVER the {cfg.edition} limit of {limit:,} ({share}): "
        "fine for the report's comparison, not for a leaderboard submission"
    )


def show_config(cfg: object) -> None:
    """Print the config table (with its ``why``) and the parameter budget line (the config cell of 03-07)."""
    from facesr.config.train_config import config_table

    print(config_table(cfg))
    print()
    print(budget_line(cfg))


def resolve_init(
    init_from: str | os.PathLike | None,
    runs_dir: str | os.PathLike,
    default: str = "esrgan",
    run_name: str | None = None,
) -> Path | None:
    """The run folder or checkpoint a fine-tune starts from (``INIT_FROM`` of notebook 05).

    Args:
        init_from: a run folder or ``.pt`` file; empty/None means ``runs_dir/default``.
        runs_dir: the folder of run folders.
        default: the run used when ``init_from`` is empty.
        run_name: the fine-tune's own run; when it already has ``latest.pt`` the training resumes from
            it and needs no starting point: None is returned (and printed).

    Raises:
        FacesrError: when it does not exist, saying which notebook makes it and how to point elsewhere.
    """
    from facesr.weights.checkpoints import run_checkpoint

    if run_name and (Path(runs_dir) / run_name / "latest.pt").is_file():
        print(f"{Path(runs_dir) / run_name} exists: training resumes from its latest.pt (INIT_FROM is not used)")
        return None
    path = Path(init_from).expanduser() if init_from else Path(runs_dir) / default
    if path.is_file() or run_checkpoint(path) is not None:
        print(f"the generator starts from {path}")
        return path
    if init_from:
        raise FacesrError(f"INIT_FROM={init_from} is neither a run folder with best.pt/latest.pt nor a checkpoint file")
    raise FacesrError(
        f"no {default} run in {runs_dir} to start from: train notebook 04 first, or set INIT_FROM to an "
        "esrgan run folder or a .pt checkpoint (e.g. INIT_FROM = '/content/drive/MyDrive/facesr/runs/esrgan')"
    )


def show_curves(
    run_dir: str | os.PathLike, figures_dir: str | os.PathLike | None = None, name: str | None = None
) -> object:
    """Plot a run's training loss and val PSNR (with bicubic for reference) and save it.

    Args:
        run_dir: the run folder.
        figures_dir: where to save the figure (None: not saved).
        name: the file stem (default ``<run>_curves``).
    """
    from facesr.report.curves import plot_run_curves
    from facesr.report.style import save_figure
    from facesr.training import read_run_logs

    run_dir = Path(run_dir)
    note_runs(run_dir.name)
    log, val = read_run_logs(run_dir)
    fig = plot_run_curves(run_dir.name, log, val)
    if figures_dir is not None:
        print("saved", *save_figure(fig, figures_dir, name or f'{run_dir.name}_curves'))
    return fig


def show_stage_curves(
    stages: Mapping[str, str | os.PathLike],
    baseline: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    name: str = "07_in_budget_curves",
) -> object:
    """Plot training stages (a run, then its MSE finish) against a baseline run, and save it (notebook 07).

    Args:
        stages: ``{run name: run folder}`` in training order (see :func:`facesr.report.curves.plot_stage_curves`).
        baseline: the run folder to compare with (notebook 03's ``RUNS_DIR/srgan``); without a checkpoint in it
            a note says which notebook trains it, and the figure shows the stages alone.
        figures_dir: where to save the figure (None: not saved).
        name: the file stem.
    """
    from facesr.report.curves import plot_stage_curves
    from facesr.report.runs import find_runs, read_logs
    from facesr.report.style import save_figure

    note_runs(*stages)
    baselines = find_runs(Path(baseline).parent, [Path(baseline).name]) if baseline is not None else {}
    fig = plot_stage_curves(read_logs({run: Path(folder) for run, folder in stages.items()}), read_logs(baselines))
    if figures_dir is not None:
        print("saved", *save_figure(fig, figures_dir, name))
    return fig


def show_val_outputs(
    run_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    n: int = 3,
    figures_dir: str | os.PathLike | None = None,
    name: str | None = None,
    trust: bool = False,
) -> object:
    """LQ | bicubic | SR | GT of the first ``n`` val faces of a run, saved.

    Args:
        run_dir: the run folder.
        data_root: data root with val/LQ and val/GT.
        n: how many val faces.
        figures_dir: where to save the figure (None: not saved).
        name: the file stem (default ``<run>_val_outputs``).
        trust: unpickle the run's checkpoint in full, which runs code from it (only for trusted files).
    """
    from facesr.report.figures import plot_val_outputs
    from facesr.report.style import save_figure

    run_dir = Path(run_dir)
    note_runs(run_dir.name)
    fig = plot_val_outputs(run_dir, data_root, n=n, trust=trust)
    if figures_dir is not None:
        print("saved", *save_figure(fig, figures_dir, name or f'{run_dir.name}_val_outputs'))
    return fig


def overrides(**values: object) -> dict:
    """Config overrides from notebook settings, leaving out the unset ones (0, "" or None = the config's)."""
    return {key: value for key, value in values.items() if value not in (0, "", None)}


def parse_box(text: str) -> tuple[float, float, float, float]:
    """A crop box from a notebook setting: ``"0.35,0.5,0.2,0.8"`` -> ``(0.35, 0.5, 0.2, 0.8)``.

    Args:
        text: four fractions top, bottom, left, right (as :func:`facesr.report.figures.crop_box` takes them).
    """
    from facesr.report.figures import crop_box

    try:
        values = tuple(float(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise FacesrError(f"crop box {text!r} must be four fractions top,bottom,left,right, e.g. 0.35,0.5,0.2,0.8")
    crop_box((100, 100), values)  # ValueError for fractions out of order or range
    return values


def show_real_world(
    nets: Mapping[str, object],
    data_root: str | os.PathLike,
    figures_dir: str | os.PathLike | None = None,
    tta: bool | str | None = None,
    name: str = "06_real_world",
    trust: bool = False,
    columns: Sequence[str] | None = None,
) -> object | None:
    """The grid of every real-world LQ (``test_real/``) with bicubic and each model's output; save ``name``.

    Args:
        nets: ``{run name: generator or run folder}``.
        data_root: the data root; without ``test_real/`` a note is printed and None returned.
        figures_dir: where to save the figure (None: not saved).
        tta: self-ensemble for the networks.
        name: the figure's file stem.
        trust: unpickle run folders' checkpoints in full, which runs code from them (only for trusted files).
        columns: the grid's columns (:func:`facesr.report.figures.report_columns`); None: every net.
    """
    from facesr.data.check import REAL_WORLD, real_world_dir
    from facesr.report.figures import plot_real_world, real_world_images
    from facesr.report.style import save_figure

    if real_world_dir(data_root) is None:
        print(f"no {REAL_WORLD}/ in {data_root}: put the real-world LQ images released with the test set there "
              "for this figure")  # fmt: skip
        return None
    shown = {run: net for run, net in nets.items() if columns is None or run in columns}
    fig = plot_real_world(real_world_images(shown, data_root, tta=tta, trust=trust), columns=columns)
    if figures_dir is not None:
        print("saved", *save_figure(fig, figures_dir, name))
    return fig


def predict_real_world(
    net: object, data_root: str | os.PathLike, run_dir: str | os.PathLike, tta: bool | str | None = None
) -> list[Path]:
    """x4 outputs of every real-world LQ into ``<run_dir>/test_real_predictions/`` (same names, PNG).

    Args:
        net: the submitted run's generator.
        data_root: the data root; without ``test_real/`` a note is printed and nothing written.
        run_dir: the run folder the predictions belong to.
        tta: self-ensemble, as for the test predictions.
    """
    from facesr.data.check import REAL_WORLD, real_world_dir
    from facesr.inference.predict import predict

    folder = real_world_dir(data_root)
    if folder is None:
        print(f"no {REAL_WORLD}/ in {data_root}: no real-world predictions to write")
        return []
    out = Path(run_dir) / REAL_WORLD_PREDICTIONS
    paths = predict(net, folder, out, tta=tta)
    print(f"{len(paths)} real-world predictions in {out}")
    return paths


def average_stage(
    run_dir: str | os.PathLike, last: int, data_root: str | os.PathLike, trust: bool = False
) -> Path | None:
    """Notebook 07's weight averaging: the EMA weights of the run's ``last`` newest kept checkpoints (fewer when
    it keeps fewer) averaged into ``<run>_avg`` and scored on the val set, printed beside the run's own best
    validation; None, with the reason printed, when there is nothing to average (``last`` 0, fewer than 2
    kept checkpoints) or the network is refused (BatchNorm running statistics: DAT).

    Args:
        run_dir: the run folder (its ``iter_N.pt`` files).
        last: how many of the newest kept checkpoints to average (``AVERAGE_LAST``; 0: none).
        data_root: the data root whose val set scores the average.
        trust: unpickle the checkpoints in full (``TRUST_CHECKPOINT``).
    """
    from facesr.report.runs import run_best_validation
    from facesr.training.averaging import average_run, kept_checkpoints

    run_dir = Path(run_dir)
    kept = len(kept_checkpoints(run_dir))
    if last <= 0 or kept < 2:
        print(f"no weight averaging: AVERAGE_LAST = {last}, {run_dir.name} keeps {kept} checkpoint(s) (2 or more "
              "are averaged; --set keep_last=K keeps more)")
        return None
    try:
        out = average_run(run_dir, last=min(last, kept), data_root=data_root, overwrite=True, trust=trust)
    except FacesrError as err:  # refused with its reason (running statistics); the run itself is submitted
        print(f"no weight averaging: {err}")
        return None
    print(f"val PSNR of {run_dir.name}: {run_best_validation(run_dir)['psnr']:.4f} dB (its best validation); "
          f"averaged ({out.name}): {run_best_validation(out)['psnr']:.4f} dB")
    return out


def make_submission(
    net: object,
    data_root: str | os.PathLike,
    run_dir: str | os.PathLike,
    tta: bool | str | None = None,
    edition: int | None = None,
    psnr_table: object | None = None,
) -> Path:
    """The run's leaderboard zip: ``test/LQ`` predicted into ``<run>/test_predictions``, zipped to ``submission.zip``,
    logged in ``RUNS_DIR/submissions.csv`` with its val PSNR and the test PSNR to expect (printed).

    The parameter budget is checked before anything is predicted; :func:`facesr.inference.submission.package_submission`
    then checks every file and writes the zip atomically. The zip is this step's own: it replaces the run's
    older ``submission.zip`` (made from the same run), as the predictions replace older ones by name.

    Args:
        net: the run's generator.
        data_root: the data root with ``test/LQ``.
        run_dir: the run folder the predictions and the zip go to.
        tta: self-ensemble: None, "hflip" or "x8" (e.g. :func:`facesr.report.tables.best_tta`).
        edition: whose parameter limit applies (None: the run's own, from its config.json, else the default).
        psnr_table: a :func:`facesr.report.tables.psnr_table` holding the run: its val PSNR with ``tta`` is logged
            (None, or not in it: the run's val.csv, which has no self-ensemble).
    """
    from facesr.data.check import test_lq_dir
    from facesr.editions import choose_edition, run_edition
    from facesr.inference.predict import predict
    from facesr.inference.submission import package_submission
    from facesr.inference.submissions import describe_row, find_submission
    from facesr.models import check_param_budget

    run_dir = Path(run_dir)
    edition = choose_edition(edition, run_edition(run_dir), what=f"run {run_dir.name}").year
    check_param_budget(net, edition)  # FacesrError with the count and the limit, before minutes of predicting
    lq_dir = test_lq_dir(data_root)  # FacesrError naming test/LQ when the data root has none
    pred_dir = run_dir / TEST_PREDICTIONS
    paths = predict(net, lq_dir, pred_dir, tta=tta)
    val_psnr, val_from = table_psnr(psnr_table, run_dir.name, tta)
    zip_path = package_submission(pred_dir, run_dir / LEADERBOARD_ZIP, net, lq_dir, overwrite=True, edition=edition,
                                  source=run_dir, tta=tta, val_psnr=val_psnr, val_psnr_from=val_from,
                                  runs_dir=run_dir.parent)
    print(f"{run_dir.name} (self-ensemble: {tta}): {len(paths)} test predictions in {pred_dir}; zip {zip_path}")
    row = find_submission(run_dir.parent, zip_path)
    if row is not None:
        print(describe_row(row, run_dir.parent))
    return zip_path


def table_psnr(psnr_table: object | None, run: str, tta: bool | str | None) -> tuple[float | None, str]:
    """(val PSNR of ``run`` with ``tta`` in a :func:`facesr.report.tables.psnr_table`, where it comes from);
    (None, "") when the table is None or lacks the run or the column."""
    import math

    from facesr.inference.tta import tta_mode

    mode = tta_mode(tta)
    column = "psnr" if mode is None else f"psnr_{mode}"
    if psnr_table is None or column not in psnr_table.columns:
        return None, ""
    rows = psnr_table[psnr_table["run"].astype(str) == run]
    value = float(rows.iloc[0][column]) if not rows.empty else math.nan
    if not math.isfinite(value):
        return None, ""
    count = rows.iloc[0].get("images_x8" if mode == "x8" else "images")
    images = f", {int(count)} images" if count is not None and count == count else ""
    return value, f"psnr table, {mode or 'no self-ensemble'}{images}"


def expected_test_lines(psnr_table: object, edition: int | None = None,
                        runs_dir: str | os.PathLike | None = None) -> str:
    """One line per run of a :func:`facesr.report.tables.psnr_table`: its best val PSNR (plain or the self-ensemble
    :func:`facesr.report.tables.best_tta` picks) and the test PSNR it leads to expect (notebook 07's result).

    Args:
        psnr_table: the table.
        edition: whose published val/test pairs (None: ``FACESR_EDITION``, else 2022).
        runs_dir: the folder whose ``submissions.csv`` adds the student's own scored pairs (None: none).
    """
    from facesr.inference.submissions import expected_test
    from facesr.report.tables import best_tta

    lines = []
    for run in (str(r) for r in psnr_table["run"] if str(r) != "bicubic"):
        tta = best_tta(psnr_table, run)
        value, _ = table_psnr(psnr_table, run, tta)
        lines.append(f"{run} (val {value:.4f} dB, self-ensemble {tta or 'none'}): "
                     f"{expected_test(value, edition, runs_dir)}" if value is not None else f"{run}: no val PSNR")
    return "\n".join(lines)
