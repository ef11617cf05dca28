"""The generators the kit trains, by name: their records (:class:`facesr.models.record.GeneratorRecord`) and
``build_generator(name, **kwargs)``.

The kit's own records come from the network files; :func:`register_generator` adds another from anywhere (a
notebook cell, a test module) without editing the library: configs, quick mode, ``params``, the trainer and
the report read every record from here. swinir and rcan come from spandrel and are imported only when one is
built: they are listed (and configs naming them validate) without spandrel; building one without it is one
clear line.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from facesr.errors import FacesrError
from facesr.models import (
    atd_record,
    dat_record,
    msrresnet_arch,
    msrresnet_basicsr_arch,
    omnisr_record,
    rcan_record,
    realplksr_record,
    rrdbnet_arch,
    span_record,
    swinir_record,
)
from facesr.models.record import GeneratorRecord

_RECORDS: dict[str, GeneratorRecord] = {}
# Name -> builder of every registered generator, kept in step with the records.
GENERATORS: dict[str, Callable[..., nn.Module]] = {}
_version = [0]  # bumped by every change: the named configs are rebuilt when it moves


def register_generator(record: GeneratorRecord, replace: bool = False) -> GeneratorRecord:
    """Add ``record`` to the registry (the same record again changes nothing) and return it.

    Args:
        record: The network's record.
        replace: Replace another record of the same name (else FacesrError).
    """
    if not isinstance(record, GeneratorRecord):
        raise FacesrError(f"register_generator takes a GeneratorRecord, not {type(record).__name__}")
    old = _RECORDS.get(record.name)
    if old is not None and old != record and not replace:
        raise FacesrError(f"a generator named {record.name!r} is registered already; pick another name or pass "
                          "replace=True")
    _RECORDS[record.name] = record
    GENERATORS[record.name] = record.build
    _version[0] += 1
    return record


def unregister_generator(name: str) -> GeneratorRecord:
    """Remove the generator ``name`` from the registry and return its record (FacesrError when unknown)."""
    record = generator_record(name)
    del _RECORDS[record.name], GENERATORS[record.name]
    _version[0] += 1
    return record


def generator_record(name: str) -> GeneratorRecord:
    """The record of generator ``name`` (case-insensitive); FacesrError naming the known ones when unknown."""
    key = str(name).lower()
    if key not in _RECORDS:
        raise FacesrError(f"unknown generator {name!r}; known generators: {', '.join(_RECORDS)}")
    return _RECORDS[key]


def generator_records() -> tuple[GeneratorRecord, ...]:
    """Every registered record, in registration order (the kit's own first)."""
    return tuple(_RECORDS.values())


def spandrel_record(arch_id: str | None) -> GeneratorRecord | None:
    """The record of the kit generator that spandrel's architecture ``arch_id`` is, or None."""
    return next((r for r in _RECORDS.values() if arch_id is not None and r.spandrel == arch_id), None)


def registry_version() -> int:
    """A number that changes whenever a generator is registered or removed."""
    return _version[0]


def build_generator(name: str, **kwargs: object) -> nn.Module:
    """Build a registered generator by name (case-insensitive) with its keyword arguments.

    Args:
        name: ``msrresnet``, ``msrresnet_basicsr``, ``rrdbnet``, ``swinir``, ``rcan`` (the last two need
            spandrel), or one added with :func:`register_generator`.
        **kwargs: The network's constructor arguments (for swinir and rcan the official ones).
    """
    record = generator_record(name)
    try:
        return record.build(**kwargs)
    except TypeError as exc:
        raise FacesrError(f"bad arguments for generator {name!r} {kwargs}: {exc}") from exc


# The kit's own networks, in the order configs, tables and legends list them.
for _module in (msrresnet_arch, msrresnet_basicsr_arch, rrdbnet_arch, swinir_record, rcan_record, omnisr_record,
                span_record, realplksr_record, dat_record, atd_record):
    register_generator(_module.RECORD)
