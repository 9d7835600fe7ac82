"""Plain-text tables and the list of targets for the benchmark output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Section:
    """One benchmark's table, with notes on what was measured."""

    title: str
    headers: tuple[str, ...]
    # Number of leading text columns, which are left-aligned. The numbers after them are right-aligned.
    text_columns: int = 2
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    """A stated target and the run's result against it. ``met`` is None when the benchmark was skipped."""

    name: str
    target: str
    measured: str
    met: bool | None


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int) -> list[str]:
    """Lay out rows in columns: the first ``text_columns`` left-aligned, the others right-aligned."""
    widths = [len(header) for header in headers]
    for row in rows:
        for column, cell in enumerate(row):
            widths[column] = max(widths[column], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[column]) if column < text_columns else cell.rjust(widths[column])
            for column, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)]


def format_section(section: Section) -> list[str]:
    """Return the section's title, table (unless it has no rows) and notes as lines."""
    lines = [section.title]
    if section.rows:
        lines += format_table(section.headers, section.rows, section.text_columns)
    lines.extend(f"  {note}" for note in section.notes)
    return lines


def format_checks(checks: Sequence[Check]) -> list[str]:
    """Return one line per target: met, MISSED or skipped, the target, and the measured value."""
    labels = {True: "met", False: "MISSED", None: "skipped"}
    rows = [(labels[check.met], check.name, check.target, check.measured) for check in checks]
    return format_table(("result", "benchmark", "target", "measured"), rows, text_columns=4)


def milliseconds(seconds: float) -> str:
    """Format seconds as milliseconds with one decimal."""
    return f"{seconds * 1000:.1f}"


def ratio(value: float) -> str:
    """Format a ratio as ``N.NNx``: two decimals below 10, one below 100, none above."""
    if value >= 100:
        return f"{value:.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"
