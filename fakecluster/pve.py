"""WorkloadPve: a fakepve server whose VMs carry a steady, known load, with rrddata to match."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from aiohttp import web
from fakepve import FakePve, FakeVm

from .workload import DEFAULT_UPTIME, Rates, TrackedVm, Workload

LOOPBACK_HOST = "127.0.0.1"

# Seconds per point of each rrddata timeframe, 70 points each, as pmxcfs (pve-cluster's status.c) creates
# the pve2-vm RRD files: a 60 s step consolidated by 1, 30, 180, 720 and 10080.
# NOTE: PVE 9 may serve finer archives for some timeframes, but this fake keeps the 70-point layout.
RRD_STEPS = {"hour": 60, "day": 1800, "week": 10800, "month": 43200, "year": 604800}
RRD_POINTS = 70

# Seconds after its interval ends before a point carries values. pmxcfs sends updates through rrdcached,
# which writes them late, so a real node's newest one or two points usually have only 'time'.
RRD_FLUSH_DELAY = 30

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def rrd_points(tracked: TrackedVm, usage: dict[str, Any], timeframe: str, now: float) -> list[dict[str, Any]]:
    """Build the rrddata series of one VM for ``timeframe`` at Unix time ``now``.

    Each point's time ends its interval and is a multiple of the step. The newest interval contains ``now``.
    A point has values when its interval ended ``RRD_FLUSH_DELAY`` seconds ago or more, and the VM was up at
    the interval's midpoint: the rates while running, zero CPU and byte rates while paused. Otherwise the
    point has only 'time'. ``usage`` supplies maxcpu, maxmem and maxdisk.
    """
    step = RRD_STEPS[timeframe]
    last = (int(now) // step + 1) * step
    first = last - (RRD_POINTS - 1) * step

    points: list[dict[str, Any]] = []
    for point_time in range(first, last + 1, step):
        point: dict[str, Any] = {"time": point_time}
        state = tracked.state_at(point_time - step / 2)
        if state in ("running", "paused") and point_time + RRD_FLUSH_DELAY <= now:
            rates = tracked.rates if state == "running" else Rates()
            point.update(
                cpu=rates.cpu,
                maxcpu=usage["maxcpu"],
                mem=tracked.mem,
                maxmem=usage["maxmem"],
                disk=0,
                maxdisk=usage["maxdisk"],
                netin=rates.netin,
                netout=rates.netout,
                diskread=rates.diskread,
                diskwrite=rates.diskwrite,
            )
        points.append(point)
    return points


# A path about one VM, such as /api2/json/nodes/pve1/qemu/100/status/current.
_ONE_VM_PATH = re.compile(r"/qemu/(\d+)(/|$)")


@dataclass
class _Drop:
    """Requests that drop_connection closes: method, path suffix, whether PVE acts first, how many more,
    and how many matching requests still get through before them."""

    method: str
    suffix: str
    handled: bool
    times: int
    after: int


def _close(request: web.Request) -> NoReturn:
    """Close the request's connection without a response, as a reset on the way does."""
    if request.transport is not None:
        request.transport.close()
    raise ConnectionResetError(f"fakecluster: dropped the connection of {request.method} {request.path}")


class WorkloadPve(FakePve):
    """A FakePve whose VMs' usage counters grow at known rates, with GET .../qemu/{vmid}/rrddata to match.

    Every VM added with ``add_vm`` is tracked in ``workload``. So is every VM that the API creates or
    clones: idle, with a history that starts at the end of the request that made it.

    Counters refresh right before each request's handler runs and again after it, so they are exact at
    request time and a power change made by the request enters the history at once.
    """

    def __init__(self, *, user: str = "root@pam", password: str, host: str = LOOPBACK_HOST, port: int = 0) -> None:
        super().__init__(user=user, password=password, host=host, port=port)
        self.workload = Workload()
        # (method, path) of every request as it arrives, before fakepve's simulated
        # network drops it or hangs. fakepve's own `requests` misses dropped ones.
        self.arrivals: list[tuple[str, str]] = []
        # Requests being handled now, and the most handled at once since the start.
        self.in_flight = 0
        self.peak_in_flight = 0
        self._drops: list[_Drop] = []

    def add_vm(
        self,
        *args: Any,
        rates: Rates | None = None,
        mem: int | None = None,
        uptime: float = DEFAULT_UPTIME,
        **kwargs: Any,
    ) -> FakeVm:
        """Add a FakeVm (arguments as fakepve's ``add_vm``) and track it with ``rates`` (default: idle).

        ``mem`` and ``uptime`` are as in ``Workload.track``.
        """
        vm = super().add_vm(*args, **kwargs)
        self.workload.track(vm, rates or Rates(), mem=mem, uptime=uptime)
        return vm

    def drop_connection(
        self, method: str, suffix: str, *, handled: bool = False, times: int = 1, after: int = 0
    ) -> None:
        """Close the connection of ``times`` requests whose path ends with ``suffix``, unanswered.

        The first ``after`` such requests get through, and the drops hit the ones
        that follow. Unlike fakepve's random drops, this hits chosen requests, for
        example one power action, while the requests around it get through. With
        ``handled`` PVE acts on the request first, so only its response is lost;
        without it the request never reaches the handler. Either way it is in ``arrivals``.
        """
        self._drops.append(_Drop(method, suffix, handled, times, after))

    def _take_drop(self, request: web.Request) -> _Drop | None:
        for drop in self._drops:
            if drop.times > 0 and request.method == drop.method and request.path.endswith(drop.suffix):
                if drop.after > 0:
                    drop.after -= 1
                    return None
                drop.times -= 1
                return drop
        return None

    def _build_app(self) -> web.Application:
        app: web.Application = super()._build_app()
        # fakepve 0.5.0 offers no public hook around every request. Appended last, this middleware runs
        # innermost: after fakepve's authentication and simulated latency, right around the handler.
        app.middlewares.append(self._refresh_workload)
        # Inserted first, this one runs outermost: before fakepve's latency, drops and hangs.
        app.middlewares.insert(0, self._record_arrival)
        return app

    @web.middleware
    async def _record_arrival(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.arrivals.append((request.method, request.path))
        # Bounded like fakepve's own request log, so a long benchmark does not grow the fake.
        if len(self.arrivals) > self.max_requests:
            del self.arrivals[: len(self.arrivals) - self.max_requests]
        drop = self._take_drop(request)
        if drop is not None and not drop.handled:
            _close(request)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            response = await handler(request)
        finally:
            self.in_flight -= 1
        if drop is not None:
            _close(request)
        return response

    @web.middleware
    async def _refresh_workload(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # A request about one VM refreshes only that VM, so per-VM requests stay cheap on a
        # fake with a thousand VMs. Every other request refreshes all of them.
        match = _ONE_VM_PATH.search(request.path)
        vmid = int(match.group(1)) if match else None
        self._refresh(vmid)
        try:
            return await handler(request)
        finally:
            self._refresh(vmid)

    def _refresh(self, vmid: int | None) -> None:
        self._track_new_vms()
        tracked = self.workload.get(vmid) if vmid is not None else None
        if tracked is None:
            self.workload.refresh()
        else:
            tracked.refresh(time.time())

    def _track_new_vms(self) -> None:
        # fakepve's create and clone handlers append to self.vms directly, bypassing add_vm.
        for vm in list(self.vms):
            tracked = self.workload.get(vm.vmid)
            if tracked is None or tracked.vm is not vm:
                self.workload.track(vm, Rates(), uptime=0.0)

    def _routes_workload(self) -> list[tuple[str, str, Callable[..., Awaitable[Any]]]]:
        # fakepve registers the routes returned by every method named _routes_*, after its schema checks.
        return [("GET", "/nodes/{node}/qemu/{vmid}/rrddata", self._rrddata)]

    async def _rrddata(self, values: dict[str, Any], user: str) -> list[dict[str, Any]]:
        # find() raises PVE's 500 for a VM that is not on this node. cf is ignored because AVERAGE and MAX
        # agree for a steady load.
        vm = self.find(values["node"], values["vmid"])
        # fakepve 0.5.0's own maxcpu, maxmem and maxdisk, so rrddata agrees with status/current.
        usage = self._vm_usage(vm)
        return rrd_points(self.workload[vm.vmid], usage, values["timeframe"], time.time())
