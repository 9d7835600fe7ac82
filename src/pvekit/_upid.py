"""PVE task identifiers (UPIDs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ._exceptions import InvalidInputError

_FIELDS = "UPID:node:pid:pstart:starttime:type:id:user:"
_HEX = re.compile(r"[0-9A-Fa-f]+")
# The latest time that datetime can represent, 9999-12-31 23:59:59 UTC.
_MAX_STARTTIME = 253402300799


@dataclass(frozen=True, slots=True)
class Upid:
    """A parsed UPID, ``UPID:node:pid:pstart:starttime:type:id:user:``.

    ``pid``, ``pstart`` and ``starttime`` are hexadecimal in the text. The node is
    where the task runs, so its status and log are read from that node.

    Example:
        >>> upid = Upid.parse("UPID:pve1:00007323:001036A5:6419CAF8:qmstart:100:root@pam:")
        >>> upid.node, upid.pid, upid.task_type, upid.vmid
        ('pve1', 29475, 'qmstart', 100)
    """

    node: str
    pid: int
    pstart: int
    starttime: int
    task_type: str
    id: str
    user: str
    # Fields after the user that newer PVE releases may append, kept as text.
    extra: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Upid:
        """Parse a UPID.

        Raises:
            InvalidInputError: the text is not a UPID.
        """
        if not isinstance(text, str):
            raise InvalidInputError(f"invalid UPID: expected a string {_FIELDS}, got {type(text).__name__}")
        parts = text.strip().split(":")
        if len(parts) < 9 or parts[0] != "UPID" or parts[-1] != "":
            raise InvalidInputError(f"invalid UPID {text!r}: expected {_FIELDS}")
        node, pid, pstart, starttime, task_type, task_id, user, *extra = parts[1:-1]
        # int(field, 16) alone would accept signs, "0x", underscores and non-ASCII digits.
        if not all(_HEX.fullmatch(field) for field in (pid, pstart, starttime)):
            raise InvalidInputError(f"invalid UPID {text!r}: pid, pstart and starttime must be hexadecimal")
        numbers = [int(field, 16) for field in (pid, pstart, starttime)]
        if numbers[2] > _MAX_STARTTIME:
            raise InvalidInputError(f"invalid UPID {text!r}: starttime {starttime} is after the year 9999")
        if not node or not task_type or not user:
            raise InvalidInputError(f"invalid UPID {text!r}: node, type and user must not be empty")
        return cls(node, numbers[0], numbers[1], numbers[2], task_type, task_id, user, tuple(extra))

    def __str__(self) -> str:
        fields = [
            "UPID",
            self.node,
            f"{self.pid:08X}",
            f"{self.pstart:08X}",
            f"{self.starttime:08X}",
            self.task_type,
            self.id,
            self.user,
            *self.extra,
        ]
        return ":".join(fields) + ":"

    @property
    def started_at(self) -> datetime:
        """Start time of the task, UTC."""
        return datetime.fromtimestamp(self.starttime, tz=timezone.utc)

    @property
    def vmid(self) -> int | None:
        """The guest the task is about, when its id is a VMID."""
        return int(self.id) if self.id.isascii() and self.id.isdigit() else None

    @property
    def auth_id(self) -> str:
        """The user or API token that started the task, for example ``root@pam!ci``."""
        return self.user
