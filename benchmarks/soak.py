"""Soak run: ``pvekit top`` and the async cluster sampler refresh against a 1000-VM fake cluster for minutes.

Run it with ``python -m benchmarks.soak`` (or ``make soak``). It counts the requests the fake cluster receives
per refresh and the errors, and samples this process's memory after every refresh to see whether it grows.
It measures and prints, and it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ._cluster import REPO_ROOT, ClusterProcess
from ._report import Check, Section, format_checks, format_section
from ._soak_record import CLUSTER_RESOURCES, KIB, MIB, MIN_TREND_SAMPLES, PhaseRecord, Trend, counting_pvekit_logs
from ._soak_runs import run_async_sampler, run_top

TOP_PHASE = "pvekit top -o json"
SAMPLER_PHASE = "AsyncClient sampler"
# The last third's median may exceed the first third's by this many bytes, or by this share of the first
# third's median when that is larger, and memory still counts as flat.
TRACED_TOLERANCE_BYTES = 256 * KIB
RSS_TOLERANCE_BYTES = 4 * MIB
TOLERANCE_SHARE = 0.02
MIN_VMS = 10


def package_version(name: str) -> str:
    """Return an installed distribution's version, or 'not installed'."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def source_state() -> str:
    """Describe the checked-out commit and whether src/ has uncommitted changes, or why that is unknown."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "git commit unknown"
    return f"commit {commit}" + (", with uncommitted changes in src/" if changed else "")


def progress(message: str) -> None:
    """Report progress on stderr, keeping stdout for the results."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class PhaseResult:
    """A finished phase: its record, pvekit's log records at INFO and above, and the lines that grew most."""

    record: PhaseRecord
    log_records: int
    log_messages: list[str]
    largest_growth: list[str] = field(default_factory=list)


def run_phase(
    name: str,
    cluster: ClusterProcess,
    seconds: float,
    interval: float,
    snapshot_dir: Path,
    work: Callable[[PhaseRecord, float], None],
) -> PhaseResult:
    """Run ``work(record, deadline)`` for ``seconds`` of monotonic time and return the phase's result."""
    with counting_pvekit_logs() as logs:
        record = PhaseRecord(name, cluster, seconds, interval, snapshot_dir)
        work(record, record.started + seconds)
        record.finish()
    return PhaseResult(record, logs.count, logs.messages)


def mebibytes(value: float) -> str:
    """Format bytes as MiB with one decimal."""
    return f"{value / MIB:.1f}"


def per_refresh_range(record: PhaseRecord) -> str:
    """Return the fewest and most /cluster/resources requests in one refresh, as "1" or "1 to 2"."""
    counts = sorted(record.requests_per_refresh)
    if not counts:
        return "-"
    if counts[0] == counts[-1]:
        return str(counts[0])
    return f"{counts[0]} to {counts[-1]}"


def requests_row(result: PhaseResult) -> tuple[str, ...]:
    """Return the row of a phase in the table of requests, errors and CPU time."""
    record = result.record
    listings = record.request_counts.get(CLUSTER_RESOURCES, 0)
    others = sum(record.request_counts.values()) - listings
    refreshes = record.refreshes or float("nan")
    return (
        record.name,
        str(record.refreshes),
        f"{record.seconds[record.refreshes - 1] / refreshes:.3f}" if record.refreshes else "-",
        str(listings),
        per_refresh_range(record),
        str(others),
        str(record.errors),
        str(record.invalid_refreshes),
        str(result.log_records),
        f"{record.cpu_seconds / refreshes * 1000:.0f}",
        f"{record.server_cpu_seconds / refreshes * 1000:.0f}",
    )


def memory_rows(record: PhaseRecord) -> list[tuple[str, ...]]:
    """Return the rows of a phase in the memory table: traced memory, then RSS."""
    rows = []
    measures: list[tuple[str, Trend | None, int | None]] = [
        ("traced (tracemalloc)", record.traced_trend(), record.peak_traced_bytes),
        ("RSS", record.resident_trend(), record.peak_resident_bytes),
    ]
    for label, found, peak in measures:
        peak_text = mebibytes(peak) if peak is not None else "n/a"
        if found is None:
            rows.append((record.name, label, peak_text, "n/a", "n/a", "n/a", "n/a"))
            continue
        rows.append(
            (
                record.name,
                label,
                peak_text,
                mebibytes(found.first_median),
                mebibytes(found.last_median),
                f"{found.growth / KIB:+.0f}",
                f"{found.slope_per_minute / KIB:+.1f}",
            )
        )
    return rows


def missing_trend_reason(record: PhaseRecord, measure: str) -> str:
    """Return why a phase has no trend of ``measure`` (traced memory or RSS)."""
    if measure == "traced memory" and not record.traced:
        return "not traced (--no-tracemalloc)"
    if measure == "RSS" and record.refreshes and min(record.resident_bytes[: record.refreshes]) < 0:
        return "no RSS without /proc/self/statm"
    return f"under {MIN_TREND_SAMPLES} samples after the warm-up"


def phase_checks(result: PhaseResult) -> list[Check]:
    """Return the targets of one phase: one listing per refresh, no error, flat traced memory and RSS."""
    record = result.record
    log_records = result.log_records
    counts = sorted(record.requests_per_refresh)
    one_each = counts == [1]
    failures = record.errors + record.invalid_refreshes + log_records
    checks = [
        Check(
            name=f"{record.name}: /cluster/resources per refresh",
            target="exactly 1",
            measured=", ".join(f"{count} in {record.requests_per_refresh[count]}" for count in counts) or "no refresh",
            met=one_each and record.refreshes > 0,
        ),
        Check(
            name=f"{record.name}: errors",
            target="0",
            measured=(
                f"{record.errors} errors, {record.invalid_refreshes} invalid refreshes, {log_records} retries logged"
            ),
            met=failures == 0,
        ),
    ]
    measures = [
        ("traced memory", record.traced_trend(), TRACED_TOLERANCE_BYTES),
        ("RSS", record.resident_trend(), RSS_TOLERANCE_BYTES),
    ]
    for label, found, tolerance_bytes in measures:
        if found is None:
            reason = missing_trend_reason(record, label)
            checks.append(Check(f"{record.name}: {label} flat", "growth within tolerance", reason, None))
            continue
        tolerance = max(tolerance_bytes, TOLERANCE_SHARE * found.first_median)
        checks.append(
            Check(
                name=f"{record.name}: {label} flat",
                target=f"last third <= first third + {tolerance / KIB:.0f} KiB",
                measured=f"{found.growth / KIB:+.0f} KiB",
                met=found.growth <= tolerance,
            )
        )
    return checks


def header_lines(vm_count: int, minutes: float, interval: float) -> list[str]:
    """Describe the run: when, on what, with which versions, and against what."""
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{name} {package_version(name)}" for name in ("pvekit", "httpx", "click", "fakepve"))
    return [
        f"pvekit soak run, {started}, {source_state()}",
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {versions}",
        f"Fake cluster: fakecluster (fakepve) with {vm_count} running VMs, served over TLS on 127.0.0.1 by a",
        "separate process, so this process's memory is the client's (and the soak's bookkeeping).",
        f"{minutes:g} minutes in all at an interval of {interval:g} s: half running {TOP_PHASE},",
        f"half iterating the {SAMPLER_PHASE}.",
    ]


def memory_notes(results: list[PhaseResult]) -> list[str]:
    """Explain the memory table, then list each phase's errors, log messages and largest traced growth."""
    peak_rss = (
        "peak RSS is the phase's own (VmHWM, reset at the phase's start)."
        if all(result.record.peak_resident_is_phase_only for result in results)
        else "peak RSS is the process's so far (VmHWM), so the second phase's includes the first's."
    )
    notes = [
        "One sample after each refresh. The first 20 % of each phase is warm-up, and the samples after it are",
        "split in thirds: growth is the last third's median minus the first third's. The slope is a least-squares",
        "fit over the same samples. Peak traced memory is tracemalloc's maximum during the phase, and",
        peak_rss,
        "The soak's per-refresh checks run in this process too.",
    ]
    if all(result.record.traced for result in results):
        notes += [
            "Traced memory counts Python's allocations only, and the RSS includes tracemalloc's own tables.",
            "tracemalloc slows allocation-heavy code several times over, which raises the client CPU above and",
            "lengthens each refresh beyond the interval.",
        ]
    else:
        notes.append("tracemalloc was off (--no-tracemalloc), so only the RSS was measured.")
    for result in results:
        record = result.record
        notes.extend(f"{record.name}: {message}" for message in record.error_messages + result.log_messages)
        if result.largest_growth:
            notes.append(f"{record.name}: lines whose traced memory grew most from mid-warm-up to the end:")
            notes.extend(f"  {line}" for line in result.largest_growth)
    return notes


def report(results: list[PhaseResult], interval: float, began: float) -> list[str]:
    """Return the tables, notes and targets of the soak as lines."""
    requests = Section(
        title="Requests, errors and CPU time (requests counted by the fake cluster)",
        headers=(
            "phase",
            "refreshes",
            "s/refresh",
            "/cluster/resources",
            "per refresh",
            "other requests",
            "errors",
            "invalid",
            "retries logged",
            "client CPU ms/refresh",
            "fake CPU ms/refresh",
        ),
        text_columns=1,
        rows=[requests_row(result) for result in results],
        notes=[
            f"{TOP_PHASE}: the CLI's click command run in this process with --interval {interval:g}, each output",
            "line checked and discarded, ended at the deadline by a KeyboardInterrupt as a Ctrl-C would.",
            f"{SAMPLER_PHASE}: async for over AsyncClient.metrics.sampler({interval:g}) on one client.",
            "/cluster/resources counts every listing, including the baseline that starts each sampling run, and",
            "per refresh leaves the baseline out. s/refresh is the phase's time over its refreshes, so the",
            "interval plus the work. invalid counts refreshes that lacked a guest or a net rate, and retries",
            "logged counts pvekit's log records at INFO or above, where it reports each retry.",
        ],
    )
    memory = Section(
        title="Memory of this process",
        headers=("phase", "measure", "peak MiB", "first third MiB", "last third MiB", "growth KiB", "slope KiB/min"),
        rows=[row for result in results for row in memory_rows(result.record)],
        notes=memory_notes(results),
    )
    checks = [check for result in results for check in phase_checks(result)]
    return [
        *format_section(requests),
        "",
        *format_section(memory),
        "",
        "Targets",
        *format_checks(checks),
        "",
        f"Total time {time.monotonic() - began:.0f} s.",
    ]


def main() -> None:
    """Parse the options, start the fake cluster, run both phases and print the results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument(
        "--minutes",
        type=float,
        default=5.0,
        help="length of the whole run in minutes, split evenly between the two phases (default 5)",
    )
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between refreshes (default 0.5)")
    parser.add_argument("--vms", type=int, default=1000, help="VMs in the fake cluster (default 1000)")
    parser.add_argument(
        "--tracemalloc",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="trace Python's allocations (default on). Tracing makes allocation-heavy code several times slower, "
        "so without it the refreshes follow the interval more closely, and only the RSS is measured",
    )
    args = parser.parse_args()
    if args.minutes <= 0 or args.interval <= 0 or args.vms < MIN_VMS:
        parser.error(f"--minutes and --interval must be above 0, and --vms at least {MIN_VMS}")

    began = time.monotonic()
    phase_seconds = args.minutes * 60 / 2
    progress(f"starting a fake cluster with {args.vms} VMs")
    with ClusterProcess(args.vms) as cluster, tempfile.TemporaryDirectory(prefix="pvekit-soak-") as workdir_name:
        workdir = Path(workdir_name)
        if args.tracemalloc:
            # Started before any client exists, so that every allocation of the clients is traced.
            tracemalloc.start()
        progress(f"1/2 {TOP_PHASE} for {phase_seconds:.0f} s")
        top = run_phase(
            TOP_PHASE,
            cluster,
            phase_seconds,
            args.interval,
            workdir,
            lambda record, deadline: run_top(cluster, record, deadline, args.interval, args.vms, workdir),
        )
        progress(f"2/2 {SAMPLER_PHASE} for {phase_seconds:.0f} s")
        sampler = run_phase(
            SAMPLER_PHASE,
            cluster,
            phase_seconds,
            args.interval,
            workdir,
            lambda record, deadline: asyncio.run(run_async_sampler(cluster, record, deadline, args.interval, args.vms)),
        )
        tracemalloc.stop()
        results = [top, sampler]
        progress("comparing the tracemalloc snapshots")
        for result in results:
            result.largest_growth = result.record.largest_growth()

    lines = [*header_lines(args.vms, args.minutes, args.interval), "", *report(results, args.interval, began)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
