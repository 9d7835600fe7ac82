"""Run the demo: start a fake cluster on 127.0.0.1, use pvekit against it, stop the cluster."""

from __future__ import annotations

import sys

from demo.cli import show_cli
from demo.library import show_library
from fakecluster import demo_cluster


def main() -> int:
    """Run the demo and return the exit status."""
    cluster, token = demo_cluster()
    print(f"Fake PVE cluster listening on {cluster.url} (3 nodes, 10 VMs, TLS with its own CA)\n")
    try:
        stopped_vmid = show_library(cluster, token)
        show_cli(cluster, token, stopped_vmid)
    finally:
        cluster.stop()
        print("\nFake cluster stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
