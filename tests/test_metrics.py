"""Snapshots and rates: the arithmetic on its own, and against the fake's known rates on both clients."""

from __future__ import annotations

import math
import time

import pytest

from fakecluster import FakeCluster, Rates
from pvekit import MetricsSnapshot, compute_rates
from pvekit._metrics import ClusterSnapshot, compute_cluster_rates
from tests.conftest import Api, FakeClock

KIB = 1024
MIB = 1024 * 1024


def snap(
    monotonic: float,
    *,
    netin: int | None = 0,
    netout: int | None = 0,
    diskread: int | None = 0,
    diskwrite: int | None = 0,
    uptime: int = 100,
    status: str = "running",
    node: str = "pve1",
) -> MetricsSnapshot:
    data = {"status": status, "uptime": uptime, "netin": netin, "netout": netout, "diskread": diskread,
            "diskwrite": diskwrite, "cpu": 0.5, "cpus": 4}  # fmt: skip
    return MetricsSnapshot.from_api(data, vmid=100, node=node, monotonic_seconds=monotonic, wall_seconds=1.7e9)


def test_rate_divides_by_time_between_responses() -> None:
    rates = compute_rates(snap(10.0, netin=1000), snap(12.5, netin=6000))

    assert rates.interval_seconds == 2.5
    assert rates.netin_per_second == 2000.0


def test_unchanged_counter_is_zero_not_none() -> None:
    rates = compute_rates(snap(0.0, diskread=500), snap(1.0, diskread=500))

    assert rates.diskread_per_second == 0.0


def test_counter_going_down_is_a_reset() -> None:
    rates = compute_rates(snap(0.0, netin=10_000, netout=50), snap(5.0, netin=200, netout=80))

    assert rates.netin_per_second is None
    assert rates.netout_per_second == 6.0
    assert rates.resets == frozenset({"netin"})
    assert rates.reset


def test_uptime_going_down_resets_every_counter() -> None:
    rates = compute_rates(snap(0.0, netin=100, uptime=500), snap(5.0, netin=900, uptime=3))

    assert rates.netin_per_second is None
    assert rates.resets == frozenset({"netin", "netout", "diskread", "diskwrite"})


def test_node_change_is_a_reset() -> None:
    rates = compute_rates(snap(0.0, netin=100, node="pve1"), snap(5.0, netin=900, uptime=200, node="pve2"))

    assert rates.netin_per_second is None
    assert rates.reset


def test_stopped_vm_has_no_rate() -> None:
    rates = compute_rates(snap(0.0, status="stopped"), snap(5.0, status="stopped"))

    assert rates.netin_per_second is None
    assert rates.diskwrite_per_second is None
    assert not rates.reset


def test_missing_or_null_counter_has_no_rate() -> None:
    rates = compute_rates(snap(0.0, diskwrite=None), snap(5.0, diskwrite=100))

    assert rates.diskwrite_per_second is None
    assert rates.netin_per_second == 0.0


def test_first_snapshot_has_no_rate() -> None:
    rates = compute_rates(None, snap(5.0, netin=100))

    assert rates.netin_per_second is None
    assert rates.interval_seconds is None


def test_cluster_baseline_follows_vmid() -> None:
    row = {"type": "qemu", "vmid": 100, "node": "pve1", "status": "running", "uptime": 100, "netin": 1000}
    moved = dict(row, node="pve2", netin=5000, uptime=101)
    new = {"type": "lxc", "vmid": 200, "node": "pve1", "status": "running", "uptime": 5, "netin": 10}

    rates = compute_cluster_rates(
        ClusterSnapshot.from_rows([row], 0.0, 1.7e9), ClusterSnapshot.from_rows([moved, new], 1.0, 1.7e9 + 1)
    )

    assert rates[100].reset
    assert rates[100].netin_per_second is None
    assert rates[200].kind == "lxc"
    assert rates[200].netin_per_second is None


@pytest.fixture
def loaded(cluster: FakeCluster) -> FakeCluster:
    web = Rates(cpu=0.25, netin=400 * KIB, netout=2 * MIB, diskread=16 * KIB, diskwrite=1 * MIB)
    db = Rates(cpu=0.5, netin=600 * KIB, netout=900 * KIB, diskread=3 * MIB, diskwrite=5 * MIB)
    cluster.pve.add_vm(100, "web01", node="pve1", status="running", rates=web)
    cluster.pve.add_vm(101, "db01", node="pve2", status="running", rates=db)
    cluster.pve.add_vm(102, "idle01", node="pve2", status="stopped", rates=Rates(netin=1 * MIB))
    return cluster


def assert_close(measured: float | None, expected: float) -> None:
    assert measured is not None
    assert math.isclose(measured, expected, rel_tol=0.1), (measured, expected)


async def test_snapshot_counters_and_stamps(api: Api, loaded: FakeCluster) -> None:
    before = time.time()
    snapshot = await api.call(lambda pve: pve.metrics.snapshot(100))

    assert snapshot.cpu.ratio == 0.25
    assert snapshot.cpu.percent == 25.0
    assert snapshot.counters.netin_bytes > 0
    assert snapshot.uptime_seconds > 0
    assert snapshot.received_at.tzinfo is not None
    assert snapshot.received_at.timestamp() >= before - 1


async def test_sampled_rates_match_known_rates(api: Api, loaded: FakeCluster) -> None:
    rates = await api.call(lambda pve: pve.metrics.rates(100, interval=0.5))

    assert rates.interval_seconds >= 0.5
    assert_close(rates.netin_per_second, 400 * KIB)
    assert_close(rates.netout_per_second, 2 * MIB)
    assert_close(rates.diskread_per_second, 16 * KIB)
    assert_close(rates.diskwrite_per_second, 1 * MIB)


async def test_rates_of_stopped_vm_are_none(api: Api, loaded: FakeCluster) -> None:
    rates = await api.call(lambda pve: pve.metrics.rates(102, interval=0.1))

    assert rates.netin_per_second is None
    assert rates.netout_per_second is None


async def test_restart_between_samples_is_reset(timed_api: Api, loaded: FakeCluster, clock: FakeClock) -> None:
    first = await timed_api.call(lambda pve: pve.metrics.snapshot(101))
    await timed_api.call(lambda pve: pve.vms.stop(101))
    await timed_api.call(lambda pve: pve.vms.start(101))
    second = await timed_api.call(lambda pve: pve.metrics.snapshot(101))

    rates = compute_rates(first, second)

    assert rates.reset
    assert rates.netin_per_second is None
    assert second.counters.netin_bytes < first.counters.netin_bytes


async def test_cluster_rates_two_requests(api: Api, loaded: FakeCluster) -> None:
    before = len(loaded.pve.requests)

    rates = await api.call(lambda pve: pve.metrics.cluster_rates(interval=0.5))

    assert len(loaded.pve.requests) - before == 2
    assert [entry.vmid for entry in rates] == [100, 101, 102]
    assert_close(rates[100].netout_per_second, 2 * MIB)
    assert_close(rates[101].diskwrite_per_second, 5 * MIB)
    assert rates[102].netin_per_second is None


async def test_sampler_one_request_per_sample(api: Api, loaded: FakeCluster) -> None:
    sampler = api.client.metrics.sampler(interval=0.3)
    first = await api.call(lambda pve: sampler.sample())
    time.sleep(0.4)
    before = len(loaded.pve.requests)

    second = await api.call(lambda pve: sampler.sample())

    assert len(loaded.pve.requests) - before == 1
    assert first[100].netin_per_second is None
    assert_close(second[100].netin_per_second, 400 * KIB)


async def test_sampler_iterates(timed_api: Api, loaded: FakeCluster, clock: FakeClock) -> None:
    sampler = timed_api.client.metrics.sampler(interval=5)
    collected = []
    if timed_api.is_async:
        async for rates in sampler:
            collected.append(rates)
            if len(collected) == 2:
                break
    else:
        for rates in sampler:
            collected.append(rates)
            if len(collected) == 2:
                break

    assert clock.sleeps == [5, 5]
    assert all(100 in rates.rates for rates in collected)


async def test_offline_node_reported_others_kept(api: Api, loaded: FakeCluster) -> None:
    loaded.pve.set_node_offline("pve2")

    rates = await api.call(lambda pve: pve.metrics.cluster_rates(interval=0.3))

    assert rates.offline_nodes == ("pve2",)
    assert_close(rates[100].netin_per_second, 400 * KIB)
    assert rates[101].netin_per_second is None


async def test_interval_must_be_positive(api: Api, loaded: FakeCluster) -> None:
    with pytest.raises(ValueError, match="interval"):
        await api.call(lambda pve: pve.metrics.rates(100, interval=0))
