"""The hand-in bundle's Readme.txt, filled from what the kit knows about the run.

The handout wants the matriculation number, the CodaLab user name, a description of the files, the
third-party libraries used and how to run the code. Names the kit cannot know stay as marked blanks; required
items the bundle lacks are listed with the notebook that makes them. The text is a list of sections
(:data:`SECTIONS`), each a function of one :class:`ReadmeFacts`: a new line or section goes in one place.
"""

from __future__ import annotations

import ast
import datetime
import json
import math
import platform
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pandas as pd

BLANK = "<FILL IN: {what}>"
# Import names of the libraries the kit runs on (distribution names differ: cv2 is opencv-python...).
LIBRARIES = ("torch", "torchvision", "numpy", "cv2", "skimage", "PIL", "pandas", "matplotlib", "tqdm", "ipywidgets")
# What each figure or table is, by file-name prefix (the notebook that writes it); {degradation} and {limit} are
# the edition's.
FIGURE_NOTES = {
    "01_": "data exploration (notebook 01)",
    "02_": "the {degradation} degradation (notebook 02)",
    "03_": "SRGAN training: curves or val outputs (notebook 03)",
    "04_": "ESRGAN training: curves or val outputs (notebook 04)",
    "05_": "GAN fine-tune: curves or val outputs (notebook 05)",
    "07_": "in-budget run and its MSE finish: curves against the baseline, val PSNR (notebook 07)",
    "06_real_world": "every model's x4 output of the real-world LQ images (notebook 06)",
    "06_": "report figure (notebook 06)",
    "psnr_table": "val PSNR/SSIM of each run, plain and self-ensembled (notebook 06)",
    "param_table": "parameter counts against the {limit} limit (notebook 06)",
    "machine_table": "the training machine of each run, from run_info.json (notebook 06)",
    "submission_table": "the submitted run against bicubic and the baseline: val PSNR, parameters, GPU, hours "
                        "(notebook 06, report skeleton)",
}
# Config fields that say where a run lives, not what it trains: the commands carry them as flags.
_LOCATION_FIELDS = ("name", "data_root", "runs_dir", "quick", "why", "edition")


@dataclass
class BundleFile:
    """One file of the bundle: where it is read from, its name in the zip, and its line in Readme.txt."""

    source: Path
    arcname: str
    description: str


def figure_description(name: str, edition: int | None = None) -> str:
    """The Readme line of a file in the figures folder, from its name and the edition it was made for."""
    from facesr.editions import get_edition

    ed = get_edition(edition)
    for prefix, text in FIGURE_NOTES.items():
        if name.startswith(prefix):
            return text.format(degradation=ed.degradation_label, limit=f"{ed.year} edition's {ed.param_limit:,}")
    return "report table" if name.endswith((".csv", ".md", ".tex")) else "report figure"


def _distributions_by_import() -> dict[str, list[str]]:
    """Import name -> the distributions that install it, as Python 3.11's ``packages_distributions``.

    Python 3.10's reads only ``top_level.txt``, which wheels not built by setuptools lack (scikit-image's, built
    with meson); 3.11 also infers the names from the files each distribution installed, as done here on 3.10.
    """
    by_import = metadata.packages_distributions()
    if sys.version_info >= (3, 11):
        return by_import
    for dist in metadata.distributions():
        for top in {f.parts[0] for f in dist.files or () if len(f.parts) > 1 and f.suffix == ".py"}:
            names = by_import.setdefault(top, [])
            if dist.metadata["Name"] not in names:
                names.append(dist.metadata["Name"])
    return by_import


def library_versions(uses_spandrel: bool = False) -> list[tuple[str, str]]:
    """``[(distribution, installed version)]`` of the kit's third-party libraries that are installed.

    Args:
        uses_spandrel: add spandrel (the run's generator is one of its networks).
    """
    by_import = _distributions_by_import()
    found: list[tuple[str, str]] = []
    for module in (*LIBRARIES, "spandrel") if uses_spandrel else LIBRARIES:
        for dist in dict.fromkeys(by_import.get(module, [])):
            try:
                found.append((dist, metadata.version(dist)))
            except metadata.PackageNotFoundError:
                continue
    return found


def uses_spandrel(net: object) -> bool:
    """Whether any part of ``net`` is a spandrel class (the kit's SwinIR/RCAN subclass spandrel's)."""
    return any(c.__module__.split(".")[0] == "spandrel" for m in net.modules() for c in type(m).__mro__)


def _flag_value(value: object) -> str:
    """A config value as ``--set`` parses it back (facesr.config.parse_overrides: Python literals for lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str | int | float):
        return str(value)
    text = json.dumps(value)  # double quotes read better in a shell command than repr's single ones
    return text if ast.literal_eval(text) == value else repr(value)


def train_command(config: dict) -> str:
    """The ``python -m facesr train`` command that trains a run with this config.json again.

    ``python -m facesr train <config> --edition YEAR``: the edition's named config the run started from (its
    name, else the one differing in fewest fields), in quick mode when the run was, with only the real
    differences as ``--iters``, ``--init`` or ``--set``.

    Args:
        config: the run's config.json contents.
    """
    from facesr.config import get_config
    from facesr.config.named_configs import config_names
    from facesr.editions import DEFAULT_YEAR

    edition = int(config.get("edition") or DEFAULT_YEAR)
    quick = bool(config.get("quick"))
    iters = {"iters": config["iters"]} if isinstance(config.get("iters"), int) else {}

    def named(base: str) -> dict:  # --iters stretches the lr schedule, so compare with it applied
        return get_config(base, quick=quick, edition=edition, **iters).to_dict()

    def differences(base: str) -> dict:
        ref = named(base)
        return {k: v for k, v in config.items() if k not in _LOCATION_FIELDS and k in ref and ref[k] != v}

    names = config_names(edition)
    name = str(config.get("name", "srgan"))
    base = name if name in names else min(names, key=lambda c: len(differences(c)))
    diff, ref = differences(base), named(base)
    words = ["python", "-m", "facesr", "train", base, "--edition", str(edition)]
    if name != base:
        words += ["--name", name]
    if quick:
        words.append("--quick")
    else:
        words += ["--data", str(config.get("data_root") or "data/FFHQ")]
    if config.get("runs_dir") and config["runs_dir"] != ref["runs_dir"]:
        words += ["--runs", str(config["runs_dir"])]
    if iters and iters["iters"] != get_config(base, quick=quick, edition=edition).iters:
        words += ["--iters", str(iters["iters"])]
    for key, value in diff.items():
        if key == "init":
            words += ["--init", _flag_value(value)]
        elif key == "generator_args" and isinstance(value, dict):  # merged into the config's: per entry
            for k, v in value.items():
                words += ["--set", f"generator_args.{k}={_flag_value(v)}"] if ref[key].get(k) != v else []
        else:
            words += ["--set", f"{key}={_flag_value(value)}"]
    return " ".join(shlex.quote(w) for w in words)


def _psnr_lines(run_dir: Path, figures_dir: Path | None) -> list[str]:
    """Best val PSNR from val.csv and, when the report's table has the run, its plain/ensemble scores."""
    from facesr.report.runs import run_best_validation

    best = run_best_validation(run_dir)
    lines = [f"  best val PSNR        {best['psnr']:.4f} dB (SSIM {best['ssim']:.4f}) at iteration {best['iter']:,}"
             " (val.csv; RGB, 0-255, whole image)" if not math.isnan(best["psnr"]) else
             "  best val PSNR        not validated yet (val.csv is empty)"]  # fmt: skip
    table = figures_dir / "psnr_table.csv" if figures_dir else None
    if table is not None and table.is_file():
        rows = pd.read_csv(table)
        rows = rows[rows["run"].astype(str) == run_dir.name]
        if not rows.empty:
            row, n = rows.iloc[0], int(rows.iloc[0]["images"])
            scores, limited = [], ""  # x8 may have scored only the first images (psnr_table's x8_limit)
            for label, col in (("plain", "psnr"), ("hflip", "psnr_hflip"), ("x8", "psnr_x8")):
                count = row.get(f"images_{label}")
                if col not in row or pd.isna(row[col]):
                    continue
                if pd.notna(count) and int(count) != n:
                    limited = f"; {label} {row[col]:.4f} dB on the first {int(count)}"
                else:
                    scores.append(f"{label} {row[col]:.4f}")
            lines.append(f"  report table         {', '.join(scores)} dB on {n} val images{limited} "
                         "(figures/psnr_table.csv)")  # fmt: skip
    return lines


def submission_lines(run_dir: Path, zip_path: Path | None) -> list[str]:
    """The Readme's lines on the submitted zip: its row in ``RUNS_DIR/submissions.csv`` (found by its sha256), the
    val PSNR it was chosen on with the test PSNR that leads to expect, and its CodaLab score once recorded.

    Args:
        run_dir: the submitted run's folder (its parent holds ``submissions.csv``).
        zip_path: the leaderboard zip of the bundle (None: none).
    """
    from facesr.inference.submissions import SUBMISSIONS_FILE, find_submission, submissions_path

    runs = run_dir.parent
    row = find_submission(runs, zip_path) if zip_path is not None and zip_path.is_file() else None
    if row is None:
        return [f"  leaderboard zip      not logged in {submissions_path(runs)} (made outside the kit)"]
    val = f"{row['val_psnr']} dB ({row['val_psnr_from']})" if row.get("val_psnr") else "not known"
    score = (f"{row['codalab_psnr']} dB" if row.get("codalab_psnr") else
             f"not recorded yet (python -m facesr submissions --runs {runs} --score {row['row']} PSNR, then make the "
             "hand-in again)")  # fmt: skip
    iteration = f"iteration {row['iteration']}" if row.get("iteration") else "iteration not known"
    return [
        f"  leaderboard zip      row {row['row']} of {SUBMISSIONS_FILE} ({row['time']}): {row.get('run') or 'no run'}, "
        f"{iteration}, self-ensemble {row['self_ensemble']}, sha256 {row['sha256']}",
        f"  its val PSNR         {val}; expected test PSNR {row['expected_test']}",
        f"  CodaLab score        {score}",
    ]


def _machine_line(run_dir: Path) -> str:
    from facesr.report.tables import machine_table

    row = machine_table({run_dir.name: run_dir}).iloc[0]
    if pd.isna(row["iterations"]):
        return f"  training machine     {row['machine']}"
    speed = f", {row['iters_per_s']:.2f} it/s" if pd.notna(row["iters_per_s"]) else ""
    cuda = f", CUDA {row['cuda']}" if row["cuda"] else ""
    return (f"  training machine     {row['machine']}; torch {row['torch']}{cuda}, AMP {row['amp']}; "
            f"{row['wall_hours']:.2f} h for {row['iterations']:,} iterations{speed}")  # fmt: skip


@dataclass
class ReadmeFacts:
    """Everything Readme.txt says, gathered once by :func:`facesr.report.handin.make_handin`.

    Args:
        run_dir: the submitted run's folder.
        config: its config.json contents.
        net: its generator (for the libraries: spandrel only when it is a spandrel network).
        params: its parameter count (every parameter, as the handout counts them).
        files: the bundle's files (``code/`` gets one line for all).
        edition: the edition handed in for (the run's own).
        matric: the matriculation number (None: a marked blank).
        codalab: the CodaLab user name (None: a marked blank).
        figures_dir: the report's figures folder (for the PSNR table row of the run).
        missing: ``(required item, how to make it)`` of what the bundle lacks.
        tta: the self-ensemble the leaderboard zip was made with (``"unknown"`` when not recorded).
    """

    run_dir: Path
    config: dict
    net: object
    params: int
    files: Sequence[BundleFile]
    edition: int
    matric: str | None = None
    codalab: str | None = None
    figures_dir: Path | None = None
    missing: Sequence[tuple[str, str]] = field(default_factory=list)
    tta: str | None = "unknown"


def _header(facts: ReadmeFacts) -> list[str]:
    import facesr

    made = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"Hand-in of run {facts.run_dir.name!r} for the {facts.edition} edition of the course, made by facesr-kit "
        f"{facesr.__version__} on {made}",
        "",
        f"Matriculation number: {facts.matric or BLANK.format(what='your matriculation number')}",
        f"CodaLab user name:    {facts.codalab or BLANK.format(what='your CodaLab user name')}",
    ]


def _model(facts: ReadmeFacts) -> list[str]:
    from facesr.editions import get_edition

    ed, config = get_edition(facts.edition), facts.config
    return [
        "Model",
        f"  generator            {config.get('generator')} {config.get('generator_args')}",
        f"  edition              {ed.year}: {ed.degradation_label} degradation, {ed.framework}",
        f"  parameters           {facts.params:,} ({ed.year} limit {ed.param_limit:,}, every parameter counted)",
        *_psnr_lines(facts.run_dir, facts.figures_dir),
        *submission_lines(facts.run_dir, next((f.source for f in facts.files if f.arcname == "submission.zip"), None)),
        _machine_line(facts.run_dir),
    ]


def _files(facts: ReadmeFacts) -> list[str]:
    files = facts.files
    width = max([len(f.arcname) for f in files if not f.arcname.startswith("code/")] + [10]) + 2
    lines = ["Files", f"  {'Readme.txt'.ljust(width)}this file"]
    lines += [f"  {f.arcname.ljust(width)}{f.description}" for f in files if not f.arcname.startswith("code/")]
    if any(f.arcname.startswith("code/") for f in files):
        lines.append(f"  {'code/'.ljust(width)}the kit's source: lib/facesr (library), notebooks (.py source, .ipynb)")
    return lines


def _missing(facts: ReadmeFacts) -> list[str]:
    if not facts.missing:
        return []
    return ["Missing (required by the course; make them, then make this bundle again)",
            *(f"  {item}: {how}" for item, how in facts.missing)]


def _libraries(facts: ReadmeFacts) -> list[str]:
    lines = ["Third-party libraries (the versions installed when this bundle was made)",
             f"  Python {platform.python_version()}"]
    return lines + [f"  {dist} {version}" for dist, version in library_versions(uses_spandrel(facts.net))]


def _how_to_run(facts: ReadmeFacts) -> list[str]:
    config, name = facts.config, facts.run_dir.name
    data = str(config.get("data_root") or "data/FFHQ")
    runs = Path(str(config.get("runs_dir") or "checkpoints")) / name
    tta = f" --tta {facts.tta}" if facts.tta in ("hflip", "x8") else ""
    edition = f" --edition {facts.edition}"
    return [
        "How to run (from the code/ folder; on Colab open the notebooks instead: they run the same functions)",
        "  python -m pip install -r requirements.txt -e .",
        f"  # data: the course data root ({data}: train/GT, val/LQ, val/GT, test/LQ, test_real)",
        f"  {train_command(config)}",
        f"  python -m facesr evaluate {runs} --data {data}{edition}",
        f"  python -m facesr predict {runs} {data}/test/LQ {runs}/test_predictions --zip {runs}/submission.zip"
        f"{tta}{edition}",
        f"  python -m facesr predict {runs} {data}/test_real {runs}/test_real_predictions{tta}{edition}",
        f"  python -m facesr handin {runs} --out handin.zip --matric ID --codalab NAME --screenshot FILE{edition}",
        "  (add --tta hflip or --tta x8 to evaluate for the self-ensembles of the report's table)",
    ]


# The sections of Readme.txt in order, each separated by an empty line: add one here.
SECTIONS: list[Callable[[ReadmeFacts], list[str]]] = [_header, _model, _files, _missing, _libraries, _how_to_run]


def handin_readme(facts: ReadmeFacts) -> str:
    """The text of Readme.txt: the :data:`SECTIONS` filled from ``facts``."""
    parts = [section(facts) for section in SECTIONS]
    return "\n\n".join("\n".join(lines) for lines in parts if lines) + "\n"
