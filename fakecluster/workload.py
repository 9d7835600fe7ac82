"""Steady per-VM load on a fakepve cluster: usage counters that grow at known rates, and power history."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

from fakepve import FakeVm

PowerState = Literal["running", "paused", "stopped"]

# FakeVm.stats keys that hold cumulative byte counters, as PVE names them.
COUNTERS = ("netin", "netout", "diskread", "diskwrite")

# Seconds a VM that is up when tracked has been up. Its counters and history start then.
DEFAULT_UPTIME = 86400.0

MIB = 1024 * 1024

# PVE's default when a VM config has no 'memory' key.
DEFAULT_MEMORY_MIB = 512


@dataclass(frozen=True)
class Rates:
    """Steady load of a running VM: CPU usage as a fraction of its vCPUs, and byte rates in bytes/second."""

    cpu: float = 0.0
    netin: float = 0.0
    netout: float = 0.0
    diskread: float = 0.0
    diskwrite: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.cpu <= 1.0:
            raise ValueError(f"cpu must be a fraction between 0 and 1, got {self.cpu!r}")
        for key in COUNTERS:
            value = getattr(self, key)
            if value < 0:
                raise ValueError(f"{key} must be a rate of at least 0 bytes per second, got {value!r}")


def power_state(vm: FakeVm) -> PowerState:
    """Classify a FakeVm as running, paused (QEMU suspended to RAM) or stopped."""
    if vm.status != "running":
        return "stopped"
    if vm.qmpstatus == "paused":
        return "paused"
    return "running"


def config_memory_bytes(config: dict[str, object]) -> int:
    """Return the VM's memory size in bytes from its config, whose 'memory' is ``[current=]<MiB>``."""
    text = str(config.get("memory", DEFAULT_MEMORY_MIB))
    match = re.search(r"(?:^|current=)(\d+)", text)
    if match is None:
        raise ValueError(f"invalid memory value {text!r} in VM config, expected [current=]<MiB>")
    return int(match.group(1)) * MIB


@dataclass
class TrackedVm:
    """A FakeVm with its load, the memory it uses while up, and the history of its power states."""

    vm: FakeVm
    rates: Rates
    mem: int
    # (Unix time, state) of each change, oldest first. A state lasts until the next change, and before the
    # first entry the VM did not exist.
    history: list[tuple[float, PowerState]]
    # Seconds spent running (not paused) since the VM's start, up to observed_at.
    active_seconds: float
    observed_at: float
    # vm.started_at when last observed. fakepve sets a new value on every start, reset and reboot.
    started_at: float | None = None

    def state_at(self, when: float) -> PowerState | None:
        """Return the power state at Unix time ``when``, or None before the history begins."""
        for changed_at, state in reversed(self.history):
            if changed_at <= when:
                return state
        return None

    def refresh(self, now: float) -> None:
        """Bring the counters, CPU and memory in ``vm.stats`` up to ``now``, and note a power state change.

        The time since the previous refresh counts in the state seen then, so a change made by a request is
        exact when a refresh follows that request.
        """
        vm = self.vm
        state = power_state(vm)
        previous = self.history[-1][1]

        if state != "stopped" and vm.started_at != self.started_at:
            # fakepve started, reset or rebooted the VM: its counters begin again at zero.
            self.started_at = vm.started_at
            self.active_seconds = max(0.0, now - (vm.started_at or now))
        elif state != "stopped" and previous == "running":
            self.active_seconds += max(0.0, now - self.observed_at)

        if state != previous:
            self.history.append((now, state))
        self.observed_at = now

        stats = vm.stats
        if state == "stopped":
            # PVE reports no usage for a stopped VM.
            stats.update(cpu=0, mem=0, memhost=0, **dict.fromkeys(COUNTERS, 0))
            return
        stats["cpu"] = self.rates.cpu if state == "running" else 0.0
        # memhost is PVE 9's host-side view of the same memory.
        stats["mem"] = stats["memhost"] = self.mem
        for key in COUNTERS:
            stats[key] = int(getattr(self.rates, key) * self.active_seconds)

    def record_outage(self, start: float, end: float) -> None:
        """Rewrite the history so that the VM was stopped from ``start`` to ``end``, Unix seconds in the past.

        After ``end`` the VM is in the state the history had there. If the VM is up now and its current run
        began before ``end``, the outage ends that run, so its uptime and counters restart at ``end``.
        """
        now = time.time()
        if not start < end <= now:
            raise ValueError(f"invalid outage from {start} to {end}: expected start < end <= now ({now:.0f})")

        after = self.state_at(end)
        history = [entry for entry in self.history if not start <= entry[0] <= end]
        history.append((start, "stopped"))
        if after is not None:
            history.append((end, after))
        history.sort(key=lambda entry: entry[0])
        self.history = history

        vm = self.vm
        if power_state(vm) != "stopped" and vm.started_at is not None and vm.started_at < end:
            vm.started_at = end
        self.refresh(now)


class Workload:
    """The tracked VMs of one fake cluster, by VM id."""

    def __init__(self) -> None:
        self._vms: dict[int, TrackedVm] = {}

    def track(
        self, vm: FakeVm, rates: Rates, *, mem: int | None = None, uptime: float = DEFAULT_UPTIME
    ) -> TrackedVm:
        """Track a FakeVm with steady ``rates`` and return its record.

        ``mem`` is the memory in bytes the VM uses while up (default: half its configured memory). A VM that
        is up has been up for ``uptime`` seconds: its start time moves back that far, and its counters and
        history start there.
        """
        now = time.time()
        state = power_state(vm)
        if mem is None:
            mem = config_memory_bytes(vm.config) // 2

        if state == "stopped":
            history: list[tuple[float, PowerState]] = [(now, "stopped")]
            active_seconds = 0.0
        else:
            vm.started_at = now - uptime
            history = [(now - uptime, state)]
            active_seconds = uptime if state == "running" else 0.0

        tracked = TrackedVm(
            vm=vm,
            rates=rates,
            mem=mem,
            history=history,
            active_seconds=active_seconds,
            observed_at=now,
            started_at=vm.started_at,
        )
        self._vms[vm.vmid] = tracked
        tracked.refresh(now)
        return tracked

    def get(self, vmid: int) -> TrackedVm | None:
        """Return the record of a tracked VM, or None for an untracked one."""
        return self._vms.get(vmid)

    def __getitem__(self, vmid: int) -> TrackedVm:
        tracked = self._vms.get(vmid)
        if tracked is None:
            raise KeyError(f"VM {vmid} is not tracked; add it with WorkloadPve.add_vm or Workload.track")
        return tracked

    def refresh(self) -> None:
        """Bring every tracked VM's stats up to the current time."""
        now = time.time()
        # A copy, because tests may track VMs from another thread while the server refreshes.
        for tracked in list(self._vms.values()):
            tracked.refresh(now)
