"""Conversions of single values as PVE sends them: numbers as strings, booleans as 0 and 1."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any


def to_int(value: Any) -> int | None:
    """Return an int from an int, float or numeric string; None for missing, null, NaN or junk."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        text = value.strip()
        # str.isdigit() is also true for digits such as superscript two, which int() rejects.
        if text.isascii() and text.isdigit():
            return int(text)
    number = to_float(value)
    if number is None:
        return None
    return int(number)


def to_float(value: Any) -> float | None:
    """Return a finite float from a number or numeric string; None for missing, null, NaN or junk."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        # A JSON decoder returns ints beyond the float range as they are.
        try:
            return float(value)
        except OverflowError:
            return None
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    return number


def to_bool(value: Any) -> bool | None:
    """Return a bool from PVE's 0/1, "0"/"1", true/false or on/off; None when missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    return None


def to_str(value: Any) -> str | None:
    """Return the value as text, None when missing or null."""
    if value is None:
        return None
    return str(value)


def split_tags(value: Any) -> tuple[str, ...]:
    """Split PVE's tag list; PVE separates tags with ';' and accepts ',' and spaces too."""
    if not value:
        return ()
    text = str(value)
    for separator in (",", " "):
        text = text.replace(separator, ";")
    return tuple(tag for tag in text.split(";") if tag)


def split_property_string(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Split a PVE property string such as ``virtio=BC:24:11:00:00:01,bridge=vmbr0``.

    Returns (key-value pairs, bare items) in their order.
    """
    pairs: list[tuple[str, str]] = []
    bare: list[str] = []
    for item in text.split(","):
        if not item:
            continue
        key, equals, value = item.partition("=")
        if equals:
            pairs.append((key.strip(), value.strip()))
        else:
            bare.append(item.strip())
    return pairs, bare


_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def parse_size_bytes(text: str | None) -> int | None:
    """Convert a PVE disk size such as ``32G``, ``512M`` or ``1.5T`` to bytes; a bare number is bytes."""
    if not text:
        return None
    value = text.strip().upper()
    unit = value[-1] if value and value[-1] in _SIZE_UNITS else ""
    number = to_float(value[:-1] if unit else value)
    if number is None or number < 0:
        return None
    size = number * _SIZE_UNITS[unit]
    if math.isinf(size):
        return None
    return int(size)


def to_list(value: Any) -> Sequence[Any]:
    """Return a JSON array (list or tuple) unchanged, and anything else, such as null or an object, as an empty list."""
    return value if isinstance(value, (list, tuple)) else []


def freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return a read-only view of a copy of the mapping, for the ``raw`` field of models."""
    return MappingProxyType(dict(mapping))
