"""The course hand-in bundle (docs/course.md section 11): one zip holding every file the handout asks for.

``python -m facesr handin RUN --out FILE.zip`` calls :func:`make_handin`, which writes::

    Readme.txt                  matriculation number, CodaLab name, files, libraries, how to run, what is missing
    submission.zip              the leaderboard zip of the run's test predictions (results/00000.png ...)
    <run>/config.json, log.csv, val.csv, run_info.json, best.pt, test_real_predictions/*.png
    <first stage>/config.json, log.csv, val.csv, run_info.json   (an MSE finish ``*_l2``: the stage it started from)
    figures/...                 the report's figures and tables made for this run's edition and mode
    codalab_screenshot.png      the CodaLab score (``screenshot=``, ``--screenshot FILE``, notebook 06's SCREENSHOT)
    code/...                    the kit's source (library, notebooks, requirements)

Only the student's own figures go in: the files that the figures folder's manifest
(:mod:`facesr.report.manifest`) says were made for the run's edition and mode, still as they were made. Each
required item the bundle lacks (training curves, val PSNR table, parameter table, machine table, real-world
predictions, the CodaLab screenshot) is listed with the notebook that makes it, in Readme.txt and printed.

Everything is checked before anything is written: the bundle never replaces an existing bundle unless
asked, and an over-budget generator is refused with its numbers. The run's ``submission.zip`` is reused
only when it is newer than the checkpoint and complete; otherwise it is made again from the run's test
predictions, which are made (into the run folder, where notebook 06 puts them too) when they are missing
or older than the checkpoint and the data root has ``test/LQ``; the real-world predictions likewise, when the
data root has ``test_real/``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import IO

from facesr.atomic import atomic_write
from facesr.errors import FacesrError
from facesr.report.readme import BundleFile, ReadmeFacts, figure_description, handin_readme
from facesr.report.steps import (
    LEADERBOARD_ZIP,
    REAL_WORLD_PREDICTIONS,
    TEST_PREDICTIONS,
    read_submission_tta,
)

RUN_FILES = {
    "config.json": "every training setting of the run (facesr.config.train_config.TrainConfig fields)",
    "log.csv": "training log: loss terms, learning rate and speed, averaged over each logging window",
    "val.csv": "validation log: val PSNR/SSIM (RGB, 0-255, whole image) at each validation",
    "run_info.json": "the training machine: GPU model and count (or CPU), torch/CUDA, AMP dtype, wall hours",
}
FUSED_FILE = "generator_fused.safetensors"  # SPAN's inference form, beside its checkpoint (docs/course.md section 10)
REQUIRED_RUN_FILES = ("config.json", "log.csv", "val.csv")  # run_info.json: runs of older kits lack it
# The report's required figures and tables (docs/course.md section 11), by file stem, with what makes them.
REQUIRED_FIGURES = {
    "training curves": ("06_loss_curves", "notebook 06, section 1"),
    "val PSNR table": ("psnr_table", "notebook 06, section 3"),
    "parameter table": ("param_table", "notebook 06, section 4"),
    "machine table": ("machine_table", "notebook 06, section 5"),
}
SCREENSHOT = "codalab_screenshot"  # the bundle's name for the CodaLab screenshot (its own suffix kept)
CODE_FILES = ("README.md", "requirements.txt", "pyproject.toml", "colab_setup.sh", "jupytext.toml")
CODE_FOLDERS = {"lib/facesr": ("*.py",), "notebooks": ("*.py", "*.ipynb")}


def unused_bundle_name(out: str | os.PathLike) -> Path:
    """``out`` if no file has that name yet, else the first free ``<stem>_2.zip``, ``<stem>_3.zip``, ...

    Notebook 06 writes its bundle there, so running it again never replaces a bundle the student may have
    edited (e.g. with the CodaLab screenshot added).
    """
    out = Path(out).expanduser()
    n = 2
    while out.exists():
        stem = out.stem[: -len(f"_{n - 1}")] if n > 2 else out.stem
        out = out.with_name(f"{stem}_{n}{out.suffix}")
        n += 1
    return out


def _check_target(out: str | os.PathLike, overwrite: bool) -> Path:
    out = Path(out).expanduser()
    if out.suffix.lower() != ".zip":
        raise FacesrError(f"hand-in bundle {out} should end in .zip; pass --out NAME.zip")
    if out.is_dir():
        raise FacesrError(f"{out} is a folder; pass a file name for the hand-in bundle, e.g. --out handin.zip")
    if out.exists() and not overwrite:
        raise FacesrError(f"{out} already exists; pass --overwrite (overwrite=True) or choose another name")
    return out


def _read_config(run_dir: Path) -> dict:
    for name in REQUIRED_RUN_FILES:
        if not (run_dir / name).is_file():
            raise FacesrError(f"run folder {run_dir} has no {name}; hand in a run folder written by the kit's trainer")
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FacesrError(f"{run_dir / 'config.json'} is unreadable ({err}); restore it from the run's Drive copy") from err
    if not isinstance(config, dict):
        raise FacesrError(f"{run_dir / 'config.json'} is not a config (a JSON object of TrainConfig fields)")
    return config


def _test_lq_dir(data_root: str | os.PathLike | None, config: dict) -> Path | None:
    """``test/LQ`` of the given data root, else of the run's own config (as given, then inside the kit)."""
    for root in _data_roots(data_root, config):
        for candidate in (root / "test" / "LQ", root):  # a data root, or the test/LQ folder itself
            if candidate.is_dir() and candidate.name == "LQ":
                return candidate
    return None


def _data_roots(data_root: str | os.PathLike | None, config: dict) -> list[Path]:
    """The data root given, else the run's own (as given, then inside the kit)."""
    from facesr.colab import kit_root

    roots = [Path(data_root).expanduser()] if data_root else [Path(config.get("data_root") or "data/FFHQ")]
    if not data_root and not roots[0].is_absolute():
        roots.append(kit_root() / roots[0])
    return roots


def _older(path: Path, than: Path | None) -> bool:
    """Whether ``path`` was last written before ``than`` (a checkpoint); never when there is no checkpoint."""
    return than is not None and path.stat().st_mtime_ns < than.stat().st_mtime_ns


def _zip_matches(zip_path: Path, lq_dir: Path | None) -> bool:
    """Whether the zip holds one SR PNG per test LQ (by name, in one folder); not judged without ``test/LQ``."""
    from facesr.data.datasets import TestDataset
    from facesr.inference.predict import png_name

    if lq_dir is None:
        return True
    with zipfile.ZipFile(zip_path) as zf:
        files = [n for n in zf.namelist() if not n.endswith("/")]
    folders = {n.rpartition("/")[0] for n in files}
    return len(folders) == 1 and sorted(n.rpartition("/")[2] for n in files) == sorted(
        png_name(n) for n in TestDataset(lq_dir).names)  # fmt: skip


def leaderboard_zip(
    run_dir: str | os.PathLike,
    net: object,
    data_root: str | os.PathLike | None = None,
    config: dict | None = None,
    checkpoint: str | os.PathLike | None = None,
    edition: int | None = None,
) -> Path:
    """The run's leaderboard zip ``<run>/submission.zip``: the existing one if it is current, else made again.

    An existing zip is reused only when it is newer than the checkpoint (its predictions come from these
    weights) and, when ``test/LQ`` is known, holds one prediction per test LQ. Otherwise it is packaged by
    :func:`facesr.inference.submission.package_submission` from ``<run>/test_predictions``, which
    :func:`facesr.inference.predict.predict` makes when it is missing or older than the checkpoint; a current but
    incomplete folder is refused, never overwritten. The budget check comes before any of it.

    Args:
        run_dir: the run folder.
        net: its generator (checked against the parameter limit).
        data_root: data root with ``test/LQ``; None uses the run's config.json ``data_root``.
        config: the run's config.json contents (read when None).
        checkpoint: the checkpoint ``net`` was loaded from (None: the run's best.pt, else latest.pt).
        edition: whose parameter limit applies (None: the run's own, from its config.json, else the default).

    Raises:
        FacesrError: over budget; or no current zip, no current predictions and no ``test/LQ`` to make them
            (says what to pass).
    """
    from facesr.data.images import list_images
    from facesr.editions import choose_edition
    from facesr.inference.predict import predict
    from facesr.inference.submission import package_submission
    from facesr.models import check_param_budget
    from facesr.weights.checkpoints import run_checkpoint

    run_dir = Path(run_dir)
    zip_path, pred_dir = run_dir / LEADERBOARD_ZIP, run_dir / TEST_PREDICTIONS
    ckpt = Path(checkpoint) if checkpoint is not None else run_checkpoint(run_dir)
    config = config if config is not None else _read_config(run_dir)
    lq_dir = _test_lq_dir(data_root, config)
    if zip_path.is_file():
        if not zipfile.is_zipfile(zip_path):
            raise FacesrError(f"{zip_path} is not a zip file; move it away so that the hand-in makes a new one")
        if not _older(zip_path, ckpt) and _zip_matches(zip_path, lq_dir):
            return zip_path
        why = f"older than {ckpt.name}" if _older(zip_path, ckpt) else f"not one PNG per image of {lq_dir}"
        print(f"{zip_path} is {why}: making it again from the run's test predictions")
    edition = choose_edition(edition, config.get("edition"), what=f"run {run_dir.name}").year
    check_param_budget(net, edition)
    predictions = list_images(pred_dir) if pred_dir.is_dir() else []
    stale = not predictions or any(_older(path, ckpt) for path in predictions)
    if stale and lq_dir is None:
        where = data_root or (config or {}).get("data_root") or "the run's data root"
        raise FacesrError(
            f"run {run_dir.name} has no current test predictions ({zip_path.name} or {TEST_PREDICTIONS}/ in "
            f"{run_dir}, newer than its checkpoint) and {where} has no test/LQ to make them; pass --data ROOT "
            "(data_root=ROOT) with test/LQ inside"
        )
    tta = None if stale else read_submission_tta(run_dir)  # kept predictions keep their self-ensemble
    if stale:
        paths = predict(net, lq_dir, pred_dir)
        print(f"{len(paths)} test predictions written to {pred_dir}")
    return package_submission(pred_dir, zip_path, net, lq_dir, overwrite=True, edition=edition, source=ckpt,
                              tta=None if tta == "unknown" else tta, runs_dir=run_dir.parent)  # logged


def _figure_files(figures_dir: Path, edition: int, quick: bool) -> list[BundleFile]:
    """The figures and tables the manifest says were made for ``edition`` in this mode (:func:`made_for`)."""
    from facesr.report.manifest import made_for

    return [BundleFile(path, f"figures/{path.name}", f"{figure_description(path.name, edition)}, made "
                       f"{entry.get('time', '?')[:10]}") for path, entry in made_for(figures_dir, edition, quick)]


def default_figures_dir(edition: int, quick: bool) -> Path:
    """The project's figures folder of an edition and mode: on Drive when there is one (``FACESR_DRIVE``), else
    the kit's ``figures/`` (:func:`facesr.colab.settings.figures_folder`)."""
    from facesr.colab import kit_root
    from facesr.colab.drive import drive_from_env
    from facesr.colab.settings import figures_folder

    return figures_folder(edition, quick, drive_from_env(), kit_root())


def _code_files() -> list[BundleFile]:
    """The kit's source as the bundle's ``code/`` folder (the handout asks for all code)."""
    from facesr.colab import kit_root

    kit = kit_root()
    files = [BundleFile(kit / name, f"code/{name}", "") for name in CODE_FILES if (kit / name).is_file()]
    for folder, patterns in CODE_FOLDERS.items():
        for pattern in patterns:
            for path in sorted((kit / folder).rglob(pattern)):
                if "__pycache__" not in path.parts and not any(p.startswith(".") for p in path.parts):
                    files.append(BundleFile(path, f"code/{path.relative_to(kit).as_posix()}", ""))
    return files


def _run_files(run_dir: Path, checkpoint: Path, zip_path: Path) -> list[BundleFile]:
    name = run_dir.name
    files = [BundleFile(zip_path, LEADERBOARD_ZIP, "the leaderboard zip: results/00000.png ..., the x4 outputs "
                        "of test/LQ (upload it to CodaLab)")]  # fmt: skip
    files += [BundleFile(run_dir / f, f"{name}/{f}", text) for f, text in RUN_FILES.items() if (run_dir / f).is_file()]
    files.append(BundleFile(checkpoint, f"{name}/{checkpoint.name}", "the submitted checkpoint: net_g, net_g_ema "
                            "(the weights used for the predictions), optimizer state, config"))  # fmt: skip
    first = _first_stage(run_dir)
    if first is not None:
        files += [BundleFile(first / f, f"{first.name}/{f}", f"the first stage ({first.name}) of this MSE finish: "
                             f"{text}") for f, text in RUN_FILES.items() if (first / f).is_file()]  # fmt: skip
    real = run_dir / REAL_WORLD_PREDICTIONS
    if real.is_dir():
        files += [BundleFile(p, f"{name}/{REAL_WORLD_PREDICTIONS}/{p.name}", "x4 output of the real-world LQ image "
                             f"test_real/{p.name}") for p in sorted(real.glob("*.png"))]  # fmt: skip
    return files


def _fused_file(run_dir: Path, config: dict, net: object, edition: int) -> list[BundleFile]:
    """For a net that trains in another form than it is submitted (SPAN), its inference form as a file of its own:
    ``<run>/generator_fused.safetensors`` (written beside the checkpoint), the network the limit counts."""
    from facesr.models import count_parameters, generator_record
    from facesr.models.sizing import inference_args
    from facesr.weights.exports import export_safetensors

    name = str(config.get("generator") or "")
    try:
        if generator_record(name).fuse is None:
            return []
    except FacesrError:  # a generator this kit does not register
        return []
    args = inference_args(name, config.get("generator_args") or {})
    path = export_safetensors(net, run_dir / FUSED_FILE, name, args, overwrite=True, edition=edition)
    return [BundleFile(path, f"{run_dir.name}/{FUSED_FILE}", f"the submitted generator in its inference form "
                       f"({count_parameters(net):,} parameters, the count the limit applies to; the checkpoint "
                       "holds the training form with its re-parameterisable branches); load_generator reads it")]


def _first_stage(run_dir: Path) -> Path | None:
    """The run folder an MSE finish (``init`` in its config.json) started from, when it is a kit run folder."""
    init = _read_config(run_dir).get("init")
    if not init:
        return None
    for folder in (Path(str(init)).expanduser(), run_dir.parent / str(init)):
        if folder.is_dir() and folder.resolve() != run_dir.resolve() and (folder / "config.json").is_file():
            return folder
    return None


def _real_world(run_dir: Path, net: object, data_root: str | os.PathLike | None, config: dict) -> str | None:
    """Make the run's real-world predictions when it has none and the data root has ``test_real/``; None when
    they are there, else what to do (for the missing list)."""
    from facesr.data.check import REAL_WORLD, real_world_dir
    from facesr.report.steps import predict_real_world

    if any((run_dir / REAL_WORLD_PREDICTIONS).glob("*.png")):
        return None
    for root in _data_roots(data_root, config):
        if real_world_dir(root) is not None:
            tta = read_submission_tta(run_dir)  # the test predictions' self-ensemble
            predict_real_world(net, root, run_dir, tta=None if tta == "unknown" else tta)
            return None
    return (f"put the real-world LQ images in the data root's {REAL_WORLD}/ and run notebook 06, section 8 (or "
            "this command again with --data ROOT)")


def _missing(files: list[BundleFile], run_dir: Path, real_world: str | None, screenshot: bool) -> list[tuple[str, str]]:
    """``(item, how to make it)`` of each required item the bundle lacks."""
    stems = {Path(f.arcname).stem for f in files if f.arcname.startswith("figures/")}
    missing = [(item, f"{how} (figures made for this run's edition and mode)") for item, (stem, how)
               in REQUIRED_FIGURES.items() if stem not in stems]  # fmt: skip
    if real_world is not None:
        missing.append(("real-world predictions", real_world))
    if not screenshot:
        missing.append(("the CodaLab screenshot", "set SCREENSHOT in notebook 06 (CLI: --screenshot FILE) to the "
                        "image of your score on the leaderboard"))  # fmt: skip
    return missing


def _write_zip(out: Path, files: list[BundleFile], readme: str) -> None:
    """Write the bundle atomically (:mod:`facesr.atomic`): never half a zip, an older bundle intact on failure."""

    def write(fh: IO[bytes]) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("Readme.txt", readme)
            for f in files:  # PNG, zip and checkpoints are compressed already: stored as they are
                stored = f.source.suffix.lower() in (".png", ".zip", ".pt")
                zf.write(f.source, f.arcname, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)

    atomic_write(out, write)


def make_handin(
    run: str | os.PathLike,
    out: str | os.PathLike,
    matric: str | None = None,
    codalab: str | None = None,
    data_root: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    trust_checkpoint: bool = False,
    edition: int | None = None,
    screenshot: str | os.PathLike | None = None,
) -> Path:
    """Write the course hand-in bundle of a run as one zip (see the module docstring for its contents).

    Args:
        run: the submitted run's folder (config.json, log.csv, val.csv, best.pt or latest.pt).
        out: the bundle to write, ``*.zip``.
        matric: the matriculation number for Readme.txt (None: a marked blank to fill in).
        codalab: the CodaLab user name for Readme.txt (None: a marked blank).
        data_root: data root with ``test/LQ`` (and ``test_real/``) to make missing predictions (None: the run's
            config).
        figures_dir: the report's figures and tables (None: the project's for the run's edition and mode,
            :func:`default_figures_dir`).
        overwrite: replace an existing ``out``.
        trust_checkpoint: unpickle the checkpoint in full (runs code from it; only for trusted files).
        edition: the course edition (None: the run's own; another one than the run's is refused).
        screenshot: the CodaLab screenshot to put in the bundle (None: listed as missing).

    Returns:
        ``out``.
    """
    from facesr.editions import choose_edition
    from facesr.inference.predict import load_generator
    from facesr.models import check_param_budget
    from facesr.weights.checkpoints import run_checkpoint

    out = _check_target(out, overwrite)
    run_dir = Path(run).expanduser()
    checkpoint = run_checkpoint(run_dir) if run_dir.is_dir() else None
    if checkpoint is None:
        raise FacesrError(f"{run_dir} is not a run folder with best.pt or latest.pt; pass the submitted run's folder")
    config = _read_config(run_dir)
    edition = choose_edition(edition, config.get("edition"), what=f"run {run_dir.name}").year
    shot = Path(screenshot).expanduser() if screenshot else None
    if shot is not None and not shot.is_file():
        raise FacesrError(f"screenshot {shot} not found; pass the image file of your CodaLab score")
    net = load_generator(checkpoint, trust=trust_checkpoint)
    try:
        params = check_param_budget(net, edition)
    except FacesrError as err:
        raise FacesrError(f"run {run_dir.name} cannot be handed in: {err}") from None
    quick = bool(config.get("quick"))
    folder = Path(figures_dir).expanduser() if figures_dir else default_figures_dir(edition, quick)
    board = leaderboard_zip(run_dir, net, data_root, config, checkpoint, edition=edition)
    real_world = _real_world(run_dir, net, data_root, config)
    files = _run_files(run_dir, checkpoint, board) + _fused_file(run_dir, config, net, edition)
    files += _figure_files(folder, edition, quick)
    if shot is not None:
        files.append(BundleFile(shot, f"{SCREENSHOT}{shot.suffix.lower()}", "the screenshot of the CodaLab score"))
    files += _code_files()
    missing = _missing(files, run_dir, real_world, shot is not None)
    facts = ReadmeFacts(run_dir, config, net, params, files, edition, matric=matric, codalab=codalab,
                        figures_dir=folder, missing=missing, tta=read_submission_tta(run_dir))  # fmt: skip
    _write_zip(out, files, handin_readme(facts))
    for item, how in missing:
        print(f"missing from the bundle: {item}: {how}")
    return out
