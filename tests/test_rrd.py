"""RRD series: replayed rows with gaps, RRD errors, case-sensitive node names, and the fake's series."""

from __future__ import annotations

import itertools
import time
from datetime import timezone

import pytest

from fakecluster import FakeCluster, Rates
from pvekit import InvalidInputError, RetryPolicy, RRDError, mean
from pvekit._core import Session
from pvekit._monitor_ops import RrdOps
from pvekit._rrd import check_rrd_arguments, newest_with_values, parse_series
from pvekit._vm_ops import VmOps
from tests.conftest import Api, FakeClock
from tests.scripted import drive, response

RRD_ROWS = [
    {"time": 1710000000, "maxcpu": 8, "cpu": 0.0114016215025843, "mem": 1128350173.86667, "maxmem": 2097152000,
     "netin": 3214.62333333333, "netout": 148.906666666667, "diskread": 0, "diskwrite": 11864.7466666667,
     "disk": 0, "maxdisk": 18467520512},
    {"time": 1710000060, "maxcpu": 8, "cpu": 0.011339877668421, "mem": 1128205038.93333, "maxmem": 2097152000,
     "netin": 3346.48, "netout": 80.0466666666667, "diskread": 0, "diskwrite": 2607.78666666667, "disk": 0,
     "maxdisk": 18467520512},
    {"time": 1710000120, "maxcpu": 8, "maxmem": 2097152000, "disk": 0, "maxdisk": 18467520512},
    {"time": 1710000180, "maxcpu": 8, "cpu": 0.0112381427344003, "mem": 1127855240.53333, "maxmem": 2097152000,
     "netin": 2925.52333333333, "netout": 70.5866666666666, "diskread": 0, "diskwrite": 6075.73333333333,
     "disk": 0, "maxdisk": 18467520512},
]  # fmt: skip
RRD_MESSAGE = "RRD error: No DS called 'AVERAGE' in '/var/lib/rrdcached/db/pve-vm-9.0/100'"


def test_missing_values_are_none_not_zero() -> None:
    points = parse_series(RRD_ROWS)

    gap = points[2]
    assert gap.cpu is None
    assert gap.mem_bytes is None
    assert gap.netin_per_second is None
    assert gap.diskwrite_per_second is None
    assert not gap.has_values
    assert points[0].diskread_per_second == 0.0


def test_rates_are_taken_as_sent() -> None:
    points = parse_series(RRD_ROWS)

    assert points[0].netin_per_second == pytest.approx(3214.62, abs=0.01)
    assert points[0].time.tzinfo is timezone.utc
    assert points[0].time.timestamp() == 1710000000


def test_mean_skips_points_without_values() -> None:
    points = parse_series(RRD_ROWS)

    assert mean(points, "netin_per_second") == pytest.approx(3162.21, abs=0.01)


def test_cpu_and_memory_percent() -> None:
    first = parse_series(RRD_ROWS)[0]

    assert first.cpu_percent == pytest.approx(1.14, abs=0.01)
    assert first.mem_bytes == pytest.approx(1128350173.87, abs=0.01)
    assert first.mem_percent == pytest.approx(53.80, abs=0.01)


def test_nan_and_null_become_none() -> None:
    points = parse_series([{"time": 1, "netin": "NaN", "netout": None, "cpu": float("nan")}])

    assert points[0].netin_per_second is None
    assert points[0].netout_per_second is None
    assert points[0].cpu is None


def test_newest_point_skips_trailing_empty() -> None:
    rows = [*RRD_ROWS, {"time": 1710000240}, {"time": 1710000300}]

    point = newest_with_values(parse_series(rows))

    assert point is not None
    assert point.time.timestamp() == 1710000180


@pytest.mark.parametrize(("timeframe", "cf"), [("minute", "AVERAGE"), ("hour", "MIN"), ("", "AVERAGE")])
async def test_invalid_arguments_rejected_before_request(
    api: Api, cluster: FakeCluster, timeframe: str, cf: str
) -> None:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running")
    before = len(cluster.pve.requests)

    with pytest.raises(InvalidInputError) as caught:
        await api.call(lambda pve: pve.rrd.series(100, timeframe, cf))

    assert "hour, day, week, month, year" in str(caught.value) or "AVERAGE, MAX" in str(caught.value)
    assert len(cluster.pve.requests) == before


async def test_series_from_fake(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running", rates=Rates(cpu=0.2, netin=4096, diskwrite=8192))

    points = await api.call(lambda pve: pve.rrd.series(100, "hour", "AVERAGE"))

    assert 60 <= len(points) <= 80
    assert not points[-1].has_values
    with_values = [point for point in points if point.has_values]
    assert with_values
    assert all(point.netin_per_second == 4096 for point in with_values)
    assert all(point.diskwrite_per_second == 8192 for point in with_values)
    steps = {(b.time - a.time).total_seconds() for a, b in itertools.pairwise(points)}
    assert steps == {60.0}


async def test_current_rates_from_newest_point(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running", rates=Rates(netin=4096, netout=1024))

    current = await api.call(lambda pve: pve.rrd.current(100))

    assert current is not None
    assert current.netin_per_second == 4096
    assert current.netout_per_second == 1024
    assert current.node == "pve1"
    assert 0 <= current.age_seconds < 180
    assert current.time.tzinfo is timezone.utc


async def test_current_of_never_running_vm_is_none(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(101, "db01", node="pve1", status="stopped")

    assert await api.call(lambda pve: pve.rrd.current(101)) is None


async def test_stopped_interval_is_a_gap(api: Api, cluster: FakeCluster) -> None:
    vm = cluster.pve.add_vm(100, "web01", node="pve1", status="running", rates=Rates(netin=4096))
    now = time.time()
    cluster.pve.workload[vm.vmid].record_outage(now - 40 * 60, now - 25 * 60)

    points = await api.call(lambda pve: pve.rrd.series(100))

    gap = [p for p in points if now - 39 * 60 < p.time.timestamp() < now - 26 * 60]
    assert gap
    assert all(not point.has_values for point in gap)


async def test_rrd_error_has_its_own_type(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running")
    cluster.pve.fail("GET", "/nodes/pve1/qemu/100/rrddata", 500, RRD_MESSAGE)

    with pytest.raises(RRDError) as caught:
        await api.call(lambda pve: pve.rrd.series(100))

    assert caught.value.message == RRD_MESSAGE
    assert caught.value.status_code == 500


async def test_node_series_keeps_node_case(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_node("HomeNet")

    await api.call(lambda pve: pve.rrd.node_series("HomeNet"))

    assert cluster.pve.requests[-1][1] == "/api2/json/nodes/HomeNet/rrddata"


async def test_current_many_keeps_going_past_errors(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running", rates=Rates(netin=100))
    cluster.pve.add_vm(101, "db01", node="pve2", status="running", rates=Rates(netin=200))
    cluster.pve.fail("GET", "/nodes/pve2/qemu/101/rrddata", 500, RRD_MESSAGE)

    results = await api.call(lambda pve: pve.rrd.current_many([100, 101]))

    assert results[100].netin_per_second == 100
    assert isinstance(results[101], RRDError)


def test_timeframe_and_cf_are_separate_query_parameters() -> None:
    session = Session(clock=FakeClock(), retry=RetryPolicy.off(), auth_id=None, concurrency=1)
    session.node_of[100] = "HomeNet"

    points, effects = drive(RrdOps(session, VmOps(session)).series(100, "day", "MAX"), [response(200, {"data": []})])

    assert points == []
    assert effects[0].path == "/nodes/HomeNet/qemu/100/rrddata"
    assert effects[0].params == (("timeframe", "day"), ("cf", "MAX"))


def test_rrd_arguments_any_case() -> None:
    assert check_rrd_arguments("Hour", "max") == ("hour", "MAX")
