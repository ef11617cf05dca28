"""The report's tables: best val PSNR (plain and self-ensembled), parameters, training machines; CSV + Markdown.

PSNR is shown with 4 decimals everywhere: the leaderboard shows 10 and submissions differ in the third.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facesr.errors import FacesrError
from facesr.report.manifest import record as record_saved
from facesr.report.runs import read_run_info, run_best_validation
from facesr.report.style import model_label

# The self-ensembles the PSNR table scores beside the plain output (see facesr.inference.tta), as column suffixes.
ENSEMBLES: tuple[str, ...] = ("hflip", "x8")


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


def markdown_table(df: pd.DataFrame, floatfmt: str | Mapping[str, str] | None = None) -> str:
    """A GitHub Markdown table of ``df`` (no index); numeric columns right-aligned.

    Args:
        df: the table.
        floatfmt: the format of floats, or ``{column: format}`` (other columns ``.4f``); None takes the
            table's own ``df.attrs["floatfmt"]``, else ``.4f``. Integers get thousands separators,
            booleans yes/no, NaN an empty cell.
    """
    floatfmt = df.attrs.get("floatfmt", ".4f") if floatfmt is None else floatfmt
    formats = {str(c): (floatfmt.get(str(c), ".4f") if isinstance(floatfmt, Mapping) else floatfmt)
               for c in df.columns}  # fmt: skip
    header = [str(c) for c in df.columns]
    rows = [[_format_cell(v, formats[h]) for v, h in zip(row, header, strict=True)]
            for row in df.itertuples(index=False, name=None)]  # fmt: skip
    widths = [max([len(h), 3, *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric, strict=True)]
    return "\n".join([line(header), line(rule), *(line(r) for r in rows)]) + "\n"


def save_table(
    df: pd.DataFrame, figures_dir: str | os.PathLike, name: str, floatfmt: str | Mapping[str, str] | None = None
) -> tuple[Path, Path]:
    """Write ``df`` as ``figures_dir/name.csv`` (full precision) and ``figures_dir/name.md``; return both paths.

    Args:
        df: the table.
        figures_dir: the folder (created if missing).
        name: the file stem.
        floatfmt: float format(s) of the Markdown file, as in :func:`markdown_table`.
    """
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{name}.csv", folder / f"{name}.md"
    df.to_csv(csv_path, index=False)
    md_path.write_text(markdown_table(df, floatfmt), encoding="utf-8")
    record_saved(folder, [csv_path, md_path])  # the manifest beside the tables (facesr.report.manifest)
    return csv_path, md_path


def val_subset(data_root: str | os.PathLike, n: int, folder: str | os.PathLike) -> Path:
    """Copy the first ``n`` val pairs of ``data_root`` to ``folder/val/{LQ,GT}`` (a data root to score on).

    Args:
        data_root: data root with val/LQ and val/GT.
        n: how many pairs (in name order).
        folder: the new data root.
    """
    from facesr.data.sample import copy_data_subset

    return copy_data_subset(data_root, folder, {"val/LQ": n, "val/GT": n})


def _run_row(
    name: str, run_dir: Path, data_root: str | os.PathLike, tta: bool, x8_root: Path | None, trust: bool,
    edition: int | None,
) -> tuple[dict, dict]:
    """(table row of one run, its bicubic scores): one pass over the val set, x8 over ``x8_root``'s if given."""
    from facesr.editions import choose_edition, run_edition
    from facesr.inference.predict import evaluate_variants, load_generator
    from facesr.models import count_parameters

    net_g = load_generator(run_dir, trust=trust)
    limit = choose_edition(edition, run_edition(run_dir), what=f"run {run_dir.name}").param_limit
    # one pass gives every table: the plain output is the ensembles' identity pass
    ttas = (None, *(e for e in ENSEMBLES if e != "x8" or x8_root is None)) if tta else (None,)
    tables = evaluate_variants(net_g, data_root, ttas=ttas)
    if tta and x8_root is not None:
        tables["x8"] = evaluate_variants(net_g, x8_root, ttas=("x8",))["x8"]
    per_image = tables[None].set_index("name")
    plain = per_image.loc["mean"]
    n = count_parameters(net_g)
    row: dict[str, object] = {
        "model": model_label(name), "run": name, "params": n, "within_limit": n <= limit,
        "best_iter": run_best_validation(run_dir)["iter"],
        "images": len(per_image) - 1,  # said in the table: a limit scores a subset
        "psnr": float(plain["psnr"]), "ssim": float(plain["ssim"]),
    }  # fmt: skip
    for ens in ENSEMBLES if tta else ():
        mean = tables[ens].set_index("name").loc["mean"]
        row.update({f"psnr_{ens}": float(mean["psnr"]), f"ssim_{ens}": float(mean["ssim"])})
    if tta:
        row["images_x8"] = len(tables["x8"]) - 1  # fewer than images when x8_limit cuts it short
    return row, {"psnr": float(plain["bicubic_psnr"]), "ssim": float(plain["bicubic_ssim"])}


def psnr_table(
    runs: Mapping[str, Path],
    data_root: str | os.PathLike,
    tta: bool = True,
    limit: int | None = None,
    verbose: bool = True,
    x8_limit: int | None = None,
    trust: bool = False,
    edition: int | None = None,
) -> pd.DataFrame:
    """The best-PSNR table: val PSNR/SSIM of each run's best checkpoint, plain and self-ensembled.

    One row per run plus a first ``bicubic`` row; columns model, run, params, within_limit, best_iter,
    images (val images scored plain and hflip), psnr, ssim, and with ``tta`` psnr_hflip, ssim_hflip,
    images_x8 (val images scored x8; empty for bicubic), psnr_x8, ssim_x8. Scored with
    :func:`facesr.inference.predict.evaluate_variants` (RGB, 0-255, no border crop): one pass per run over the val
    images (all, or the first ``limit``) gives plain, hflip and x8; with ``x8_limit`` below their count it
    gives plain and hflip, and a second pass over the first ``x8_limit`` images gives x8.

    Args:
        runs: ``{run name: run folder}``.
        data_root: data root with val/LQ and val/GT.
        tta: add the hflip and x8 self-ensemble columns.
        limit: score the first ``limit`` val pairs only, in every column (None or 0: all).
        verbose: print which run is being scored.
        x8_limit: score x8 on the first ``x8_limit`` val pairs only (None or 0: all); plain and hflip still
            score every image. Quick mode: x8 of a 512x512 output takes seconds per image on a CPU.
        trust: unpickle each run's checkpoint in full, which runs code from it (only for trusted files).
        edition: whose parameter limit ``within_limit`` applies (None: each run's own, else the default).
    """
    import tempfile

    from facesr.data.images import list_images

    if limit:
        with tempfile.TemporaryDirectory(prefix="facesr-val-") as tmp:
            subset = val_subset(data_root, limit, tmp)
            if verbose:
                print(f"scoring the first {limit} val images only (limit={limit})")
            return psnr_table(runs, subset, tta=tta, verbose=verbose, x8_limit=x8_limit, trust=trust, edition=edition)
    n_val = len(list_images(Path(data_root) / "val" / "LQ"))
    rows: list[dict[str, object]] = []
    bicubic: dict[str, float] | None = None  # from the first run's pass, else computed below
    with tempfile.TemporaryDirectory(prefix="facesr-val-x8-") as tmp:
        x8_root = val_subset(data_root, x8_limit, tmp) if tta and runs and x8_limit and x8_limit < n_val else None
        if verbose and x8_root is not None:
            print(f"x8 self-ensemble on the first {x8_limit} of {n_val} val images only (x8_limit={x8_limit})")
        for name, run_dir in runs.items():
            if verbose:
                print(f"evaluating {name} ({run_dir}) ...", flush=True)
            row, bicubic = _run_row(name, Path(run_dir), data_root, tta, x8_root, trust, edition)
            rows.append(row)
    if bicubic is None:  # no run at all: the baseline alone still gives the table its first row
        bicubic = bicubic_scores(data_root)
    first = {"model": model_label("bicubic"), "run": "bicubic", "params": 0, "within_limit": True,
             "best_iter": math.nan, "images": n_val, **bicubic}  # fmt: skip
    if tta:
        first.update({"psnr_hflip": math.nan, "ssim_hflip": math.nan, "images_x8": math.nan,
                      "psnr_x8": math.nan, "ssim_x8": math.nan})  # fmt: skip
    table = pd.DataFrame([first, *rows], columns=list(first))
    for col in ("best_iter", "images_x8")[: 2 if tta else 1]:
        table[col] = table[col].astype("Int64")  # integers, empty for bicubic
    return table


def bicubic_scores(data_root: str | os.PathLike) -> dict[str, float]:
    """Mean val PSNR/SSIM of OpenCV bicubic x4, the baseline of every table: ``{"psnr", "ssim"}``."""
    from facesr.data.images import list_images, read_image
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


def _psnr_columns(table: pd.DataFrame) -> list[str]:
    """The PSNR columns of a :func:`psnr_table` that every run has, over the images plain scored (plain first).

    An ensemble scored on fewer images (``images_x8`` below ``images``: x8 limited in quick mode) is left
    out: its mean over other images does not compare with the plain mean.
    """
    runs = table[table["run"] != "bicubic"]

    def same_images(col: str) -> bool:
        count = f"images_{col.removeprefix('psnr_')}"  # images_x8; plain and hflip score ``images``
        return count not in runs.columns or bool((runs[count].astype(float) == runs["images"].astype(float)).all())

    cols = ["psnr", *(f"psnr_{e}" for e in ENSEMBLES)]
    return [c for c in cols if c in runs.columns and runs[c].notna().all() and same_images(c)]


def submission_run(table: pd.DataFrame) -> str | None:
    """The in-budget run with the best val PSNR in a :func:`psnr_table`; None if none fits.

    Plain and every ensemble that every run has on the same images count (see :func:`best_tta`).
    """
    fits = table[(table["run"] != "bicubic") & table["within_limit"].astype(bool)]
    if fits.empty:
        return None
    best = fits[_psnr_columns(table)].max(axis=1)
    return str(fits.loc[best.idxmax(), "run"])


def best_tta(table: pd.DataFrame, run: str) -> str | None:
    """The self-ensemble (None, "hflip" or "x8") that gave ``run`` its best val PSNR in a :func:`psnr_table`.

    Only ensembles that every run has, scored on the images plain scored, compete (x8 limited to fewer does not).

    Args:
        table: the PSNR table.
        run: a run in it.
    """
    rows = table[table["run"] == run]
    if rows.empty:
        raise FacesrError(f"run {run!r} is not in the PSNR table (runs: {', '.join(map(str, table['run']))})")
    scores = rows.iloc[0][_psnr_columns(table)].astype(float)
    col = str(scores.idxmax())
    return None if col == "psnr" else col.removeprefix("psnr_")


def _machine(info: Mapping) -> str:
    """``2 x NVIDIA A100 (40.0 GiB)`` or ``CPU (x86_64, 2 cores)``: what the report states as the machine."""
    if info.get("device") == "cuda":
        memory = f" ({info['gpu_memory_gib']} GiB)" if info.get("gpu_memory_gib") else ""
        return f"{info.get('gpu_count') or 1} x {info.get('gpu_name') or 'unknown GPU'}{memory}"
    return f"CPU ({info.get('cpu') or 'unknown'})"


def machine_table(runs: Mapping[str, Path]) -> pd.DataFrame:
    """Where each run trained, from its ``run_info.json``: one row per run, for the report's machine section.

    Columns: model, run, machine (GPU count x model, or the CPU; earlier sessions on other machines are
    listed after "also"), gpus, torch, cuda, amp (bf16/fp16/fp32), iterations, wall_hours, iters_per_s.
    A run without the file (or with an unreadable one) gets a row saying so instead of numbers.

    Args:
        runs: ``{run name: run folder}``.
    """
    rows = []
    for name, run_dir in runs.items():
        row: dict[str, object] = {"model": model_label(name), "run": name}
        try:
            info = read_run_info(run_dir)
        except FacesrError:  # the table still has its row; read_run_info's message names the file
            info, row["machine"] = None, "run_info.json is unreadable: state the machine by hand"
        if info is None:
            row.setdefault("machine", "no run_info.json (trained by an older kit): state the machine by hand")
            rows.append(row)
            continue
        machine = _machine(info)
        others = dict.fromkeys(_machine(s) for s in info.get("sessions", []) if _machine(s) != machine)
        row.update(
            machine=machine + (f"; also {', '.join(others)}" if others else ""),
            gpus=int(info.get("gpu_count") or 0), torch=info.get("torch"), cuda=info.get("cuda"),
            amp=info.get("amp_dtype"), iterations=info.get("iterations"), wall_hours=info.get("wall_hours"),
            iters_per_s=info.get("iters_per_s"), sessions=len(info.get("sessions", [])),
        )  # fmt: skip
        rows.append(row)
    columns = ["model", "run", "machine", "gpus", "torch", "cuda", "amp", "iterations", "wall_hours",
               "iters_per_s", "sessions"]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    for col in ("gpus", "iterations", "sessions"):
        table[col] = table[col].astype("Int64")  # integers, empty where run_info.json is missing
    table.attrs["floatfmt"] = {"wall_hours": ".2f", "iters_per_s": ".2f"}  # hours and speeds, not PSNR
    return table

