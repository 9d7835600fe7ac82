"""Timing: wall time, each process's CPU time and the requests the fake cluster counted."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ._cluster import ClusterProcess

T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    """One timed run.

    ``cpu_seconds`` is ``time.process_time()`` of the benchmark process, so the client's alone, and
    ``server_cpu_seconds`` that of the fake cluster's process over the same run.
    """

    wall_seconds: float
    cpu_seconds: float
    server_cpu_seconds: float
    requests: int

    @property
    def cpu_per_request_seconds(self) -> float:
        """Client CPU seconds per request."""
        return self.cpu_seconds / self.requests if self.requests else float("nan")

    @property
    def server_cpu_per_request_seconds(self) -> float:
        """Server CPU seconds per request."""
        return self.server_cpu_seconds / self.requests if self.requests else float("nan")

    def scaled(self, factor: float) -> Sample:
        """Return this sample multiplied by ``factor``, for a linear extrapolation."""
        return Sample(
            wall_seconds=self.wall_seconds * factor,
            cpu_seconds=self.cpu_seconds * factor,
            server_cpu_seconds=self.server_cpu_seconds * factor,
            requests=round(self.requests * factor),
        )


class Stopwatch:
    """A timer for one run: construction resets the fake's request record and starts it, ``stop`` ends it.

    The control calls to the server process happen outside the timed span.
    """

    def __init__(self, cluster: ClusterProcess) -> None:
        self._cluster = cluster
        cluster.reset_requests()
        self._server_cpu_start = cluster.stats().cpu_seconds
        self._wall_start = time.perf_counter()
        self._cpu_start = time.process_time()

    def stop(self) -> Sample:
        """Return the sample of the span since construction."""
        cpu_seconds = time.process_time() - self._cpu_start
        wall_seconds = time.perf_counter() - self._wall_start
        stats = self._cluster.stats()
        return Sample(
            wall_seconds=wall_seconds,
            cpu_seconds=cpu_seconds,
            server_cpu_seconds=stats.cpu_seconds - self._server_cpu_start,
            requests=stats.requests,
        )


def measure(cluster: ClusterProcess, work: Callable[[], T]) -> tuple[Sample, T]:
    """Run ``work`` once and return its sample and result."""
    stopwatch = Stopwatch(cluster)
    result = work()
    return stopwatch.stop(), result


async def measure_async(cluster: ClusterProcess, work: Callable[[], Awaitable[T]]) -> tuple[Sample, T]:
    """Await ``work()`` once and return its sample and result.

    The control calls block the event loop, which is fine because nothing else runs on it then.
    """
    stopwatch = Stopwatch(cluster)
    result = await work()
    return stopwatch.stop(), result


def median(samples: Sequence[Sample]) -> Sample:
    """Return the median of each figure, each taken on its own."""
    if not samples:
        raise ValueError("no samples to take the median of")
    return Sample(
        wall_seconds=statistics.median(sample.wall_seconds for sample in samples),
        cpu_seconds=statistics.median(sample.cpu_seconds for sample in samples),
        server_cpu_seconds=statistics.median(sample.server_cpu_seconds for sample in samples),
        requests=round(statistics.median(sample.requests for sample in samples)),
    )
