"""The two clients under comparison, both set up to verify TLS against the fake cluster's own CA."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxmoxer import ProxmoxAPI

import pvekit

from ._cluster import ClusterInfo

# The counters a rate is computed from, as PVE names them in status/current.
COUNTERS = ("netin", "netout", "diskread", "diskwrite")
# The keys of an RRD row that carry measurements rather than the row's time or limits.
RRD_VALUE_KEYS = ("cpu", "mem", *COUNTERS)


def pvekit_client(info: ClusterInfo) -> pvekit.Client:
    """Return a blocking pvekit client that trusts only the fake cluster's CA."""
    return pvekit.Client(info.host, info.token, ca_file=info.ca_file)


def pvekit_async_client(info: ClusterInfo, concurrency: int | None = None) -> pvekit.AsyncClient:
    """Return an asyncio pvekit client that trusts only the fake cluster's CA; None keeps the default concurrency."""
    if concurrency is None:
        return pvekit.AsyncClient(info.host, info.token, ca_file=info.ca_file)
    return pvekit.AsyncClient(info.host, info.token, ca_file=info.ca_file, concurrency=concurrency)


def proxmoxer_client(info: ClusterInfo) -> Any:
    """Return a proxmoxer client over HTTPS that verifies against the fake cluster's CA.

    proxmoxer 2.3.0 hands ``verify_ssl`` to requests as ``verify``, where a path names the CA bundle. An
    explicit path also takes precedence over REQUESTS_CA_BUNDLE.
    """
    user, _, token_name = info.token_id.partition("!")
    return ProxmoxAPI(
        "127.0.0.1",
        port=info.port,
        user=user,
        token_name=token_name,
        token_value=info.token_secret,
        verify_ssl=info.ca_file,
        service="PVE",
    )


@dataclass(frozen=True)
class CounterReading:
    """One VM's byte counters from status/current, stamped with the client's monotonic clock."""

    vmid: int
    monotonic_seconds: float
    counters: Mapping[str, int]


def proxmoxer_read_counters(prox: Any, node: str, vmid: int) -> CounterReading:
    """Read a VM's status/current with proxmoxer and keep its byte counters."""
    status = prox.nodes(node).qemu(vmid).status.current.get()
    received = time.monotonic()
    return CounterReading(vmid, received, {name: int(status.get(name) or 0) for name in COUNTERS})


def proxmoxer_rates(first: CounterReading, second: CounterReading) -> dict[str, float]:
    """Compute bytes per second between two readings, as a proxmoxer user would by hand."""
    elapsed = second.monotonic_seconds - first.monotonic_seconds
    return {name: (second.counters[name] - first.counters[name]) / elapsed for name in COUNTERS}


def proxmoxer_newest_rrd_point(prox: Any, node: str, vmid: int) -> dict[str, Any] | None:
    """Read a VM's hourly RRD series with proxmoxer and return its newest row that has values."""
    rows = prox.nodes(node).qemu(vmid).rrddata.get(timeframe="hour", cf="AVERAGE")
    for row in sorted(rows, key=lambda row: row.get("time", 0), reverse=True):
        if any(row.get(key) is not None for key in RRD_VALUE_KEYS):
            return dict(row)
    return None
