"""Run every benchmark against one fake cluster and print the tables and targets."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

from . import _cold_start, _cpu, _rates
from ._cluster import ClusterProcess
from ._report import Check, Section, format_checks, format_section


def package_version(name: str) -> str:
    """Return an installed distribution's version, or 'not installed'."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def header_lines(vm_count: int, node_count: int) -> list[str]:
    """Describe the run: when, on what, with which versions, and against what."""
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(
        f"{name} {package_version(name)}" for name in ("pvekit", "httpx", "proxmoxer", "requests", "fakepve")
    )
    return [
        f"pvekit benchmarks, {started}",
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {versions}",
        f"Fake cluster: fakecluster (fakepve) with {vm_count} running VMs on {node_count} nodes, served over",
        "TLS on 127.0.0.1 by a separate process, so this process's CPU time is the client's alone.",
        "The fake refreshes the counters of all its VMs on each cluster-wide request (one VM's on a",
        "per-VM request), so its CPU time (the server CPU column) grows with the VM count there.",
        "A real PVE node's cost per request differs.",
    ]


def progress(message: str) -> None:
    """Report progress on stderr, keeping stdout for the results."""
    print(message, file=sys.stderr, flush=True)


def bypass_proxies_for_loopback() -> None:
    """Add 127.0.0.1 to no_proxy and NO_PROXY.

    requests, under proxmoxer, sends through a proxy named in the environment unless the host is listed
    in no_proxy, and the fake cluster must be reached on loopback directly. pvekit ignores proxy variables.
    """
    for name in ("no_proxy", "NO_PROXY"):
        hosts = [host for host in os.environ.get(name, "").split(",") if host.strip()]
        os.environ[name] = ",".join([*hosts, "127.0.0.1"])


def main() -> None:
    """Parse the options, start the fake cluster, run the benchmarks and print the results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--vms", type=int, default=1000, help="VMs in the fake cluster (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="runs per measurement; medians are shown (default 5)")
    parser.add_argument("--listings", type=int, default=10, help="cluster listings per run in benchmark 1 (default 10)")
    parser.add_argument("--cli-runs", type=int, default=10, help="timed runs per CLI command (default 10)")
    args = parser.parse_args()
    if args.vms < _rates.RRD_VMS or args.rounds < 1 or args.listings < 1 or args.cli_runs < 1:
        parser.error(f"--vms must be at least {_rates.RRD_VMS}, and --rounds, --listings and --cli-runs at least 1")

    bypass_proxies_for_loopback()
    began = time.perf_counter()
    results: list[tuple[Section, list[Check]]] = []
    progress(f"starting a fake cluster with {args.vms} VMs")
    with ClusterProcess(args.vms) as cluster:
        progress("1/4 client CPU per request")
        results.append(_cpu.run(cluster, args.rounds, args.listings, args.vms))
        progress("2/4 cluster-wide rates (the per-VM loop at 0 ms takes the longest)")
        results.append(_rates.run_cluster_rates(cluster, args.rounds, args.vms))
        progress("3/4 RRD current rates")
        results.append(_rates.run_rrd(cluster, args.rounds))
        progress("4/4 CLI cold start")
        results.append(_cold_start.run(cluster, args.cli_runs, args.vms))

    lines = header_lines(args.vms, len(cluster.info.nodes))
    checks: list[Check] = []
    for section, section_checks in results:
        lines += ["", *format_section(section)]
        checks += section_checks
    lines += ["", "Targets", *format_checks(checks), "", f"Total time {time.perf_counter() - began:.0f} s."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
