"""Per-refresh records of a soak phase: requests the fake counted, errors, and this process's memory."""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import statistics
import time
import tracemalloc
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._cluster import REPO_ROOT, ClusterProcess

# The fake's record of a cluster listing: method and path, without the query string.
CLUSTER_RESOURCES = "GET /api2/json/cluster/resources"
# Samples from this share of a phase's duration on are compared. The earlier ones are warm-up: imports,
# the TLS connection, the first baseline and the growth of caches and pools to their steady size.
WARMUP_SHARE = 0.2
# Fewer samples after the warm-up than this give no trend.
MIN_TREND_SAMPLES = 9
# Error messages kept for the report. The others are only counted.
MAX_ERROR_MESSAGES = 5
# Lines of the tracemalloc comparison between the warm-up's end and the phase's end shown in the report.
TOP_GROWTH_LINES = 3
MIB = 1024 * 1024
KIB = 1024


def resident_bytes() -> int | None:
    """Return this process's resident set size (RSS), or None where there is no /proc/self/statm (not Linux)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            fields = statm.read().split()
    except OSError:
        return None
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_resident() -> bool:
    """Reset this process's peak RSS (VmHWM) through /proc/self/clear_refs, and return False where that fails.

    Linux 4.0 and later reset the peak when "5" is written there.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_resident_bytes() -> int | None:
    """Return this process's peak RSS so far (VmHWM), or None where there is no /proc/self/status."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    # The line reads "VmHWM:   123456 kB".
                    return int(line.split()[1]) * KIB
    except OSError:
        return None
    return None


def short_path(filename: str) -> str:
    """Return a source file's path inside site-packages or the repository, or unchanged when outside both."""
    _, marker, inside = filename.rpartition("site-packages/")
    if marker:
        return inside
    path = Path(filename)
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else filename


class LogCounter(logging.Handler):
    """Counts log records at INFO and above, and keeps the first MAX_ERROR_MESSAGES messages.

    pvekit logs each retry of a request at INFO, so a count above zero means a request failed and was sent again.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.messages) < MAX_ERROR_MESSAGES:
            self.messages.append(f"{record.levelname}: {record.getMessage()}")


@contextlib.contextmanager
def counting_pvekit_logs() -> Iterator[LogCounter]:
    """Count the pvekit logger's records at INFO and above while the block runs."""
    logger = logging.getLogger("pvekit")
    counter = LogCounter()
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous_level)


@dataclass(frozen=True)
class Trend:
    """The change of one memory measure over a phase, after the warm-up.

    The medians are those of the first and the last third of the samples. The slope is a least-squares fit
    over all of them, in bytes per minute.
    """

    samples: int
    first_median: float
    last_median: float
    slope_per_minute: float

    @property
    def growth(self) -> float:
        """Bytes from the first third's median to the last third's."""
        return self.last_median - self.first_median


def trend(seconds: Sequence[float], values: Sequence[float], warmup_seconds: float) -> Trend | None:
    """Compare the first and last third of the samples taken after ``warmup_seconds``, or return None.

    None means fewer than MIN_TREND_SAMPLES samples followed the warm-up.
    """
    after_warmup = [(second, value) for second, value in zip(seconds, values, strict=True) if second >= warmup_seconds]
    if len(after_warmup) < MIN_TREND_SAMPLES:
        return None
    third = len(after_warmup) // 3
    minutes = [second / 60 for second, _ in after_warmup]
    measured = [value for _, value in after_warmup]
    fit = statistics.linear_regression(minutes, measured)
    return Trend(
        samples=len(after_warmup),
        first_median=statistics.median(measured[:third]),
        last_median=statistics.median(measured[-third:]),
        slope_per_minute=fit.slope,
    )


class PhaseRecord:
    """The per-refresh record of one soak phase.

    Construction resets the fake's request record, tracemalloc's peak and, where Linux allows it, the peak
    RSS, so that they cover this phase alone. The samples go into arrays allocated up front, so that recording
    them adds no traced memory as the phase goes on. The traced memory is recorded when tracemalloc is
    tracing as the record is built, and left out otherwise.
    """

    def __init__(
        self, name: str, cluster: ClusterProcess, duration_seconds: float, interval: float, snapshot_dir: Path
    ) -> None:
        self.name = name
        self.traced = tracemalloc.is_tracing()
        self.duration_seconds = duration_seconds
        self.warmup_seconds = duration_seconds * WARMUP_SHARE
        self._cluster = cluster
        stem = snapshot_dir / name.replace(" ", "-")
        self._snapshot_files = (stem.with_suffix(".warmup.tracemalloc"), stem.with_suffix(".end.tracemalloc"))
        self._warmup_snapshot_taken = False

        # Each refresh lasts at least the interval, so the phase cannot have more refreshes than this.
        capacity = math.ceil(duration_seconds / interval) + 2
        self.seconds = array("d", [0.0]) * capacity
        self.traced_bytes = array("q", [0]) * capacity
        self.resident_bytes = array("q", [0]) * capacity
        self.refreshes = 0

        # Number of /cluster/resources requests in a refresh, mapped to how many refreshes had that number.
        self.requests_per_refresh: Counter[int] = Counter()
        # Sampling runs started: one, plus one after each error. Each begins with a baseline request.
        self.runs = 0
        self.invalid_refreshes = 0
        self.errors = 0
        self.error_messages: list[str] = []
        self.request_counts: dict[str, int] = {}
        self.peak_traced_bytes: int | None = None
        self.peak_resident_bytes: int | None = None
        self.cpu_seconds = 0.0
        self.server_cpu_seconds = 0.0

        self._listings_counted = 0
        self._baseline_pending = False
        cluster.reset_requests()
        self.peak_resident_is_phase_only = reset_peak_resident()
        if self.traced:
            tracemalloc.reset_peak()
        self._server_cpu_start = cluster.stats().cpu_seconds
        self._cpu_start = time.process_time()
        self.started = time.monotonic()

    def begin_run(self) -> None:
        """Note that a sampling run starts, so that its baseline request is not counted in its first refresh."""
        self.runs += 1
        self._baseline_pending = True

    def after_refresh(self, valid: bool) -> None:
        """Record one refresh: its /cluster/resources requests, whether its result was valid, and memory.

        ``valid`` is False when the refresh lacked a guest or a rate.
        """
        elapsed = time.monotonic() - self.started
        listings = self._cluster.request_counts().get(CLUSTER_RESOURCES, 0)
        in_refresh = listings - self._listings_counted
        if self._baseline_pending:
            in_refresh -= 1
            self._baseline_pending = False
        self._listings_counted = listings
        self.requests_per_refresh[in_refresh] += 1
        if not valid:
            self.invalid_refreshes += 1

        index = self.refreshes
        if index >= len(self.seconds):
            raise RuntimeError(f"{self.name}: more refreshes than the interval allows ({len(self.seconds)})")
        self.seconds[index] = elapsed
        self.traced_bytes[index] = tracemalloc.get_traced_memory()[0] if self.traced else -1
        self.resident_bytes[index] = resident_bytes() or -1
        self.refreshes += 1

        # Halfway through the warm-up, so that the snapshot's own short-lived memory is gone from the RSS
        # before the compared samples begin. The file keeps it out of the traced memory.
        if self.traced and elapsed >= self.warmup_seconds / 2 and not self._warmup_snapshot_taken:
            self._save_snapshot(self._snapshot_files[0])
            self._warmup_snapshot_taken = True

    def record_error(self, message: str) -> None:
        """Count a failed refresh or run. Its requests are left out of the per-refresh counts."""
        self.errors += 1
        if len(self.error_messages) < MAX_ERROR_MESSAGES:
            self.error_messages.append(message)
        self._listings_counted = self._cluster.request_counts().get(CLUSTER_RESOURCES, 0)
        self._baseline_pending = False

    def finish(self) -> None:
        """Read the CPU times, the fake's request counts and the peaks, and save the end snapshot."""
        self.cpu_seconds = time.process_time() - self._cpu_start
        self.server_cpu_seconds = self._cluster.stats().cpu_seconds - self._server_cpu_start
        self.request_counts = self._cluster.request_counts()
        self.peak_resident_bytes = peak_resident_bytes()
        if self.traced:
            self.peak_traced_bytes = tracemalloc.get_traced_memory()[1]
            self._save_snapshot(self._snapshot_files[1])

    def traced_trend(self) -> Trend | None:
        """Return the trend of the traced memory after the warm-up, or None with too few samples or no tracing."""
        count = self.refreshes
        if not self.traced:
            return None
        return trend(self.seconds[:count], self.traced_bytes[:count], self.warmup_seconds)

    def resident_trend(self) -> Trend | None:
        """Return the trend of the RSS after the warm-up, or None with too few samples or without /proc."""
        count = self.refreshes
        if count == 0 or min(self.resident_bytes[:count]) < 0:
            return None
        return trend(self.seconds[:count], self.resident_bytes[:count], self.warmup_seconds)

    def _save_snapshot(self, path: Path) -> None:
        # Collecting first leaves out garbage that only waits for the cycle collector, so that the comparison
        # shows memory that is still referenced. The samples are taken without collecting.
        gc.collect()
        tracemalloc.take_snapshot().dump(str(path))

    def largest_growth(self) -> list[str]:
        """Describe the source lines whose traced memory grew most from the warm-up snapshot to the end one.

        Call it after the phases, best with tracemalloc stopped, because loading the snapshots takes memory.
        """
        if not (self.traced and self._warmup_snapshot_taken):
            return []
        ignored = [tracemalloc.Filter(False, tracemalloc.__file__)]
        warmup, end = (tracemalloc.Snapshot.load(str(path)).filter_traces(ignored) for path in self._snapshot_files)
        differences = [stat for stat in end.compare_to(warmup, "lineno") if stat.size_diff > 0]
        lines = []
        for stat in differences[:TOP_GROWTH_LINES]:
            frame = stat.traceback[0]
            lines.append(
                f"{short_path(frame.filename)}:{frame.lineno}: {stat.size_diff / KIB:+.1f} KiB, "
                f"{stat.count_diff:+d} blocks, {stat.size / KIB:.1f} KiB in all"
            )
        return lines
