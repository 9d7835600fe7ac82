"""Terminal charts of RRD series, drawn with plotext."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._rrd import RrdPoint

_IEC_PREFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi")
# Series of each panel: (RrdPoint attribute, legend label).
_PANELS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Network", (("netin_per_second", "in"), ("netout_per_second", "out"))),
    ("Disk", (("diskread_per_second", "read"), ("diskwrite_per_second", "write"))),
)
_TICKS = 5
# The y axis reaches this multiple of the highest value, so the legend in the top right corner stays clear
# of the lines.
_HEADROOM = 2.0


def rate_unit(maximum: float) -> tuple[float, str]:
    """Return the divisor and IEC unit that show ``maximum`` bytes per second as a number below 1024."""
    divisor = 1.0
    for prefix in _IEC_PREFIXES:
        if maximum < divisor * 1024 or prefix == _IEC_PREFIXES[-1]:
            return divisor, f"{prefix}B/s"
        divisor *= 1024
    raise AssertionError("unreachable")


def time_format(span_seconds: float) -> str:
    """Return the strftime format for time ticks: clock time within a day, dates beyond two weeks."""
    if span_seconds <= 36 * 3600:
        return "%H:%M"
    if span_seconds <= 14 * 86400:
        return "%m-%d %H:%M"
    return "%Y-%m-%d"


def render_rrd_chart(points: Sequence[RrdPoint], *, title: str, width: int, height: int, color: bool) -> str | None:
    """Draw the net and disk rates and the CPU use over time; None when no point has a value.

    Points without a value leave a gap in their line instead of a drop to zero. Times on the x axis are
    local.
    """
    import plotext

    xs = [point.time.timestamp() for point in points]
    if not any(point.has_values for point in points):
        return None

    figure = plotext.figure
    figure.clear()
    figure.theme("simple" if color else "colorless")
    figure.subplots(3, 1)
    figure.plot_size(width, height)

    for row, (name, series) in enumerate(_PANELS, start=1):
        values = [value for field, _ in series for value in _values(points, field) if value is not None]
        divisor, unit = rate_unit(max(values, default=0.0))
        panel = figure.subplot(row, 1)
        panel.title(f"{title}: {name} ({unit})" if row == 1 else f"{name} ({unit})")
        scaled = [[None if v is None else v / divisor for v in _values(points, field)] for field, _ in series]
        for ys, (_, label) in zip(scaled, series, strict=True):
            _draw_line(panel, xs, ys, label)
        _dress(panel, xs, [y for ys in scaled for y in ys if y is not None])

    panel = figure.subplot(3, 1)
    panel.title("CPU (% of the VM's CPUs)")
    cpu = [None if p.cpu is None else p.cpu * 100 for p in points]
    _draw_line(panel, xs, cpu, "cpu")
    _dress(panel, xs, [y for y in cpu if y is not None])

    text: str = figure.build().string(colorless=not color)
    figure.clear()
    return text


def _values(points: Sequence[RrdPoint], field: str) -> list[float | None]:
    return [getattr(point, field) for point in points]


def _draw_line(panel: Any, xs: Sequence[float], ys: Sequence[float | None], label: str) -> None:
    """Draw one series as a line that breaks where values are missing."""
    kept = [(x, y, index) for index, (x, y) in enumerate(zip(xs, ys, strict=True)) if y is not None]
    if not kept:
        return
    signal = panel.signal([x for x, _, _ in kept], [y for _, y, _ in kept])
    signal.lines()
    for position in range(1, len(kept)):
        if kept[position][2] != kept[position - 1][2] + 1:
            signal.line(position, False)
    signal.label(label)
    panel.draw(signal)


def _dress(panel: Any, xs: Sequence[float], ys: Sequence[float]) -> None:
    """Scale the y axis from zero, put the legend in the top right corner and label the x axis with local times."""
    top = max(ys, default=0.0) * _HEADROOM or 1.0
    panel.ruler("y").lim(0, top)
    panel.legend(x=xs[-1], y=top, ha="right", va="top", relative=True)
    if len(xs) < 2:
        return
    first, last = xs[0], xs[-1]
    fmt = time_format(last - first)
    positions = [first + (last - first) * step / (_TICKS - 1) for step in range(_TICKS)]
    labels = [datetime.fromtimestamp(position).strftime(fmt) for position in positions]
    panel.ruler("x").ticks(positions, labels)
