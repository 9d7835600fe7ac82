"""``pvekit task list`` and ``pvekit task status|log|wait|stop UPID``: PVE tasks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .._exceptions import TaskFailedError, TaskTimeoutError
from .._tasks import TaskSummary
from .._upid import Upid
from .app import EXIT_CODES_SHORT_HELP, App, ExitCode, abort, pass_app
from .options import output_option
from .output import (
    MISSING,
    echo_json,
    iso_from_unix,
    key_value_table,
    local_time,
    new_table,
    plain,
    status_text,
    task_status_json,
)
from .waiting import FIRST_POLL_SECONDS, MAX_POLL_SECONDS, POLL_GROWTH, TaskDisplay, outcome_text, watch_task

DEFAULT_WAIT_SECONDS = 300.0
F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from .. import TaskResult, TaskStatus


def _check_upid(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Return the UPID without surrounding white space, or fail with a usage error naming the expected form."""
    text = value.strip()
    try:
        Upid.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return text


def upid_argument(function: F) -> F:
    """Add the UPID argument, checked before any request."""
    return click.argument("upid", callback=_check_upid)(function)


@click.group(epilog=EXIT_CODES_SHORT_HELP)
def task() -> None:
    """List PVE tasks, and read, wait for and stop them by their UPID.

    Power commands print the UPID of each task they start.

    \b
    Examples:
      pvekit task list --vmid 100
      pvekit task status UPID:pve1:00001234:0001ABCD:6650A1B2:qmstart:100:root@pam:
      pvekit task wait UPID:pve1:00001234:0001ABCD:6650A1B2:qmstart:100:root@pam: --follow
    """


@task.command(name="list", epilog=EXIT_CODES_SHORT_HELP)
@click.option("--vmid", type=click.IntRange(min=100), metavar="VMID", help="Only tasks of this VM, on its node.")
@click.option("--node", metavar="NODE", help="Only tasks of this node (names are case-sensitive).")
@click.option("--errors", "errors_only", is_flag=True, help="Only tasks that failed.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Print at most this many tasks."
)
@output_option("table", "json")
@pass_app
def list_tasks(app: App, vmid: int | None, node: str | None, errors_only: bool, limit: int, output: str) -> None:
    """List recent tasks, newest first, running ones included.

    Without --vmid or --node the cluster's recent tasks are listed. After an
    action whose response was lost (exit status 6), list the VM's tasks to see
    whether PVE started it.

    \b
    Examples:
      pvekit task list --vmid 100
      pvekit task list --node pve1 --errors -o json
    """
    with app.client() as client:
        summaries = client.tasks.list(node, vmid=vmid, errors_only=errors_only, limit=limit)

    if output == "json":
        echo_json([_summary_json(summary) for summary in summaries])
        return
    table = new_table("STARTED", "NODE", "TYPE", "ID", "USER", "STATUS", "UPID", wrap=("USER", "UPID"))
    for summary in summaries:
        table.add_row(
            plain(_local_from_unix(summary.starttime)),
            plain(summary.node),
            plain(summary.task_type or MISSING),
            plain(summary.id or MISSING),
            plain(summary.auth_id or MISSING),
            status_text("running" if summary.running else summary.status or MISSING),
            plain(summary.upid),
        )
    app.console.print(table)
    if not summaries:
        app.err_console.print("No tasks match.")


def _summary_json(summary: TaskSummary) -> dict[str, Any]:
    return {
        "upid": summary.upid,
        "node": summary.node,
        "type": summary.task_type,
        "id": summary.id,
        "user": summary.auth_id,
        "running": summary.running,
        "exitstatus": None if summary.running else summary.status,
        "started_at": iso_from_unix(summary.starttime),
        "ended_at": iso_from_unix(summary.endtime),
    }


@task.command(epilog=EXIT_CODES_SHORT_HELP)
@upid_argument
@output_option("table", "json")
@pass_app
def status(app: App, upid: str, output: str) -> None:
    """Show a task's status, and its exit status once it has ended.

    \b
    Example:
      pvekit task status UPID:pve1:00001234:0001ABCD:6650A1B2:qmstart:100:root@pam: -o json
    """
    with app.client() as client:
        current = client.tasks.status(upid)

    if output == "json":
        echo_json(task_status_json(current))
        return

    started = current.starttime if current.starttime is not None else Upid.parse(upid).starttime
    rows = [
        ("UPID", current.upid),
        ("Node", current.node),
        ("Type", current.task_type or MISSING),
        ("ID", current.id or MISSING),
        ("User", current.auth_id or MISSING),
        ("Started", _local_from_unix(started)),
        ("Status", current.status),
        ("Exit status", current.exitstatus or MISSING),
    ]
    app.console.print(key_value_table(rows))


def _local_from_unix(seconds: int | None) -> str:
    from datetime import datetime, timezone

    if seconds is None:
        return MISSING
    return local_time(datetime.fromtimestamp(seconds, tz=timezone.utc))


@task.command(epilog=EXIT_CODES_SHORT_HELP)
@upid_argument
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True, help="First line to print, from 0.")
@click.option("--limit", type=click.IntRange(min=1), help="Print at most this many lines.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the task ends.")
@output_option("table", "json")
@pass_app
def log(app: App, upid: str, start: int, limit: int | None, follow: bool, output: str) -> None:
    """Print a task's log.

    With -o json the lines come as one object: {"upid": ..., "start": N, "lines": [...]}.

    \b
    Examples:
      pvekit task log UPID:pve1:00001234:0001ABCD:6650A1B2:qmstart:100:root@pam:
      pvekit task log UPID:pve1:00001234:0001ABCD:6650A1B2:vzdump::root@pam: --follow
    """
    if follow and output == "json":
        raise click.UsageError("--follow prints lines as they come, so it works with the table output only")

    with app.client() as client:
        if not follow:
            lines = client.tasks.log(upid, start, limit)
            if output == "json":
                echo_json({"upid": upid, "start": start, "lines": lines})
                return
            for line in lines:
                click.echo(line)
            return

        printed = 0
        interval = FIRST_POLL_SECONDS
        while limit is None or printed < limit:
            finished = client.tasks.status(upid).finished
            # Read after the status, so a task that ended has its last lines in this read.
            lines = client.tasks.log(upid, start + printed, None if limit is None else limit - printed)
            for line in lines:
                click.echo(line)
            printed += len(lines)
            if finished:
                break
            time.sleep(interval)
            interval = min(interval * POLL_GROWTH, MAX_POLL_SECONDS)


@task.command(epilog=EXIT_CODES_SHORT_HELP)
@upid_argument
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_WAIT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Stop waiting after this many seconds; the task goes on.",
)
@click.option("--follow", "-f", is_flag=True, help="Print the task's log lines as they come.")
@output_option("table", "json")
@pass_app
def wait(app: App, upid: str, timeout: float, follow: bool, output: str) -> None:
    """Wait until a task ends; exit status 1 when it failed or is still running at the timeout.

    OK and WARNINGS count as success. A spinner with the status and elapsed time shows on standard
    error while waiting. With -o json the final status is printed as by pvekit task status, with the
    last log lines under log_tail when the task failed.

    \b
    Example:
      pvekit task wait UPID:pve1:00001234:0001ABCD:6650A1B2:qmstart:100:root@pam: --timeout 120
    """
    import asyncio

    status, outcome = asyncio.run(_wait(app, upid, timeout, follow))

    if output == "json":
        data = task_status_json(status)
        if isinstance(outcome, TaskFailedError):
            data["log_tail"] = list(outcome.log_tail)
        echo_json(data)
    elif not isinstance(outcome, BaseException):
        app.console.print(key_value_table([("UPID", upid), ("Result", outcome_text(outcome))]))

    if isinstance(outcome, BaseException):
        abort(str(outcome), ExitCode.FAILED)


async def _wait(
    app: App, upid: str, timeout: float, follow: bool
) -> tuple[TaskStatus, TaskResult | TaskFailedError | TaskTimeoutError]:
    """Wait with a display; return the final status and the result, or the failure or timeout."""
    parsed = Upid.parse(upid)
    async with app.async_client() as client:
        task = client.tasks.get(upid)
        await app.log_in_before_display(client)
        with TaskDisplay(app.err_console) as display:
            row = display.add(f"task {parsed.task_type} {parsed.id}".rstrip())
            outcome: TaskResult | TaskFailedError | TaskTimeoutError
            try:
                outcome = await watch_task(task, display, row, follow=follow, timeout_seconds=timeout)
            except (TaskFailedError, TaskTimeoutError) as exc:
                outcome = exc
            display.finish(row, outcome_text(outcome), timed=not isinstance(outcome, TaskTimeoutError))
        status = outcome.status if not isinstance(outcome, BaseException) else await task.status()
    return status, outcome


@task.command(epilog=EXIT_CODES_SHORT_HELP)
@upid_argument
@pass_app
def stop(app: App, upid: str) -> None:
    """Stop a running task.

    \b
    Example:
      pvekit task stop UPID:pve1:00001234:0001ABCD:6650A1B2:vzdump::root@pam:
    """
    with app.client() as client:
        client.tasks.stop(upid)
    click.echo(f"Stop requested for task {upid}", err=True)
