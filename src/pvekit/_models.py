"""Typed models of PVE's VM responses, each built by one ``from_api`` constructor.

The constructors accept numbers sent as strings, ignore keys they do not know
(the whole response stays in ``raw``) and accept a missing optional field as None (tests cover empty responses).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ._exceptions import InvalidInputError
from ._values import (
    freeze,
    parse_size_bytes,
    split_property_string,
    split_tags,
    to_bool,
    to_float,
    to_int,
    to_str,
)

GuestKind = Literal["qemu", "lxc"]

# QMP run states in which the guest's CPUs do not run. "suspended" is a guest
# in ACPI S3, and "postmigrate" is the source side of a finished migration.
_PAUSED_QMP_STATES = frozenset({"paused", "suspended", "prelaunch", "postmigrate"})


class PowerState(str, enum.Enum):
    """What a guest is doing, as far as the response it came from shows.

    PVE keeps ``status: running`` for a paused VM; only ``qmpstatus`` (sent by
    ``status/current``, not by listings) reports ``paused``.
    """

    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    # Stopped with its RAM saved to disk (lock "suspended"); start resumes it.
    HIBERNATED = "hibernated"
    # A listing row reports running but carries no qmpstatus, so the VM may be
    # paused. Read status/current to know.
    RUNNING_OR_PAUSED = "running (pause state unknown)"
    # The node is offline or the status is one PVE added later.
    UNKNOWN = "unknown"

    @classmethod
    def from_api(cls, status: str | None, qmpstatus: str | None, lock: str | None) -> PowerState:
        """Derive the state from ``status``, ``qmpstatus`` (when sent) and the config ``lock``."""
        if status == "running":
            if qmpstatus is None:
                return cls.RUNNING_OR_PAUSED
            if qmpstatus in _PAUSED_QMP_STATES:
                return cls.PAUSED
            return cls.RUNNING
        if status == "stopped":
            return cls.HIBERNATED if lock == "suspended" else cls.STOPPED
        return cls.UNKNOWN

    @property
    def is_running(self) -> bool:
        """True only when the guest is known to be running and not paused."""
        return self is PowerState.RUNNING


def parse_guest_id(text: str) -> tuple[GuestKind, int]:
    """Split a resource id such as ``qemu/100`` or ``lxc/101`` into (kind, VMID).

    Raises:
        InvalidInputError: the text is not of that form.
    """
    kind, slash, number = str(text).partition("/")
    vmid = to_int(number) if slash else None
    if kind not in ("qemu", "lxc") or vmid is None:
        raise InvalidInputError(f"guest id {text!r} is invalid; expected qemu/VMID or lxc/VMID")
    return ("lxc" if kind == "lxc" else "qemu"), vmid


@dataclass(frozen=True, slots=True)
class CpuUsage:
    """CPU use as PVE reports it: a fraction of the guest's (or node's) CPUs.

    ``ratio`` is 0.0 to 1.0 of all ``cpus``; 0.5 on 4 CPUs is 50 % and 2.0 cores busy.
    """

    ratio: float | None
    cpus: float | None

    @property
    def percent(self) -> float | None:
        """Use in percent of all CPUs, 0 to 100."""
        return None if self.ratio is None else self.ratio * 100.0

    @property
    def cores(self) -> float | None:
        """Number of CPUs kept busy, ``ratio`` times ``cpus``."""
        if self.ratio is None or self.cpus is None:
            return None
        return self.ratio * self.cpus


class Guest:
    """One row of a VM or container listing (``/cluster/resources`` or ``/nodes/{node}/qemu``).

    Listings can hold thousands of rows, so only ``vmid`` and ``node`` are
    parsed up front (with ``kind``). Every other field is read from ``raw`` when accessed,
    with the same conversions as the other models. The fields are read-only
    properties, and guests compare equal when their rows are equal.
    """

    __slots__ = ("_kind", "_node", "_row", "_vmid")

    def __init__(self, row: Mapping[str, Any], node: str | None = None) -> None:
        # Fast paths for the types PVE sends; the converters handle the rest.
        vmid = row.get("vmid")
        row_node = row.get("node")
        row_type = row.get("type")
        self._row = row
        self._vmid = vmid if type(vmid) is int else (to_int(vmid) or 0)
        self._node = row_node if type(row_node) is str and row_node else (to_str(row_node) or node or "")
        lxc = row_type == "lxc" if row_type is not None else str(row.get("id", "")).startswith("lxc/")
        self._kind: GuestKind = "lxc" if lxc else "qemu"

    @property
    def vmid(self) -> int:
        """The guest's VMID."""
        return self._vmid

    @property
    def node(self) -> str:
        """The node the guest is on, spelled as PVE spells it."""
        return self._node

    @property
    def kind(self) -> GuestKind:
        """``qemu`` for a VM, ``lxc`` for a container."""
        return self._kind

    @classmethod
    def from_api(cls, row: Mapping[str, Any], node: str | None = None) -> Guest:
        """Build from a listing row; ``node`` fills in the node for per-node listings."""
        return cls(row, node)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Guest):
            return NotImplemented
        return (self.vmid, self.node, dict(self._row)) == (other.vmid, other.node, dict(other._row))

    def __hash__(self) -> int:
        return hash((self.vmid, self.node))

    def __repr__(self) -> str:
        return (
            f"Guest(vmid={self.vmid}, kind={self.kind!r}, node={self.node!r}, name={self.name!r}, "
            f"power_state={self.power_state.value!r})"
        )

    @property
    def raw(self) -> Mapping[str, Any]:
        """Every key of the row, as PVE sent it."""
        return MappingProxyType(self._row) if isinstance(self._row, dict) else self._row

    @property
    def is_container(self) -> bool:
        """True for an LXC container, False for a QEMU VM."""
        return self.kind == "lxc"

    @property
    def name(self) -> str | None:
        """The guest's name."""
        return to_str(self._row.get("name"))

    @property
    def status(self) -> str | None:
        """PVE's status: running, stopped, or unknown when the node is offline."""
        return to_str(self._row.get("status"))

    @property
    def power_state(self) -> PowerState:
        """The power state; RUNNING_OR_PAUSED for a running row, which carries no qmpstatus."""
        return PowerState.from_api(self.status, to_str(self._row.get("qmpstatus")), self.lock)

    @property
    def cpu(self) -> CpuUsage:
        """CPU use as a fraction of ``maxcpu``; the fraction is None while the status is unknown."""
        row = self._row
        cpus = to_float(row.get("maxcpu", row.get("cpus")))
        if row.get("status") == "unknown":
            return CpuUsage(None, cpus)
        return CpuUsage(to_float(row.get("cpu")), cpus)

    @property
    def mem_bytes(self) -> int | None:
        """Memory in use, bytes; None while the status is unknown."""
        return self._measured("mem")

    @property
    def maxmem_bytes(self) -> int | None:
        """Configured memory, bytes."""
        return to_int(self._row.get("maxmem"))

    @property
    def maxdisk_bytes(self) -> int | None:
        """Size of the guest's boot disk, bytes."""
        return to_int(self._row.get("maxdisk"))

    @property
    def uptime_seconds(self) -> int | None:
        """Seconds since the guest started; 0 when stopped, None while the status is unknown."""
        return self._measured("uptime")

    def _measured(self, key: str) -> int | None:
        # A guest whose node is offline keeps the last values PVE had in the cluster
        # listing (status "unknown"); they are stale, so none is reported.
        row = self._row
        if row.get("status") == "unknown":
            return None
        return to_int(row.get(key))

    @property
    def tags(self) -> tuple[str, ...]:
        """The guest's tags."""
        return split_tags(self._row.get("tags"))

    @property
    def pool(self) -> str | None:
        """The resource pool the guest belongs to."""
        return to_str(self._row.get("pool"))

    @property
    def lock(self) -> str | None:
        """The configuration lock (backup, migrate, suspended, ...), None when unlocked."""
        return to_str(self._row.get("lock"))

    @property
    def template(self) -> bool:
        """True for a template."""
        return bool(to_bool(self._row.get("template")))

    @property
    def hastate(self) -> str | None:
        """The HA manager's state of the guest, when HA manages it."""
        return to_str(self._row.get("hastate"))


def guest_locations(guests: list[Guest]) -> tuple[dict[int, str], set[int]]:
    """Return each guest's node by VMID, and the VMIDs that are containers, for the client's caches."""
    # Reads the slots directly: this runs on every listing, for thousands of rows.
    nodes = {guest._vmid: guest._node for guest in guests if guest._node}
    containers = {guest._vmid for guest in guests if guest._kind == "lxc"}
    return nodes, containers


@dataclass(frozen=True, slots=True)
class NicCounters:
    """Cumulative bytes of one virtual NIC since the VM started."""

    netin_bytes: int | None
    netout_bytes: int | None


@dataclass(frozen=True, slots=True)
class VmStatus:
    """A VM's current status (``/nodes/{node}/qemu/{vmid}/status/current``).

    The byte counters count since the VM's QEMU process started; they are not rates.
    """

    vmid: int
    node: str
    name: str | None
    status: str | None
    qmpstatus: str | None
    power_state: PowerState
    uptime_seconds: int | None
    cpu: CpuUsage
    mem_bytes: int | None
    maxmem_bytes: int | None
    # Memory the balloon driver currently gives the guest, bytes.
    balloon_bytes: int | None
    netin_bytes: int | None
    netout_bytes: int | None
    diskread_bytes: int | None
    diskwrite_bytes: int | None
    nics: Mapping[str, NicCounters]
    lock: str | None
    ha_managed: bool
    ha_state: str | None
    agent_enabled: bool | None
    pid: int | None
    running_qemu: str | None
    tags: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], node: str, vmid: int) -> VmStatus:
        """Build from the ``data`` of ``status/current``."""
        status = to_str(data.get("status"))
        qmpstatus = to_str(data.get("qmpstatus"))
        lock = to_str(data.get("lock"))
        ha = _mapping(data.get("ha"))
        nics_raw = _mapping(data.get("nics"))
        nics = {
            name: NicCounters(to_int(counters.get("netin")), to_int(counters.get("netout")))
            for name, counters in nics_raw.items()
            if isinstance(counters, Mapping)
        }
        return cls(
            vmid=to_int(data.get("vmid")) or vmid,
            node=node,
            name=to_str(data.get("name")),
            status=status,
            qmpstatus=qmpstatus,
            # status/current always has qmpstatus on PVE 7.4 and later; a missing one
            # means an older or unusual response, which stays "pause state unknown".
            power_state=PowerState.from_api(status, qmpstatus, lock),
            uptime_seconds=to_int(data.get("uptime")),
            cpu=CpuUsage(to_float(data.get("cpu")), to_float(data.get("cpus", data.get("maxcpu")))),
            mem_bytes=to_int(data.get("mem")),
            maxmem_bytes=to_int(data.get("maxmem")),
            balloon_bytes=to_int(data.get("balloon")),
            netin_bytes=to_int(data.get("netin")),
            netout_bytes=to_int(data.get("netout")),
            diskread_bytes=to_int(data.get("diskread")),
            diskwrite_bytes=to_int(data.get("diskwrite")),
            nics=freeze(nics),
            lock=lock,
            ha_managed=bool(to_bool(ha.get("managed"))),
            ha_state=to_str(ha.get("state")),
            agent_enabled=to_bool(data.get("agent")),
            pid=to_int(data.get("pid")),
            running_qemu=to_str(data.get("running-qemu")),
            tags=split_tags(data.get("tags")),
            raw=freeze(data),
        )


# Options of a netN value that are not the model; anything else before "=" is the model.
_NET_OPTIONS = frozenset(
    {"bridge", "firewall", "link_down", "macaddr", "model", "mtu", "queues", "rate", "tag", "trunks"}
)
_DISK_KEY = re.compile(r"^(ide|sata|scsi|virtio|efidisk|tpmstate|unused)\d+$")
_NET_KEY = re.compile(r"^net\d+$")


@dataclass(frozen=True, slots=True)
class NetDevice:
    """One ``netN`` entry of a VM configuration, for example ``virtio=BC:24:11:00:00:01,bridge=vmbr0``."""

    key: str
    model: str | None
    mac: str | None
    bridge: str | None
    vlan_tag: int | None
    firewall: bool
    options: Mapping[str, str] = field(repr=False)

    @classmethod
    def parse(cls, key: str, value: str) -> NetDevice:
        """Parse a ``netN`` property string."""
        pairs, _ = split_property_string(value)
        options = dict(pairs)
        model = options.get("model")
        mac = options.get("macaddr")
        for name, setting in pairs:
            if name not in _NET_OPTIONS:
                model, mac = name, setting or mac
                break
        return cls(
            key=key,
            model=model,
            mac=mac.upper() if mac else None,
            bridge=options.get("bridge"),
            vlan_tag=to_int(options.get("tag")),
            firewall=bool(to_bool(options.get("firewall"))),
            options=freeze(options),
        )


@dataclass(frozen=True, slots=True)
class Disk:
    """One disk entry of a VM configuration, for example ``local-lvm:vm-100-disk-0,size=32G``.

    ``storage`` is None for a path (``/dev/sdb``) or an empty drive (``none``).
    """

    key: str
    storage: str | None
    volume: str
    size_bytes: int | None
    media: str
    options: Mapping[str, str] = field(repr=False)

    @classmethod
    def parse(cls, key: str, value: str) -> Disk:
        """Parse a disk property string (``ide0``, ``scsi1``, ``efidisk0``, ``unused0`` ...)."""
        pairs, bare = split_property_string(value)
        options = dict(pairs)
        volume = bare[0] if bare else options.get("file", "")
        storage, colon, _ = volume.partition(":")
        return cls(
            key=key,
            storage=storage if colon and not volume.startswith("/") else None,
            volume=volume,
            size_bytes=parse_size_bytes(options.get("size")),
            media=options.get("media", "disk"),
            options=freeze(options),
        )


@dataclass(frozen=True, slots=True)
class VmConfig:
    """A VM's configuration (``/nodes/{node}/qemu/{vmid}/config``).

    Common fields are typed; every key PVE sent is in ``raw``.
    """

    vmid: int
    node: str
    name: str | None
    cores: int | None
    sockets: int | None
    # Memory in MiB, as PVE configures it.
    memory_mib: int | None
    # Minimum memory for ballooning in MiB; 0 disables the balloon device.
    balloon_mib: int | None
    agent_enabled: bool
    tags: tuple[str, ...]
    boot: str | None
    onboot: bool
    ostype: str | None
    nets: tuple[NetDevice, ...]
    disks: tuple[Disk, ...]
    digest: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], node: str, vmid: int) -> VmConfig:
        """Build from the ``data`` of ``config``."""
        agent = str(data.get("agent", "0"))
        # "agent" is a property string: "1", "enabled=1,fstrim_cloned_disks=1" or "0".
        agent_pairs, agent_bare = split_property_string(agent)
        agent_enabled = to_bool(dict(agent_pairs).get("enabled", agent_bare[0] if agent_bare else "0"))
        nets = tuple(
            NetDevice.parse(key, str(value))
            for key, value in sorted(data.items(), key=lambda item: _natural_key(item[0]))
            if _NET_KEY.match(key)
        )
        disks = tuple(
            Disk.parse(key, str(value))
            for key, value in sorted(data.items(), key=lambda item: _natural_key(item[0]))
            if _DISK_KEY.match(key)
        )
        memory = str(data.get("memory", "")).split("=")[-1] or None
        return cls(
            vmid=vmid,
            node=node,
            name=to_str(data.get("name")),
            cores=to_int(data.get("cores")),
            sockets=to_int(data.get("sockets")),
            memory_mib=to_int(memory),
            balloon_mib=to_int(data.get("balloon")),
            agent_enabled=bool(agent_enabled),
            tags=split_tags(data.get("tags")),
            boot=to_str(data.get("boot")),
            onboot=bool(to_bool(data.get("onboot"))),
            ostype=to_str(data.get("ostype")),
            nets=nets,
            disks=disks,
            digest=to_str(data.get("digest")),
            raw=freeze(data),
        )

    @property
    def memory_bytes(self) -> int | None:
        """Configured memory in bytes."""
        return None if self.memory_mib is None else self.memory_mib * 1024 * 1024


def _natural_key(key: str) -> tuple[str, int]:
    match = re.match(r"^(\D+)(\d+)$", key)
    if match is None:
        return key, -1
    return match.group(1), int(match.group(2))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
