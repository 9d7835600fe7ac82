"""Waiting on PVE tasks with a live display on standard error: a spinner per task, or plain lines.

The display polls each task's status for the spinner and, with ``--follow``, streams new log lines.
The final outcome comes from the library's ``wait``, so OK, WARNINGS and failures mean the same here
as in the library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

import click

from .._core import MIN_REQUEST_SECONDS
from .._exceptions import PveError, TaskFailedError, TaskTimeoutError
from .._retry import describe_failure

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from .. import AsyncTask, TaskResult

# Polling starts fast, so that short tasks such as a reset show their end without delay, then slows down
# to spare pveproxy.
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 2.0
POLL_GROWTH = 1.5
# Seconds for reading the result of a task already seen to end.
ENDED_TASK_READ_SECONDS = 60.0


@dataclass
class Row:
    """One task on the display."""

    label: str
    started: float = field(default_factory=time.monotonic)
    progress_id: TaskID | None = None


class TaskDisplay:
    """Shows the tasks being waited on: a rich spinner per task on a terminal, plain lines otherwise."""

    def __init__(self, console: Console) -> None:
        self._progress: Progress | None = None
        if console.is_terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(finished_text="-"),
                TextColumn("{task.description}", markup=False),
                TextColumn("{task.fields[state]}", markup=False),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )

    def __enter__(self) -> TaskDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, label: str) -> Row:
        """Add a task row, shown as waiting until its first status arrives."""
        row = Row(label)
        if self._progress is not None:
            row.progress_id = self._progress.add_task(label, total=1, state="waiting")
        return row

    def update(self, row: Row, state: str) -> None:
        """Show the task's current state, such as ``running``."""
        if self._progress is not None and row.progress_id is not None:
            self._progress.update(row.progress_id, state=state)

    def finish(self, row: Row, state: str, *, timed: bool = True) -> None:
        """Stop the row's spinner and clock and show the final state; ``timed`` adds the elapsed time."""
        if self._progress is not None and row.progress_id is not None:
            self._progress.update(row.progress_id, state=state, completed=1)
            self._progress.stop_task(row.progress_id)
            return
        elapsed = f" after {time.monotonic() - row.started:.1f} s" if timed else ""
        click.echo(f"{row.label}: {state}{elapsed}", err=True)

    def log(self, row: Row, line: str) -> None:
        """Print a task log line above the spinners."""
        text = f"{row.label}: {line}"
        if self._progress is not None:
            from rich.text import Text

            self._progress.console.print(Text(text))
            return
        click.echo(text, err=True)


async def watch_task(
    task: AsyncTask, display: TaskDisplay, row: Row, *, follow: bool, timeout_seconds: float
) -> TaskResult:
    """Poll a task until it ends, updating its row and streaming its log when ``follow``.

    Raises:
        TaskFailedError: the task ended with an exit status other than OK or WARNINGS.
        TaskTimeoutError: the task still ran after ``timeout_seconds``; it goes on running.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    interval = FIRST_POLL_SECONDS
    lines_seen = 0
    last_status: str | None = None
    failure: str | None = None

    while True:
        try:
            # The poll is cut at the deadline, so that a slow link cannot stretch the wait.
            status = await asyncio.wait_for(task.status(), max(deadline - loop.time(), MIN_REQUEST_SECONDS))
            if follow:
                lines = await task.log(start=lines_seen)
                lines_seen += len(lines)
                for line in lines:
                    display.log(row, line)
        except asyncio.TimeoutError:
            # As in the library's wait: the status is unknown, and an earlier failed read, if any, is the cause.
            raise TaskTimeoutError(task.upid, timeout_seconds, None, last_failure=failure) from None
        except PveError as exc:
            # As in the library's wait: once PVE has responded, an outage does not end the wait early.
            if not task._client._session.rides_out(exc):
                raise
            if failure is None:
                display.update(row, "status unknown, retrying")
            last_status, failure = None, describe_failure(exc)
        else:
            display.update(row, status.status)
            if status.finished:
                break
            last_status, failure = status.status, None
        now = loop.time()
        if now >= deadline:
            raise TaskTimeoutError(task.upid, timeout_seconds, last_status, last_failure=failure)
        await asyncio.sleep(min(interval, deadline - now))
        interval = min(interval * POLL_GROWTH, MAX_POLL_SECONDS)

    # The task has ended, so this returns after one status request (and a log read on failure or
    # warnings). Those reads get their own time: the deadline bounds the task, not this last step.
    return await task.wait(timeout=ENDED_TASK_READ_SECONDS)


def outcome_text(result: TaskResult | BaseException | None) -> str:
    """Describe how a wait ended, for the display and the summary table; None is a task not waited for."""
    if result is None:
        return "started"
    if isinstance(result, TaskFailedError):
        return f"failed: {result.exitstatus}"
    if isinstance(result, TaskTimeoutError):
        if result.last_status is None:
            return f"timed out after {result.timeout_seconds:g} s, status unknown"
        return f"timed out after {result.timeout_seconds:g} s, still {result.last_status}"
    if isinstance(result, BaseException):
        return f"error: {result}"
    return result.status.exitstatus or "OK"
