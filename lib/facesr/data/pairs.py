"""Training pairs of both degradations: what a DataLoader worker draws for a sample, and how a batch of such
draws becomes ``(lq, gt)`` on the training device.

All randomness of a sample comes from one numpy generator seeded by its sample seed (seed, iteration, index in
the global batch), drawn on the CPU in this order: the crop, the flip, the degradation's parameters, the seed
of its noise. Where the degradation itself runs:

- in the worker (:class:`PairRecipe` with ``on_device=False``: the CPU path, quick mode, the tests), which
  returns the finished pair;
- on the training device (CUDA): the worker returns the full GT and its draws as tensors, and
  :func:`pairs_on_device` only computes. It never reads a device value back: the draws are CPU tensors read on
  the host, the noise comes from per-sample device generators seeded on the host. And it copies nothing to
  the device but the collated batch, which the loader pins: the draws' own tables (parameter rows, kernels,
  JPEG qualities) go up with it, and what is made of them (blur kernels, JPEG quantisation tables, resize
  taps) is made on the device, so the host never waits for the GPU and can prepare the next batch.

Course degradation (2022, 2023, docs/course.md section 3): the crop and flip draws, then ``sample_params`` and
the noise from the same generator: the pairs of today's CPU path, unchanged. The device path draws the same
crop, flip and parameters; only its noise field differs. The flip follows the degradation, as the course's
pipeline flipped LQ and GT together after degrading.

Second order (2024, 2025, docs/course.md section 4): the GT is flipped first, then sharpened (``gt_usm``) and
degraded, as the course's dataset and model did; the crop is taken from the degraded pair. The target is the
sharpened GT when ``usm_target`` (the course's), else the plain GT that val and test PSNR compare with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from facesr.data.degradations import DegradationSettings
from facesr.data.images import chw_tensor
from facesr.errors import FacesrError

SCALE = 4
DEGRADATIONS = ("course", "second_order")


@dataclass(frozen=True)
class PairRecipe:
    """How a run makes its training pairs (picklable: every DataLoader worker gets a copy).

    Args:
        degradation: ``"course"`` (2022/2023) or ``"second_order"`` (2024/2025).
        gt_patch: GT crop size (a multiple of 4), None for the full image.
        flip: Horizontal flip with probability 0.5.
        on_device: The worker hands over the draws and the device degrades (CUDA); False: the worker degrades.
        course: The course degradation's ranges (None: the course's).
        second_order: The second-order settings (None: the course's).
        usm_target: Second order: train against the sharpened GT.
    """

    degradation: str = "course"
    gt_patch: int | None = None
    flip: bool = True
    on_device: bool = False
    course: DegradationSettings | None = None
    second_order: Any = None
    usm_target: bool = True

    def __post_init__(self) -> None:
        if self.degradation not in DEGRADATIONS:
            raise FacesrError(f"degradation={self.degradation!r}: use one of {', '.join(DEGRADATIONS)}")
        if self.gt_patch is not None and (self.gt_patch < SCALE or self.gt_patch % SCALE):
            raise FacesrError(f"gt_patch={self.gt_patch!r} must be a positive multiple of {SCALE} (or None)")



def _crop(x: np.ndarray | torch.Tensor, top: int, left: int, size: int) -> Any:
    """The ``size`` x ``size`` window at (top, left) of an HxWxC array or a (C, H, W) tensor."""
    if isinstance(x, np.ndarray):
        return x[top : top + size, left : left + size]
    return x[..., top : top + size, left : left + size]


def _second_order_settings(recipe: PairRecipe) -> Any:
    from facesr.data.second_order import SecondOrderSettings

    return recipe.second_order or SecondOrderSettings()


def _course_item(gt: np.ndarray, rng: np.random.Generator, crop: tuple[int, int], flip: bool,
                 recipe: PairRecipe) -> dict[str, Any]:
    from facesr.data.degradations import degrade, sample_params
    from facesr.data.degradations_torch import params_to_tensor

    top, left = crop
    if recipe.on_device:
        params = sample_params(rng, recipe.course)
        return {"gt": chw_tensor(gt), "params": params_to_tensor(params), "crop": torch.tensor(crop),
                "flip": torch.tensor(flip), "noise_seed": torch.tensor(int(rng.integers(2**63)))}
    lq = degrade(gt, rng, settings=recipe.course)  # full 512 GT -> 128 LQ, then the paired crop
    if recipe.gt_patch:
        gt, lq = _crop(gt, top, left, recipe.gt_patch), _crop(lq, top // SCALE, left // SCALE, recipe.gt_patch // SCALE)
    if flip:
        gt, lq = gt[:, ::-1], lq[:, ::-1]
    return {"gt": chw_tensor(gt), "lq": chw_tensor(np.asarray(lq, dtype=np.float32))}


def _second_order_item(gt: np.ndarray, rng: np.random.Generator, crop: tuple[int, int], flip: bool,
                       recipe: PairRecipe) -> dict[str, Any]:
    from facesr.data.second_order import apply_second_order
    from facesr.data.second_order_draws import sample_second_order_params

    settings = _second_order_settings(recipe)
    gt_t = chw_tensor(np.ascontiguousarray(gt[:, ::-1]) if flip else gt)  # flipped before anything, as the course
    params = sample_second_order_params(rng, settings)
    noise_seed = int(rng.integers(2**63))
    if recipe.on_device:
        return {"gt": gt_t, "params": params, "crop": torch.tensor(crop), "flip": torch.tensor(False),
                "noise_seed": torch.tensor(noise_seed)}
    lq, sharp = apply_second_order(gt_t[None], params, [torch.Generator().manual_seed(noise_seed)], settings)
    target = sharp[0] if recipe.usm_target else gt_t
    lq = lq[0]
    if recipe.gt_patch:
        top, left = crop
        target, lq = _crop(target, top, left, recipe.gt_patch), _crop(lq, top // SCALE, left // SCALE,
                                                                       recipe.gt_patch // SCALE)
    return {"gt": target.contiguous(), "lq": lq.contiguous()}


def worker_item(gt: np.ndarray, sample_seed: Any, recipe: PairRecipe) -> dict[str, Any]:
    """One sample's training pair (or, with ``recipe.on_device``, its draws) from a float32 HxWx3 GT in [0, 1].

    Args:
        gt: The GT image (the full 512x512 face for the course data).
        sample_seed: Seeds the sample's numpy generator: ``(seed, iteration, index)`` in training.
        recipe: How the run makes its pairs.

    Returns:
        ``{"gt", "lq"}`` (3, H, W) tensors, or with ``recipe.on_device`` ``{"gt" (full), "params", "crop",
        "flip", "noise_seed"}`` for :func:`pairs_on_device`.
    """
    rng = np.random.default_rng(sample_seed)
    h, w = gt.shape[:2]
    top = left = 0
    if recipe.gt_patch:  # drawn first, with or without a degradation, so the crop never depends on it
        top = SCALE * int(rng.integers(0, (h - recipe.gt_patch) // SCALE + 1))
        left = SCALE * int(rng.integers(0, (w - recipe.gt_patch) // SCALE + 1))
    flip = bool(rng.random() < 0.5) and recipe.flip  # always drawn: flip=False changes nothing else
    make = _course_item if recipe.degradation == "course" else _second_order_item
    return make(gt, rng, (top, left), flip, recipe)


def noise_generators(seeds: torch.Tensor, device: torch.device) -> list[torch.Generator | None]:
    """One generator per sample on ``device``, seeded on the host from a CPU tensor of seeds.

    The meta device has no RNG: its entries are None (shapes only, nothing to read back either way).
    """
    if device.type == "meta":
        return [None] * len(seeds)
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds.tolist()]


def _crop_and_flip(x: torch.Tensor, crops: list[list[int]], flips: list[bool], size: int | None,
                   scale: int) -> torch.Tensor:
    """Per-sample crop (host-known positions, in GT pixels) and horizontal flip: device ops only."""
    out = []
    for i, ((top, left), flip) in enumerate(zip(crops, flips, strict=True)):
        xi = _crop(x[i], top // scale, left // scale, size // scale) if size else x[i]
        out.append(xi.flip(-1) if flip else xi)
    return torch.stack(out)


def pairs_on_device(batch: dict[str, Any], recipe: PairRecipe, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lq, gt)`` on ``device`` from a collated batch of :func:`worker_item` draws (``recipe.on_device``).

    The GT goes to the device once (pinned memory, non-blocking); the degradation, crop and flip run there
    and read nothing back (the draws are CPU tensors, read on the host).
    """
    from facesr.data.degradations_torch import apply_degradation_batch
    from facesr.data.second_order import apply_second_order

    gt = batch["gt"].to(device, non_blocking=True)
    gens = noise_generators(batch["noise_seed"], device)
    if recipe.degradation == "course":
        lq = apply_degradation_batch(gt, batch["params"], gens, recipe.course)
    else:
        lq, sharp = apply_second_order(gt, batch["params"], gens, _second_order_settings(recipe))
        gt = sharp if recipe.usm_target else gt
    crops, flips = batch["crop"].tolist(), batch["flip"].tolist()
    return (_crop_and_flip(lq, crops, flips, recipe.gt_patch, SCALE),
            _crop_and_flip(gt, crops, flips, recipe.gt_patch, 1))
