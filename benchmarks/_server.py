"""The fake cluster's process: ``python -m benchmarks._server --vms N``.

It runs in its own process so that ``time.process_time()`` in the benchmark process counts only the
client's CPU. It writes one JSON line with the host, CA file, token and nodes to stdout. Then it reads
one command per line on stdin and replies to each with one JSON line on stdout:

- ``latency SECONDS``: add that latency to every response (fakepve's slow-network fault).
- ``reset``: forget the recorded requests.
- ``stats``: return how many requests the fake has recorded since the last reset, and this process's CPU
  seconds so far.
- ``paths``: return how many requests the fake has recorded since the last reset for each method and path,
  such as ``GET /api2/json/cluster/resources`` (without the query string).
- ``stop``, or the end of stdin: stop the cluster and exit.

The stdout lines carry the API token, so the parent process reads them through a pipe and never prints them.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections import Counter
from typing import Any

from fakecluster import FakeCluster, Rates

from ._fleet import FIRST_VMID, NODES, vm_load, vm_node

TOKEN_USER = "root@pam"
TOKEN_NAME = "bench"
# fakepve drops the oldest recorded requests beyond this many (10000 by default).
MAX_RECORDED_REQUESTS = 1_000_000


def populate(cluster: FakeCluster, vm_count: int) -> None:
    """Add ``vm_count`` running VMs from FIRST_VMID on, spread over the nodes, each with its own load."""
    for vmid in range(FIRST_VMID, FIRST_VMID + vm_count):
        cluster.pve.add_vm(
            vmid,
            f"bench{vmid}",
            node=vm_node(vmid),
            status="running",
            config={"cores": 2, "sockets": 1, "memory": "2048", "ostype": "l26", "tags": "bench"},
            rates=Rates(**vm_load(vmid)),
        )


async def set_latency(cluster: FakeCluster, seconds: float) -> None:
    """Change the latency on the cluster's event loop, the thread that reads it."""
    cluster.pve.slow_network(seconds)


async def reset_requests(cluster: FakeCluster) -> None:
    """Clear the request record on the cluster's event loop, the thread that appends to it."""
    cluster.pve.requests.clear()


async def count_requests(cluster: FakeCluster) -> int:
    """Count the recorded requests on the cluster's event loop.

    fakepve keeps only the newest ``max_requests``, which ``main`` raises far above any benchmark's count.
    """
    return len(cluster.pve.requests)


async def count_requests_by_path(cluster: FakeCluster) -> dict[str, int]:
    """Count the recorded requests by ``METHOD path`` on the cluster's event loop."""
    return dict(Counter(f"{method} {path}" for method, path, _body in cluster.pve.requests))


def answer(cluster: FakeCluster, line: str) -> dict[str, Any] | None:
    """Carry out one command and return the reply, or None for ``stop``."""
    command, _, argument = line.strip().partition(" ")
    if command == "latency":
        cluster.call(set_latency(cluster, float(argument)))
        return {"ok": True}
    if command == "reset":
        cluster.call(reset_requests(cluster))
        return {"ok": True}
    if command == "stats":
        return {"ok": True, "requests": cluster.call(count_requests(cluster)), "cpu_seconds": time.process_time()}
    if command == "paths":
        return {"ok": True, "paths": cluster.call(count_requests_by_path(cluster))}
    if command == "stop":
        return None
    return {"ok": False, "error": f"unknown command {command!r}; expected latency, reset, stats, paths or stop"}


def main() -> None:
    """Start the cluster, announce it and serve commands until ``stop`` or the end of stdin."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000, help="number of running VMs to create")
    args = parser.parse_args()

    # time_scale 1 makes fakepve's latency real seconds. The benchmarks start no tasks, so nothing else
    # waits on it.
    with FakeCluster(time_scale=1.0) as cluster:
        cluster.pve.max_requests = MAX_RECORDED_REQUESTS
        populate(cluster, args.vms)
        # The secret is random per run; this fake cluster is gone when the benchmarks end.
        token = cluster.add_token(TOKEN_USER, TOKEN_NAME, secrets.token_hex(16))
        ready = {"host": cluster.host, "ca_file": cluster.ca_file, "token": token, "nodes": list(NODES)}
        print(json.dumps(ready), flush=True)

        for line in sys.stdin:
            reply = answer(cluster, line)
            if reply is None:
                break
            print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
