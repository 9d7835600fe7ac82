"""Metric snapshots of cumulative counters, and the rates computed from two of them.

PVE's ``netin``, ``netout``, ``diskread`` and ``diskwrite`` count bytes since the
guest's QEMU process started. A rate needs two snapshots: the counter
difference divided by the time between the two responses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ._models import CpuUsage, GuestKind, PowerState
from ._values import to_float, to_int, to_list, to_str

COUNTERS = ("netin", "netout", "diskread", "diskwrite")


@dataclass(frozen=True, slots=True)
class Counters:
    """Cumulative byte counters since the guest started; None where PVE sent none."""

    netin_bytes: int | None
    netout_bytes: int | None
    diskread_bytes: int | None
    diskwrite_bytes: int | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Counters:
        """Read the four counters from a status or resource response."""
        return cls(
            to_int(data.get("netin")),
            to_int(data.get("netout")),
            to_int(data.get("diskread")),
            to_int(data.get("diskwrite")),
        )

    def get(self, name: str) -> int | None:
        """Return a counter by PVE's name: netin, netout, diskread or diskwrite."""
        value: int | None = getattr(self, f"{name}_bytes")
        return value


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """A guest's usage and counters at one moment.

    ``monotonic_seconds`` is the client's monotonic clock when the response
    arrived, used for rates; ``received_at`` is the wall-clock time of the same
    moment, UTC.
    """

    vmid: int
    node: str
    kind: GuestKind
    name: str | None
    status: str | None
    power_state: PowerState
    cpu: CpuUsage
    mem_bytes: int | None
    maxmem_bytes: int | None
    balloon_bytes: int | None
    uptime_seconds: int | None
    counters: Counters
    monotonic_seconds: float
    received_at: datetime
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(
        cls,
        data: Mapping[str, Any],
        *,
        vmid: int,
        node: str,
        monotonic_seconds: float,
        wall_seconds: float,
        kind: GuestKind = "qemu",
    ) -> MetricsSnapshot:
        """Build from ``status/current`` or from a ``/cluster/resources`` row.

        A row with status ``unknown`` (its node is offline) has no usage
        values and no counters: the ones PVE still lists are stale.
        """
        status = to_str(data.get("status"))
        lock = to_str(data.get("lock"))
        measured = data if status != "unknown" else {}
        return cls(
            vmid=to_int(data.get("vmid")) or vmid,
            node=to_str(data.get("node")) or node,
            kind="lxc" if data.get("type") == "lxc" else kind,
            name=to_str(data.get("name")),
            status=status,
            power_state=PowerState.from_api(status, to_str(data.get("qmpstatus")), lock),
            cpu=CpuUsage(to_float(measured.get("cpu")), to_float(data.get("cpus", data.get("maxcpu")))),
            mem_bytes=to_int(measured.get("mem")),
            maxmem_bytes=to_int(data.get("maxmem")),
            balloon_bytes=to_int(measured.get("balloon")),
            uptime_seconds=to_int(measured.get("uptime")),
            counters=Counters.from_api(measured),
            monotonic_seconds=monotonic_seconds,
            received_at=datetime.fromtimestamp(wall_seconds, tz=timezone.utc),
            raw=data,
        )

    @property
    def running(self) -> bool:
        """True when PVE reports the guest running (paused included: its counters stay valid)."""
        return self.status == "running"


@dataclass(frozen=True, slots=True)
class Rates:
    """Bytes per second over one interval; None where no honest rate exists.

    A rate is None when the guest was not running at both ends, a counter was
    missing, or the interval was a reset (the guest restarted or migrated, so a
    counter or the uptime went down). An unchanged counter gives 0.0.
    """

    vmid: int
    node: str
    name: str | None
    kind: GuestKind
    netin_per_second: float | None
    netout_per_second: float | None
    diskread_per_second: float | None
    diskwrite_per_second: float | None
    interval_seconds: float | None
    # Counters that went down in this interval (all four after a restart or migration).
    resets: frozenset[str]
    # The later snapshot, for cpu, memory and state.
    snapshot: MetricsSnapshot = field(repr=False)

    def get(self, name: str) -> float | None:
        """Return a rate by PVE's counter name: netin, netout, diskread or diskwrite."""
        value: float | None = getattr(self, f"{name}_per_second")
        return value

    @property
    def reset(self) -> bool:
        """True when any counter was reset in this interval."""
        return bool(self.resets)


def compute_rates(before: MetricsSnapshot | None, after: MetricsSnapshot) -> Rates:
    """Compute the rates between two snapshots of the same guest (``before`` may be None).

    The elapsed time is that between the two responses' arrival on the
    monotonic clock, not the interval the caller asked for.
    """
    elapsed = None if before is None else after.monotonic_seconds - before.monotonic_seconds
    rates: dict[str, float | None] = dict.fromkeys(COUNTERS)
    resets: set[str] = set()

    comparable = (
        before is not None
        and elapsed is not None
        and elapsed > 0
        and before.running
        and after.running
        and before.kind == after.kind
    )
    if comparable:
        assert before is not None and elapsed is not None
        restarted = before.node != after.node or _went_down(before.uptime_seconds, after.uptime_seconds)
        for name in COUNTERS:
            old, new = before.counters.get(name), after.counters.get(name)
            if old is None or new is None:
                continue
            if restarted or new < old:
                resets.add(name)
                continue
            try:
                rates[name] = (new - old) / elapsed
            except OverflowError:
                # A counter beyond a float's range is not a real reading.
                continue

    return Rates(
        vmid=after.vmid,
        node=after.node,
        name=after.name,
        kind=after.kind,
        netin_per_second=rates["netin"],
        netout_per_second=rates["netout"],
        diskread_per_second=rates["diskread"],
        diskwrite_per_second=rates["diskwrite"],
        interval_seconds=elapsed,
        resets=frozenset(resets),
        snapshot=after,
    )


def _went_down(before: int | None, after: int | None) -> bool:
    return before is not None and after is not None and after < before


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Snapshots of every guest from one ``/cluster/resources`` response, by VMID."""

    guests: Mapping[int, MetricsSnapshot]
    monotonic_seconds: float
    received_at: datetime

    @classmethod
    def from_rows(cls, rows: Any, monotonic_seconds: float, wall_seconds: float) -> ClusterSnapshot:
        """Build from the rows of ``/cluster/resources?type=vm``."""
        guests: dict[int, MetricsSnapshot] = {}
        for row in to_list(rows):
            if not isinstance(row, Mapping) or row.get("type") not in ("qemu", "lxc"):
                continue
            snapshot = MetricsSnapshot.from_api(
                row,
                vmid=to_int(row.get("vmid")) or 0,
                node=to_str(row.get("node")) or "",
                monotonic_seconds=monotonic_seconds,
                wall_seconds=wall_seconds,
            )
            guests[snapshot.vmid] = snapshot
        return cls(guests, monotonic_seconds, datetime.fromtimestamp(wall_seconds, tz=timezone.utc))


@dataclass(frozen=True, slots=True)
class ClusterRates:
    """Rates of every guest between two cluster snapshots.

    ``offline_nodes`` lists nodes whose guests PVE reports with status
    ``unknown`` because the node is down or out of the cluster's quorum. Those
    guests have no rates, while the other nodes' guests do.
    """

    rates: Mapping[int, Rates]
    offline_nodes: tuple[str, ...]
    received_at: datetime

    def __iter__(self) -> Iterator[Rates]:
        return iter(self.rates[vmid] for vmid in sorted(self.rates))

    def __len__(self) -> int:
        return len(self.rates)

    def __getitem__(self, vmid: int) -> Rates:
        return self.rates[vmid]


def compute_cluster_rates(before: ClusterSnapshot | None, after: ClusterSnapshot) -> ClusterRates:
    """Compute every guest's rates; the baseline of each guest follows its VMID, whatever its node."""
    previous = before.guests if before is not None else {}
    rates = {vmid: compute_rates(previous.get(vmid), snapshot) for vmid, snapshot in after.guests.items()}
    offline = sorted({snap.node for snap in after.guests.values() if snap.status == "unknown" and snap.node})
    return ClusterRates(rates, tuple(offline), after.received_at)


class RateTracker:
    """Keeps the previous cluster snapshot, so each new one yields rates (one request per interval)."""

    def __init__(self) -> None:
        self.previous: ClusterSnapshot | None = None

    def update(self, snapshot: ClusterSnapshot) -> ClusterRates:
        """Compute rates against the previous snapshot and keep this one as the new baseline."""
        rates = compute_cluster_rates(self.previous, snapshot)
        self.previous = snapshot
        return rates
