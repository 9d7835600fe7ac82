"""Benchmarks 2 and 3: rates for many VMs, pvekit's cluster-wide and concurrent reads against proxmoxer's loops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pvekit
from pvekit._base_client import DEFAULT_CONCURRENCY

from ._clients import (
    proxmoxer_client,
    proxmoxer_newest_rrd_point,
    proxmoxer_rates,
    proxmoxer_read_counters,
    pvekit_async_client,
    pvekit_client,
)
from ._cluster import ClusterProcess
from ._fleet import vm_load
from ._measure import Sample, measure, measure_async, median
from ._report import Check, Section, milliseconds, ratio

# Seconds between the two snapshots. pvekit requires a positive interval, and proxmoxer's loop waits as long.
RATE_INTERVAL_SECONDS = 0.01
# The latency for the target comparisons, through fakepve's slow-network fault.
LATENCY_SECONDS = 0.02
# VMs the per-VM proxmoxer loop reads at LATENCY_SECONDS: 1000 VMs x 2 reads x 20 ms would take 40 s
# or more, so a subset is measured and scaled up linearly.
PER_VM_SUBSET = 100
RRD_VMS = 200
# The cap on requests in flight for the RRD fan-out at 20 ms of latency: more than twice pveproxy's 3 workers.
RRD_CONCURRENCY = 8

HEADERS = ("latency", "approach", "requests", "wall ms", "client CPU ms", "server CPU ms")


def sample_row(latency: str, approach: str, sample: Sample, estimated: bool = False) -> tuple[str, ...]:
    """Return one table row; estimated figures end in '(est.)'."""
    mark = " (est.)" if estimated else ""
    return (
        latency,
        approach,
        f"{sample.requests}{mark}",
        f"{milliseconds(sample.wall_seconds)}{mark}",
        f"{milliseconds(sample.cpu_seconds)}{mark}",
        f"{milliseconds(sample.server_cpu_seconds)}{mark}",
    )


def check_cluster_rates(result: pvekit.ClusterRates, sample: Sample, vm_count: int) -> None:
    """Raise unless pvekit used exactly 2 requests and returned a net rate for every VM."""
    if sample.requests != 2:
        raise RuntimeError(f"metrics.cluster_rates sent {sample.requests} requests, expected exactly 2")
    missing = [rates.vmid for rates in result if rates.netin_per_second is None]
    if len(result) != vm_count or missing:
        raise RuntimeError(f"cluster_rates returned {len(result)} VMs, {len(missing)} without a netin rate")


def proxmoxer_two_passes(prox: Any, nodes: Mapping[int, str], vmids: Sequence[int]) -> dict[int, dict[str, float]]:
    """Read every VM's status/current, wait the interval, read them again, and compute the rates."""
    first = [proxmoxer_read_counters(prox, nodes[vmid], vmid) for vmid in vmids]
    time.sleep(RATE_INTERVAL_SECONDS)
    second = [proxmoxer_read_counters(prox, nodes[vmid], vmid) for vmid in vmids]
    return {before.vmid: proxmoxer_rates(before, after) for before, after in zip(first, second, strict=True)}


def time_cluster_rates(cluster: ClusterProcess, pve: pvekit.Client, rounds: int, vm_count: int) -> Sample:
    """Time ``metrics.cluster_rates`` ``rounds`` times, check each result, and return the median."""
    samples = []
    for _ in range(rounds):
        # Outside the timing: a cheap request, so that the pooled connection is open.
        pve.cluster.nodes()
        sample, result = measure(cluster, lambda: pve.metrics.cluster_rates(RATE_INTERVAL_SECONDS))
        check_cluster_rates(result, sample, vm_count)
        samples.append(sample)
    return median(samples)


def time_per_vm_loop(
    cluster: ClusterProcess, prox: Any, nodes: Mapping[int, str], latency: float
) -> tuple[Sample, bool]:
    """Time proxmoxer's two passes once; with latency, on PER_VM_SUBSET VMs scaled up (then True)."""
    vmids = sorted(nodes)
    measured = vmids if latency == 0 else vmids[:PER_VM_SUBSET]
    sample, rates = measure(cluster, lambda: proxmoxer_two_passes(prox, nodes, measured))
    if len(rates) != len(measured):
        raise RuntimeError(f"proxmoxer's loop computed rates for {len(rates)} of {len(measured)} VMs")
    if len(measured) == len(vmids):
        return sample, False
    return sample.scaled(len(vmids) / len(measured)), True


def run_cluster_rates(cluster: ClusterProcess, rounds: int, vm_count: int) -> tuple[Section, list[Check]]:
    """Time cluster-wide rates with pvekit and per-VM reads with proxmoxer, at 0 ms and 20 ms latency."""
    info = cluster.info
    prox = proxmoxer_client(info)
    # Outside the timing: proxmoxer's loop needs each VM's node, which one listing gives.
    nodes = {int(row["vmid"]): str(row["node"]) for row in prox.cluster.resources.get(type="vm")}
    section = Section(title=f"2. Rates of all {vm_count} VMs", headers=HEADERS)
    checks: list[Check] = []

    try:
        with pvekit_client(info) as pve:
            for latency in (0.0, LATENCY_SECONDS):
                cluster.set_latency(latency)
                pvekit_sample = time_cluster_rates(cluster, pve, rounds, vm_count)
                proxmoxer_sample, estimated = time_per_vm_loop(cluster, prox, nodes, latency)

                label = f"{latency * 1000:.0f} ms"
                section.rows.append(sample_row(label, "pvekit metrics.cluster_rates", pvekit_sample))
                section.rows.append(
                    sample_row(label, "proxmoxer status/current x2 per VM", proxmoxer_sample, estimated)
                )
                speedup = proxmoxer_sample.wall_seconds / pvekit_sample.wall_seconds
                section.notes.append(f"{label}: pvekit is {ratio(speedup)} faster in wall time")
                if latency == LATENCY_SECONDS:
                    checks.append(
                        Check(
                            name=f"cluster rates, {label}",
                            target=">= 100x faster than per-VM",
                            measured=ratio(speedup),
                            met=speedup >= 100,
                        )
                    )
    finally:
        cluster.set_latency(0.0)

    section.notes += [
        f"pvekit: Client.metrics.cluster_rates({RATE_INTERVAL_SECONDS}): two /cluster/resources requests,",
        "checked through the fake's request count; median of "
        f"{rounds} runs, nothing subtracted (the {RATE_INTERVAL_SECONDS * 1000:.0f} ms interval included).",
        "proxmoxer: status/current of every VM, a wait of the same interval, status/current again, rates",
        "computed by hand; one run, each VM's node known beforehand (untimed).",
        f"At {LATENCY_SECONDS * 1000:.0f} ms the proxmoxer loop read {PER_VM_SUBSET} VMs and its figures are scaled "
        f"linearly to {vm_count} (marked est.).",
    ]
    return section, checks


def check_rrd(outcomes: Mapping[int, Any], vmids: Sequence[int], client: str) -> None:
    """Raise unless every VM got its newest RRD point with the net rate the fake assigned to it."""
    wrong = [vmid for vmid in vmids if outcomes.get(vmid) != vm_load(vmid)["netin"]]
    if wrong:
        raise RuntimeError(f"{client}: {len(wrong)} of {len(vmids)} VMs have a missing or wrong RRD netin rate")


async def pvekit_rrd_round(cluster: ClusterProcess, vmids: Sequence[int], concurrency: int | None) -> Sample:
    """Time one ``AsyncClient.rrd.current_many`` call on a fresh client, and check its result.

    ``concurrency`` is the client's cap on requests in flight; None keeps the default.
    """
    async with pvekit_async_client(cluster.info, concurrency) as pve:
        # Outside the timing: one connection opened. The VM listing that locates the VMs is timed.
        await pve.cluster.nodes()
        sample, outcomes = await measure_async(cluster, lambda: pve.rrd.current_many(vmids))
    rates = {
        vmid: outcome.netin_per_second for vmid, outcome in outcomes.items() if isinstance(outcome, pvekit.CurrentRates)
    }
    check_rrd(rates, vmids, "pvekit")
    return sample


def run_rrd(cluster: ClusterProcess, rounds: int) -> tuple[Section, list[Check]]:
    """Time RRD current rates of RRD_VMS VMs at 20 ms: pvekit's bounded fan-out against a sequential loop."""
    info = cluster.info
    prox = proxmoxer_client(info)
    nodes = {int(row["vmid"]): str(row["node"]) for row in prox.cluster.resources.get(type="vm")}
    vmids = sorted(nodes)[:RRD_VMS]
    label = f"{LATENCY_SECONDS * 1000:.0f} ms"

    pvekit_samples = []
    default_samples = []
    proxmoxer_samples = []
    cluster.set_latency(LATENCY_SECONDS)
    try:
        # The clients take turns, so that other load on the machine falls on both alike.
        for _ in range(rounds):
            pvekit_samples.append(asyncio.run(pvekit_rrd_round(cluster, vmids, RRD_CONCURRENCY)))
            default_samples.append(asyncio.run(pvekit_rrd_round(cluster, vmids, None)))

            sample, points = measure(
                cluster, lambda: {vmid: proxmoxer_newest_rrd_point(prox, nodes[vmid], vmid) for vmid in vmids}
            )
            check_rrd({vmid: (point or {}).get("netin") for vmid, point in points.items()}, vmids, "proxmoxer")
            proxmoxer_samples.append(sample)
    finally:
        cluster.set_latency(0.0)
    pvekit_sample = median(pvekit_samples)
    default_sample = median(default_samples)
    proxmoxer_sample = median(proxmoxer_samples)

    speedup = proxmoxer_sample.wall_seconds / pvekit_sample.wall_seconds
    section = Section(
        title=f"3. Current RRD rates of {len(vmids)} VMs",
        headers=HEADERS,
        rows=[
            sample_row(label, f"pvekit rrd.current_many, concurrency={RRD_CONCURRENCY}", pvekit_sample),
            sample_row(label, f"pvekit rrd.current_many, default {DEFAULT_CONCURRENCY}", default_sample),
            sample_row(label, "proxmoxer rrddata per VM, in turn", proxmoxer_sample),
        ],
        notes=[
            f"{label}: pvekit is {ratio(speedup)} faster in wall time",
            f"pvekit: a fresh AsyncClient per run, one connection opened untimed. The default cap of "
            f"{DEFAULT_CONCURRENCY} requests",
            "in flight suits pveproxy's 3 workers on a LAN. Across 20 ms of latency a request in transit",
            f"holds no worker, so the target is checked at concurrency={RRD_CONCURRENCY}, as such a user "
            "would set it.",
            "the timed call lists the cluster once to locate the VMs, then reads rrddata for each.",
            "proxmoxer: rrddata(timeframe='hour', cf='AVERAGE') per VM, newest row with values picked;",
            f"each VM's node known beforehand (untimed). Median of {rounds} runs each.",
            "Both results are checked against the net rate the fake assigned to each VM.",
            "The fake answers on one thread, so its CPU time during pvekit's run "
            f"({milliseconds(pvekit_sample.server_cpu_seconds)} ms) is a floor for pvekit's wall time.",
        ],
    )
    check = Check(
        name=f"RRD current rates, {label}",
        target=">= 5x faster than sequential",
        measured=ratio(speedup),
        met=speedup >= 5,
    )
    return section, [check]
