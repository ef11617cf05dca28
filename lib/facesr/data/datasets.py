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
from facesr.data.images import (
    HOW_TO_GET_DATA,
    IMAGE_EXTENSIONS,
    chw_tensor,
    list_images,
    read_image,
    scan_headers,
)
from facesr.data.pairs import PairRecipe, worker_item
from facesr.errors import FacesrError


def size_text(nbytes: int) -> str:
    """4000 GT of 512x512x3 -> "3.1 GB"; small sets in MB so they do not read "0.0 GB"."""
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.1f} MB"



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
    """Training GT with the training pair made on the fly (:mod:`facesr.data.pairs`): crop, flip, degradation.

    Args:
        gt_dir: the ``train/GT`` folder (a data root works too).
        gt_patch: GT crop size (multiple of 4; the LQ patch is gt_patch/4), or None for the full image.
        flip: horizontal flip of LQ and GT together with p=0.5.
        degrade: make the pair here; False hands the full GT and the sample's draws (crop, flip, parameters,
            noise seed) over for :func:`facesr.data.pairs.pairs_on_device` (the trainer's CUDA path).
        settings: ``DegradationSettings`` of the course degradation, or None for the course's ranges.
        cache: decode every GT once into RAM (uint8), up front in the main process, so that forked
            DataLoader workers share it.
        seed: base seed; item ``i`` uses ``np.random.default_rng((seed, i))`` unless a
            ``(index, sample_seed)`` tuple is given. All randomness of an item comes from that generator,
            so batches do not depend on worker count, process or device.
        degradation: ``"course"`` (2022/2023) or ``"second_order"`` (2024/2025).
        second_order: ``SecondOrderSettings`` (None: the course's; its ``gt_usm`` sharpens the GT).
        usm_target: second order: train against the sharpened GT (the course's), else the plain GT.

    Items are ``{"gt", "lq", "name", "seed"}``, or with ``degrade=False`` ``{"gt" (full), "params", "crop",
    "flip", "noise_seed", "name", "seed"}``; ``seed`` is the sample seed as an int64 tensor.
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
        degradation: str = "course",
        second_order: Any = None,
        usm_target: bool = True,
    ) -> None:
        self.gt_dir = _in(gt_dir, "train/GT")
        self.files = _nonempty(self.gt_dir)
        if gt_patch is not None and not isinstance(gt_patch, (int, np.integer)):
            raise FacesrError(f"gt_patch={gt_patch!r} must be a positive multiple of {SCALE} (or None)")
        self.recipe = PairRecipe(degradation=degradation, gt_patch=None if gt_patch is None else int(gt_patch),
                                 flip=flip, on_device=not degrade, course=settings, second_order=second_order,
                                 usm_target=usm_target)
        self.seed = seed
        headers = scan_headers(self.files, f"training GT in {self.gt_dir}")
        for p, (h, w, _) in zip(self.files, headers, strict=True):
            if (h, w) != (GT_SIZE, GT_SIZE):
                raise FacesrError(f"{p} is {w}x{h}; training GT must be {GT_SIZE}x{GT_SIZE} (see check-data)")
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
        gt = self._cache[index] if self._cache is not None else read_image(self.files[index])
        item = worker_item(gt.astype(np.float32) / 255.0, sample_seed, self.recipe)
        return {**item, "name": self.files[index].name, "seed": torch.tensor(sample_seed, dtype=torch.int64)}


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
            "lq": chw_tensor(lq.astype(np.float32) / 255.0),
            "gt": chw_tensor(gt.astype(np.float32) / 255.0),
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
        return {"lq": chw_tensor(lq.astype(np.float32) / 255.0), "name": self.names[index]}
