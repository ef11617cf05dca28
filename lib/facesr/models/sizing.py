"""Counting a generator as the course counts it, and sizing any registered network to an edition's limit.

The count the limit applies to is that of the net that is submitted: the trained net itself, or for a net
that trains in another form (SPAN's re-parameterisable branches, fused into single convolutions for
inference; its record's ``fuse``) its inference form. :func:`count_generator` counts that form on the meta
device (exact, no memory, no initialisation); :func:`inference_form` turns a trained net into it, which
``load_generator`` does for every file it reads, so ``params``, ``predict --zip``, ``handin`` and ``export``
all see the form that is counted.

:func:`size_to_budget` searches a network's width and depth knobs (its record's ``knobs``) for the largest
count within an edition's limit and prints every candidate it counted; the in-budget ``sizes`` of the
networks' records were found with it (a test runs it again for each edition).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from facesr.editions import Edition, get_edition
from facesr.errors import FacesrError
from facesr.models.budget import count_parameters
from facesr.models.registry import build_generator, generator_record, registry_version
from facesr.models.spandrel_support import require_spandrel


def inference_args(name: str, args: Mapping[str, Any]) -> dict:
    """The arguments of the inference form of generator ``name`` built with ``args`` (its record's ``fused_args``
    on top; the arguments themselves for a net that is its own inference form)."""
    return {**args, **generator_record(name).fused_args}


def is_inference_form(name: str, args: Mapping[str, Any]) -> bool:
    """Whether ``args`` build the form of ``name`` that is submitted and counted."""
    return all(args.get(k) == v for k, v in generator_record(name).fused_args.items())


def inference_form(name: str, args: Mapping[str, Any], net: nn.Module) -> tuple[nn.Module, dict]:
    """(net, its arguments) in the form that is counted, submitted and exported: ``net`` itself, or for a net
    that trains in another form (SPAN), the inference form made from its weights (same outputs up to rounding).

    Args:
        name: The generator's registry name.
        args: Its ``build_generator`` kwargs.
        net: The net built with them, holding its weights.
    """
    record = generator_record(name)
    if record.fuse is None or is_inference_form(name, args):
        return net, dict(args)
    return record.fuse(net), inference_args(name, args)


class _NoInitOnMeta(TorchFunctionMode):
    """In-place tensor methods (``uniform_``, ``clamp_``, ``mul_``, ...) on meta tensors do nothing: the weight
    initialisation of a net built on the meta device computes nothing there anyway, and its decompositions are
    what makes such a build slow (seconds for a transformer); shapes, and so counts, are unchanged."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.endswith("__") and args and getattr(args[0], "is_meta", False):
            return args[0]
        return func(*args, **(kwargs or {}))


@functools.lru_cache(maxsize=4096)
def _cached_count(version: int, name: str, frozen_args: str) -> int:
    with torch.device("meta"), _NoInitOnMeta():
        return count_parameters(build_generator(name, **json.loads(frozen_args)))


def count_generator(name: str, args: Mapping[str, Any] | None = None, trained: bool = False) -> int:
    """The parameter count of generator ``name`` with ``args`` as the course counts it: every parameter of its
    inference form (:func:`inference_form`), frozen ones included; built on the meta device and cached.

    Args:
        name: The generator's registry name.
        args: Its ``build_generator`` kwargs (None: its defaults).
        trained: Count the form ``args`` build as it is instead (SPAN's training form, with its branches).

    Raises:
        FacesrError: an unknown generator, bad arguments, or a spandrel network without spandrel.
    """
    record = generator_record(name)
    if record.spandrel_args:  # a spandrel network: the cache must not hide that spandrel is missing
        require_spandrel()
    args = dict(args or {}) if trained else inference_args(name, args or {})
    return _cached_count(registry_version(), record.name, json.dumps(args, sort_keys=True))


def _knob_text(args: Mapping[str, Any], keys: list[str]) -> str:
    return " ".join(f"{k}={args[k]}" for k in keys)


def _largest_fitting(count: Callable[[int], int], widths: list[int], limit: int) -> int | None:
    """Index of the largest width whose count fits ``limit`` (counts grow with the width), or None.

    A quadratic through three counts (parameters grow with the square of the width) guesses the answer; two
    counts around the guess usually confirm it, bisection takes over when they do not.
    """
    lo, hi = 0, len(widths) - 1
    if count(widths[lo]) > limit:
        return None
    if count(widths[hi]) <= limit:
        return hi
    guesses: list[int] = []
    if hi - lo > 2:
        mid = (lo + hi) // 2
        xs = [float(widths[i]) for i in (lo, mid, hi)]
        a, b, c = torch.linalg.solve(torch.tensor([[x * x, x, 1.0] for x in xs], dtype=torch.float64),
                                     torch.tensor([float(count(int(x))) for x in xs], dtype=torch.float64)).tolist()
        w = _positive_root(a, b, c - limit)
        g = max(i for i, x in enumerate(widths) if x <= w) if w is not None and w >= widths[0] else lo
        guesses = [g, g + 1]
    while hi - lo > 1:
        mid = next((g for g in guesses if lo < g < hi), (lo + hi) // 2)
        guesses = [g for g in guesses if g != mid]
        if count(widths[mid]) <= limit:
            lo = mid
        else:
            hi = mid
    return lo


def _positive_root(a: float, b: float, c: float) -> float | None:
    """The larger real root of ``a x^2 + b x + c`` (a linear one when ``a`` is ~0), or None."""
    if abs(a) < 1e-12:
        return -c / b if b else None
    disc = b * b - 4 * a * c
    return None if disc < 0 else (-b + disc**0.5) / (2 * a)


def _widest(arch: str, base: dict, width: str, widths: list[int], limit: int,
            shown: list[str] | None) -> tuple[int, dict] | None:
    """(count, args) of ``base`` at the widest of ``widths`` within ``limit``; each count printed once when
    ``shown`` names the arguments to print."""
    seen: dict[int, int] = {}

    def count(w: int) -> int:
        if w not in seen:
            seen[w] = count_generator(arch, {**base, width: w})
            if shown is not None:
                fits = "fits" if seen[w] <= limit else "over"
                print(f"  {_knob_text({**base, width: w}, shown)}: {seen[w]:,} ({100 * seen[w] / limit:.1f} %) {fits}")
        return seen[w]

    found = _largest_fitting(count, widths, limit)
    return None if found is None else (count(widths[found]), {**base, width: widths[found]})


def size_to_budget(
    arch: str, edition: int | str | Edition | None = None, verbose: bool = True, **fixed: Any
) -> tuple[int, dict]:
    """The largest size of network ``arch`` within ``edition``'s limit, found by its width and depth knobs.

    For each depth setting of its record's ``knobs``, the widest width that fits (the count grows with the
    width); the largest count of them wins (the first such depth on a tie). Every candidate counted is
    printed with its count and share of the limit. Counts are those of the inference form
    (:func:`count_generator`), on the meta device.

    Args:
        arch: A registered generator whose record has ``knobs`` (omnisr, span, realplksr, dat, atd, ...).
        edition: Whose limit (:func:`facesr.editions.get_edition`; None: ``FACESR_EDITION``, else 2022).
        verbose: Print the candidates and the result.
        **fixed: Arguments to keep as given (a fixed width or depth, or any other argument of the network).

    Returns:
        (parameter count, the complete ``build_generator`` kwargs: the record's defaults, the depth, the width).

    Raises:
        FacesrError: ``arch`` has no knobs, or not even its smallest candidate fits.
    """
    record = generator_record(arch)
    if record.knobs is None:
        raise FacesrError(f"generator {arch!r} has no size knobs in its record; size it by hand or give its "
                          "record knobs=SizeKnobs(...)")
    ed = get_edition(edition)
    limit, knobs = ed.param_limit, record.knobs
    widths = [int(fixed[knobs.width])] if knobs.width in fixed else list(knobs.widths)
    depths = list({json.dumps({**d, **{k: v for k, v in fixed.items() if k in d}}, sort_keys=True): None
                   for d in knobs.depths})  # fmt: skip
    shown = [knobs.width, *dict.fromkeys(k for d in knobs.depths for k in d)]
    if verbose:
        print(f"sizing {record.title} to the {ed.year} limit of {limit:,} ({knobs.width} and "
              f"{', '.join(shown[1:]) or 'no depth knob'}):")
    best: tuple[int, dict] | None = None
    for depth in depths:
        found = _widest(arch, {**record.defaults, **json.loads(depth), **fixed}, knobs.width, widths, limit,
                        shown if verbose else None)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    if best is None:
        raise FacesrError(f"no size of {record.title} fits the {ed.year} limit of {limit:,} with {fixed or 'its knobs'}")
    if verbose:
        print(f"largest: {_knob_text(best[1], shown)}, {best[0]:,} parameters ({100 * best[0] / limit:.1f} % of "
              f"{limit:,})")
    return best
