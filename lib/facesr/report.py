"""Report tables and the files behind every figure: one colour per model, CSV + Markdown, PNG.

Notebook 06 regenerates the report from the run folders with these functions; notebooks 03-05 use
them for their own curves. The plotting functions live in :mod:`facesr.figures`.

Run folders are named after their config (``runs/srgan``, ``runs/esrgan``, ``runs/esrgan_gan``,
``runs/msrresnet20``), which is what :func:`facesr.training.train` writes by default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facesr.errors import FacesrError

# The models of the report, in the order every table and legend lists them.
MODEL_ORDER: tuple[str, ...] = ("srgan", "msrresnet20", "esrgan", "esrgan_gan")

# One colour per model, the same in every figure (tab10 colours, distinguishable when printed).
MODEL_COLORS: dict[str, str] = {
    "bicubic": "#7f7f7f",
    "srgan": "#1f77b4",
    "msrresnet20": "#2ca02c",
    "esrgan": "#d62728",
    "esrgan_gan": "#ff7f0e",
    "lq": "#8c564b",
    "gt": "#000000",
}
MODEL_LABELS: dict[str, str] = {
    "bicubic": "Bicubic",
    "srgan": "SRGAN (MSRResNet-16)",
    "msrresnet20": "MSRResNet-20",
    "esrgan": "ESRGAN (RRDBNet)",
    "esrgan_gan": "ESRGAN+GAN",
    "lq": "LQ",
    "gt": "GT",
}
# Where a missing run comes from (shown in the "run is missing" notes).
TRAINED_BY: dict[str, str] = {
    "srgan": "train notebook 03 first",
    "esrgan": "train notebook 04 first",
    "esrgan_gan": "train notebook 05 first",
    "msrresnet20": "train it with `python -m facesr train msrresnet20` first",
}
_FALLBACK_COLORS = ("#9467bd", "#e377c2", "#bcbd22", "#17becf", "#8c564b")


def model_color(name: str) -> str:
    """The colour of ``name`` in every figure (unknown names get a stable colour of their own)."""
    if name in MODEL_COLORS:
        return MODEL_COLORS[name]
    return _FALLBACK_COLORS[sum(map(ord, name)) % len(_FALLBACK_COLORS)]


def model_label(name: str) -> str:
    """The display name of a run or config (the run name itself when it is not one of the report's)."""
    return MODEL_LABELS.get(name, name)


# -------------------- Files


def save_figure(fig: object, figures_dir: str | os.PathLike, name: str, dpi: int = 150) -> Path:
    """Write ``fig`` as ``figures_dir/name.png`` (``dpi`` 150 reads well at report size) and return the path.

    The figure stays open, so a notebook still displays it.
    """
    path = Path(figures_dir) / f"{Path(name).stem}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    return path


def _format_cell(value: object, floatfmt: str) -> str:
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{value:,}"  # parameter counts and iterations read better with separators
    if isinstance(value, float | np.floating):
        return format(value, floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """A GitHub Markdown table of ``df`` (no index); floats as ``floatfmt``, integers with thousands
    separators, booleans as yes/no, NaN as an empty cell.

    Numeric columns are right-aligned. Written here because ``DataFrame.to_markdown`` needs tabulate.
    """
    header = [str(c) for c in df.columns]
    rows = [[_format_cell(v, floatfmt) for v in row] for row in df.itertuples(index=False, name=None)]
    widths = [max([len(h), 3, *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric, strict=True)]
    return "\n".join([line(header), line(rule), *(line(r) for r in rows)]) + "\n"


def save_table(
    df: pd.DataFrame, figures_dir: str | os.PathLike, name: str, floatfmt: str = ".4f"
) -> tuple[Path, Path]:
    """Write ``df`` as ``figures_dir/name.csv`` and ``figures_dir/name.md``; return both paths."""
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{name}.csv", folder / f"{name}.md"
    df.to_csv(csv_path, index=False)
    md_path.write_text(markdown_table(df, floatfmt), encoding="utf-8")
    return csv_path, md_path


# -------------------- Runs


def missing_run_note(name: str, runs_dir: str | os.PathLike) -> str:
    """The one-line note shown instead of a run's results, e.g. ``no esrgan_gan run in runs: ...``."""
    return f"no {name} run in {runs_dir}: {TRAINED_BY.get(name, f'train the {name} config first')}"


def find_runs(
    runs_dir: str | os.PathLike, names: Iterable[str] = MODEL_ORDER, verbose: bool = True
) -> dict[str, Path]:
    """The run folders of ``names`` under ``runs_dir`` that hold a checkpoint, in the order given.

    A missing run is skipped with a printed note (``verbose``) saying which notebook trains it.
    """
    from facesr.checkpoints import run_checkpoint

    runs_dir = Path(runs_dir)
    found: dict[str, Path] = {}
    for name in names:
        run_dir = runs_dir / name
        if run_checkpoint(run_dir) is not None:
            found[name] = run_dir
        elif verbose:
            print(missing_run_note(name, runs_dir))
    return found


def read_logs(runs: Mapping[str, Path]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """``{name: (training log, validation log)}`` of each run (see :func:`facesr.training.read_run_logs`)."""
    from facesr.training import read_run_logs

    return {name: read_run_logs(run_dir) for name, run_dir in runs.items()}


def iteration_column(df: pd.DataFrame) -> str:
    """The iteration column of a log table (``iter`` in the kit's logs)."""
    for col in ("iter", "iters", "iteration", "step"):
        if col in df.columns:
            return col
    raise FacesrError(f"log table has no iteration column (columns: {', '.join(map(str, df.columns))})")


def loss_columns(df: pd.DataFrame) -> list[str]:
    """The loss terms of a training log: numeric columns named ``loss*``, ``*_loss`` or ``l_*``."""
    names = [str(c) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    return [c for c in names if "loss" in c.lower() or c.startswith("l_")]


def metric_column(df: pd.DataFrame, metric: str = "psnr") -> str:
    """The column of ``metric`` (``psnr``/``ssim``) in a validation log (``psnr`` or ``val_psnr``)."""
    for col in df.columns:
        if str(col).lower() in (metric, f"val_{metric}"):
            return str(col)
    raise FacesrError(f"validation log has no {metric} column (columns: {', '.join(map(str, df.columns))})")


def best_validation(val: pd.DataFrame) -> dict[str, float]:
    """Best validation PSNR during training: ``{"iter", "psnr", "ssim"}`` (NaN when the log is empty)."""
    if val.empty:
        return {"iter": math.nan, "psnr": math.nan, "ssim": math.nan}
    p_col = metric_column(val, "psnr")
    row = val.loc[val[p_col].idxmax()]
    try:
        s = float(row[metric_column(val, "ssim")])
    except FacesrError:
        s = math.nan
    return {"iter": int(row[iteration_column(val)]), "psnr": float(row[p_col]), "ssim": s}


# -------------------- Tables


def val_subset(data_root: str | os.PathLike, n: int, folder: str | os.PathLike) -> Path:
    """Copy the first ``n`` val pairs of ``data_root`` to ``folder/val/{LQ,GT}`` (a data root to score on)."""
    import shutil

    from facesr.images import list_images

    src, dst = Path(data_root), Path(folder)
    lq_paths = list_images(src / "val" / "LQ")[:n]
    if not lq_paths:
        raise FacesrError(f"no val images in {src / 'val' / 'LQ'}; check the data root")
    for sub in ("LQ", "GT"):
        (dst / "val" / sub).mkdir(parents=True, exist_ok=True)
        for lq_path in lq_paths:
            shutil.copy2(src / "val" / sub / lq_path.name, dst / "val" / sub / lq_path.name)
    return dst


def psnr_table(
    runs: Mapping[str, Path],
    data_root: str | os.PathLike,
    tta: bool = True,
    limit: int | None = None,
    verbose: bool = True,
) -> pd.DataFrame:
    """The best-PSNR table: val PSNR/SSIM of each run's best checkpoint, with and without x8 self-ensemble.

    One row per run plus a first ``bicubic`` row; columns model, run, params, within_limit,
    best_iter, images (val images scored), psnr, ssim, and psnr_x8/ssim_x8 when ``tta``. Scored with
    :func:`facesr.infer.evaluate_variants` (RGB, 0-255, no border crop; one pass per run gives the plain
    and the x8 scores) on the val pairs of ``data_root``, or on the first ``limit`` of them
    (quick mode: x8 self-ensemble of a 512x512 output takes seconds per image on a CPU).
    """
    if limit:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="facesr-val-") as tmp:
            subset = val_subset(data_root, limit, tmp)
            if verbose:
                print(f"scoring the first {limit} val images only (limit={limit})")
            return psnr_table(runs, subset, tta=tta, limit=None, verbose=verbose)
    from facesr.images import list_images
    from facesr.infer import evaluate_variants, load_generator
    from facesr.models import PARAM_LIMIT, count_parameters

    rows: list[dict[str, object]] = []
    bicubic: dict[str, object] | None = None
    for name, run_dir in runs.items():
        if verbose:
            print(f"evaluating {name} ({run_dir}) ...", flush=True)
        net_g = load_generator(run_dir)
        # one pass over the val set gives both tables (the plain output is the x8 identity pass)
        tables = evaluate_variants(net_g, data_root, ttas=(False, True) if tta else (False,))
        per_image = tables[False].set_index("name")
        plain = per_image.loc["mean"]
        images = len(per_image) - 1  # said in the table: quick mode scores a subset
        n = count_parameters(net_g)
        row: dict[str, object] = {
            "model": model_label(name),
            "run": name,
            "params": n,
            "within_limit": n <= PARAM_LIMIT,
            "best_iter": _best_iter(run_dir),
            "images": images,
            "psnr": float(plain["psnr"]),
            "ssim": float(plain["ssim"]),
        }
        if tta:
            ens = tables[True].set_index("name").loc["mean"]
            row.update(psnr_x8=float(ens["psnr"]), ssim_x8=float(ens["ssim"]))
        rows.append(row)
        bicubic = {"psnr": float(plain["bicubic_psnr"]), "ssim": float(plain["bicubic_ssim"])}
    if bicubic is None:  # no run at all: the baseline alone still gives the table its first row
        bicubic = bicubic_scores(data_root)
        images = len(list_images(Path(data_root) / "val" / "LQ"))
    first = {"model": model_label("bicubic"), "run": "bicubic", "params": 0, "within_limit": True,
             "best_iter": math.nan, "images": images, **bicubic}
    if tta:
        first.update(psnr_x8=math.nan, ssim_x8=math.nan)
    table = pd.DataFrame([first, *rows])
    table["best_iter"] = table["best_iter"].astype("Int64")  # integers, empty for bicubic
    return table


def bicubic_scores(data_root: str | os.PathLike) -> dict[str, float]:
    """Mean val PSNR/SSIM of OpenCV bicubic x4, the baseline of every table: ``{"psnr", "ssim"}``."""
    from facesr.images import list_images, read_image
    from facesr.metrics import bicubic_upscale, psnr, ssim

    root = Path(data_root)
    p_values, s_values = [], []
    for lq_path in list_images(root / "val" / "LQ"):
        gt = read_image(root / "val" / "GT" / lq_path.name)
        sr = bicubic_upscale(read_image(lq_path), 4)
        p_values.append(psnr(sr, gt))
        s_values.append(ssim(sr, gt))
    if not p_values:
        raise FacesrError(f"no val images in {root / 'val' / 'LQ'}; check the data root")
    return {"psnr": math.fsum(p_values) / len(p_values), "ssim": math.fsum(s_values) / len(s_values)}


def _best_iter(run_dir: Path) -> float:
    from facesr.training import read_run_logs

    _, val = read_run_logs(run_dir)
    return best_validation(val)["iter"]


def parameter_budget_table() -> pd.DataFrame:
    """The report's parameter table, counted from the networks (built on the meta device: no memory).

    Rows: SRGAN = MSRResNet-16, ESRGAN = RRDBNet 64/23/32, ESRGAN with discriminator = RRDBNet +
    ModifiedVGG + VGG19 features[:35] (the perceptual network), and the in-budget MSRResNet-20 recipe.
    """
    import torch

    from facesr.models import (
        PARAM_LIMIT,
        ModifiedVGG,
        MSRResNet,
        RRDBNet,
        count_parameters,
        perceptual_vgg_params,
    )

    with torch.device("meta"):  # every parameter of these nets is trainable: count_parameters counts them all
        srgan, m20 = count_parameters(MSRResNet(num_blocks=16)), count_parameters(MSRResNet(num_blocks=20))
        rrdb, disc = count_parameters(RRDBNet()), count_parameters(ModifiedVGG(3, 64))
    vgg = perceptual_vgg_params()  # frozen in training, but still counted
    rows = [
        ("SRGAN", "MSRResNet-16", srgan),
        ("ESRGAN", "RRDBNet 64/23/32", rrdb),
        ("ESRGAN (discriminator)", "RRDBNet + ModifiedVGG + VGG19 features[:35]", rrdb + disc + vgg),
        ("In-budget recipe", "MSRResNet-20", m20),
    ]
    df = pd.DataFrame(rows, columns=["model", "networks", "params"])
    df["limit"] = PARAM_LIMIT
    # Only a generator is held to the limit; the GAN row counts everything trained or run in training.
    df["within_limit"] = [p <= PARAM_LIMIT for p in df["params"]]
    return df


def submission_run(table: pd.DataFrame) -> str | None:
    """The in-budget run with the best val PSNR in a :func:`psnr_table` (None when none fits)."""
    fits = table[(table["run"] != "bicubic") & table["within_limit"].astype(bool)]
    if fits.empty:
        return None
    col = "psnr_x8" if "psnr_x8" in fits.columns and fits["psnr_x8"].notna().all() else "psnr"
    return str(fits.loc[fits[col].idxmax(), "run"])


def over_budget_generator(runs: Mapping[str, object]) -> tuple[str, object]:
    """(description, generator) over the parameter limit: a trained run if one is, else the report's RRDBNet.

    ``runs`` maps run names to generators already loaded (e.g. notebook 06's ``NETS``: nothing is
    loaded again) or to run folders / checkpoints (loaded here). Used to show the submission check
    refusing it; a quick-mode RRDBNet (2 blocks) fits the limit, so the full-size RRDBNet 64/23/32
    (random weights, only its size matters) stands in then.
    """
    from torch import nn

    from facesr.infer import load_generator
    from facesr.models import PARAM_LIMIT, RRDBNet, count_parameters

    for name, run in runs.items():
        net_g = run if isinstance(run, nn.Module) else load_generator(run)
        if count_parameters(net_g) > PARAM_LIMIT:
            return f"run {name}", net_g
    return "RRDBNet 64/23/32 (random weights: only its size matters here)", RRDBNet()
