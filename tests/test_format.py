"""format_bytes and format_bytes_per_sec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvekit import format_bytes, format_bytes_per_sec


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0 B/s"),
        (0.5, "0.50 B/s"),
        (512, "512 B/s"),
        (1536, "1.50 KiB/s"),
        (1023.999, "1.00 KiB/s"),
        (1024**2 * 3.25, "3.25 MiB/s"),
        (1024**4 * 2, "2.00 TiB/s"),
        (1024**5 * 7, "7.00 PiB/s"),
        (None, "n/a"),
    ],
)
def test_rate_iec_default(value: float | None, expected: str) -> None:
    assert format_bytes_per_sec(value) == expected


def test_rate_si_and_bits() -> None:
    assert format_bytes_per_sec(1536, si=True) == "1.54 kB/s"
    assert format_bytes_per_sec(1536, bits=True, si=True) == "12.29 kbit/s"
    assert format_bytes_per_sec(1536, bits=True) == "12.00 Kibit/s"
    assert format_bytes_per_sec(0, bits=True) == "0 bit/s"


def test_bytes() -> None:
    assert format_bytes(34359738368) == "32.00 GiB"
    assert format_bytes(1000, si=True) == "1.00 kB"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1024**9) == "1024.00 YiB"


@given(st.floats(min_value=0, max_value=1e30, allow_nan=False))
def test_any_rate_formats(value: float) -> None:
    text = format_bytes_per_sec(value)

    number, unit = text.split(" ")
    assert unit.endswith("B/s")
    assert 0 <= float(number) < 1024 or unit == "YiB/s"
