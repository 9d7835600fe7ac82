"""Task status and the classification of a finished task's exit status."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._upid import Upid
from ._values import freeze, to_int, to_str

_WARNINGS = re.compile(r"^WARNINGS: (\d+)$")


def vmid_from_task_id(task_id: str | None) -> int | None:
    """Return the VMID a task's ``id`` names, or None; the id is text and may be empty or not a number."""
    if not isinstance(task_id, str):
        return None
    text = task_id.strip()
    # isascii() too: isdigit() accepts digits such as "²" that int() rejects.
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _auth_id(user: str | None, tokenid: str | None) -> str | None:
    # PVE sends a token's owner in "user" and the token name in "tokenid";
    # the UPID writes both as user@realm!tokenid.
    if user and tokenid and "!" not in user:
        return f"{user}!{tokenid}"
    return user


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """The meaning of a finished task's ``exitstatus``.

    ``OK`` is success, ``WARNINGS: N`` is success with N warnings, and anything
    else, including PVE's ``unexpected status``, is a failure whose text is the
    error message.
    """

    text: str
    succeeded: bool
    warnings: int

    @classmethod
    def classify(cls, text: str) -> ExitStatus:
        """Classify an ``exitstatus`` text."""
        if text == "OK":
            return cls(text, True, 0)
        match = _WARNINGS.match(text)
        if match:
            return cls(text, True, int(match.group(1)))
        return cls(text, False, 0)


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """A task's status (``/nodes/{node}/tasks/{upid}/status``).

    A running task has no ``exitstatus``: ``finished`` is False and
    ``exitstatus`` and ``succeeded`` are None.
    """

    upid: str
    node: str
    status: str
    exitstatus: str | None
    task_type: str | None
    id: str | None
    # The user or API token that started the task, as in the UPID: root@pam!ci.
    auth_id: str | None
    starttime: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], upid: str) -> TaskStatus:
        """Build from the ``data`` of a task status response."""
        auth_id = _auth_id(to_str(data.get("user")), to_str(data.get("tokenid")))
        exitstatus = to_str(data.get("exitstatus"))
        status = to_str(data.get("status")) or "unknown"
        return cls(
            upid=to_str(data.get("upid")) or upid,
            node=to_str(data.get("node")) or Upid.parse(upid).node,
            status=status,
            exitstatus=exitstatus if status == "stopped" else None,
            task_type=to_str(data.get("type")),
            id=to_str(data.get("id")),
            auth_id=auth_id,
            starttime=to_int(data.get("starttime")),
            raw=freeze(data),
        )

    @property
    def vmid(self) -> int | None:
        """The guest the task is about, when its id is a VMID."""
        return vmid_from_task_id(self.id)

    @property
    def finished(self) -> bool:
        """True once the task has ended, successfully or not."""
        return self.status == "stopped"

    @property
    def outcome(self) -> ExitStatus | None:
        """The classified exit status, None while the task runs."""
        if not self.finished:
            return None
        return ExitStatus.classify(self.exitstatus or "unexpected status")

    @property
    def succeeded(self) -> bool | None:
        """True for OK and WARNINGS, False for any other exit status, None while running."""
        outcome = self.outcome
        return None if outcome is None else outcome.succeeded

    @property
    def warnings(self) -> int:
        """Number of warnings the task logged (from ``WARNINGS: N``), 0 otherwise."""
        outcome = self.outcome
        return 0 if outcome is None else outcome.warnings


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """One row of a task listing (``/nodes/{node}/tasks``).

    In listings PVE puts the exit status into ``status`` once a task ended; a
    running task has no ``status`` there, or ``running``.
    """

    upid: str
    node: str
    task_type: str | None
    id: str | None
    auth_id: str | None
    starttime: int | None
    endtime: int | None
    status: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, row: Mapping[str, Any]) -> TaskSummary:
        """Build from a listing row."""
        upid = to_str(row.get("upid")) or ""
        return cls(
            upid=upid,
            node=to_str(row.get("node")) or "",
            task_type=to_str(row.get("type")),
            id=to_str(row.get("id")),
            auth_id=_auth_id(to_str(row.get("user")), to_str(row.get("tokenid"))),
            starttime=to_int(row.get("starttime")),
            endtime=to_int(row.get("endtime")),
            status=to_str(row.get("status")),
            raw=freeze(row),
        )

    @property
    def vmid(self) -> int | None:
        """The guest the task is about, when its id is a VMID."""
        return vmid_from_task_id(self.id)

    @property
    def running(self) -> bool:
        """True while the task runs: no end time yet."""
        return self.endtime is None and self.status in (None, "running")

    @property
    def failed(self) -> bool:
        """True when the task ended with an exit status other than OK or ``WARNINGS: N``."""
        if self.running:
            return False
        return not ExitStatus.classify(self.status or "").succeeded


@dataclass(frozen=True, slots=True)
class TaskResult:
    """Result of a successful wait: the final status and any warning lines from the log."""

    status: TaskStatus
    warning_lines: tuple[str, ...] = ()

    @property
    def warnings(self) -> int:
        """Number of warnings PVE counted."""
        return self.status.warnings

    @property
    def upid(self) -> str:
        """The task's UPID."""
        return self.status.upid
