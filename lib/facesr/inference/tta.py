"""Self-ensemble (test-time augmentation): the transforms each ensemble averages, and the net run applying them.

:func:`run_net_variants` turns a float LQ batch into one float SR batch per ``tta`` value, the ensembles
sharing their forward passes; everything in :mod:`facesr.inference.predict` (upscale, predict, evaluate) goes through it,
predict and evaluate by :func:`sr_uint8`, which runs a group of images one at a time when it does not fit.

Self-ensemble (``tta``): ``None`` (or False) is the plain output; ``"hflip"`` averages the output of the
input and of its horizontal mirror; ``"x8"`` (or True) averages the eight flips and 90-degree rotations.
Faces are aligned and the course forbids vertical flips in training: x8's rotations show the network
faces upside down or sideways, which it never saw, so ``"hflip"`` is the face-safe ensemble.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from facesr.errors import FacesrError
from facesr.metrics import exact_fp32, tensor_to_uint8
from facesr.training.memory import OutOfMemory, free_memory, is_oom, release

# The eight dihedral transforms (rotation by k*90 degrees, optionally after a horizontal flip);
# the identity comes first, then the transforms each ensemble averages.
_DIHEDRAL = [(k, flip) for flip in (False, True) for k in range(4)]
TTA_TRANSFORMS: dict[str | None, tuple[tuple[int, bool], ...]] = {
    None: ((0, False),),
    "hflip": ((0, False), (0, True)),
    "x8": tuple(_DIHEDRAL),
}
TTA_MODES = tuple(TTA_TRANSFORMS)


def tta_mode(tta: bool | str | None) -> str | None:
    """The ensemble a ``tta`` value asks for: None (plain), ``"hflip"`` or ``"x8"``.

    ``False``/``None``/``"none"``/``""`` are plain, ``True`` is ``"x8"`` (the kit's first TTA); anything else
    is a FacesrError naming the choices.
    """
    if tta is None or tta is False or (isinstance(tta, str) and tta.strip().lower() in ("", "none", "plain")):
        return None
    if tta is True:
        return "x8"
    if isinstance(tta, str) and tta.strip().lower() in ("x8", "hflip"):
        return tta.strip().lower()
    raise FacesrError(f"tta={tta!r} is not a self-ensemble; use None (plain), 'hflip' or 'x8' (True = 'x8')")


def _transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    return torch.rot90(x.flip(-1) if flip else x, k, dims=(-2, -1))


def _inverse_transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, -k, dims=(-2, -1))
    return x.flip(-1) if flip else x


@torch.inference_mode()
def run_net_variants(net: nn.Module, lq: torch.Tensor, ttas: Sequence[bool | str | None]) -> tuple[torch.Tensor, ...]:
    """(B, 3, h, w) float in [0, 1] -> one (B, 3, 4h, 4w) float batch clamped to [0, 1] per entry of ``ttas``.

    The net runs in full float32 (:func:`facesr.metrics.exact_fp32`). Each transform any entry needs goes
    through the net once, one after the other, and is back-transformed and added to a running float32 sum
    per ensemble (memory: one output per ensemble plus the one being made, never eight); an ensemble is
    that sum over its transforms, in their order, divided by their number, taken before any clamping or
    rounding. Entries share passes: the plain output is the
    ensembles' identity pass (the same forward pass, the same numbers), and x8 reuses hflip's mirrored pass,
    so asking for plain, hflip and x8 together runs the net eight times.
    """
    modes = list(dict.fromkeys(tta_mode(t) for t in ttas))
    sums: dict[str | None, torch.Tensor] = {}
    for t in _DIHEDRAL:
        users = [m for m in modes if t in TTA_TRANSFORMS[m]]
        if not users:
            continue
        with exact_fp32():  # what is scored and submitted does not depend on the card (no TF32)
            out = _inverse_transform(net(_transform(lq, *t)).float(), *t)
        for mode in users:
            if mode not in sums:  # the first of its transforms; a plain output is never added to
                sums[mode] = out.clone() if len(TTA_TRANSFORMS[mode]) > 1 else out
            else:
                sums[mode].add_(out)
        del out
    for mode, total in sums.items():  # in place: every sum is its own tensor, or the plain output itself
        total.div_(len(TTA_TRANSFORMS[mode])).clamp_(0, 1)
    return tuple(sums[tta_mode(t)] for t in ttas)


def run_net(net: nn.Module, lq: torch.Tensor, tta: bool | str | None) -> torch.Tensor:
    """(B, 3, h, w) float in [0, 1] -> (B, 3, 4h, 4w) float clamped to [0, 1], plain or self-ensembled."""
    return run_net_variants(net, lq, (tta,))[0]


def oom_message(what: str) -> str:
    """The one line of an out-of-memory error while super-resolving ``what`` (e.g. "a 512x512 image").

    Args:
        what: What was being super-resolved.
    """
    device = "CUDA" if torch.cuda.is_available() else "the CPU"
    return (f"{device} ran out of memory super-resolving {what}, one image at a time; free the GPU memory other "
            "objects hold (restart the runtime), or run on the CPU (device='cpu'; CLI: CUDA_VISIBLE_DEVICES=)")


def sr_uint8(net: nn.Module, lq: torch.Tensor, ttas: Sequence[bool | str | None]) -> list[np.ndarray]:
    """One uint8 (B, 4h, 4w, 3) array per entry of ``ttas`` for a (B, 3, h, w) group of LQ images
    (:func:`run_net_variants`); a group that does not fit in memory goes again one image at a time, after its
    memory was let go (:mod:`facesr.training.memory`); an image that does not fit alone is the one line.

    Args:
        net: The generator, in eval mode on the images' device.
        lq: The group, float in [0, 1].
        ttas: The self-ensembles, as :func:`run_net_variants` takes them.
    """
    try:
        return [tensor_to_uint8(sr) for sr in run_net_variants(net, lq, ttas)]
    except (RuntimeError, MemoryError) as err:
        if not is_oom(err):
            raise
        if lq.shape[0] == 1:
            raise OutOfMemory(oom_message(f"a {lq.shape[-1]}x{lq.shape[-2]} image")) from None
        release(err)
    free_memory()
    singles = [sr_uint8(net, lq[i : i + 1], ttas) for i in range(lq.shape[0])]
    return [np.concatenate([one[k] for one in singles]) for k in range(len(ttas))]
