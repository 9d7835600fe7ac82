"""Monitoring operations: metric snapshots and rates, RRD series, guest agent addresses."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._agent import AddressFamily, GuestNetwork, IpAddress
from ._core import Operation, Session, api_path, check_node, check_vmid, gather, sleep
from ._exceptions import (
    AddressWaitTimeoutError,
    AgentNotEnabledError,
    AgentNotRunningError,
    ApiError,
    InvalidInputError,
    PveError,
    PveTimeoutError,
    ServerError,
    VmNotRunningError,
)
from ._metrics import ClusterRates, ClusterSnapshot, MetricsSnapshot, Rates, RateTracker, compute_rates
from ._retry import describe_failure
from ._rrd import CurrentRates, RrdPoint, check_rrd_arguments, newest_point_in_rows, parse_series
from ._vm_ops import VmOps

logger = logging.getLogger("pvekit")

FIRST_ADDRESS_POLL_SECONDS = 1.0
MAX_ADDRESS_POLL_SECONDS = 5.0

_VM_NOT_RUNNING = re.compile(r"VM \d+ (is )?not running")


def check_interval(seconds: float) -> float:
    """Return the sampling interval, or raise InvalidInputError for one that is not positive."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise InvalidInputError(f"interval {seconds!r} must be a positive number of seconds")
    return float(seconds)


class MetricsOps:
    """Snapshots and sampled rates."""

    def __init__(self, session: Session, vm_ops: VmOps) -> None:
        self._session = session
        self._vm_ops = vm_ops

    def snapshot(self, vmid: int, node: str | None = None) -> Operation[MetricsSnapshot]:
        """Read one VM's usage and counters from ``status/current``."""

        def read(on: str) -> Operation[MetricsSnapshot]:
            reply = yield from self._session.request(
                "GET", api_path("nodes", on, "qemu", vmid, "status", "current")
            )
            return MetricsSnapshot.from_api(
                reply.data or {},
                vmid=vmid,
                node=on,
                monotonic_seconds=reply.received_monotonic,
                wall_seconds=reply.received_wall,
            )

        return (yield from self._vm_ops.on_vm(vmid, node, read))

    def rates(self, vmid: int, interval: float, node: str | None = None) -> Operation[Rates]:
        """Take two snapshots ``interval`` seconds apart and compute the rates between them.

        The second snapshot follows the VM to a new node, and a node change counts as a reset.
        """
        interval = check_interval(interval)
        first = yield from self.snapshot(vmid, node)
        yield from sleep(interval)
        second = yield from self.snapshot(vmid, node)
        return compute_rates(first, second)

    def cluster_snapshot(self) -> Operation[ClusterSnapshot]:
        """Read every guest's counters in one ``/cluster/resources`` request."""
        reply = yield from self._session.request("GET", "/cluster/resources", {"type": "vm"})
        snapshot = ClusterSnapshot.from_rows(reply.data, reply.received_monotonic, reply.received_wall)
        self._session.node_of.update((vmid, snap.node) for vmid, snap in snapshot.guests.items() if snap.node)
        return snapshot

    def cluster_rates(self, interval: float) -> Operation[ClusterRates]:
        """Compute every guest's rates from two cluster snapshots: two requests in all."""
        interval = check_interval(interval)
        tracker = RateTracker()
        tracker.update((yield from self.cluster_snapshot()))
        yield from sleep(interval)
        return tracker.update((yield from self.cluster_snapshot()))

    def sample(self, tracker: RateTracker) -> Operation[ClusterRates]:
        """Take one cluster snapshot and return the rates since the tracker's previous one."""
        snapshot = yield from self.cluster_snapshot()
        return tracker.update(snapshot)


class RrdOps:
    """RRD series and the current rates they give."""

    def __init__(self, session: Session, vm_ops: VmOps) -> None:
        self._session = session
        self._vm_ops = vm_ops

    def series(
        self, vmid: int, timeframe: str = "hour", cf: str = "AVERAGE", node: str | None = None
    ) -> Operation[list[RrdPoint]]:
        """Read a VM's RRD series, oldest point first."""
        params = dict(zip(("timeframe", "cf"), check_rrd_arguments(timeframe, cf), strict=True))
        vmid = check_vmid(vmid)

        def read(on: str) -> Operation[list[RrdPoint]]:
            rows = yield from self._session.get(api_path("nodes", on, "qemu", vmid, "rrddata"), params)
            return parse_series(rows)

        return (yield from self._vm_ops.on_vm(vmid, node, read))

    def node_series(
        self, node: str, timeframe: str = "hour", cf: str = "AVERAGE"
    ) -> Operation[list[RrdPoint]]:
        """Read a node's RRD series; the node name is used exactly as given (it is case-sensitive)."""
        params = dict(zip(("timeframe", "cf"), check_rrd_arguments(timeframe, cf), strict=True))
        rows = yield from self._session.get(api_path("nodes", check_node(node), "rrddata"), params)
        return parse_series(rows)

    def current(
        self, vmid: int, node: str | None = None, cf: str = "AVERAGE"
    ) -> Operation[CurrentRates | None]:
        """Return the newest ``hour`` point that has values, or None when the series has none."""
        params = dict(zip(("timeframe", "cf"), check_rrd_arguments("hour", cf), strict=True))
        vmid = check_vmid(vmid)

        def read(on: str) -> Operation[Any]:
            return (yield from self._session.get(api_path("nodes", on, "qemu", vmid, "rrddata"), params))

        rows = yield from self._vm_ops.on_vm(vmid, node, read)
        point = newest_point_in_rows(rows)
        if point is None:
            return None
        age = self._session.clock.wall() - point.time.timestamp()
        located = self._session.node_of.get(vmid, node or "")
        return CurrentRates(vmid, located, point, max(age, 0.0))

    def current_many(
        self, vmids: Sequence[int], cf: str = "AVERAGE"
    ) -> Operation[dict[int, CurrentRates | PveError | None]]:
        """Read the current RRD rates of many VMs with bounded concurrency; a failing VM gets its error."""
        check_rrd_arguments("hour", cf)
        checked = [check_vmid(vmid) for vmid in vmids]
        missing = [vmid for vmid in checked if vmid not in self._session.node_of]
        if missing:
            # One cluster listing locates every VM, instead of one lookup per VM.
            yield from self._vm_ops.cluster_guests()
        outcomes = yield from gather(
            [self.current(vmid, cf=cf) for vmid in checked], self._session.concurrency
        )
        return dict(zip(checked, outcomes, strict=True))


class AgentOps:
    """Guest agent network interfaces."""

    def __init__(self, session: Session, vm_ops: VmOps) -> None:
        self._session = session
        self._vm_ops = vm_ops

    def network(
        self, vmid: int, node: str | None = None, deadline: float | None = None
    ) -> Operation[GuestNetwork]:
        """Read a guest's interfaces: ``agent/network-get-interfaces`` for a VM, ``interfaces`` for a container.

        Raises AgentNotEnabledError, AgentNotRunningError or VmNotRunningError for
        the three ways the agent can fail to respond; a stopped container raises
        VmNotRunningError. ``deadline`` (on the clock's monotonic scale) bounds the read and its retries.
        """
        vmid = check_vmid(vmid)

        def read(on: str) -> Operation[GuestNetwork]:
            if vmid in self._session.containers:
                return (yield from self._container_network(vmid, on, deadline))
            path = api_path("nodes", on, "qemu", vmid, "agent", "network-get-interfaces")
            try:
                data = yield from self._session.get(path, deadline=deadline)
            except ServerError as exc:
                raise _agent_error(exc, vmid, on) from None
            return GuestNetwork.from_api(data, vmid=vmid, node=on)

        return (yield from self._vm_ops.on_vm(vmid, node, read, containers=True))

    def _container_network(self, vmid: int, node: str, deadline: float | None) -> Operation[GuestNetwork]:
        # An LXC container needs no agent: PVE reads its interfaces from the host side.
        path = api_path("nodes", node, "lxc", vmid, "interfaces")
        try:
            data = yield from self._session.get(path, deadline=deadline)
        except ServerError as exc:
            raise _agent_error(exc, vmid, node) from None
        if data is None:
            # PVE returns no data for a container that is not running.
            raise VmNotRunningError(
                f"container {vmid} on {node} is not running; start it first", vmid=vmid, node=node
            )
        return GuestNetwork.from_lxc(data, vmid=vmid, node=node)

    def primary_address(
        self, vmid: int, node: str | None = None, family: AddressFamily | None = None
    ) -> Operation[IpAddress | None]:
        """Return the VM's primary usable address, or None when it has none yet."""
        network = yield from self.network(vmid, node)
        return network.primary_address(family)

    def wait_for_address(
        self, vmid: int, timeout_seconds: float, node: str | None = None, family: AddressFamily | None = None
    ) -> Operation[IpAddress]:
        """Poll until the VM has one usable address, at most ``timeout_seconds``.

        It waits for one address, never for every interface: guests with
        docker or veth interfaces always have some without one. An agent that
        is not running yet is waited for. An agent that is not enabled, or a
        stopped VM, raises at once because waiting cannot help.
        """
        if not timeout_seconds > 0:
            raise InvalidInputError(f"timeout {timeout_seconds!r} must be a positive number of seconds")
        clock = self._session.clock
        deadline = clock.monotonic() + timeout_seconds
        interval = FIRST_ADDRESS_POLL_SECONDS

        while True:
            try:
                network = yield from self.network(vmid, node, deadline)
                address = network.primary_address(family)
                problem = (
                    f"interfaces without a usable address: {', '.join(n.name for n in network.interfaces)}"
                )
            except AgentNotRunningError as exc:
                address, problem = None, exc.message
            except PveError as exc:
                if isinstance(exc, PveTimeoutError) and clock.monotonic() >= deadline:
                    # A read cut short at the deadline ends the wait like a response without an address does.
                    address, problem = None, "the last read timed out at the deadline"
                elif self._session.rides_out(exc):
                    # As in a task wait, an outage after PVE has responded does not end the wait early.
                    address, problem = None, describe_failure(exc)
                else:
                    raise
            if address is not None:
                return address

            now = clock.monotonic()
            if now >= deadline:
                raise AddressWaitTimeoutError(vmid, timeout_seconds, problem)
            yield from sleep(min(interval, deadline - now))
            interval = min(interval * 1.5, MAX_ADDRESS_POLL_SECONDS)

    def networks_many(self, vmids: Sequence[int]) -> Operation[dict[int, GuestNetwork | PveError]]:
        """Read many VMs' interfaces with bounded concurrency; a VM whose agent fails gets its error."""
        checked = [check_vmid(vmid) for vmid in vmids]
        outcomes = yield from gather([self.network(vmid) for vmid in checked], self._session.concurrency)
        return dict(zip(checked, outcomes, strict=True))


def _agent_error(exc: ServerError, vmid: int, node: str) -> ApiError:
    message = exc.message.strip()
    details: Mapping[str, Any] = {
        "vmid": vmid,
        "node": node,
        "status_code": exc.status_code,
        "method": exc.method,
        "path": exc.path,
    }
    if "No QEMU guest agent configured" in message:
        return AgentNotEnabledError(
            f"VM {vmid} on {node}: the guest agent is not enabled in its configuration; "
            "set agent: 1 (Options > QEMU Guest Agent) and restart the VM",
            **details,
        )
    # A hung agent shows as a failed QMP guest command, for example
    # "VM 100 qmp command 'guest-ping' failed - got timeout".
    if "guest agent is not running" in message or "qmp command 'guest-" in message:
        return AgentNotRunningError(
            f"VM {vmid} on {node}: QEMU guest agent is not running; install and start "
            "qemu-guest-agent in the guest, or wait until it has booted",
            **details,
        )
    if _VM_NOT_RUNNING.search(message):
        return VmNotRunningError(f"VM {vmid} on {node} is not running; start it first", **details)
    return exc
