"""Human-readable byte counts and rates."""

from __future__ import annotations

import math

_IEC_UNITS = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi")
_SI_UNITS = ("", "k", "M", "G", "T", "P", "E", "Z", "Y")


def _scale(value: float, si: bool, precision: int) -> tuple[float, str]:
    base = 1000.0 if si else 1024.0
    prefixes = _SI_UNITS if si else _IEC_UNITS
    index = 0
    magnitude = abs(value)
    # Compare the rounded value, so 1023.999 B becomes 1.00 KiB rather than 1024.00 B.
    while round(magnitude, precision) >= base and index < len(prefixes) - 1:
        magnitude /= base
        index += 1
    return math.copysign(magnitude, value), prefixes[index]


def _render(value: float | None, unit: str, si: bool, precision: int) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    scaled, prefix = _scale(float(value), si, precision)
    if not prefix and float(scaled).is_integer():
        return f"{int(scaled)} {unit}"
    return f"{scaled:.{precision}f} {prefix}{unit}"


def format_bytes(value: float | None, *, si: bool = False, precision: int = 2) -> str:
    """Format a byte count: IEC units by default (``1536`` is ``1.50 KiB``), SI with ``si=True``.

    Whole numbers below one unit step print without decimals (``512 B``); None prints ``n/a``.

    Example:
        >>> format_bytes(34359738368)
        '32.00 GiB'
    """
    return _render(value, "B", si, precision)


def format_bytes_per_sec(
    value: float | None, *, si: bool = False, bits: bool = False, precision: int = 2
) -> str:
    """Format a rate in bytes per second: ``1536`` is ``1.50 KiB/s``.

    ``si=True`` uses powers of 1000 (``1.54 kB/s``); ``bits=True`` shows bits per
    second (``12.29 kbit/s`` with ``si=True``, ``12.00 Kibit/s`` without). None,
    which pvekit uses for "no rate", prints ``n/a``.

    Example:
        >>> format_bytes_per_sec(1536)
        '1.50 KiB/s'
    """
    if bits and value is not None:
        return _render(value * 8, "bit/s", si, precision)
    return _render(value, "B/s", si, precision)
