"""Task operations: status, log, stop, listings and waiting against a deadline."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from ._core import Operation, ParamValue, Session, api_path, check_node, sleep, task_failure_hint
from ._exceptions import (
    InvalidInputError,
    NotFoundError,
    PveError,
    PveTimeoutError,
    ServerError,
    TaskFailedError,
    TaskTimeoutError,
)
from ._retry import describe_failure
from ._tasks import TaskResult, TaskStatus, TaskSummary
from ._upid import Upid
from ._vm_ops import VmOps

logger = logging.getLogger("pvekit")

# PVE's default page size for task listings and logs.
LIST_PAGE_SIZE = 50
LOG_PAGE_SIZE = 500
LOG_TAIL_LINES = 10
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 2.0
POLL_GROWTH = 1.5
# A wait that lasts longer than this is logged at INFO once.
LONG_WAIT_SECONDS = 30.0
# PVE's 500 messages for a UPID it has no task for: a malformed or unknown UPID,
# or a task whose log file is gone.
_UNKNOWN_TASK = re.compile(r"unable to parse worker upid|no such task|No such file or directory")


def task_path(upid: str, *rest: str) -> str:
    """Return ``/nodes/{node}/tasks/{upid}/...``; the node inside the UPID is where the task runs."""
    node = Upid.parse(upid).node
    return api_path("nodes", node, "tasks", upid.strip(), *rest)


class TaskOps:
    """The task operations, as I/O-free generators."""

    def __init__(self, session: Session, vm_ops: VmOps) -> None:
        self._session = session
        self._vm_ops = vm_ops

    def status(self, upid: str, deadline: float | None = None) -> Operation[TaskStatus]:
        """Read a task's status; ``deadline`` (on the clock's monotonic scale) bounds the request and its retries."""
        try:
            data = yield from self._session.get(task_path(upid, "status"), deadline=deadline)
        except ServerError as exc:
            if not _UNKNOWN_TASK.search(exc.message):
                raise
            node = Upid.parse(upid).node
            raise NotFoundError(
                f"task {upid.strip()} not found on node {node!r}; check the UPID, "
                "or whether the node's task log was rotated",
                status_code=exc.status_code,
                method=exc.method,
                path=exc.path,
            ) from None
        return TaskStatus.from_api(data or {}, upid.strip())

    def log(self, upid: str, start: int = 0, limit: int | None = None) -> Operation[list[str]]:
        """Read log lines from line ``start`` (0-based); ``limit=None`` reads to the end, page by page."""
        if start < 0 or (limit is not None and limit < 0):
            raise InvalidInputError(f"log start {start!r} and limit {limit!r} must not be negative")
        lines: list[str] = []
        while limit is None or len(lines) < limit:
            page_size = LOG_PAGE_SIZE if limit is None else min(LOG_PAGE_SIZE, limit - len(lines))
            reply = yield from self._session.request(
                "GET", task_path(upid, "log"), {"start": start + len(lines), "limit": page_size}
            )
            rows = reply.data or []
            lines.extend(str(row.get("t", "")) for row in rows if isinstance(row, Mapping))
            if len(rows) < page_size or (reply.total is not None and start + len(lines) >= reply.total):
                break
        return lines

    def log_tail(self, upid: str, count: int = LOG_TAIL_LINES) -> Operation[list[str]]:
        """Return the last ``count`` log lines."""
        lines = yield from self.log(upid)
        return lines[-count:]

    def stop(self, upid: str) -> Operation[None]:
        """Stop a running task (``DELETE /nodes/{node}/tasks/{upid}``)."""
        yield from self._session.request("DELETE", task_path(upid))

    def node_tasks(
        self,
        node: str,
        *,
        vmid: int | None = None,
        source: str = "all",
        task_type: str | None = None,
        errors_only: bool = False,
        since: int | None = None,
        limit: int | None = None,
    ) -> Operation[list[TaskSummary]]:
        """List a node's tasks, newest first, page by page.

        ``source="all"`` includes running tasks; PVE's default lists finished ones only.
        ``limit=None`` reads every page.
        """
        check_node(node)
        _check_listing(source, limit)
        tasks: list[TaskSummary] = []
        while limit is None or len(tasks) < limit:
            page_size = LIST_PAGE_SIZE if limit is None else min(LIST_PAGE_SIZE, limit - len(tasks))
            params: dict[str, ParamValue] = {
                "start": len(tasks),
                "limit": page_size,
                "source": source,
                "vmid": vmid,
                "typefilter": task_type,
                "errors": True if errors_only else None,
                "since": since,
            }
            reply = yield from self._session.request("GET", api_path("nodes", node, "tasks"), params)
            rows = [row for row in reply.data or [] if isinstance(row, Mapping)]
            tasks.extend(TaskSummary.from_api(row) for row in rows)
            if len(rows) < page_size or (reply.total is not None and len(tasks) >= reply.total):
                break
        return tasks

    def find(
        self,
        node: str | None = None,
        *,
        vmid: int | None = None,
        source: str = "all",
        task_type: str | None = None,
        errors_only: bool = False,
        limit: int | None = None,
    ) -> Operation[list[TaskSummary]]:
        """List the tasks of a node, of a VM (on the node it is found on), or of the cluster.

        PVE's cluster list takes no filters, so there they are applied to its rows here.
        """
        _check_listing(source, limit)
        if node is None and vmid is None:
            tasks = yield from self.cluster_list()
            matching = [task for task in tasks if _matches(task, source, task_type, errors_only)]
            return matching if limit is None else matching[:limit]
        if node is None:
            assert vmid is not None
            node = yield from self._vm_ops.locate(vmid)
        tasks = yield from self.node_tasks(
            node, vmid=vmid, source=source, task_type=task_type, errors_only=errors_only, limit=limit
        )
        # PVE applies these filters itself. Checking the rows again costs nothing, and servers that
        # ignore a filter (fakepve does) still give the right rows.
        return [task for task in tasks if _matches(task, source, task_type, errors_only)]

    def cluster_list(self) -> Operation[list[TaskSummary]]:
        """List the cluster's recent tasks (``/cluster/tasks``), which takes no paging parameters."""
        rows = yield from self._session.get("/cluster/tasks")
        return [TaskSummary.from_api(row) for row in rows or [] if isinstance(row, Mapping)]

    def wait(self, upid: str, timeout_seconds: float) -> Operation[TaskResult]:
        """Poll until the task ends or the deadline passes.

        The poll interval starts at 0.2 s and grows to 2 s, and the last sleep
        ends at the deadline. OK and ``WARNINGS: N`` return a TaskResult;
        anything else raises TaskFailedError, and the deadline TaskTimeoutError.
        Once PVE has responded to this client, a status read that fails as in an
        outage (see ``Session.rides_out``) does not end the wait: polling goes on until
        the deadline, whose TaskTimeoutError then names the last failure.
        """
        if not timeout_seconds > 0:
            raise InvalidInputError(f"timeout {timeout_seconds!r} must be a positive number of seconds")
        clock = self._session.clock
        started = clock.monotonic()
        deadline = started + timeout_seconds
        interval = FIRST_POLL_SECONDS
        logged_long_wait = False
        last_status: str | None = None
        failure: str | None = None

        while True:
            try:
                status = yield from self.status(upid, deadline)
            except PveError as exc:
                if isinstance(exc, PveTimeoutError) and clock.monotonic() >= deadline:
                    # The read was cut short at the deadline: the wait timed out, not the connection. The
                    # status is unknown, and an earlier failed read, if any, is the likelier cause.
                    raise TaskTimeoutError(upid, timeout_seconds, None, last_failure=failure) from None
                if not self._session.rides_out(exc):
                    raise
                if failure is None:
                    logger.info("reading the status of task %s failed (%s); polling goes on until the deadline",
                                upid, exc)  # fmt: skip
                failure, last_status = describe_failure(exc), None
            else:
                if status.finished:
                    return (yield from self._finish(status))
                failure, last_status = None, status.status

            now = clock.monotonic()
            if now >= deadline:
                raise TaskTimeoutError(upid, timeout_seconds, last_status, last_failure=failure)
            if not logged_long_wait and now - started >= LONG_WAIT_SECONDS:
                logger.info("still waiting for task %s after %.0f s", upid, now - started)
                logged_long_wait = True
            yield from sleep(min(interval, deadline - now))
            interval = min(interval * POLL_GROWTH, MAX_POLL_SECONDS)

    def _finish(self, status: TaskStatus) -> Operation[TaskResult]:
        outcome = status.outcome
        assert outcome is not None
        if outcome.succeeded and outcome.warnings == 0:
            return TaskResult(status)
        lines = yield from self.log(status.upid)
        if outcome.succeeded:
            warning_lines = tuple(line for line in lines if "warn" in line.lower())
            return TaskResult(status, warning_lines)
        hint = task_failure_hint(outcome.text, Upid.parse(status.upid).vmid)
        raise TaskFailedError(status.upid, outcome.text, lines[-LOG_TAIL_LINES:], hint=hint)


TASK_SOURCES = ("all", "active", "archive")


def _check_listing(source: str, limit: int | None) -> None:
    if source not in TASK_SOURCES:
        raise InvalidInputError(f"task source {source!r} is invalid; use all, active or archive")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInputError(f"task limit {limit!r} is invalid; use a whole number of 1 or more, or None for all")


def _matches(task: TaskSummary, source: str, task_type: str | None, errors_only: bool) -> bool:
    """Tell whether a row of the cluster's task list passes the filters a node listing applies itself."""
    if source == "active" and not task.running:
        return False
    if source == "archive" and task.running:
        return False
    if task_type is not None and task.task_type != task_type:
        return False
    return not errors_only or task.failed
