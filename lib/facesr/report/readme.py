"""The hand-in bundle's Readme.txt, filled from what the kit knows about the run.

The handout wants the matriculation number, the CodaLab user name, a description of the files, the
third-party libraries used and how to run the code. Names the kit cannot know stay as marked blanks.
"""

from __future__ import annotations

import ast
import datetime
import json
import math
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

BLANK = "<FILL IN: {what}>"
# Import names of the libraries the kit runs on (distribution names differ: cv2 is opencv-python...).
LIBRARIES = ("torch", "torchvision", "numpy", "cv2", "skimage", "PIL", "pandas", "matplotlib", "tqdm", "ipywidgets")
# What each figure or table is, by file-name prefix (the notebook that writes it).
FIGURE_NOTES = {
    "01_": "data exploration (notebook 01)",
    "02_": "the course degradation (notebook 02)",
    "03_": "SRGAN training: curves or val outputs (notebook 03)",
    "04_": "ESRGAN training: curves or val outputs (notebook 04)",
    "05_": "GAN fine-tune: curves or val outputs (notebook 05)",
    "07_": "in-budget run and its MSE finish: curves against the baseline, val PSNR (notebook 07)",
    "06_real_world": "every model's x4 output of the real-world LQ images (notebook 06)",
    "06_": "report figure (notebook 06)",
    "psnr_table": "val PSNR/SSIM of each run, plain and self-ensembled (notebook 06)",
    "param_table": "parameter counts against the 1,821,085 limit (notebook 06)",
    "machine_table": "the training machine of each run, from run_info.json (notebook 06)",
}
# Config fields that say where a run lives, not what it trains: the commands carry them as flags.
_LOCATION_FIELDS = ("name", "data_root", "runs_dir", "quick", "why")


@dataclass
class BundleFile:
    """One file of the bundle: where it is read from, its name in the zip, and its line in Readme.txt."""

    source: Path
    arcname: str
    description: str


def figure_description(name: str) -> str:
    """The Readme line of a file in the figures folder, from its name."""
    for prefix, text in FIGURE_NOTES.items():
        if name.startswith(prefix):
            return text
    return "report table" if name.endswith((".csv", ".md")) else "report figure"


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

    The named config the run started from (its name, else the one differing in fewest fields), in quick
    mode when the run was; every field that differs becomes ``--iters``, ``--init`` or ``--set``.

    Args:
        config: the run's config.json contents.
    """
    from facesr.config import get_config
    from facesr.config.named_configs import CONFIGS

    quick = bool(config.get("quick"))
    iters = {"iters": config["iters"]} if isinstance(config.get("iters"), int) else {}

    def named(base: str) -> dict:  # --iters stretches the lr schedule, so compare with it applied
        return get_config(base, quick=quick, **iters).to_dict()

    def differences(base: str) -> dict:
        ref = named(base)
        return {k: v for k, v in config.items() if k not in _LOCATION_FIELDS and k in ref and ref[k] != v}

    name = str(config.get("name", "srgan"))
    base = name if name in CONFIGS else min(CONFIGS, key=lambda c: len(differences(c)))
    diff, ref = differences(base), named(base)
    words = ["python", "-m", "facesr", "train", base]
    if name != base:
        words += ["--name", name]
    if quick:
        words.append("--quick")
    else:
        words += ["--data", str(config.get("data_root") or "data/FFHQ")]
    if config.get("runs_dir") and config["runs_dir"] != ref["runs_dir"]:
        words += ["--runs", str(config["runs_dir"])]
    if iters and iters["iters"] != get_config(base, quick=quick).iters:
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


def _machine_line(run_dir: Path) -> str:
    from facesr.report.tables import machine_table

    row = machine_table({run_dir.name: run_dir}).iloc[0]
    if pd.isna(row["iterations"]):
        return f"  training machine     {row['machine']}"
    speed = f", {row['iters_per_s']:.2f} it/s" if pd.notna(row["iters_per_s"]) else ""
    cuda = f", CUDA {row['cuda']}" if row["cuda"] else ""
    return (f"  training machine     {row['machine']}; torch {row['torch']}{cuda}, AMP {row['amp']}; "
            f"{row['wall_hours']:.2f} h for {row['iterations']:,} iterations{speed}")  # fmt: skip


def handin_readme(
    run_dir: Path,
    config: dict,
    net: object,
    params: int,
    files: Sequence[BundleFile],
    matric: str | None = None,
    codalab: str | None = None,
    figures_dir: Path | None = None,
    edition: int | None = None,
) -> str:
    """The text of Readme.txt for the bundle of ``run_dir``.

    Args:
        run_dir: the submitted run's folder.
        config: its config.json contents.
        net: its generator (for the libraries: spandrel only when it is a spandrel network).
        params: its parameter count (every parameter, as the handout counts them).
        files: the bundle's files (``code/`` gets one line for all).
        matric: the matriculation number (None: a marked blank).
        codalab: the CodaLab user name (None: a marked blank).
        figures_dir: the report's figures folder (for the PSNR table row of the run).
        edition: the course edition handed in for (None: the run's own, else the default).
    """
    import facesr
    from facesr.editions import choose_edition

    ed = choose_edition(edition, config.get("edition"))

    name, data = run_dir.name, str(config.get("data_root") or "data/FFHQ")
    runs = Path(str(config.get("runs_dir") or "checkpoints")) / name
    made = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Hand-in of run {name!r} for the {ed.year} edition of the course, made by facesr-kit "
        f"{facesr.__version__} on {made}",
        "",
        f"Matriculation number: {matric or BLANK.format(what='your matriculation number')}",
        f"CodaLab user name:    {codalab or BLANK.format(what='your CodaLab user name')}",
        "",
        "Model",
        f"  generator            {config.get('generator')} {config.get('generator_args')}",
        f"  edition              {ed.year}: {ed.degradation_label} degradation, {ed.framework}",
        f"  parameters           {params:,} ({ed.year} limit {ed.param_limit:,}, every parameter counted)",
        *_psnr_lines(run_dir, figures_dir),
        _machine_line(run_dir),
        "",
        "Files",
    ]
    width = max(len(f.arcname) for f in files if not f.arcname.startswith("code/")) + 2
    lines += [f"  {'Readme.txt'.ljust(width)}this file"]
    lines += [f"  {f.arcname.ljust(width)}{f.description}" for f in files if not f.arcname.startswith("code/")]
    if any(f.arcname.startswith("code/") for f in files):
        lines.append(f"  {'code/'.ljust(width)}the kit's source: lib/facesr (library), notebooks (.py source, .ipynb)")
    lines.append("  Not included, add it yourself: the screenshot of the CodaLab score.")
    lines += ["", "Third-party libraries (the versions installed when this bundle was made)",
              f"  Python {platform.python_version()}"]  # fmt: skip
    lines += [f"  {dist} {version}" for dist, version in library_versions(uses_spandrel(net))]
    lines += [
        "",
        "How to run (from the code/ folder; on Colab open the notebooks instead: they run the same functions)",
        "  python -m pip install -r requirements.txt -e .",
        f"  # data: the course data root ({data}: train/GT, val/LQ, val/GT, test/LQ, test_real)",
        f"  {train_command(config)}",
        f"  python -m facesr evaluate {runs} --data {data}",
        f"  python -m facesr predict {runs} {data}/test/LQ {runs}/test_predictions --zip {runs}/submission.zip",
        f"  python -m facesr predict {runs} {data}/test_real {runs}/test_real_predictions",
        f"  python -m facesr handin {runs} --out handin.zip --matric ID --codalab NAME",
        "  (add --tta hflip or --tta x8 to evaluate/predict for the self-ensembles of the report's table)",
        "",
    ]
    return "\n".join(lines)
