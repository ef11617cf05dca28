"""Values for the fields of a config dataclass from text or Python objects (``--set key=value``, config.json).

Generic over the dataclass: each value is converted to its field's annotated type (``int | None``,
``list``, ``dict``, ...), so ``--set periods=[1000,1000]`` and ``get_config(..., batch_size="4")`` both
give the same config as typing the Python value. Errors are one line naming the field.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import types
import typing
from typing import Any

from facesr.errors import FacesrError


def field_names(cls: type) -> list[str]:
    """The field names of dataclass ``cls`` in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # evaluated once per class: every field of a config.json or --set goes through field_types
    return typing.get_type_hints(cls)


def field_types(cls: type, name: str) -> tuple[type, ...]:
    """The types field ``name`` of ``cls`` admits (``int | None`` -> ``(int, NoneType)``; ``list`` -> ``(list,)``)."""
    hint = _type_hints(cls)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(typing.get_args(hint))
    return (typing.get_origin(hint) or hint,)


def _parse_bool(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise FacesrError(f"--set {name}={text}: expected true/false")


def coerce_field(cls: type, name: str, value: Any) -> Any:
    """``value`` (a CLI string or a Python object) converted to the type of field ``name`` of ``cls``."""
    kinds = field_types(cls, name)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if type(None) in kinds:
            return None
        if str not in kinds:
            raise FacesrError(f"{name} cannot be None")
    try:
        if bool in kinds:
            return _parse_bool(name, value) if isinstance(value, str) else bool(value)
        if int in kinds:
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, bool) or float(number) != int(number):
                raise ValueError
            return int(number)
        if float in kinds:
            return float(value)
        if str in kinds:
            return str(value)
        if isinstance(value, str):
            value = ast.literal_eval(value)
        if dict in kinds:
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
        if isinstance(value, (int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ValueError
        return tuple(value) if tuple in kinds else list(value)
    except FacesrError:
        raise
    except (ValueError, TypeError, SyntaxError):
        want = "/".join("None" if k is type(None) else k.__name__ for k in kinds)
        raise FacesrError(f"{name}={value!r} is not a valid {want}") from None


def check_field(cls: type, key: str) -> None:
    """FacesrError naming close matches when ``key`` is not a field of ``cls``."""
    names = field_names(cls)
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known fields: {', '.join(names)}"
        raise FacesrError(f"unknown config field {key!r}; {hint}")


def parse_assignments(cls: type, items: list[str] | None) -> dict:
    """``["batch_size=4", "generator_args.num_blocks=20"]`` -> ``{"batch_size": 4, "generator_args": {...}}``.

    Values are parsed to the field's type (lists/dicts as Python literals, e.g. ``periods=[1000,1000]``);
    ``dict_field.key=value`` sets one entry of a dict field. Unknown keys raise FacesrError with close matches.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FacesrError(f"--set {item!r}: expected KEY=VALUE, e.g. --set batch_size=4")
        top, dot, sub = key.partition(".")
        check_field(cls, top)
        if dot:
            if dict not in field_types(cls, top):
                raise FacesrError(f"--set {key}: {top} is not a dict field")
            try:
                entry = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                entry = text  # a bare word, e.g. a string value
            out.setdefault(top, {})[sub] = entry
        else:
            out[top] = coerce_field(cls, top, text)
    return out
