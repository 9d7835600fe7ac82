"""Power commands: ``pvekit start|stop|shutdown|reboot|reset|suspend|resume VMID...``.

Several VMIDs are acted on at once, at most ``--jobs`` at a time, through one AsyncClient. Each VM's
request and, with ``--wait``, its wait hold one of those slots.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from .._exceptions import OutcomeUnknownError, PveError, TaskFailedError, TaskTimeoutError
from .app import EXIT_CODES_SHORT_HELP, App, ExitCode, abort, exit_code_for, pass_app
from .options import VMID_TYPE, node_option, output_option
from .output import echo_json, new_table, plain
from .waiting import TaskDisplay, outcome_text, watch_task

if TYPE_CHECKING:
    from .. import AsyncClient, AsyncTask, TaskResult

DEFAULT_JOBS = 4
# pveproxy runs few worker processes, so many more actions in flight would only wait in its queue.
MAX_JOBS = 32
DEFAULT_WAIT_SECONDS = 300.0
# Added to PVE's own --timeout for the default wait, so that PVE ends the task before pvekit stops waiting.
WAIT_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class PowerOptions:
    """The PVE parameters of one power command; None or False where not given."""

    timeout: int | None = None
    force_stop: bool = False
    overrule_shutdown: bool = False
    skiplock: bool = False
    to_disk: bool = False
    state_storage: str | None = None


@dataclass
class Outcome:
    """The result for one VM: the task it started and, when waited for, how the wait ended."""

    vmid: int
    action: str
    waited: bool = False
    upid: str | None = None
    result: TaskResult | None = None
    error: PveError | None = None
    # The error as the user sees it, with the next step.
    message: str | None = None

    @property
    def exit_code(self) -> int:
        """This VM's exit status: 0, 1 for a failed or timed-out task, or the error's status."""
        return ExitCode.OK if self.error is None else exit_code_for(self.error)

    @property
    def succeeded(self) -> bool | None:
        """Whether the action succeeded, or None while unknown.

        It is unknown for a task not waited for or still running at the wait's timeout, and for an
        action whose response was lost, so that it may or may not have happened.
        """
        if self.result is not None:
            return True
        if self.error is None or isinstance(self.error, (TaskTimeoutError, OutcomeUnknownError)):
            return None
        return False

    def to_json(self) -> dict[str, Any]:
        """Encode for ``--output json``."""
        exitstatus: str | None = None
        if self.result is not None:
            exitstatus = self.result.status.exitstatus
        elif isinstance(self.error, TaskFailedError):
            exitstatus = self.error.exitstatus
        return {
            "vmid": self.vmid,
            "action": self.action,
            "upid": self.upid,
            "waited": self.waited,
            "exitstatus": exitstatus,
            "succeeded": self.succeeded,
            "warnings": self.result.warnings if self.result is not None else None,
            "error": self.message,
            "exit_code": self.exit_code,
        }


async def _send(client: AsyncClient, action: str, vmid: int, node: str | None, options: PowerOptions) -> AsyncTask:
    vms = client.vms
    if action == "start":
        return await vms.start(vmid, node=node, timeout=options.timeout, skiplock=options.skiplock)
    if action == "stop":
        return await vms.stop(
            vmid,
            node=node,
            timeout=options.timeout,
            overrule_shutdown=options.overrule_shutdown,
            skiplock=options.skiplock,
        )
    if action == "shutdown":
        return await vms.shutdown(
            vmid, node=node, timeout=options.timeout, force_stop=options.force_stop, skiplock=options.skiplock
        )
    if action == "reboot":
        return await vms.reboot(vmid, node=node, timeout=options.timeout)
    if action == "reset":
        return await vms.reset(vmid, node=node, skiplock=options.skiplock)
    if action == "suspend":
        return await vms.suspend(
            vmid,
            node=node,
            to_disk=options.to_disk,
            state_storage=options.state_storage,
            skiplock=options.skiplock,
        )
    if action == "resume":
        return await vms.resume(vmid, node=node, skiplock=options.skiplock)
    raise ValueError(f"unknown power action {action!r}")


async def _act_on_all(
    app: App,
    action: str,
    vmids: Sequence[int],
    node: str | None,
    options: PowerOptions,
    *,
    wait: bool,
    wait_timeout: float,
    follow: bool,
    jobs: int,
    started: list[Outcome],
) -> list[Outcome]:
    """Act on every VM, at most ``jobs`` at once; ``started`` collects each outcome once PVE accepted its task."""
    # asyncio is imported here, not at the top, because it adds noticeably to the start time of every command.
    import asyncio

    client = app.async_client(concurrency=jobs)
    slots = asyncio.Semaphore(jobs)
    display = TaskDisplay(app.err_console) if wait else None

    async def act(vmid: int) -> Outcome:
        outcome = Outcome(vmid, action, waited=display is not None)
        async with slots:
            row = display.add(f"{action} VM {vmid}") if display is not None else None
            try:
                task = await _send(client, action, vmid, node, options)
            except PveError as exc:
                # No task to wait for: PVE rejected the action, or its response was lost.
                outcome.error, outcome.message, outcome.waited = exc, app.describe(exc), False
                if display is not None and row is not None:
                    display.finish(row, _failed_send_text(exc), timed=False)
                return outcome

            outcome.upid = task.upid
            started.append(outcome)
            if display is None or row is None:
                return outcome
            try:
                outcome.result = await watch_task(task, display, row, follow=follow, timeout_seconds=wait_timeout)
            except PveError as exc:
                outcome.error, outcome.message = exc, app.describe(exc)
            ended = outcome.result or outcome.error
            # Only a task that ended gets its time: a timeout's text has it already, and an error's ends in advice.
            task_ended = outcome.result is not None or isinstance(ended, TaskFailedError)
            display.finish(row, outcome_text(ended), timed=task_ended)
        return outcome

    async with client:
        if display is not None:
            await app.log_in_before_display(client)
        with display if display is not None else contextlib.nullcontext():
            return list(await asyncio.gather(*(act(vmid) for vmid in vmids)))


def _failed_send_text(error: PveError) -> str:
    """Describe an action that started no task known to pvekit, for the display and the table."""
    return "unknown outcome" if isinstance(error, OutcomeUnknownError) else "error"


def _report_interrupted(started: Sequence[Outcome]) -> None:
    """Name the tasks PVE accepted before Ctrl-C: they go on running, and only their UPIDs find them again."""
    if not started:
        return
    click.echo("Interrupted. These tasks go on in PVE; follow one with pvekit task wait UPID:", err=True)
    for outcome in started:
        click.echo(f"  VM {outcome.vmid}: {outcome.upid}", err=True)


def _report(app: App, outcomes: Sequence[Outcome], output: str) -> None:
    if output == "json":
        echo_json([outcome.to_json() for outcome in outcomes])
    elif any(outcome.upid for outcome in outcomes):
        table = new_table("VMID", "ACTION", "RESULT", "TASK", right=("VMID",), wrap=("RESULT", "TASK"))
        for outcome in outcomes:
            if isinstance(outcome.error, (TaskFailedError, TaskTimeoutError)) or outcome.result is not None:
                result = outcome_text(outcome.result or outcome.error)
            else:
                result = _failed_send_text(outcome.error) if outcome.error is not None else "started"
            table.add_row(plain(outcome.vmid), plain(outcome.action), plain(result), plain(outcome.upid or "-"))
        app.console.print(table)

    failed = [outcome for outcome in outcomes if outcome.exit_code != ExitCode.OK]
    if not failed:
        return
    codes = {outcome.exit_code for outcome in failed}
    unknown = sum(1 for outcome in failed if outcome.exit_code == ExitCode.OUTCOME_UNKNOWN)
    code = codes.pop() if len(codes) == 1 else ExitCode.FAILED
    if unknown:
        # An action that may or may not have happened needs checking before anything else, so its status wins.
        code = ExitCode.OUTCOME_UNKNOWN
    if len(outcomes) == 1:
        abort(failed[0].message or "the operation failed", code)
    for outcome in failed:
        click.echo(f"Error: VM {outcome.vmid}: {outcome.message}", err=True)
    parts = []
    if len(failed) > unknown:
        parts.append(f"{len(failed) - unknown} of {len(outcomes)} VMs failed")
    if unknown:
        parts.append(
            f"for {unknown} of {len(outcomes)} VMs the {failed[0].action} may or may not have happened; "
            "check pvekit task list --vmid VMID before acting again"
        )
    abort("; ".join(parts), code)


# ------------------------------------------------------------------ the commands


@dataclass(frozen=True)
class _Action:
    name: str
    summary: str
    details: str
    example: str
    extra_options: tuple[Callable[[Any], Any], ...] = ()


def _timeout_option(what: str) -> Callable[[Any], Any]:
    return click.option(
        "--timeout",
        type=click.IntRange(min=0),
        metavar="SECONDS",
        help=f"PVE's timeout: {what}.",
    )


def _skiplock_option() -> Callable[[Any], Any]:
    return click.option(
        "--skiplock",
        is_flag=True,
        help="Act although the VM is locked (snapshot, ...); PVE allows this only for root@pam logged in with "
        "its password (--user root@pam), not for API tokens.",
    )


_ACTIONS = (
    _Action(
        "start",
        "Start VMs, or wake hibernated ones.",
        "The task fails when the VM is already running.",
        "pvekit start 100 101 102 --wait",
        (_timeout_option("seconds PVE waits for the VM to start"), _skiplock_option()),
    ),
    _Action(
        "stop",
        "Stop VMs at once, like pulling the power cord.",
        "The guest OS gets no chance to shut down; use shutdown for that.",
        "pvekit stop 100 --overrule-shutdown --wait",
        (
            _timeout_option("seconds PVE waits for the VM to stop"),
            click.option("--overrule-shutdown", is_flag=True, help="Abort a running shutdown task first."),
            _skiplock_option(),
        ),
    ),
    _Action(
        "shutdown",
        "Shut VMs down cleanly through ACPI.",
        "The guest OS powers off. Without --force-stop the task fails when the guest has not powered off "
        "by the timeout (PVE's default when --timeout is not given).",
        "pvekit shutdown 100 --force-stop --timeout 60 --wait",
        (
            _timeout_option("seconds the guest gets to power off"),
            click.option("--force-stop", is_flag=True, help="Stop the VM when the guest has not powered off by then."),
            _skiplock_option(),
        ),
    ),
    _Action(
        "reboot",
        "Reboot VMs cleanly: ACPI shutdown, then start.",
        "Pending configuration changes apply on the new start.",
        "pvekit reboot 100 --wait",
        (_timeout_option("seconds the guest gets to shut down"),),
    ),
    _Action(
        "reset",
        "Reset VMs, like pressing the reset button.",
        "The guest OS gets no warning.",
        "pvekit reset 100",
        (_skiplock_option(),),
    ),
    _Action(
        "suspend",
        "Pause VMs in memory, or hibernate them with --to-disk.",
        "A paused VM keeps status running and is continued by resume. A hibernated VM is stopped with its "
        "memory saved to disk, and start wakes it.",
        "pvekit suspend 100 --to-disk --state-storage local-lvm --wait",
        (
            click.option("--to-disk", is_flag=True, help="Hibernate: save the memory to disk and stop the VM."),
            click.option("--state-storage", metavar="STORAGE", help="Storage for the saved memory (with --to-disk)."),
            _skiplock_option(),
        ),
    ),
    _Action(
        "resume",
        "Resume paused VMs.",
        "For a hibernated VM use start.",
        "pvekit resume 100",
        (_skiplock_option(),),
    ),
)


def _make_command(spec: _Action) -> click.Command:
    def callback(
        app: App,
        vmids: tuple[int, ...],
        node: str | None,
        wait: bool,
        wait_timeout: float | None,
        follow: bool,
        jobs: int,
        output: str,
        **parameters: Any,
    ) -> None:
        import asyncio

        options = PowerOptions(**parameters)
        if options.state_storage is not None and not options.to_disk:
            raise click.UsageError("--state-storage needs --to-disk")
        if follow or wait_timeout is not None:
            wait = True
        if wait_timeout is None:
            wait_timeout = max(DEFAULT_WAIT_SECONDS, (options.timeout or 0) + WAIT_MARGIN_SECONDS)
        unique = list(dict.fromkeys(vmids))
        started: list[Outcome] = []
        try:
            outcomes = asyncio.run(
                _act_on_all(
                    app,
                    spec.name,
                    unique,
                    app.default_node(node),
                    options,
                    wait=wait,
                    wait_timeout=wait_timeout,
                    follow=follow,
                    jobs=jobs,
                    started=started,
                )
            )
        except KeyboardInterrupt:
            _report_interrupted(started)
            raise
        _report(app, outcomes, output)

    callback.__doc__ = f"""{spec.summary}

    {spec.details} Without --wait, pvekit returns once PVE has accepted each task, and exit status 0
    does not mean that the tasks succeeded.

    \b
    Examples:
      {spec.example}
      pvekit {spec.name} 100 -o json
    """

    decorators: list[Callable[[Any], Any]] = [
        click.command(spec.name, epilog=EXIT_CODES_SHORT_HELP),
        click.argument("vmids", nargs=-1, required=True, type=VMID_TYPE, metavar="VMID..."),
        node_option,
        *spec.extra_options,
        click.option("--wait", is_flag=True, help="Wait until each task ends, showing its status and elapsed time."),
        click.option(
            "--wait-timeout",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help=f"Stop waiting after this many seconds (the task goes on); implies --wait. Default: "
            f"{DEFAULT_WAIT_SECONDS:g}, or --timeout plus {WAIT_MARGIN_SECONDS:g} when that is longer.",
        ),
        click.option(
            "--follow", is_flag=True, help="Wait, and print each task's log lines as they come (implies --wait)."
        ),
        click.option(
            "--jobs",
            "-j",
            type=click.IntRange(1, MAX_JOBS),
            default=DEFAULT_JOBS,
            show_default=True,
            help="VMs acted on at the same time.",
        ),
        output_option("table", "json"),
        pass_app,
    ]
    command: Any = callback
    for decorator in reversed(decorators):
        command = decorator(command)
    assert isinstance(command, click.Command)
    return command


COMMANDS: tuple[click.Command, ...] = tuple(_make_command(spec) for spec in _ACTIONS)
