"""The PyTorch data sets of the course data: training GT (degraded on the fly), val pairs, test LQ.

The layout and its pairing rules are :mod:`facesr.data.check`'s; file I/O is :mod:`facesr.data.images`.
Nothing in this module ever writes into a data folder.
"""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from facesr.data.check import GT_SIZE, SCALE, name_list, not_x4, unpaired
from facesr.data.images import HOW_TO_GET_DATA, IMAGE_EXTENSIONS, list_images, read_image, scan_headers
from facesr.errors import FacesrError


def size_text(nbytes: int) -> str:
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
        degrade: make the LQ here with ``facesr.data.degradations.degrade``; False returns GT only
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
            print(f"caching {len(self.files)} GT images in RAM: about {size_text(nbytes)}")
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
            from facesr.data.degradations import degrade

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
        no_gt, no_lq = unpaired(lq, gt)
        if no_gt or no_lq:
            raise FacesrError(
                f"{base}: LQ and GT file names differ (LQ without GT: {name_list(no_gt) or 'none'}; "
                f"GT without LQ: {name_list(no_lq) or 'none'}); every val/LQ file needs a val/GT file of the same name"
            )
        self.names = [p.name for p in lq]
        lq_heads = scan_headers(lq, f"validation LQ in {self.lq_dir}")
        gt_heads = scan_headers([self.gt_dir / n for n in self.names], f"validation GT in {self.gt_dir}")
        wrong = not_x4(zip(self.names, lq_heads, gt_heads, strict=True))
        if wrong:
            name, q, g = wrong[0]
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
