"""Inference: load a generator, upscale LQ images (optionally with self-ensemble), evaluate on val.

One code path serves every caller: :func:`facesr.inference.tta.run_net_variants` turns a float LQ batch into float SR
batches (plain, hflip or x8 self-ensemble, or several of them from the same forward passes);
:func:`upscale` (one image, notebooks), :func:`predict` (a folder, written as PNGs) and :func:`evaluate` /
:func:`evaluate_variants` (the val set, scored with PSNR/SSIM beside bicubic) all go through it.
The ``tta`` values (None, ``"hflip"``, ``"x8"``) and what each ensemble averages are :mod:`facesr.inference.tta`'s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from facesr.data.datasets import TestDataset
from facesr.data.images import list_images, read_image, write_png
from facesr.data.workers import iterate, make_loader
from facesr.errors import FacesrError
from facesr.inference.tta import oom_message, run_net, sr_uint8, tta_mode
from facesr.metrics import bicubic_upscale, psnr, ssim, tensor_to_uint8
from facesr.training.device import resolve_device
from facesr.training.memory import call_freeing_memory
from facesr.weights.checkpoints import checkpoint_file, read_generator


def _net_device(net: nn.Module) -> torch.device:
    param = next(iter(net.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


@contextlib.contextmanager
def _prepared(net: nn.Module, device: torch.device | None) -> Iterator[torch.device]:
    """Eval mode (and ``device`` when given) for the duration; the caller's net is restored after."""
    was_training, old_device = net.training, _net_device(net)
    device = old_device if device is None else device
    net.eval().to(device)
    try:
        yield device
    finally:
        net.train(was_training).to(old_device)


def upscale(net: nn.Module, lq_uint8: np.ndarray, tta: bool | str | None = None) -> np.ndarray:
    """Super-resolve one image on the device the net is on.

    Args:
        net: a generator (e.g. from :func:`load_generator`).
        lq_uint8: h x w x 3 uint8 RGB.
        tta: self-ensemble: None (plain), "hflip" or "x8" (True = "x8"); see :mod:`facesr.inference.tta`.

    Returns:
        4h x 4w x 3 uint8 RGB (for a x4 net).
    """
    is_rgb8 = isinstance(lq_uint8, np.ndarray) and lq_uint8.dtype == np.uint8 and lq_uint8.ndim == 3
    if not is_rgb8 or lq_uint8.shape[2] != 3:
        got = f"{lq_uint8.dtype} {lq_uint8.shape}" if isinstance(lq_uint8, np.ndarray) else type(lq_uint8)
        raise ValueError(f"upscale expects an HxWx3 uint8 RGB array, got {got}")
    return call_freeing_memory(_upscale, lambda err: oom_message(f"one {lq_uint8.shape[1]}x{lq_uint8.shape[0]} image"),
                               net, lq_uint8, tta)


def _upscale(net: nn.Module, lq_uint8: np.ndarray, tta: bool | str | None) -> np.ndarray:
    with _prepared(net, None) as device:
        lq = torch.from_numpy(np.ascontiguousarray(lq_uint8)).permute(2, 0, 1).float().div_(255)
        sr = run_net(net, lq.unsqueeze(0).to(device), tta)  # (1, 3, 4h, 4w)
    return tensor_to_uint8(sr)[0]


def _collate(items: list[dict]) -> list[dict]:
    # Keep the items as a list: LQ images of different sizes cannot be stacked (grouped in _iter_sr).
    return items


def _iter_sr(
    net: nn.Module,
    dataset: Dataset,
    ttas: Sequence[bool | str | None],
    batch_size: int,
    device: str | torch.device | None,
    desc: str,
) -> Iterator[tuple[str, tuple[np.ndarray, ...]]]:
    """Yield (LQ file name, one SR uint8 image per entry of ``ttas``) for every item of a TestDataset,
    batched, with a progress bar (see :func:`facesr.inference.tta.run_net_variants`)."""
    if batch_size < 1:
        raise FacesrError(f"batch_size must be at least 1, got {batch_size}")
    dev = resolve_device(device, verbose=False)  # the card's kernels checked (e.g. a V100 under CUDA 12.8+)
    workers = 2 if dev.type == "cuda" else 0  # decode PNGs while the GPU works
    loader = make_loader(dataset, workers, batch_size=batch_size, shuffle=False, collate_fn=_collate)
    with _prepared(net, dev), tqdm(total=len(dataset), desc=desc, unit="img") as bar:
        for items in iterate(loader, f"the images of {getattr(dataset, 'lq_dir', desc)}"):
            by_size: dict[tuple[int, ...], list[int]] = {}  # LQ images of one size go through together
            for i, item in enumerate(items):
                by_size.setdefault(tuple(item["lq"].shape), []).append(i)
            sr_images: list[tuple[np.ndarray, ...]] = [()] * len(items)
            for idx in by_size.values():
                lq = torch.stack([items[i]["lq"] for i in idx]).to(dev, non_blocking=True)  # (B, 3, h, w)
                batches = sr_uint8(net, lq, ttas)  # B x 4h x 4w x 3 each
                del lq
                for j, i in enumerate(idx):
                    sr_images[i] = tuple(batch[j] for batch in batches)
            for item, imgs in zip(items, sr_images, strict=True):  # in the order of the LQ files
                yield item["name"], imgs
            bar.update(len(items))


def png_name(name: str) -> str:
    """The file name of the SR PNG of LQ file ``name`` (its stem + ``.png``), in predict and the zip check."""
    return Path(name).stem + ".png"


def predict(
    net: nn.Module,
    lq_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    tta: bool | str | None = None,
    batch_size: int = 4,
    device: str | torch.device | None = None,
) -> list[Path]:
    """Write one SR PNG per LQ image of ``lq_dir`` into ``out_dir`` under the same name (``.png``).

    Files already in ``out_dir`` stay unless an output replaces them by name; every PNG is written
    atomically (:mod:`facesr.atomic`). Runs on the GPU when there is one (``device`` overrides) and gives the net
    back on the device and in the mode it came in.

    Args:
        net: the generator.
        lq_dir: folder of LQ images (128x128 for the course data).
        out_dir: folder for the SR PNGs (created if missing; must not be ``lq_dir``).
        tta: self-ensemble: None (plain), "hflip" (2x the time) or "x8" (8x; True = "x8").
        batch_size: images per forward pass.
        device: e.g. "cpu" or "cuda"; default CUDA when available.

    Returns:
        The written paths, in the order of the LQ files.
    """
    dataset = TestDataset(lq_dir)  # FacesrError naming the folder when it is missing or holds no images
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FacesrError(f"output folder {out_dir} is a file; choose a folder for the SR images")
    if out_dir.exists() and out_dir.resolve() == dataset.lq_dir.resolve():
        raise FacesrError(
            f"output folder {out_dir} is the LQ folder; choose another folder for the SR images"
        )
    return call_freeing_memory(_predict, lambda err: oom_message(f"the images of {dataset.lq_dir}"), net, dataset,
                               out_dir, tta, batch_size, device)


def _predict(net: nn.Module, dataset: TestDataset, out_dir: Path, tta: bool | str | None, batch_size: int,
             device: str | torch.device | None) -> list[Path]:
    paths: list[Path] = []
    stream = _iter_sr(net, dataset, (tta,), batch_size, device, desc="predict")
    with contextlib.closing(stream):  # gives the net back at once, even when a write fails
        for name, (img,) in stream:
            path = out_dir / png_name(name)  # write_png makes the folder with the first PNG
            write_png(path, img)  # atomic: no half-written PNG remains
            paths.append(path)
    return paths


# ----------------------------------------------------------------------------- evaluation


def _val_pairs(data_root: Path) -> tuple[Path, dict[str, Path], dict[str, Path]]:
    """val/LQ folder, {stem: LQ path}, {stem: GT path}; FacesrError on a missing folder or mismatch."""
    lq_dir, gt_dir = data_root / "val" / "LQ", data_root / "val" / "GT"
    for folder in (lq_dir, gt_dir):
        if not folder.is_dir():
            raise FacesrError(
                f"{folder} not found; pass the data root in the course layout (val/LQ and val/GT inside)"
            )
    lq = {p.stem: p for p in list_images(lq_dir)}
    gt = {p.stem: p for p in list_images(gt_dir)}
    if not gt:
        raise FacesrError(f"no images in {gt_dir}")
    if set(lq) != set(gt):
        only_lq, only_gt = sorted(set(lq) - set(gt)), sorted(set(gt) - set(lq))
        raise FacesrError(
            f"val/LQ and val/GT in {data_root} do not match: only in LQ {only_lq[:5]}, only in GT {only_gt[:5]}"
        )
    return lq_dir, lq, gt


def _read_sr_folder(sr_dir: Path, stems: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (file name, SR image) from a folder of SR images, one per val stem."""
    if not sr_dir.is_dir():
        raise FacesrError(f"SR folder {sr_dir} does not exist; pass a generator or a folder of SR PNGs")
    sr_paths = {p.stem: p for p in list_images(sr_dir)}
    missing = [stem for stem in stems if stem not in sr_paths]
    if missing:
        raise FacesrError(f"{len(missing)} val images missing in {sr_dir}, e.g. {missing[:5]}")
    for stem in stems:
        yield sr_paths[stem].name, read_image(sr_paths[stem])


def evaluate(
    net_or_sr_dir: nn.Module | str | os.PathLike, data_root: str | os.PathLike, tta: bool | str | None = None,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """PSNR/SSIM (RGB, 0-255, no border crop) per val image and their mean, beside bicubic.

    Args:
        net_or_sr_dir: a generator, or a folder of SR PNGs named like val/GT (then ``tta`` must be None).
        data_root: data root holding val/LQ and val/GT.
        tta: self-ensemble for a net: None (plain), "hflip" or "x8" (True = "x8").
        device: where a net runs, e.g. "cpu" or "cuda"; default CUDA when available.

    Returns:
        DataFrame with columns name, psnr, ssim, bicubic_psnr, bicubic_ssim; one row per image
        (sorted by name) and a last row named "mean". A PSNR of an image identical to its GT is inf,
        and a mean over values holding inf is inf.
    """
    return evaluate_variants(net_or_sr_dir, data_root, ttas=(tta,), device=device)[tta]


def evaluate_variants(
    net_or_sr_dir: nn.Module | str | os.PathLike,
    data_root: str | os.PathLike,
    ttas: Sequence[bool | str | None] = (None, "hflip", "x8"),
    device: str | torch.device | None = None,
) -> dict[bool | str | None, pd.DataFrame]:
    """:func:`evaluate` for each setting of ``tta`` in ``ttas`` from one pass over the val set, keyed as given.

    Every LQ, GT and bicubic image is read or computed once, and the ensembles share their forward
    passes (see :func:`facesr.inference.tta.run_net_variants`), so ``{None: plain, "hflip": ..., "x8": ...}`` holds
    exactly the numbers of ``evaluate(net, data_root, tta=...)`` for each. Values naming the same ensemble
    (False and None, True and "x8") are scored once, under the first of them.
    """
    modes = {tta_mode(t): t for t in reversed(list(ttas))}  # the first spelling of each ensemble wins
    ttas = tuple(dict.fromkeys(modes[tta_mode(t)] for t in ttas))
    if not ttas:
        raise FacesrError("ttas is empty; pass e.g. (None,), (None, 'hflip') or (None, 'hflip', 'x8')")
    data_root = Path(data_root)
    return call_freeing_memory(_evaluate, lambda err: oom_message(f"the val images of {data_root}"), net_or_sr_dir,
                               data_root, ttas, device)


def _evaluate(net_or_sr_dir: nn.Module | str | os.PathLike, data_root: Path, ttas: tuple,
              device: str | torch.device | None) -> dict[bool | str | None, pd.DataFrame]:
    lq_dir, lq_paths, gt_paths = _val_pairs(data_root)
    if isinstance(net_or_sr_dir, nn.Module):
        stream = _iter_sr(net_or_sr_dir, TestDataset(lq_dir), ttas, 4, device, "evaluate")
    elif any(tta_mode(t) for t in ttas):
        raise FacesrError(f"tta needs a network, but {Path(net_or_sr_dir)} is a folder of SR images")
    else:
        stream = ((name, (sr,)) for name, sr in _read_sr_folder(Path(net_or_sr_dir), sorted(gt_paths)))

    rows: dict[bool | str | None, list[dict]] = {tta: [] for tta in ttas}
    with contextlib.closing(stream):
        for name, srs in stream:
            stem = Path(name).stem
            gt = read_image(gt_paths[stem])
            for sr in srs:
                if sr.shape != gt.shape:
                    raise FacesrError(
                        f"SR image {name} is {sr.shape[1]}x{sr.shape[0]}, its GT {gt.shape[1]}x{gt.shape[0]}"
                    )
            bic = bicubic_upscale(read_image(lq_paths[stem]))
            bicubic = {"bicubic_psnr": psnr(bic, gt), "bicubic_ssim": ssim(bic, gt)}
            for tta, sr in zip(ttas, srs, strict=True):
                scores = {"psnr": psnr(sr, gt), "ssim": ssim(sr, gt)}
                rows[tta].append({"name": gt_paths[stem].name, **scores, **bicubic})
    return {tta: _with_mean(rows[tta]) for tta in ttas}


def _with_mean(rows: list[dict]) -> pd.DataFrame:
    """The per-image rows sorted by name, with a last row "mean" (a mean over values holding inf is inf)."""
    table = pd.DataFrame(rows, columns=["name", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim"])
    table = table.sort_values("name", ignore_index=True)
    mean = {"name": "mean", **{c: float(np.mean(table[c].to_numpy(float))) for c in table.columns[1:]}}
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def evaluation_summary(df: pd.DataFrame, edition: int | str | None = None,
                       runs_dir: str | os.PathLike | None = None) -> str:
    """A few printable lines: per-image table (when short), model vs bicubic means, worst and best images, and
    the test PSNR the mean val PSNR leads to expect (:func:`facesr.inference.submissions.expected_test`).

    PSNR has 4 decimals throughout: the leaderboard shows 10, and submissions differ in the third.

    Args:
        df: a table of :func:`evaluate` (per-image rows and a last "mean" row).
        edition: whose published val/test pairs give the expected test range (None: ``FACESR_EDITION``, else
            2022).
        runs_dir: the folder of run folders whose ``submissions.csv`` adds the student's own scored pairs.
    """
    from facesr.inference.submissions import expected_test

    images = df[df["name"] != "mean"]
    mean = (
        df[df["name"] == "mean"].iloc[0] if (df["name"] == "mean").any() else images.mean(numeric_only=True)
    )
    lines = []
    if len(images) <= 20:
        lines.append(images.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        lines.append("")
    d_psnr, d_ssim = mean["psnr"] - mean["bicubic_psnr"], mean["ssim"] - mean["bicubic_ssim"]
    lines += [
        f"{len(images)} val images      PSNR (dB)    SSIM",
        f"  model             {mean['psnr']:9.4f}  {mean['ssim']:.4f}",
        f"  bicubic           {mean['bicubic_psnr']:9.4f}  {mean['bicubic_ssim']:.4f}",
        f"  gain over bicubic {d_psnr:+9.4f}  {d_ssim:+.4f}",
    ]
    if len(images):
        worst, best = images.loc[images["psnr"].idxmin()], images.loc[images["psnr"].idxmax()]
        lines.append(f"  worst image: {worst['name']} ({worst['psnr']:.4f} dB)")
        lines.append(f"  best image:  {best['name']} ({best['psnr']:.4f} dB)")
    lines.append(f"  {expected_test(float(mean['psnr']), edition, runs_dir)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- loading


def load_generator(run_or_ckpt: str | os.PathLike, trust: bool = False) -> nn.Module:
    """Build and load a generator from a run folder or a weights file (kit, foreign or safetensors).

    A run folder gives the EMA weights of ``best.pt`` (else ``latest.pt``); a kit checkpoint is rebuilt
    from its ``config`` (``generator``, ``generator_args``), a safetensors file from ``python -m facesr
    export`` from its metadata; MMEditing 0.x, BasicSR/Real-ESRGAN and original-ESRGAN files are
    recognised from their key names and shapes (MSRResNet or RRDBNet), anything else by spandrel
    (``facesr.models.zoo``), so ``count_parameters(net)`` shows any SR checkpoint against ``PARAM_LIMIT``.
    Files are read without running code from them (see :func:`facesr.weights.checkpoints.load_checkpoint`).

    Args:
        run_or_ckpt: A run folder or a checkpoint file.
        trust: Unpickle the file in full, which runs code from it; only for a file from a trusted source
            that a plain load refuses.

    Returns:
        The generator in eval mode on the CPU.
    """
    return read_generator(checkpoint_file(run_or_ckpt), trust=trust).net
