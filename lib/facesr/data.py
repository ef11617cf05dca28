"""The course data: its layout, the data-set checker and the PyTorch data sets (file I/O is facesr.images).

Layout under a data root (the course's ``data/FFHQ/``): ``train/GT`` (4000 GT, 512x512), ``val/LQ`` +
``val/GT`` (400 pairs, LQ 128x128), ``test/LQ`` (400 LQ); files ``00000.png``, ``00001.png``, ...
Optionally ``test_real/``: the real-world LQ images released with the test set (any size, no GT).
Nothing in this module ever writes into a data folder.
"""

from __future__ import annotations

import contextlib
import operator
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from facesr.errors import FacesrError
from facesr.images import (
    HOW_TO_GET_DATA,
    IMAGE_EXTENSIONS,
    list_images,
    probe_image,
    read_image,
    scan_headers,
)

LAYOUT = ("train/GT", "val/LQ", "val/GT", "test/LQ")
REAL_WORLD = "test_real"  # optional: the report shows predictions on these, the leaderboard never scores them
SCALE = 4
GT_SIZE = 512
LQ_SIZE = GT_SIZE // SCALE


def _names(files: Sequence[Path], limit: int = 5) -> str:
    shown = ", ".join(p.name for p in files[:limit])
    return shown + (f" and {len(files) - limit} more" if len(files) > limit else "")


def find_data_root(path: str | os.PathLike) -> Path:
    """The data root at ``path`` (or its single sub-folder in the course layout); FacesrError if none."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FacesrError(f"data root {root} does not exist; {HOW_TO_GET_DATA}")
    missing = [sub for sub in LAYOUT if not (root / sub).is_dir()]
    if not missing:
        return root
    # An archive unpacked one level too deep (root/FFHQ/train/...) is still found.
    inner = [d for d in sorted(root.iterdir()) if d.is_dir() and all((d / s).is_dir() for s in LAYOUT)]
    if len(inner) == 1:
        return inner[0]
    raise FacesrError(
        f"{root} is not a data root: missing folder(s) {', '.join(missing)}; {HOW_TO_GET_DATA}"
    )


def real_world_dir(root: str | os.PathLike) -> Path | None:
    """The data root's optional ``test_real/`` folder (real-world LQ, any size, no GT); None when it has none."""
    root = Path(root).expanduser()
    with contextlib.suppress(FacesrError):  # a folder holding test_real alone is fine: no course layout needed
        root = find_data_root(root)
    folder = root / REAL_WORLD
    return folder if folder.is_dir() else None


# ---------------------------------------------------------------------------------------------- checker


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found; ``str(report)`` is the printable report."""

    root: Path
    counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, dict[tuple[int, int], int]] = field(default_factory=dict)  # (height, width) -> count
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [f"data check of {self.root}"]
        for sub in LAYOUT:
            sizes = self.sizes.get(sub, {})
            shown = ", ".join(
                f"{w}x{h}" + (f" ({n})" if len(sizes) > 1 else "")
                for (h, w), n in Counter(sizes).most_common(3)
            )
            lines.append(f"  {sub:<9} {self.counts.get(sub, 0):>5} images  {shown}")
        if REAL_WORLD in self.counts:
            sizes = Counter(self.sizes.get(REAL_WORLD, {}))
            shown = ", ".join(f"{w}x{h}" for (h, w), _ in sizes.most_common(4))
            more = f" and {len(sizes) - 4} more sizes" if len(sizes) > 4 else ""
            lines.append(f"  {REAL_WORLD:<9} {self.counts[REAL_WORLD]:>5} images  {shown}{more} (real-world LQ, no GT)")
        else:
            lines.append(f"  {REAL_WORLD:<9}     - (optional real-world LQ folder, not present)")
        for title, items in (("errors", self.errors), ("warnings", self.warnings)):
            if items:
                lines.append(f"{title}:")
                lines += [f"  - {item}" for item in items]
        if self.errors:
            verdict = (
                f"FAILED: {len(self.errors)} error(s), {len(self.warnings)} warning(s); fix the errors above"
            )
        else:
            verdict = "OK" + (
                f" with {len(self.warnings)} warning(s)" if self.warnings else ": no problems found"
            )
        lines.append(f"verdict: {verdict}")
        return "\n".join(lines)


def check_dataset(root: str | os.PathLike, full_decode: bool = False) -> DatasetReport:
    """Check a data root in the course layout and report every problem at once (never raises on bad data).

    PNG files are checked chunk by chunk (every CRC, so truncated or damaged files are found) without
    decoding them, which keeps 4800 files to seconds; ``full_decode=True`` decodes every file instead,
    as other formats always are.
    """
    report = DatasetReport(Path(root).expanduser())
    if not report.root.is_dir():
        report.errors.append(f"data root {report.root} does not exist; {HOW_TO_GET_DATA}")
        return report
    files: dict[str, list[Path]] = {}
    for sub in LAYOUT:
        folder = report.root / sub
        report.counts[sub] = 0
        if not folder.is_dir():
            report.errors.append(f"missing folder {sub} ({folder}); {HOW_TO_GET_DATA}")
            continue
        files[sub] = list_images(folder)
        report.counts[sub] = len(files[sub])
        other = [
            p
            for p in folder.iterdir()
            if not p.name.startswith(".") and p.suffix.lower() not in IMAGE_EXTENSIONS
        ]
        if other:
            report.warnings.append(f"{sub}: {len(other)} non-image entries ignored ({_names(sorted(other))})")
        if not files[sub]:
            report.errors.append(f"folder {sub} is empty; it must hold the {sub.split('/')[1]} images")
    if (report.root / REAL_WORLD).is_dir():  # optional: reported when present, never an error when absent
        files[REAL_WORLD] = list_images(report.root / REAL_WORLD)
        report.counts[REAL_WORLD] = len(files[REAL_WORLD])
        if not files[REAL_WORLD]:
            report.warnings.append(f"{REAL_WORLD} is empty; put the real-world LQ images there or remove it")
    everything = [p for sub in files for p in files[sub]]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # cv2/zlib run outside the GIL
        results = pool.map(lambda p: probe_image(p, full_decode), everything)
        probed = dict(zip(everything, results, strict=True))
    for sub, paths in files.items():
        expected = GT_SIZE if sub.endswith("GT") else LQ_SIZE if sub != REAL_WORLD else None  # any size
        sizes: Counter[tuple[int, int]] = Counter()
        corrupt, wrong, converted = [], [], {"gray": [], "alpha": [], "16-bit": []}
        for p in paths:
            result = probed[p]
            if isinstance(result, str):
                corrupt.append(p)
                continue
            h, w, notes = result
            sizes[(h, w)] += 1
            if expected and (h, w) != (expected, expected):
                wrong.append((p, h, w))
            for note in notes:
                converted[note].append(p)
        report.sizes[sub] = dict(sizes)
        if corrupt:
            report.errors.append(f"{sub}: {len(corrupt)} corrupt or unreadable file(s): {_names(corrupt)}")
        if wrong:
            p, h, w = wrong[0]
            report.errors.append(
                f"{sub}: {len(wrong)} image(s) are not {expected}x{expected} (first: {p.name} is {w}x{h})"
            )
        for kind, bad in converted.items():
            if bad:
                report.warnings.append(
                    f"{sub}: {len(bad)} {kind} image(s) will be converted to 8-bit RGB: {_names(bad)}"
                )
    if "val/LQ" in files and "val/GT" in files:
        _check_pairs(report, files["val/LQ"], files["val/GT"], probed)
    return report


def _unpaired(lq: Sequence[Path], gt: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(LQ files without a GT of the same name, GT files without an LQ of the same name), in input order."""
    gt_names, lq_names = {p.name for p in gt}, {p.name for p in lq}
    return [p for p in lq if p.name not in gt_names], [p for p in gt if p.name not in lq_names]


def _not_x4(pairs: Iterable[tuple[Any, tuple, tuple]]) -> list[tuple[Any, tuple, tuple]]:
    """The ``(key, LQ header, GT header)`` triples whose GT (height, width) is not SCALE times the LQ's."""
    return [(key, q, g) for key, q, g in pairs if (g[0], g[1]) != (SCALE * q[0], SCALE * q[1])]


def _check_pairs(report: DatasetReport, lq: list[Path], gt: list[Path], probed: dict[Path, Any]) -> None:
    gt_by_name = {p.name: p for p in gt}
    no_gt, no_lq = _unpaired(lq, gt)
    if no_gt:
        report.errors.append(f"val: {len(no_gt)} LQ file(s) without a GT of the same name: {_names(no_gt)}")
    if no_lq:
        report.errors.append(f"val: {len(no_lq)} GT file(s) without an LQ of the same name: {_names(no_lq)}")
    headers = ((p, probed[p], probed.get(gt_by_name.get(p.name))) for p in lq)
    not_quarter = _not_x4((p, q, g) for p, q, g in headers if isinstance(q, tuple) and isinstance(g, tuple))
    if not_quarter:
        p, q, g = not_quarter[0]
        report.errors.append(
            f"val: {len(not_quarter)} LQ image(s) are not a quarter of their GT "
            f"(first: {p.name}, LQ {q[1]}x{q[0]}, GT {g[1]}x{g[0]})"
        )


# --------------------------------------------------------------------------------------------- datasets


def _size_text(nbytes: int) -> str:
    """4000 GT of 512x512x3 -> "3.1 GB"; small sets in MB so they do not read "0.0 GB"."""
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.1f} MB"


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """float32 HxWx3 -> (3, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def _in(path: str | os.PathLike, sub: str) -> Path:
    """``path`` itself, or ``path/sub`` when ``path`` is a data root."""
    path = Path(path).expanduser()
    return path / sub if (path / sub).is_dir() else path


def _nonempty(folder: Path) -> list[Path]:
    files = list_images(folder)
    if not files:
        raise FacesrError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); {HOW_TO_GET_DATA}")
    return files


class TrainDataset(Dataset):
    """GT images, degraded to LQ on the fly (course pipeline), with optional paired crop and flip.

    Args:
        gt_dir: the ``train/GT`` folder (a data root works too).
        gt_patch: GT crop size (multiple of 4; the LQ patch is gt_patch/4), or None for the full image.
        flip: horizontal flip of LQ and GT together with p=0.5.
        degrade: make the LQ here with ``facesr.degradations.degrade``; False returns GT only
            (the trainer then degrades on the GPU).
        settings: ``DegradationSettings`` or None for the course defaults.
        cache: decode every GT once into RAM (uint8), up front in the main process, so that forked
            DataLoader workers share it.
        seed: base seed; item ``i`` uses ``np.random.default_rng((seed, i))`` unless a
            ``(index, sample_seed)`` tuple is given. All randomness of an item comes from that generator,
            so batches do not depend on worker count or process.

    Items are ``{"gt", "lq" (when degrading), "name", "seed"}``; ``seed`` is the sample seed as an int64 tensor
    (the trainer's GPU degradation seeds its generator from it).
    """

    def __init__(
        self,
        gt_dir: str | os.PathLike,
        gt_patch: int | None = None,
        flip: bool = True,
        degrade: bool = True,
        settings: Any = None,
        cache: bool = False,
        seed: int = 0,
    ) -> None:
        self.gt_dir = _in(gt_dir, "train/GT")
        self.files = _nonempty(self.gt_dir)
        if gt_patch is not None:
            if not isinstance(gt_patch, (int, np.integer)) or gt_patch < SCALE or gt_patch % SCALE:
                raise FacesrError(f"gt_patch={gt_patch!r} must be a positive multiple of {SCALE} (or None)")
            gt_patch = int(gt_patch)
        self.gt_patch, self.flip, self.degrade = gt_patch, flip, degrade
        self.settings, self.seed = settings, seed
        headers = scan_headers(self.files, f"training GT in {self.gt_dir}")
        need = (GT_SIZE, GT_SIZE) if degrade else None
        for p, (h, w, _) in zip(self.files, headers, strict=True):
            if need and (h, w) != need:
                raise FacesrError(f"{p} is {w}x{h}; training GT must be {GT_SIZE}x{GT_SIZE} (see check-data)")
            if gt_patch and min(h, w) < gt_patch:
                raise FacesrError(f"{p} is {w}x{h}, smaller than gt_patch={gt_patch}")
        self._cache: list[np.ndarray] | None = None
        if cache:
            from tqdm.auto import tqdm

            nbytes = sum(h * w * 3 for h, w, _ in headers)
            print(f"caching {len(self.files)} GT images in RAM: about {_size_text(nbytes)}")
            self._cache = [read_image(p) for p in tqdm(self.files, desc="caching GT", unit="img")]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: int | tuple[int, Any]) -> dict[str, Any]:
        index = operator.index(key[0] if isinstance(key, tuple) else key)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} training images")
        index %= len(self)
        sample_seed = key[1] if isinstance(key, tuple) else (self.seed, index)
        rng = np.random.default_rng(sample_seed)
        gt = self._cache[index] if self._cache is not None else read_image(self.files[index])
        h, w = gt.shape[:2]
        # Crop and flip are drawn before the degradation, so they are the same with degrade on or off.
        top = left = 0
        if self.gt_patch:
            top = SCALE * int(rng.integers(0, (h - self.gt_patch) // SCALE + 1))
            left = SCALE * int(rng.integers(0, (w - self.gt_patch) // SCALE + 1))
        flip = bool(rng.random() < 0.5) and self.flip  # always drawn: flip=False changes nothing else
        gt_f = gt.astype(np.float32) / 255.0
        lq = None
        if self.degrade:
            from facesr.degradations import degrade

            lq = degrade(gt_f, rng, settings=self.settings)  # full 512 GT -> 128 LQ, then the paired crop
        if self.gt_patch:
            p = self.gt_patch
            gt_f = gt_f[top : top + p, left : left + p]
            if lq is not None:
                lq = lq[top // SCALE : (top + p) // SCALE, left // SCALE : (left + p) // SCALE]
        if flip:
            gt_f = gt_f[:, ::-1]
            lq = None if lq is None else lq[:, ::-1]
        item: dict[str, Any] = {"gt": _to_tensor(gt_f), "name": self.files[index].name,
                                "seed": torch.tensor(sample_seed, dtype=torch.int64)}
        if lq is not None:
            item["lq"] = _to_tensor(np.asarray(lq, dtype=np.float32))
        return item


class ValDataset(Dataset):
    """LQ/GT pairs of ``root/val/LQ`` and ``root/val/GT`` matched by file name -> {"lq", "gt", "name"}."""

    def __init__(self, root: str | os.PathLike) -> None:
        base = _in(root, "val")
        self.lq_dir, self.gt_dir = base / "LQ", base / "GT"
        lq, gt = _nonempty(self.lq_dir), _nonempty(self.gt_dir)
        no_gt, no_lq = _unpaired(lq, gt)
        if no_gt or no_lq:
            raise FacesrError(
                f"{base}: LQ and GT file names differ (LQ without GT: {_names(no_gt) or 'none'}; "
                f"GT without LQ: {_names(no_lq) or 'none'}); every val/LQ file needs a val/GT file of the same name"
            )
        self.names = [p.name for p in lq]
        lq_heads = scan_headers(lq, f"validation LQ in {self.lq_dir}")
        gt_heads = scan_headers([self.gt_dir / n for n in self.names], f"validation GT in {self.gt_dir}")
        not_x4 = _not_x4(zip(self.names, lq_heads, gt_heads, strict=True))
        if not_x4:
            name, q, g = not_x4[0]
            raise FacesrError(
                f"{self.lq_dir / name} is {q[1]}x{q[0]} but its GT is {g[1]}x{g[0]}, not x{SCALE}"
            )

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict[str, Any]:
        name = self.names[index]
        lq, gt = read_image(self.lq_dir / name), read_image(self.gt_dir / name)
        return {
            "lq": _to_tensor(lq.astype(np.float32) / 255.0),
            "gt": _to_tensor(gt.astype(np.float32) / 255.0),
            "name": name,
        }


class TestDataset(Dataset):
    """LQ images alone (``test/LQ``; a data root works too) -> {"lq", "name"}."""

    __test__ = False  # not a pytest test class

    def __init__(self, lq_dir: str | os.PathLike) -> None:
        self.lq_dir = _in(lq_dir, "test/LQ")
        self.files = _nonempty(self.lq_dir)
        self.names = [p.name for p in self.files]
        scan_headers(self.files, f"test LQ in {self.lq_dir}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq = read_image(self.files[index])
        return {"lq": _to_tensor(lq.astype(np.float32) / 255.0), "name": self.names[index]}
