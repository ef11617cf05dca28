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

A run's config reaches its pairs through :func:`run_recipe`, with plain values: the config's sections of
degradation settings (``course``, ``second_order``: any field of :class:`DegradationSettings` /
:class:`SecondOrderSettings` over the course's values) become the settings dataclass, checked with one-line
errors that name the setting (:func:`degradation_settings`).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from facesr.data.degradations import DegradationSettings
from facesr.data.images import chw_tensor
from facesr.data.second_order_draws import SecondOrderSettings
from facesr.errors import FacesrError

SCALE = 4
# The settings dataclass of each degradation, by its name: also the config section that sets its fields.
SETTINGS_CLASSES: dict[str, type] = {"course": DegradationSettings, "second_order": SecondOrderSettings}
DEGRADATIONS = tuple(SETTINGS_CLASSES)


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



def _scalar(kind: Any, value: Any) -> Any:
    """``value`` as one ``kind`` (bool, int, float or str) of a settings field; ValueError if it is not one."""
    if kind is bool and isinstance(value, bool):
        return value
    if kind in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        if kind is int and value != int(value):
            raise ValueError
        return kind(value)
    if kind is str and isinstance(value, str):
        return value
    raise ValueError


def _setting(cls: type, section: str, key: str, value: Any) -> Any:
    """``value`` converted to the type of field ``key`` of ``cls`` (a list for a tuple field), or FacesrError."""
    hint = typing.get_type_hints(cls)[key]
    args = typing.get_args(hint)
    try:
        if typing.get_origin(hint) is not tuple:
            return _scalar(hint, value)
        if not isinstance(value, (list, tuple)):
            raise ValueError
        kinds = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(kinds) != len(value):
            raise FacesrError(f"{section}.{key}={value!r}: give {len(kinds)} values, e.g. "
                              f"{list(getattr(cls(), key))}")
        return tuple(_scalar(kind, v) for kind, v in zip(kinds, value, strict=True))
    except ValueError:
        example = getattr(cls(), key)
        want = f"a list like {list(example)}" if isinstance(example, tuple) else f"a {type(example).__name__}"
        raise FacesrError(f"{section}.{key}={value!r} is not {want}") from None


def degradation_settings(section: str, values: Mapping[str, Any] | None = None, gt_usm: bool = True) -> Any:
    """The settings of a degradation with ``values`` over the course's: one-line FacesrError naming a bad setting.

    Args:
        section: ``"course"`` (:class:`DegradationSettings`, 2022/2023) or ``"second_order"``
            (:class:`SecondOrderSettings`, 2024/2025): the degradation, and the config section that sets it.
        values: Setting -> value (lists for ranges, as config.json holds them), e.g. ``{"jpeg_range": [80, 95]}``.
        gt_usm: The second order's ``gt_usm`` (a config field of its own, ``TrainConfig.gt_usm``).
    """
    if section not in SETTINGS_CLASSES:
        raise FacesrError(f"degradation={section!r}: use one of {', '.join(SETTINGS_CLASSES)}")
    cls = SETTINGS_CLASSES[section]
    names = [f.name for f in dataclasses.fields(cls) if not (section == "second_order" and f.name == "gt_usm")]
    kwargs: dict[str, Any] = {"gt_usm": bool(gt_usm)} if section == "second_order" else {}
    for key, value in (values or {}).items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=2, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}?" if close else f"its settings: {', '.join(names)}"
            own = " (gt_usm is a config field of its own: set gt_usm)" if key == "gt_usm" else ""
            raise FacesrError(f"{section}.{key}: not a setting of the {section} degradation{own}; {hint}")
        kwargs[key] = _setting(cls, section, key, value)
    try:
        return cls(**kwargs)
    except FacesrError as err:  # "SecondOrderSettings.jpeg_range=...: ..." -> "second_order.jpeg_range=...: ..."
        raise FacesrError(str(err).replace(f"{cls.__name__}.", f"{section}.").replace(f"{cls.__name__}:",
                                                                                        f"{section}:")) from None


def run_recipe(
    degradation: str, gt_patch: int | None, on_device: bool, course: Mapping[str, Any] | None = None,
    second_order: Mapping[str, Any] | None = None, gt_usm: bool = True, usm_target: bool = True,
) -> PairRecipe:
    """How a run makes its training pairs, from its config's values (``TrainConfig`` fields of the same names).

    Args:
        degradation: The edition's degradation, ``"course"`` or ``"second_order"``.
        gt_patch: GT crop size, None for the full image.
        on_device: The device degrades (the CUDA path), else the workers.
        course: Settings of the course degradation over the course's values (``--set course.KEY=VALUE``).
        second_order: Settings of the second order over the course's values (``--set second_order.KEY=VALUE``).
        gt_usm: Second order: sharpen the GT before degrading it.
        usm_target: Second order: train against the sharpened GT.

    Raises:
        FacesrError: a bad setting or value (one line naming it), or settings of the other degradation.
    """
    sections = {"course": course or {}, "second_order": second_order or {}}
    for name, values in sections.items():
        if name != degradation and values:
            raise FacesrError(f"{name}.{next(iter(values))}: this run trains on the {degradation} degradation "
                              f"(its edition's), which {name}.* does not set; use {degradation}.* settings")
    settings = degradation_settings(degradation, sections.get(degradation), gt_usm=gt_usm)
    return PairRecipe(degradation=degradation, gt_patch=gt_patch, flip=True, on_device=on_device,
                      course=settings if degradation == "course" else None,
                      second_order=settings if degradation == "second_order" else None, usm_target=usm_target)


def _crop(x: np.ndarray | torch.Tensor, top: int, left: int, size: int) -> Any:
    """The ``size`` x ``size`` window at (top, left) of an HxWxC array or a (C, H, W) tensor."""
    if isinstance(x, np.ndarray):
        return x[top : top + size, left : left + size]
    return x[..., top : top + size, left : left + size]


def _second_order_settings(recipe: PairRecipe) -> Any:
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
