"""The library part of the demo: what a script does with pvekit.Client and AsyncClient."""

from __future__ import annotations

import asyncio

from fakecluster import FakeCluster
from pvekit import AsyncClient, Client, format_bytes, format_bytes_per_sec


def show_library(cluster: FakeCluster, token: str) -> int:
    """List VMs, read status and config, start a VM and wait, and print rates three ways.

    Returns the VMID of a VM that is still stopped, for the command-line part.
    """
    with Client(cluster.host, token, ca_file=cluster.ca_file) as pve:
        print("== VMs in the cluster (one request to /cluster/resources)")
        for vm in pve.vms.list():
            print(f"  {vm.vmid}  {vm.name or '-':<10} {vm.node:<5} {vm.power_state.value}")

        print("\n== Status and configuration of VM 100")
        status = pve.vms.status(100)
        config = pve.vms.config(100)
        print(f"  power state {status.power_state.value}, uptime {status.uptime_seconds} s, "
              f"cpu {status.cpu.percent:.1f} % of {status.cpu.cpus:g} vCPUs, "
              f"memory {format_bytes(status.mem_bytes)} of {format_bytes(status.maxmem_bytes)}")  # fmt: skip
        print(f"  {config.cores} cores, {config.memory_mib} MiB, tags {', '.join(config.tags)}")
        for nic in config.nets:
            print(f"  {nic.key}: {nic.model} {nic.mac} on {nic.bridge}")
        for disk in config.disks:
            print(f"  {disk.key}: {disk.volume} ({format_bytes(disk.size_bytes)})")

        stopped = next(vm for vm in pve.vms.list(status="stopped"))
        print(f"\n== Starting VM {stopped.vmid} ({stopped.name}) and waiting for its task")
        task = pve.vms.start(stopped.vmid)
        result = task.wait(timeout=60)
        print(f"  {task.upid}")
        print(f"  exit status {result.status.exitstatus}; VM is now {pve.vms.status(stopped.vmid).power_state.value}")

        print("\n== Rates of VM 100 by sampling its counters twice, 1 s apart")
        rates = pve.metrics.rates(100, interval=1.0)
        print(f"  net in {format_bytes_per_sec(rates.netin_per_second)}, "
              f"net out {format_bytes_per_sec(rates.netout_per_second)}, "
              f"disk read {format_bytes_per_sec(rates.diskread_per_second)}, "
              f"disk write {format_bytes_per_sec(rates.diskwrite_per_second)} "
              f"(over {rates.interval_seconds:.3f} s)")  # fmt: skip

        print("\n== Current rates of VM 100 from its newest RRD point")
        current = pve.rrd.current(100)
        if current is not None:
            print(f"  at {current.time:%H:%M} UTC ({current.age_seconds:.0f} s old): "
                  f"net in {format_bytes_per_sec(current.netin_per_second)}, "
                  f"disk write {format_bytes_per_sec(current.diskwrite_per_second)}")  # fmt: skip

        print("\n== Guest agent addresses of VM 100")
        network = pve.agent.network(100)
        for nic in network.interfaces:
            addresses = ", ".join(str(address) for address in nic.addresses) or "(none)"
            print(f"  {nic.name:<8} {nic.mac or '-':<18} {addresses}")
        print(f"  primary address: {network.primary_address()}")

        still_stopped = next(vm for vm in pve.vms.list(status="stopped")).vmid

    asyncio.run(_show_cluster_rates(cluster, token))
    return still_stopped


async def _show_cluster_rates(cluster: FakeCluster, token: str) -> None:
    async with AsyncClient(cluster.host, token, ca_file=cluster.ca_file) as pve:
        print("\n== Rates of every guest from two cluster-wide requests, 1 s apart (AsyncClient)")
        rates = await pve.metrics.cluster_rates(interval=1.0)
        print(f"  {'VMID':>5} {'name':<10} {'net in':>12} {'net out':>12} {'disk read':>12} {'disk write':>12}")
        for entry in rates:
            columns = [format_bytes_per_sec(entry.get(name)) for name in ("netin", "netout", "diskread", "diskwrite")]
            print(f"  {entry.vmid:>5} {entry.name or '-':<10} " + " ".join(f"{c:>12}" for c in columns))
