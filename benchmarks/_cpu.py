"""Benchmark 1: the client's own CPU per request, pvekit's Client against proxmoxer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._clients import proxmoxer_client, pvekit_client
from ._cluster import ClusterProcess
from ._measure import Sample, measure, median
from ._report import Check, Section, milliseconds, ratio

STATUS_VMS = 200

HEADERS = ("benchmark", "client", "requests", "wall ms", "client CPU ms", "CPU ms/request", "server CPU ms")


def compare(
    cluster: ClusterProcess, rounds: int, pvekit_work: Callable[[], Any], proxmoxer_work: Callable[[], Any]
) -> tuple[Sample, Sample]:
    """Time both clients ``rounds`` times, alternating which goes first, and return the medians."""
    pvekit_samples: list[Sample] = []
    proxmoxer_samples: list[Sample] = []
    for round_number in range(rounds):
        # Alternating the order spreads any drift (other load on the machine, caches) over both clients.
        order = [(pvekit_work, pvekit_samples), (proxmoxer_work, proxmoxer_samples)]
        if round_number % 2:
            order.reverse()
        for work, samples in order:
            sample, _ = measure(cluster, work)
            samples.append(sample)
    return median(pvekit_samples), median(proxmoxer_samples)


def sample_row(benchmark: str, client: str, sample: Sample) -> tuple[str, ...]:
    """Return one table row for a sample."""
    return (
        benchmark,
        client,
        str(sample.requests),
        milliseconds(sample.wall_seconds),
        milliseconds(sample.cpu_seconds),
        f"{sample.cpu_per_request_seconds * 1000:.2f}",
        milliseconds(sample.server_cpu_seconds),
    )


def cpu_check(name: str, pvekit_sample: Sample, proxmoxer_sample: Sample) -> Check:
    """Compare client CPU per request: pvekit's must be no more than proxmoxer's."""
    share = pvekit_sample.cpu_per_request_seconds / proxmoxer_sample.cpu_per_request_seconds
    return Check(
        name=name,
        target="pvekit CPU/request <= proxmoxer's",
        measured=f"pvekit/proxmoxer = {ratio(share)}",
        met=share <= 1.0,
    )


def run(cluster: ClusterProcess, rounds: int, listings: int, vm_count: int) -> tuple[Section, list[Check]]:
    """List every VM ``listings`` times and read status/current of STATUS_VMS VMs, with each client."""
    info = cluster.info
    prox = proxmoxer_client(info)
    with pvekit_client(info) as pve:
        # Outside the timing: open each client's connection, and fill pvekit's VM-to-node cache so that
        # status(vmid) sends one request, as proxmoxer does with the node given.
        guests = pve.vms.list()
        prox.cluster.resources.get(type="vm")
        if len(guests) != vm_count:
            raise RuntimeError(f"pvekit listed {len(guests)} VMs, expected {vm_count}")
        nodes = {guest.vmid: guest.node for guest in guests}
        status_vmids = sorted(nodes)[:STATUS_VMS]

        def pvekit_listing() -> None:
            for _ in range(listings):
                listed = len(pve.vms.list())
                if listed != vm_count:
                    raise RuntimeError(f"pvekit listed {listed} VMs, expected {vm_count}")

        def proxmoxer_listing() -> None:
            for _ in range(listings):
                listed = len(prox.cluster.resources.get(type="vm"))
                if listed != vm_count:
                    raise RuntimeError(f"proxmoxer listed {listed} VMs, expected {vm_count}")

        def pvekit_status() -> None:
            for vmid in status_vmids:
                pve.vms.status(vmid)

        def proxmoxer_status() -> None:
            for vmid in status_vmids:
                prox.nodes(nodes[vmid]).qemu(vmid).status.current.get()

        pvekit_list, proxmoxer_list = compare(cluster, rounds, pvekit_listing, proxmoxer_listing)
        pvekit_read, proxmoxer_read = compare(cluster, rounds, pvekit_status, proxmoxer_status)

    list_name = f"list {vm_count} VMs, {listings} times"
    status_name = f"status/current of {len(status_vmids)} VMs"
    section = Section(
        title="1. Client CPU per request (no added latency)",
        headers=HEADERS,
        rows=[
            sample_row(list_name, "pvekit", pvekit_list),
            sample_row("", "proxmoxer", proxmoxer_list),
            sample_row(status_name, "pvekit", pvekit_read),
            sample_row("", "proxmoxer", proxmoxer_read),
        ],
        notes=[
            "pvekit: Client.vms.list() and Client.vms.status(vmid), models built for every row;",
            "proxmoxer: cluster.resources.get(type='vm') and nodes(n).qemu(id).status.current.get(), dicts.",
            f"Median of {rounds} rounds, the clients alternating which goes first; connections opened",
            "beforehand. Client CPU is this process's time.process_time(); the server runs in another.",
        ],
    )
    checks = [
        cpu_check("list VMs", pvekit_list, proxmoxer_list),
        cpu_check("status/current", pvekit_read, proxmoxer_read),
    ]
    return section, checks
