"""Output helpers: the JSON encoding of pvekit's models, and human formats for tables.

JSON output is a stable interface for scripts: snake_case keys, numbers as numbers, None as null and
times as ISO 8601 in UTC (``2024-05-01T12:00:00Z``). Keys are only ever added, never renamed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from .._format import format_bytes, format_bytes_per_sec

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from .. import (
        AgentInterface,
        Guest,
        GuestNetwork,
        IpAddress,
        MetricsSnapshot,
        PowerState,
        Rates,
        RrdPoint,
        TaskStatus,
        VmConfig,
        VmStatus,
    )

# Shown in tables where a value is missing: a stopped guest's rate, a counter PVE did not send.
MISSING = "-"
RATE_NAMES = ("netin", "netout", "diskread", "diskwrite")


# ------------------------------------------------------------------ JSON


def iso_time(moment: datetime | None) -> str | None:
    """Format a time as ISO 8601 in UTC with a ``Z`` suffix, or None."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def iso_from_unix(seconds: int | None) -> str | None:
    """Format Unix seconds as ISO 8601 in UTC, or None."""
    if seconds is None:
        return None
    return iso_time(datetime.fromtimestamp(seconds, tz=timezone.utc))


def echo_json(data: Any, *, compact: bool = False) -> None:
    """Write ``data`` as JSON to standard output; NaN and infinity become null."""
    text = json.dumps(_finite(data), indent=None if compact else 2, ensure_ascii=False, allow_nan=False)
    click.echo(text)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def whole(value: float | None) -> float | int | None:
    """Return a whole float as an int, so that JSON shows ``2`` CPUs rather than ``2.0``."""
    if value is not None and float(value).is_integer():
        return int(value)
    return value


def power_state_json(state: PowerState) -> str:
    """Return a power state's stable JSON name.

    The names are ``running``, ``paused``, ``stopped``, ``hibernated``, ``unknown``, and
    ``running_or_paused`` for a listing row that reports running without saying whether the VM is paused.
    """
    return state.name.lower()


def guest_json(guest: Guest) -> dict[str, Any]:
    """Encode a listing row; ``status`` is PVE's, ``power_state`` pvekit's reading of it."""
    return {
        "vmid": guest.vmid,
        "name": guest.name,
        "node": guest.node,
        "type": guest.kind,
        "status": guest.status,
        "power_state": power_state_json(guest.power_state),
        "cpu_ratio": guest.cpu.ratio,
        "cpus": whole(guest.cpu.cpus),
        "mem_bytes": guest.mem_bytes,
        "maxmem_bytes": guest.maxmem_bytes,
        "maxdisk_bytes": guest.maxdisk_bytes,
        "uptime_seconds": guest.uptime_seconds,
        "tags": list(guest.tags),
        "pool": guest.pool,
        "lock": guest.lock,
        "template": guest.template,
        "ha_state": guest.hastate,
    }


def status_json(status: VmStatus) -> dict[str, Any]:
    """Encode a VM's current status; the byte counters count since the VM started."""
    return {
        "vmid": status.vmid,
        "name": status.name,
        "node": status.node,
        "status": status.status,
        "qmpstatus": status.qmpstatus,
        "power_state": power_state_json(status.power_state),
        "uptime_seconds": status.uptime_seconds,
        "cpu_ratio": status.cpu.ratio,
        "cpus": whole(status.cpu.cpus),
        "mem_bytes": status.mem_bytes,
        "maxmem_bytes": status.maxmem_bytes,
        "balloon_bytes": status.balloon_bytes,
        "netin_bytes": status.netin_bytes,
        "netout_bytes": status.netout_bytes,
        "diskread_bytes": status.diskread_bytes,
        "diskwrite_bytes": status.diskwrite_bytes,
        "nics": {
            name: {"netin_bytes": nic.netin_bytes, "netout_bytes": nic.netout_bytes}
            for name, nic in sorted(status.nics.items())
        },
        "lock": status.lock,
        "ha_managed": status.ha_managed,
        "ha_state": status.ha_state,
        "agent_enabled": status.agent_enabled,
        "pid": status.pid,
        "running_qemu": status.running_qemu,
        "tags": list(status.tags),
    }


def config_json(config: VmConfig) -> dict[str, Any]:
    """Encode a VM configuration: the typed fields, then every key PVE sent under ``raw``."""
    return {
        "vmid": config.vmid,
        "node": config.node,
        "name": config.name,
        "cores": config.cores,
        "sockets": config.sockets,
        "memory_mib": config.memory_mib,
        "memory_bytes": config.memory_bytes,
        "balloon_mib": config.balloon_mib,
        "agent_enabled": config.agent_enabled,
        "onboot": config.onboot,
        "ostype": config.ostype,
        "boot": config.boot,
        "tags": list(config.tags),
        "digest": config.digest,
        "nets": [
            {
                "key": net.key,
                "model": net.model,
                "mac": net.mac,
                "bridge": net.bridge,
                "vlan_tag": net.vlan_tag,
                "firewall": net.firewall,
                "options": dict(net.options),
            }
            for net in config.nets
        ],
        "disks": [
            {
                "key": disk.key,
                "storage": disk.storage,
                "volume": disk.volume,
                "size_bytes": disk.size_bytes,
                "media": disk.media,
                "options": dict(disk.options),
            }
            for disk in config.disks
        ],
        "raw": {key: config.raw[key] for key in sorted(config.raw)},
    }


def select_interfaces(network: GuestNetwork, *, include_all: bool) -> list[tuple[AgentInterface, list[IpAddress]]]:
    """Pick the interfaces and addresses to show.

    By default only usable addresses are kept, which excludes loopback and link-local ones, and only the
    interfaces that have one. ``include_all`` keeps every interface and address the agent reported.
    """
    if include_all:
        return [(interface, list(interface.addresses)) for interface in network.interfaces]
    usable: dict[int, list[IpAddress]] = {}
    for interface, address in network.usable_addresses():
        usable.setdefault(id(interface), []).append(address)
    return [(interface, usable[id(interface)]) for interface in network.interfaces if id(interface) in usable]


def network_json(network: GuestNetwork, *, include_all: bool) -> dict[str, Any]:
    """Encode the agent's interfaces: usable addresses only, or with ``include_all`` everything it reported."""
    primary = network.primary_address()
    interfaces = [
        {
            "name": interface.name,
            "mac": interface.mac,
            "addresses": [
                {"address": address.address, "prefix": address.prefix, "family": address.family, "zone": address.zone}
                for address in addresses
            ],
        }
        for interface, addresses in select_interfaces(network, include_all=include_all)
    ]
    return {
        "vmid": network.vmid,
        "node": network.node,
        "primary_address": primary.address if primary else None,
        "interfaces": interfaces,
    }


def snapshot_json(snapshot: MetricsSnapshot) -> dict[str, Any]:
    """Encode a metrics snapshot; the byte counters count since the guest started."""
    return {
        "vmid": snapshot.vmid,
        "name": snapshot.name,
        "node": snapshot.node,
        "type": snapshot.kind,
        "status": snapshot.status,
        "power_state": power_state_json(snapshot.power_state),
        "cpu_ratio": snapshot.cpu.ratio,
        "cpus": whole(snapshot.cpu.cpus),
        "mem_bytes": snapshot.mem_bytes,
        "maxmem_bytes": snapshot.maxmem_bytes,
        "balloon_bytes": snapshot.balloon_bytes,
        "uptime_seconds": snapshot.uptime_seconds,
        "netin_bytes": snapshot.counters.netin_bytes,
        "netout_bytes": snapshot.counters.netout_bytes,
        "diskread_bytes": snapshot.counters.diskread_bytes,
        "diskwrite_bytes": snapshot.counters.diskwrite_bytes,
        "received_at": iso_time(snapshot.received_at),
    }


def rates_json(rates: Rates) -> dict[str, Any]:
    """Encode sampled rates with the later snapshot's fields; a rate is null where none is honest."""
    data = snapshot_json(rates.snapshot)
    data.update(
        interval_seconds=rates.interval_seconds,
        netin_per_second=rates.netin_per_second,
        netout_per_second=rates.netout_per_second,
        diskread_per_second=rates.diskread_per_second,
        diskwrite_per_second=rates.diskwrite_per_second,
        resets=sorted(rates.resets),
    )
    return data


RRD_FIELDS = (
    "time",
    "cpu_ratio",
    "maxcpu",
    "mem_bytes",
    "maxmem_bytes",
    "netin_per_second",
    "netout_per_second",
    "diskread_per_second",
    "diskwrite_per_second",
    "disk_bytes",
    "maxdisk_bytes",
)


def rrd_point_json(point: RrdPoint) -> dict[str, Any]:
    """Encode one RRD point; the net and disk values are bytes per second, as PVE consolidated them."""
    return {
        "time": iso_time(point.time),
        "cpu_ratio": point.cpu,
        "maxcpu": point.maxcpu,
        "mem_bytes": point.mem_bytes,
        "maxmem_bytes": point.maxmem_bytes,
        "netin_per_second": point.netin_per_second,
        "netout_per_second": point.netout_per_second,
        "diskread_per_second": point.diskread_per_second,
        "diskwrite_per_second": point.diskwrite_per_second,
        "disk_bytes": point.disk_bytes,
        "maxdisk_bytes": point.maxdisk_bytes,
    }


def task_status_json(status: TaskStatus) -> dict[str, Any]:
    """Encode a task's status; ``exitstatus`` and ``succeeded`` are null while the task runs."""
    return {
        "upid": status.upid,
        "node": status.node,
        "type": status.task_type,
        "id": status.id,
        "user": status.auth_id,
        "status": status.status,
        "finished": status.finished,
        "exitstatus": status.exitstatus,
        "succeeded": status.succeeded,
        "warnings": status.warnings,
        "started_at": iso_from_unix(status.starttime),
    }


# ------------------------------------------------------------------ human formats


def percent(ratio: float | None) -> str:
    """Format a fraction such as PVE's ``cpu`` as a percentage: 0.125 is ``12.5%``."""
    if ratio is None or math.isnan(ratio):
        return MISSING
    return f"{ratio * 100:.1f}%"


def bytes_or_missing(value: float | None) -> str:
    """Format a byte count in IEC units, or ``-``."""
    return MISSING if value is None else format_bytes(value)


def rate_or_missing(value: float | None) -> str:
    """Format bytes per second in IEC units, or ``-`` where there is no rate."""
    return MISSING if value is None else format_bytes_per_sec(value)


def memory_usage(used: float | None, total: float | None) -> str:
    """Format memory use as ``1.00 GiB / 2.00 GiB (50%)``."""
    if used is None and total is None:
        return MISSING
    text = f"{bytes_or_missing(used)} / {bytes_or_missing(total)}"
    if used is not None and total:
        text += f" ({used / total * 100:.0f}%)"
    return text


def duration(seconds: float | None) -> str:
    """Format an uptime or elapsed time: ``45s``, ``12m 05s``, ``3h 07m``, ``2d 04h``."""
    if seconds is None:
        return MISSING
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def local_time(moment: datetime | None) -> str:
    """Format a time in the local time zone for tables: ``2024-05-01 14:00``."""
    if moment is None:
        return MISSING
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def status_text(status: str | None) -> Text:
    """Return a guest status as styled text: running green, stopped and hibernated dim, anything else yellow."""
    from rich.text import Text

    value = status or "unknown"
    style = {"running": "green", "stopped": "dim", "hibernated": "dim"}.get(value, "yellow")
    return Text(value, style=style)


def power_state_label(state: PowerState, status: str | None) -> str:
    """Return a power state as tables show it.

    A listing row does not say whether a running VM is paused, and nearly all running VMs are not, so
    that state reads ``running``, and ``pvekit status VMID`` shows which it is. A state pvekit does not
    know shows PVE's status.
    """
    if state.name == "RUNNING_OR_PAUSED":
        return "running"
    if state.name == "UNKNOWN":
        return status or "unknown"
    return str(state.value)


# ------------------------------------------------------------------ tables


def new_table(
    *headers: str, right: Iterable[str] = (), wrap: Iterable[str] = ("NAME",), title: str | None = None
) -> Table:
    """Create a table with bold headers; columns named in ``right`` are right-aligned.

    On a narrow terminal only the columns named in ``wrap`` give up width, and their text
    continues on the next line. The others keep at least their header's width, so that a
    short column such as VMID is never cut to an ellipsis.
    """
    from rich.table import Table

    aligned = set(right)
    wrapping = set(wrap)
    table = Table(box=None, header_style="bold", title=title, title_justify="left", pad_edge=False)
    for header in headers:
        table.add_column(
            header,
            justify="right" if header in aligned else "left",
            no_wrap=header not in wrapping,
            overflow="fold" if header in wrapping else "ellipsis",
            min_width=None if header in wrapping else len(header),
        )
    return table


def key_value_table(rows: Sequence[tuple[str, str | Text]]) -> Table:
    """Create a two-column table of labels and values without borders."""
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for label, value in rows:
        table.add_row(label, plain(value) if isinstance(value, str) else value)
    return table


def plain(value: object) -> Text:
    """Wrap any value as plain rich Text, so that rich never interprets it as markup."""
    from rich.text import Text

    return Text(MISSING if value is None else str(value))
