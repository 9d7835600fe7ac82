"""RRD series: PVE's consolidated history, whose net and disk values are already per second."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from ._exceptions import InvalidInputError
from ._values import to_float, to_int, to_list

Timeframe = Literal["hour", "day", "week", "month", "year", "decade"]
ConsolidationFunction = Literal["AVERAGE", "MAX"]
# "decade" exists from PVE 9 on, and older releases reject it with HTTP 400.
TIMEFRAMES: tuple[str, ...] = ("hour", "day", "week", "month", "year", "decade")
CONSOLIDATION_FUNCTIONS: tuple[str, ...] = ("AVERAGE", "MAX")

RATE_FIELDS = ("netin_per_second", "netout_per_second", "diskread_per_second", "diskwrite_per_second")


def check_rrd_arguments(timeframe: str, cf: str) -> tuple[str, str]:
    """Return the arguments in PVE's spelling, or raise InvalidInputError listing the valid values.

    Any case is accepted: ``max`` becomes ``MAX`` and ``Hour`` becomes ``hour``.
    """
    timeframe = timeframe.lower() if isinstance(timeframe, str) else timeframe
    cf = cf.upper() if isinstance(cf, str) else cf
    if timeframe not in TIMEFRAMES:
        raise InvalidInputError(
            f"RRD timeframe {timeframe!r} is invalid; use one of {', '.join(TIMEFRAMES)} (decade needs PVE 9)"
        )
    if cf not in CONSOLIDATION_FUNCTIONS:
        raise InvalidInputError(
            f"RRD consolidation function {cf!r} is invalid; use one of {', '.join(CONSOLIDATION_FUNCTIONS)}"
        )
    return timeframe, cf


_EPOCH = datetime.fromtimestamp(0, tz=timezone.utc)


def _row_time(row: Mapping[str, Any]) -> datetime | None:
    """Return the row's time, or None when it is missing, 0, not a number or beyond datetime's range."""
    seconds = to_int(row.get("time"))
    if not seconds:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class RrdPoint:
    """One RRD row. Values PVE left out, or sent as null or NaN, are None, never 0.

    Net and disk values are bytes per second averaged (or maxed) over the row's
    step, as PVE sends them; they are not counters.
    """

    time: datetime
    cpu: float | None
    maxcpu: float | None
    mem_bytes: float | None
    maxmem_bytes: float | None
    netin_per_second: float | None
    netout_per_second: float | None
    diskread_per_second: float | None
    diskwrite_per_second: float | None
    disk_bytes: float | None
    maxdisk_bytes: float | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, row: Mapping[str, Any]) -> RrdPoint:
        """Build from one row of ``rrddata``."""
        return cls(
            time=_row_time(row) or _EPOCH,
            cpu=to_float(row.get("cpu")),
            maxcpu=to_float(row.get("maxcpu")),
            mem_bytes=to_float(row.get("mem")),
            maxmem_bytes=to_float(row.get("maxmem")),
            netin_per_second=to_float(row.get("netin")),
            netout_per_second=to_float(row.get("netout")),
            diskread_per_second=to_float(row.get("diskread")),
            diskwrite_per_second=to_float(row.get("diskwrite")),
            disk_bytes=to_float(row.get("disk")),
            maxdisk_bytes=to_float(row.get("maxdisk")),
            raw=row,
        )

    @property
    def has_values(self) -> bool:
        """True when the row carries measurements, not only its time and limits."""
        measured = (self.cpu, self.mem_bytes, *(getattr(self, name) for name in RATE_FIELDS))
        return any(value is not None for value in measured)

    @property
    def cpu_percent(self) -> float | None:
        """CPU use in percent of the guest's CPUs."""
        return None if self.cpu is None else self.cpu * 100.0

    @property
    def mem_percent(self) -> float | None:
        """Memory use in percent of the maximum."""
        if self.mem_bytes is None or not self.maxmem_bytes:
            return None
        return self.mem_bytes / self.maxmem_bytes * 100.0


def parse_series(rows: Any) -> list[RrdPoint]:
    """Parse ``rrddata`` rows, oldest first. Rows without a usable time are dropped."""
    points = [RrdPoint.from_api(row) for row in to_list(rows) if isinstance(row, Mapping) and _row_time(row)]
    return sorted(points, key=lambda point: point.time)


@dataclass(frozen=True, slots=True)
class CurrentRates:
    """The newest RRD point that has values, with its age.

    PVE's newest one or two rows are often still empty, because the current
    step is not consolidated yet; they are skipped.
    """

    vmid: int
    node: str
    point: RrdPoint
    age_seconds: float

    @property
    def time(self) -> datetime:
        """Time of the point, UTC."""
        return self.point.time

    @property
    def netin_per_second(self) -> float | None:
        """Bytes per second received."""
        return self.point.netin_per_second

    @property
    def netout_per_second(self) -> float | None:
        """Bytes per second sent."""
        return self.point.netout_per_second

    @property
    def diskread_per_second(self) -> float | None:
        """Bytes per second read from disk."""
        return self.point.diskread_per_second

    @property
    def diskwrite_per_second(self) -> float | None:
        """Bytes per second written to disk."""
        return self.point.diskwrite_per_second

    @property
    def cpu(self) -> float | None:
        """CPU use as a fraction of the guest's CPUs."""
        return self.point.cpu


def newest_with_values(points: Sequence[RrdPoint]) -> RrdPoint | None:
    """Return the newest point that has values, skipping trailing empty ones."""
    for point in sorted(points, key=lambda p: p.time, reverse=True):
        if point.has_values:
            return point
    return None


_MEASURED_KEYS = ("cpu", "mem", "netin", "netout", "diskread", "diskwrite")


def newest_point_in_rows(rows: Any) -> RrdPoint | None:
    """Return the newest row that has values as a point, without parsing the other rows."""
    timed = [row for row in to_list(rows) if isinstance(row, dict) and _row_time(row)]
    for row in sorted(timed, key=lambda row: to_int(row.get("time")) or 0, reverse=True):
        if any(to_float(row.get(key)) is not None for key in _MEASURED_KEYS):
            return RrdPoint.from_api(row)
    return None


def mean(points: Sequence[RrdPoint], name: str) -> float | None:
    """Average a field over the points that have it; points without a value do not count as 0.

    Example:
        >>> mean(points, "netin_per_second")
    """
    values = [value for value in (getattr(point, name) for point in points) if value is not None]
    if not values:
        return None
    return math.fsum(values) / len(values)
