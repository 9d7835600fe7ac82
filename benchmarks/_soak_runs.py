"""The two soak phases: ``pvekit top -o json`` run in this process, and AsyncClient's cluster sampler."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

import pvekit
from pvekit.cli import cli

from ._cluster import ClusterProcess
from ._soak_record import PhaseRecord

# The rate that every guest must have in every refresh after the baseline.
CHECKED_RATE = "netin_per_second"


class RefreshSink(io.TextIOBase):
    """Standard output for ``pvekit top -o json``: records each refresh's line and discards the text.

    top has no time limit apart from ``--iterations``, so at the deadline the sink raises KeyboardInterrupt
    from ``write``, as a Ctrl-C would arrive. top treats Ctrl-C as the normal way out: it closes its client and
    exits with status 0.
    """

    def __init__(self, record: PhaseRecord, deadline: float, vm_count: int) -> None:
        super().__init__()
        self.reached_deadline = False
        self._record = record
        self._deadline = deadline
        self._vm_count = vm_count
        self._partial: list[str] = []

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "strict"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        # click treats a stream that accepts bytes as binary, so this text stream rejects them.
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        head, newline, tail = text.partition("\n")
        if not newline:
            self._partial.append(text)
            return len(text)

        line = "".join([*self._partial, head])
        self._partial = [tail] if tail else []
        self._record.after_refresh(valid_top_line(line, self._vm_count))
        if time.monotonic() >= self._deadline:
            self.reached_deadline = True
            raise KeyboardInterrupt
        return len(text)


def valid_top_line(line: str, vm_count: int) -> bool:
    """Return True when a line of ``top -o json`` lists ``vm_count`` guests, each with a net rate."""
    guests = json.loads(line).get("guests", [])
    return len(guests) == vm_count and all(guest.get(CHECKED_RATE) is not None for guest in guests)


@contextlib.contextmanager
def cli_environment(workdir: Path) -> Iterator[None]:
    """Leave out PVE_* and PVEKIT_* variables and the user's config file while the block runs.

    The command line alone then chooses the cluster, as in the cold-start benchmark.
    """
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("PVE_", "PVEKIT_")):
            del os.environ[name]
    os.environ["XDG_CONFIG_HOME"] = str(workdir / "config")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_top(
    cluster: ClusterProcess, record: PhaseRecord, deadline: float, interval: float, vm_count: int, workdir: Path
) -> None:
    """Run ``pvekit top -o json --interval INTERVAL`` in this process until ``deadline`` (monotonic seconds).

    When top exits with an error, the error is counted and top starts again after one interval.
    """
    info = cluster.info
    token_file = workdir / "token"
    # The CLI reads the whole token, user@realm!name=secret, from this file, which only its owner may read.
    token_file.touch(mode=0o600)
    token_file.write_text(info.token + "\n")
    arguments = [
        *("--host", info.host, "--ca-file", info.ca_file, "--token-file", str(token_file)),
        *("top", "--output", "json", "--interval", repr(interval)),
    ]

    sink = RefreshSink(record, deadline, vm_count)
    with cli_environment(workdir), contextlib.redirect_stdout(sink):
        while time.monotonic() < deadline:
            record.begin_run()
            status = run_cli(arguments)
            if status == 0 and not sink.reached_deadline:
                # top ended on a Ctrl-C that the sink did not raise: the user's, so the soak stops.
                raise KeyboardInterrupt
            if status != 0:
                record.record_error(f"pvekit top exited with status {status}")
                time.sleep(interval)


def run_cli(arguments: list[str]) -> int:
    """Run the pvekit CLI in this process and return its exit status. Its error messages go to stderr."""
    try:
        result: Any = cli.main(args=arguments, prog_name="pvekit", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 1
    # Without standalone mode, click returns a command's value, or the status of an Exit it raised.
    return result if isinstance(result, int) else 0


def valid_rates(rates: pvekit.ClusterRates, vm_count: int) -> bool:
    """Return True when the rates cover ``vm_count`` guests, each with a net rate."""
    return len(rates) == vm_count and all(getattr(row, CHECKED_RATE) is not None for row in rates)


async def run_async_sampler(
    cluster: ClusterProcess, record: PhaseRecord, deadline: float, interval: float, vm_count: int
) -> None:
    """Iterate ``AsyncClient.metrics.sampler(interval)`` until ``deadline``, on one client.

    When an iteration raises a PveError, the error is counted and a new sampler, whose first request is a new
    baseline, starts after one interval.
    """
    info = cluster.info
    async with pvekit.AsyncClient(info.host, info.token, ca_file=info.ca_file) as pve:
        while time.monotonic() < deadline:
            sampler = pve.metrics.sampler(interval)
            record.begin_run()
            try:
                async with contextlib.aclosing(aiter(sampler)) as refreshes:
                    async for rates in refreshes:
                        record.after_refresh(valid_rates(rates, vm_count))
                        if time.monotonic() >= deadline:
                            break
            except pvekit.PveError as exc:
                record.record_error(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(interval)
