"""A small demo cluster: 3 nodes and 10 VMs with distinct, known load, plus an API token."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .cluster import FakeCluster
from .workload import Rates

NODES = ("pve1", "pve2", "pve3")
POOL = "production"
DEMO_TOKEN_USER = "root@pam"
DEMO_TOKEN_NAME = "pvekit-demo"
# A fixed, obviously fake secret, so demo output can be compared between runs.
DEMO_TOKEN_SECRET = "00000000-0000-0000-0000-00000000de00"

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class DemoVm:
    """One VM of the demo cluster and the load it carries."""

    vmid: int
    name: str
    node: str
    running: bool
    rates: Rates
    tags: str
    cores: int = 2
    memory_mib: int = 2048
    agent: bool = False
    pool: str | None = None
    # (start, end) in minutes before now: a past outage that rrddata shows as a gap.
    outage_minutes_ago: tuple[int, int] | None = None


# Rates are positional: cpu, netin, netout, diskread, diskwrite.
DEMO_VMS: tuple[DemoVm, ...] = (
    DemoVm(100, "web01", "pve1", True, Rates(0.12, 400 * KIB, 2 * MIB, 16 * KIB, 64 * KIB), "web;prod",
           agent=True, pool=POOL),
    DemoVm(101, "web02", "pve2", True, Rates(0.10, 350 * KIB, 1800 * KIB, 12 * KIB, 48 * KIB), "web;prod",
           agent=True, pool=POOL),
    DemoVm(102, "db01", "pve1", True, Rates(0.35, 600 * KIB, 900 * KIB, 3 * MIB, 5 * MIB), "db;prod",
           cores=4, memory_mib=8192, agent=True, pool=POOL),
    DemoVm(103, "db02", "pve3", True, Rates(0.30, 550 * KIB, 800 * KIB, 2 * MIB, 4 * MIB), "db;prod",
           cores=4, memory_mib=8192, pool=POOL),
    DemoVm(104, "cache01", "pve2", True, Rates(0.05, 1 * MIB, 1 * MIB, 4 * KIB, 8 * KIB), "cache",
           memory_mib=4096, agent=True, outage_minutes_ago=(40, 25)),
    DemoVm(105, "build01", "pve3", False, Rates(0.80, 200 * KIB, 50 * KIB, 10 * MIB, 20 * MIB), "ci",
           cores=8, memory_mib=16384),
    DemoVm(106, "test01", "pve1", False, Rates(0.02, 10 * KIB, 10 * KIB, 1 * KIB, 1 * KIB), "test"),
    DemoVm(107, "mon01", "pve3", True, Rates(0.08, 300 * KIB, 60 * KIB, 8 * KIB, 256 * KIB), "monitoring",
           agent=True),
    DemoVm(108, "backup01", "pve2", False, Rates(0.15, 50 * KIB, 5 * MIB, 8 * MIB, 1 * MIB), "backup",
           memory_mib=4096),
    DemoVm(109, "dev01", "pve1", True, Rates(0.01, 2 * KIB, 1 * KIB, 512, 1 * KIB), "dev",
           cores=1, memory_mib=1024),
)


def guest_agent_results(index: int, demo: DemoVm) -> dict[str, object]:
    """Return the guest agent results of a demo VM, for FakeVm.agent.

    The addresses are data the fake reports, never contacted: 192.0.2.0/24 and 2001:db8::/32
    are reserved for documentation (RFC 5737, RFC 3849). Each VM also has a link-local IPv6
    address and a docker0 interface without addresses, as real guests do.
    """
    mac = f"bc:24:11:00:00:{index + 1:02x}"
    return {
        "get-host-name": {"host-name": demo.name},
        "interfaces": [
            {
                "name": "lo",
                "hardware-address": "00:00:00:00:00:00",
                "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}],
            },
            {
                "name": "eth0",
                "hardware-address": mac,
                "ip-addresses": [
                    {"ip-address": f"192.0.2.{index + 10}", "ip-address-type": "ipv4", "prefix": 24},
                    {"ip-address": f"2001:db8::{index + 10:x}", "ip-address-type": "ipv6", "prefix": 64},
                    {"ip-address": f"fe80::be24:11ff:fe00:{index + 1:x}", "ip-address-type": "ipv6", "prefix": 64},
                ],
            },
            {"name": "docker0", "hardware-address": f"02:42:00:00:00:{index + 1:02x}"},
        ],
    }


def build_demo(cluster: FakeCluster) -> str:
    """Add the demo nodes, VMs and API token to a running cluster and return the full token string."""
    for node in NODES:
        cluster.pve.add_node(node)

    now = time.time()
    for index, demo in enumerate(DEMO_VMS):
        config: dict[str, object] = {
            "cores": demo.cores,
            "sockets": 1,
            "memory": str(demo.memory_mib),
            "net0": f"virtio=BC:24:11:00:00:{index + 1:02X},bridge=vmbr0",
            "scsi0": f"local-lvm:vm-{demo.vmid}-disk-0,size=32G",
            "tags": demo.tags,
            "ostype": "l26",
        }
        if demo.agent:
            config["agent"] = "1"

        vm = cluster.pve.add_vm(
            demo.vmid,
            demo.name,
            node=demo.node,
            status="running" if demo.running else "stopped",
            config=config,
            pool=demo.pool,
            rates=demo.rates,
        )
        if demo.agent and demo.running:
            vm.agent = guest_agent_results(index, demo)
        if demo.outage_minutes_ago is not None:
            start, end = demo.outage_minutes_ago
            cluster.pve.workload[demo.vmid].record_outage(now - start * 60, now - end * 60)

    return cluster.add_token(DEMO_TOKEN_USER, DEMO_TOKEN_NAME, DEMO_TOKEN_SECRET)


def demo_cluster() -> tuple[FakeCluster, str]:
    """Start a FakeCluster with the demo contents and return it with its API token. Stop it when done."""
    cluster = FakeCluster()
    try:
        token = build_demo(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster, token
