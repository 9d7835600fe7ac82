"""The fake cluster's VMs: which exist, where they run and the load each carries."""

from __future__ import annotations

NODES = ("pve1", "pve2", "pve3", "pve4")
FIRST_VMID = 1000

KIB = 1024


def vm_load(vmid: int) -> dict[str, float]:
    """Return the steady load of a VM: CPU as a fraction of its vCPUs, and byte rates in bytes per second.

    Each VM's rates differ, so a client that mixes up VMs returns visibly wrong rates.
    """
    index = vmid - FIRST_VMID
    return {
        "cpu": (index % 90) / 100,
        "netin": (index + 1) * KIB,
        "netout": (index + 1) * 2 * KIB,
        "diskread": (index + 1) * 3 * KIB,
        "diskwrite": (index + 1) * 4 * KIB,
    }


def vm_node(vmid: int) -> str:
    """Return the node a VM runs on: the VMs are spread over the nodes in turn."""
    return NODES[(vmid - FIRST_VMID) % len(NODES)]
