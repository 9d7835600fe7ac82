"""VM operations: locating a VM's node, listings, status, configuration and power actions."""

from __future__ import annotations

import fnmatch
import logging
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from ._core import Operation, ParamValue, Session, api_path, check_node, check_vmid, gather
from ._exceptions import (
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PveError,
    ServerError,
    VmNotFoundError,
)
from ._models import Guest, VmConfig, VmStatus, guest_locations
from ._tasks import TaskSummary

logger = logging.getLogger("pvekit")

T = TypeVar("T")
PowerAction = Literal["start", "stop", "shutdown", "reboot", "reset", "suspend", "resume"]

# The task type PVE gives each power action's worker; used to find a task that
# a lost response may have started.
TASK_TYPES: Mapping[str, str] = {
    "start": "qmstart",
    "stop": "qmstop",
    "shutdown": "qmshutdown",
    "reboot": "qmreboot",
    "reset": "qmreset",
    "suspend": "qmsuspend",
    "resume": "qmresume",
}
# Seconds of clock difference tolerated when looking for the task of a request whose response
# was lost: between the cluster's nodes, or, when a response has no Date header, between this
# machine and the node. pvekit's ticket handling already expects NTP on both.
CLOCK_SKEW_SECONDS = 2
# Seconds the task-list lookup after a lost response may take, retries included. It
# is short because the link just failed, and the caller gets OutcomeUnknownError anyway.
LOST_TASK_LOOKUP_SECONDS = 10.0

_by_vmid = operator.attrgetter("vmid")

# Listing row fields that describe a guest rather than measure it.
DESCRIPTIVE_FIELDS = ("id", "vmid", "name", "node", "type", "template", "tags", "pool", "lock", "hastate",
                      "maxcpu", "maxmem", "maxdisk")  # fmt: skip

_MISSING_CONFIG = re.compile(r"Configuration file '[^']*/(qemu-server|lxc)/(\d+)\.conf' does not exist")


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """A node whose listing failed while the others succeeded."""

    node: str
    error: PveError


@dataclass(frozen=True, slots=True)
class GuestListing:
    """Guests gathered node by node, with the nodes that could not be read."""

    guests: tuple[Guest, ...]
    failures: tuple[NodeFailure, ...]


# Statuses a listing row can be filtered by: PVE's own, and hibernated (stopped
# with the lock "suspended"). A listing cannot tell paused from running.
LISTING_STATUSES = ("running", "stopped", "unknown", "hibernated")


def filter_guests(
    guests: Sequence[Guest],
    *,
    status: str | None = None,
    tags: Sequence[str] | str = (),
    pool: str | None = None,
    name: str | None = None,
) -> list[Guest]:
    """Keep the guests that match every given filter; ``name`` is a shell-style pattern.

    ``tags`` is one tag or several, all of which must match.

    Raises:
        InvalidInputError: ``status`` is not one a listing can tell.
    """
    if isinstance(tags, str):
        tags = (tags,)
    if status is not None and status not in LISTING_STATUSES:
        hint = " (a listing cannot tell paused from running; read vms.status() per VM)" if status == "paused" else ""
        raise InvalidInputError(f"status filter {status!r} is invalid; use one of {', '.join(LISTING_STATUSES)}{hint}")
    if status is None and not tags and pool is None and name is None:
        return list(guests)
    kept = []
    for guest in guests:
        if status is not None and status not in (guest.status, guest.power_state.value):
            continue
        if tags and not set(tags) <= set(guest.tags):
            continue
        if pool is not None and guest.pool != pool:
            continue
        if name is not None and not fnmatch.fnmatchcase(guest.name or "", name):
            continue
        kept.append(guest)
    return kept


class VmOps:
    """The VM operations, as I/O-free generators."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # ------------------------------------------------------------ locating

    def cluster_guests(self) -> Operation[list[Guest]]:
        """Read every VM and container of the cluster in one request, and remember their nodes."""
        rows = yield from self._session.get("/cluster/resources", {"type": "vm"})
        # isinstance against dict, not Mapping: the ABC check costs more than building a Guest.
        # Guest(row), not Guest.from_api(row): under cProfile the extra call was about a fifth of the cost per row.
        guests = [Guest(row) for row in rows or [] if isinstance(row, dict)]
        nodes, containers = guest_locations(guests)
        self._session.node_of.update(nodes)
        self._session.containers -= nodes.keys() - containers
        self._session.containers |= containers
        return guests

    def locate(self, vmid: int, node: str | None = None) -> Operation[str]:
        """Return the node of a VM: the given one, the cached one, or the one the cluster lists."""
        vmid = check_vmid(vmid)
        if node is not None:
            return check_node(node)
        cached = self._session.node_of.get(vmid)
        if cached is not None:
            return cached

        yield from self.cluster_guests()
        found = self._session.node_of.get(vmid)
        if found is None:
            raise _not_in_cluster(vmid)
        return found

    def on_vm(
        self, vmid: int, node: str | None, build: Callable[[str], Operation[T]], *, containers: bool = False
    ) -> Operation[T]:
        """Run a per-VM operation on the VM's node, following the VM once if it migrated.

        An explicit node is respected: a VM missing there raises VmNotFoundError.
        A container VMID raises VmNotFoundError too, unless ``containers`` is
        True because the operation handles containers itself.
        """
        vmid = check_vmid(vmid)
        explicit = node is not None
        current = yield from self.locate(vmid, node)
        if vmid in self._session.containers and not containers:
            raise VmNotFoundError(
                f"guest {vmid} on {current!r} is an LXC container, not a QEMU VM; "
                "pvekit's VM calls do not apply to containers",
                vmid=vmid,
                node=current,
            )
        try:
            return (yield from build(current))
        except (ServerError, NotFoundError) as exc:
            if not _says_config_missing(exc, vmid):
                raise
            if explicit:
                raise VmNotFoundError(
                    f"VM {vmid} not found on node {current!r}; leave out the node to find it cluster-wide",
                    vmid=vmid,
                    node=current,
                    status_code=exc.status_code,
                    method=exc.method,
                    path=exc.path,
                ) from None

        logger.info("VM %d is no longer on node %s; looking it up again", vmid, current)
        self._session.node_of.pop(vmid, None)
        moved = yield from self.locate(vmid)
        if moved == current:
            raise VmNotFoundError(
                f"VM {vmid} is listed on node {current!r} but its configuration does not exist there; "
                "it may be migrating or being destroyed, so try again shortly",
                vmid=vmid,
                node=current,
            )
        return (yield from build(moved))

    # ------------------------------------------------------------ reading

    def list_vms(
        self,
        node: str | None = None,
        *,
        status: str | None = None,
        tags: Sequence[str] | str = (),
        pool: str | None = None,
        name: str | None = None,
    ) -> Operation[list[Guest]]:
        """List QEMU VMs of one node, or of the cluster when no node is given."""
        if node is None:
            guests = yield from self.cluster_guests()
            vms = [guest for guest in guests if guest.kind == "qemu"]
        else:
            vms = yield from self.node_vms(check_node(node))
        return filter_guests(sorted(vms, key=_by_vmid), status=status, tags=tags, pool=pool, name=name)

    def node_vms(self, node: str) -> Operation[list[Guest]]:
        """List the QEMU VMs of one node (``/nodes/{node}/qemu``)."""
        rows = yield from self._session.get(api_path("nodes", node, "qemu"))
        vms = [Guest.from_api(row, node=node) for row in rows or [] if isinstance(row, dict)]
        self._session.node_of.update((vm.vmid, node) for vm in vms)
        return vms

    def get(self, vmid: int) -> Operation[Guest]:
        """Return the guest's row of the cluster listing."""
        vmid = check_vmid(vmid)
        guests = yield from self.cluster_guests()
        for guest in guests:
            if guest.vmid == vmid:
                return guest
        raise _not_in_cluster(vmid)

    def list_by_node(self, nodes: Sequence[str] | None = None) -> Operation[GuestListing]:
        """List the VMs of each node (all nodes when None), one request per node.

        A node that fails, for example one that is down (HTTP 595), is reported
        in ``failures`` while the other nodes' VMs are returned. The failed
        node's VMs are listed too, from the cluster listing, with status
        ``unknown`` and no usage values.
        """
        if nodes is None:
            nodes = yield from self.nodes()
        operations = [self.node_vms(check_node(node)) for node in nodes]
        outcomes = yield from gather(operations, self._session.concurrency)
        guests: list[Guest] = []
        failures: list[NodeFailure] = []
        for node, outcome in zip(nodes, outcomes, strict=True):
            if isinstance(outcome, PveError):
                failures.append(NodeFailure(node, outcome))
            else:
                guests.extend(outcome)
        if failures:
            guests.extend((yield from self._unreachable_vms({failure.node for failure in failures})))
        return GuestListing(tuple(sorted(guests, key=_by_vmid)), tuple(failures))

    def _unreachable_vms(self, nodes: set[str]) -> Operation[list[Guest]]:
        """List the VMs of nodes that could not be read, from the cluster listing, with status unknown.

        The cluster's configuration lists every VM, even on a node that is
        down, but its usage values for such a node are stale, so they are left out.
        """
        try:
            rows = yield from self._session.get("/cluster/resources", {"type": "vm"})
        except PveError as exc:
            logger.warning("the VMs of unreachable nodes %s cannot be listed: %s", ", ".join(sorted(nodes)), exc)
            return []
        vms = []
        for row in rows or []:
            if isinstance(row, dict) and row.get("type") == "qemu" and row.get("node") in nodes:
                described = {name: row[name] for name in DESCRIPTIVE_FIELDS if name in row}
                described["status"] = "unknown"
                vms.append(Guest.from_api(described))
        return vms

    def nodes(self) -> Operation[list[str]]:
        """Return the names of the cluster's nodes, exactly as PVE spells them."""
        rows = yield from self._session.get("/nodes")
        return sorted(str(row["node"]) for row in rows or [] if isinstance(row, Mapping) and row.get("node"))

    def status(self, vmid: int, node: str | None = None) -> Operation[VmStatus]:
        """Read ``status/current``."""

        def read(on: str) -> Operation[VmStatus]:
            data = yield from self._session.get(api_path("nodes", on, "qemu", vmid, "status", "current"))
            return VmStatus.from_api(data or {}, on, vmid)

        return (yield from self.on_vm(vmid, node, read))

    def config(self, vmid: int, node: str | None = None, *, current: bool = False) -> Operation[VmConfig]:
        """Read the configuration; ``current=True`` leaves out changes pending until the next start."""

        def read(on: str) -> Operation[VmConfig]:
            params = {"current": True} if current else None
            data = yield from self._session.get(api_path("nodes", on, "qemu", vmid, "config"), params)
            return VmConfig.from_api(data or {}, on, vmid)

        return (yield from self.on_vm(vmid, node, read))

    # ------------------------------------------------------------ power

    def power(
        self, vmid: int, action: PowerAction, params: Mapping[str, ParamValue], node: str | None = None
    ) -> Operation[str]:
        """Send a power action and return the UPID of the task PVE started."""

        def send(on: str) -> Operation[str]:
            path = api_path("nodes", on, "qemu", vmid, "status", action)
            sent_at = self._session.clock.wall()
            try:
                reply = yield from self._session.request("POST", path, params)
            except OutcomeUnknownError as lost:
                # The request may have reached PVE although no response came back. It is
                # never sent again: the task it started, if any, is the result.
                upid = yield from self._find_lost_task(on, vmid, action, sent_at, lost)
            else:
                upid = str(reply.data)
            self._session.started_upids.append(upid)
            return upid

        return (yield from self.on_vm(vmid, node, send))

    def start(
        self, vmid: int, node: str | None = None, *, timeout: int | None = None, skiplock: bool = False
    ) -> Operation[str]:
        """Start (or wake from hibernation); ``timeout`` is PVE's wait for the start, in seconds."""
        params: dict[str, ParamValue] = {"timeout": _seconds(timeout), "skiplock": _skiplock(skiplock)}
        return (yield from self.power(vmid, "start", params, node))

    def stop(
        self,
        vmid: int,
        node: str | None = None,
        *,
        timeout: int | None = None,
        overrule_shutdown: bool = False,
        skiplock: bool = False,
    ) -> Operation[str]:
        """Hard stop: end the QEMU process at once, like pulling the power cord."""
        params: dict[str, ParamValue] = {
            "timeout": _seconds(timeout),
            "overrule-shutdown": True if overrule_shutdown else None,
            "skiplock": _skiplock(skiplock),
        }
        return (yield from self.power(vmid, "stop", params, node))

    def shutdown(
        self,
        vmid: int,
        node: str | None = None,
        *,
        timeout: int | None = None,
        force_stop: bool = False,
        skiplock: bool = False,
    ) -> Operation[str]:
        """ACPI shutdown: ask the guest OS to power off; ``force_stop`` hard-stops it after ``timeout``."""
        params: dict[str, ParamValue] = {
            "timeout": _seconds(timeout),
            "forceStop": True if force_stop else None,
            "skiplock": _skiplock(skiplock),
        }
        return (yield from self.power(vmid, "shutdown", params, node))

    def reboot(self, vmid: int, node: str | None = None, *, timeout: int | None = None) -> Operation[str]:
        """ACPI reboot: shut the guest down cleanly, then start it, applying pending changes."""
        return (yield from self.power(vmid, "reboot", {"timeout": _seconds(timeout)}, node))

    def reset(self, vmid: int, node: str | None = None, *, skiplock: bool = False) -> Operation[str]:
        """Hard reset, like pressing the reset button; the guest OS gets no warning."""
        return (yield from self.power(vmid, "reset", {"skiplock": _skiplock(skiplock)}, node))

    def suspend(
        self,
        vmid: int,
        node: str | None = None,
        *,
        to_disk: bool = False,
        state_storage: str | None = None,
        skiplock: bool = False,
    ) -> Operation[str]:
        """Pause the VM's CPUs (PVE's suspend), or with ``to_disk`` hibernate it to ``state_storage``."""
        params: dict[str, ParamValue] = {
            "todisk": True if to_disk else None,
            "statestorage": state_storage,
            "skiplock": _skiplock(skiplock),
        }
        return (yield from self.power(vmid, "suspend", params, node))

    def resume(self, vmid: int, node: str | None = None, *, skiplock: bool = False) -> Operation[str]:
        """Resume a paused VM. A hibernated VM is woken with start instead."""
        return (yield from self.power(vmid, "resume", {"skiplock": _skiplock(skiplock)}, node))

    def _find_lost_task(
        self, node: str, vmid: int, action: PowerAction, sent_at: float, lost: OutcomeUnknownError
    ) -> Operation[str]:
        """Return the UPID of the task that a power action with a lost response started.

        Raises:
            OutcomeUnknownError: no such task is listed, or the task list could not be read.
        """
        deadline = self._session.clock.monotonic() + LOST_TASK_LOOKUP_SECONDS
        try:
            upid = yield from self._task_started_since(node, vmid, TASK_TYPES[action], sent_at, deadline)
        except PveError as exc:
            upid, looked = None, f"reading the node's task list failed too ({type(exc).__name__})"
        else:
            looked = "no task of it is listed yet"
        if upid is not None:
            logger.info("%s of VM %d: response lost, found its task %s", action, vmid, upid)
            return upid
        # INFO, not WARNING: the OutcomeUnknownError raised next carries the same facts to the caller.
        logger.info("%s of VM %d: response lost and %s; not sending it again", action, vmid, looked)
        raise OutcomeUnknownError(
            f"{action} of VM {vmid} on {node}: the request was sent but its response was lost, and {looked}, "
            f"so the {action} may or may not have happened. Check VM {vmid}'s recent tasks "
            f"(pvekit task list --vmid {vmid}, or tasks.list(vmid={vmid})) and its status before sending it again",
            method=lost.method,
            url=lost.url,
            vmid=vmid,
        ) from lost

    def _task_started_since(
        self, node: str, vmid: int, task_type: str, sent_at: float, deadline: float
    ) -> Operation[str | None]:
        """Return the UPID of this client's first task of the type on the VM that started after ``sent_at``.

        ``sent_at`` is on this machine's clock and a task's start time on the node's, so the
        Date header of the task list's response converts one into the other.
        """
        params: dict[str, ParamValue] = {"vmid": vmid, "typefilter": task_type, "source": "all"}
        reply = yield from self._session.request("GET", api_path("nodes", node, "tasks"), params, deadline=deadline)
        offset = reply.server_clock_offset()
        # NOTE: a task that another program started with the same token a few seconds before the
        # request passes this check too. Only separate tokens rule that out.
        earliest = math.floor(sent_at + (offset or 0.0)) - CLOCK_SKEW_SECONDS
        found: TaskSummary | None = None
        for row in reply.data or []:
            if not isinstance(row, Mapping):
                continue
            summary = TaskSummary.from_api(row)
            mine = self._session.auth_id is None or summary.auth_id == self._session.auth_id
            if not (mine and summary.task_type == task_type and summary.id == str(vmid)):
                continue
            if summary.starttime is None or summary.starttime < earliest:
                continue
            if summary.upid in self._session.started_upids:
                continue
            if found is None or summary.starttime < (found.starttime or 0):
                found = summary
        return found.upid if found is not None else None


def _says_config_missing(exc: PveError, vmid: int) -> bool:
    match = _MISSING_CONFIG.search(str(getattr(exc, "message", "")))
    return match is not None and int(match.group(2)) == vmid


def _skiplock(skiplock: bool) -> bool | None:
    """Encode skiplock: sent only when asked for, since PVE allows it only to root@pam's password login."""
    if not isinstance(skiplock, bool):
        raise InvalidInputError(f"skiplock {skiplock!r} must be True or False")
    return True if skiplock else None


def _seconds(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"timeout {value!r} must be a whole number of seconds, 0 or more")
    return value


def _not_in_cluster(vmid: int) -> VmNotFoundError:
    return VmNotFoundError(
        f"VM {vmid} not found in the cluster; check the VMID with `pvekit vms` "
        "and that the token may audit it (VM.Audit)",
        vmid=vmid,
    )
