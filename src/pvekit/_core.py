"""The I/O-free core that Client and AsyncClient share.

Every operation is a generator that yields effects (send a request, sleep,
run several operations) and returns its result. The sync and async clients
only carry the effects out, so URL building, parameter encoding, parsing,
error mapping, retries, waiting and sampling are written once, here and in
the modules that build on it.
"""

from __future__ import annotations

import collections
import datetime
import email.utils
import json
import logging
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from ._clock import Clock
from ._exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    NodeUnreachableError,
    NoQuorumError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProxyError,
    PveError,
    RRDError,
    ServerError,
    TransportError,
    VmLockedError,
)
from ._retry import DEFAULT_RETRY, RetryPolicy, is_outage

logger = logging.getLogger("pvekit")

T = TypeVar("T")
Method = Literal["GET", "POST", "PUT", "DELETE"]
ParamValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Send:
    """Effect: send one API request. The runner returns a RawResponse or a TransportError for it."""

    method: Method
    path: str
    # Left out of repr: login parameters carry the password and the ticket.
    params: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # Seconds left before the caller's deadline, which caps the client's timeouts; None for no deadline.
    time_left: float | None = None


@dataclass(frozen=True, slots=True)
class Sleep:
    """Effect: sleep, through the client's clock."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Gather:
    """Effect: run operations, at most ``limit`` at once on AsyncClient, one by one on Client.

    The runner returns one entry per operation, in order: its result, or the
    PveError it raised.
    """

    operations: tuple[Operation[Any], ...]
    limit: int


@dataclass(frozen=True, slots=True)
class Exclusive:
    """Effect: run one operation while no other Exclusive operation of the same client runs.

    Ticket login and renewal use it, so requests that an AsyncClient runs at
    once, or threads sharing a Client, log in once rather than each on its
    own. The runner returns the operation's result or the PveError it raised.
    """

    operation: Operation[Any]


@dataclass(frozen=True, slots=True)
class RawResponse:
    """An HTTP response as the runner received it, stamped with the clocks at its arrival."""

    status_code: int
    reason: str
    body: bytes = field(repr=False)
    received_monotonic: float
    received_wall: float
    elapsed_seconds: float
    # The Date header: the server's clock when it sent the response, in whole seconds.
    date: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """The decoded ``data`` of a successful response, with PVE's ``total`` for paged listings."""

    data: Any
    total: int | None
    received_monotonic: float
    received_wall: float
    date: str | None = None

    def server_clock_offset(self) -> float | None:
        """Return how far the server's clock is ahead of this machine's, by the Date header; None without one.

        The header has whole seconds and is written before the response travels,
        so the true offset is never smaller, and at most one second plus the round trip larger.
        """
        if not self.date:
            return None
        try:
            sent = email.utils.parsedate_to_datetime(self.date)
            if sent.tzinfo is None:  # "-0000": RFC 5322's UTC of unknown origin; HTTP dates are UTC
                sent = sent.replace(tzinfo=datetime.timezone.utc)
            return sent.timestamp() - self.received_wall
        except (TypeError, ValueError, IndexError, OverflowError):
            return None


Effect = Send | Sleep | Gather | Exclusive
Operation = Generator[Effect, Any, T]

def api_path(*segments: str | int) -> str:
    """Join path segments below ``/api2/json``, percent-encoding each one.

    Node names are used exactly as PVE returned them: they are case-sensitive.
    UPIDs keep their ``:``, ``@`` and ``!``, which pveproxy expects literally.
    """
    return "/" + "/".join(quote(str(segment), safe=":@!=") for segment in segments)


def encode_params(params: Mapping[str, ParamValue] | None) -> tuple[tuple[str, str], ...]:
    """Encode parameters as PVE reads them: booleans as 1 and 0, None left out."""
    if not params:
        return ()
    encoded: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            encoded.append((name, "1" if value else "0"))
        else:
            encoded.append((name, str(value)))
    return tuple(encoded)


_PERMISSION = re.compile(r"Permission check failed \(([^,)]*), ([^)]*)\)")


def error_from_response(
    method: str, path: str, response: RawResponse, *, retries: int = 0, elapsed_seconds: float = 0.0
) -> ApiError:
    """Map an HTTP error response to the exception a caller can act on.

    The reason comes from the status line as sent: PVE's proxy uses codes such
    as 595 and 596 that no standard table lists. ``retries`` and
    ``elapsed_seconds`` describe the retries made before this response, for the advice.
    """
    body = _decode_body(response.body)
    message = ""
    errors: dict[str, str] = {}
    if isinstance(body, Mapping):
        message = str(body.get("message") or "").strip()
        raw_errors = body.get("errors")
        if isinstance(raw_errors, Mapping):
            errors = {str(name): str(problem).strip() for name, problem in raw_errors.items()}
    reason = response.reason.strip()
    message = message or reason or f"HTTP {response.status_code}"
    status = response.status_code
    common: dict[str, Any] = {"status_code": status, "reason": reason, "method": method, "path": path}

    if status == 400:
        hint = ""
        if "skiplock" in errors:
            hint = SKIPLOCK_HINT
        elif "'decade'" in errors.get("timeframe", ""):
            hint = "the decade timeframe needs PVE 9 or later on the node; use year on older releases"
        return BadRequestError(message, errors=errors, hint=hint, **common)
    if status == 401:
        hint = (
            "check the credentials: an API token (user@realm!tokenid=secret) must exist, be enabled and not "
            "be expired, with the secret PVE showed when it was created; a password login needs the right "
            "user, realm and password"
        )
        return AuthenticationError(message, hint=hint, **common)
    if status == 403:
        match = _PERMISSION.search(message)
        return PermissionDeniedError(
            message,
            acl_path=match.group(1) if match else None,
            privilege=match.group(2) if match else None,
            **common,
        )
    if status == 404:
        return NotFoundError(message, **common)
    retried = (
        f"PVE still responded with HTTP {status} after {retries} retries over {elapsed_seconds:.1f} s; "
        "it may be busy or restarting, so try again later"
        if retries
        else ""
    )
    if 595 <= status <= 599:
        node = _node_in_path(path)
        target = f"node {node!r}" if node else "the node that owns the resource"
        still = f", still after {retries} retries over {elapsed_seconds:.1f} s" if retries else ""
        hint = (
            f"the node pvekit connects to could not reach {target}{still}; check that it is online "
            "and in the cluster (pvecm status)"
        )
        if status in (595, 596):
            return NodeUnreachableError(message, hint=hint, **common)
        return ProxyError(message, hint=hint, **common)
    if status == 500 and message.startswith("RRD error:"):
        return RRDError(message, **common)
    locked = _LOCKED.search(message)
    if status == 500 and locked:
        lock = locked.group(1)
        vmid = _vmid_in_path(path)
        return VmLockedError(message, lock=lock, vmid=vmid, hint=lock_hint(lock, vmid), **common)
    if status == 500 and "no quorum" in message:
        hint = (
            "the cluster has lost quorum, so /etc/pve is read-only and writes fail until enough nodes "
            "are back; reads still work (check with pvecm status on a node)"
        )
        return NoQuorumError(message, hint=hint, **common)
    if status == 500 and _CONFIG_LOCK_TIMEOUT.search(message):
        return ServerError(message, hint=CONFIG_LOCK_HINT, **common)
    if status == 500 and message.startswith("hostname lookup"):
        return NotFoundError(f"{message}; check the node name, which is case-sensitive", **common)
    if status >= 500:
        return ServerError(message, hint=retried, **common)
    return ApiError(message, **common)


# qemu-server compares skiplock's caller with "root@pam" exactly, and a token's
# caller is "root@pam!tokenid", so every token is rejected.
SKIPLOCK_HINT = (
    "skiplock needs root@pam logged in with its password (user='root@pam', password=...; "
    "pvekit --user root@pam); PVE rejects it from every API token, root@pam's included"
)

# PVE's check_lock: "VM is locked (backup)", "CT is locked (snapshot)".
_LOCKED = re.compile(r"\b(?:VM|CT) is locked \(([^)]+)\)")
_CONFIG_LOCK_TIMEOUT = re.compile(r"can't lock file '[^']*' - got timeout")
CONFIG_LOCK_HINT = "another task holds the VM's configuration lock; try again when that task has ended"
_GUEST_PATH = re.compile(r"^/nodes/[^/]+/(?:qemu|lxc)/(\d+)(?:/|$)")
_NODE_PATH = re.compile(r"^/nodes/([^/]+)(?:/|$)")

# Causes of the locks whose advice leaves skiplock out, with the advice VmLockedError gives.
# Each of them belongs to a running task, which skipping the lock can break. A hibernated VM
# (suspended) is woken with start instead.
_LOCK_CAUSES = {
    "backup": "a backup of it is running; wait until the backup ends",
    "migrate": "it is being migrated; wait until the migration ends",
    "suspended": "it is hibernated; start it to resume it",
    "create": "it is still being created or restored; wait until that task ends",
    "clone": "it is being cloned; wait until the clone ends",
}


def task_failure_hint(exitstatus: str, vmid: int | None) -> str:
    """Return advice for a failed task's exit status when it names a lock, else an empty string.

    PVE checks some locks inside the task it started (a start's, for one), so
    they arrive as a task's exit status rather than as an error response.
    """
    locked = _LOCKED.search(exitstatus)
    if locked:
        return lock_hint(locked.group(1), vmid)
    if _CONFIG_LOCK_TIMEOUT.search(exitstatus):
        return CONFIG_LOCK_HINT
    return ""


def lock_hint(lock: str, vmid: int | None) -> str:
    """Explain why a VM has ``lock`` and what to do about it."""
    if lock in _LOCK_CAUSES:
        return _LOCK_CAUSES[lock]
    target = str(vmid) if vmid is not None else "VMID"
    cause = (
        f"a {lock} task holds it, or one was interrupted; if no such task runs any more, "
        f"an administrator can clear the lock with qm unlock {target} on the node"
    )
    return (
        f"{cause}. Or act anyway with skiplock, which PVE accepts only from root@pam logged in with its "
        "password, never from an API token (reboot takes no skiplock)"
    )


def _node_in_path(path: str) -> str | None:
    match = _NODE_PATH.match(path)
    return match.group(1) if match else None


def _vmid_in_path(path: str) -> int | None:
    match = _GUEST_PATH.match(path)
    return int(match.group(1)) if match else None


def _decode_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def decode_reply(method: str, path: str, response: RawResponse) -> Reply:
    """Decode a 2xx answer's ``{"data": ...}`` envelope."""
    body = _decode_body(response.body)
    if not isinstance(body, Mapping):
        raise ServerError(
            "the response is not PVE's JSON envelope; check that the host and port point at pveproxy",
            status_code=response.status_code,
            reason=response.reason,
            method=method,
            path=path,
        )
    total = body.get("total")
    return Reply(
        data=body.get("data"),
        total=total if isinstance(total, int) else None,
        received_monotonic=response.received_monotonic,
        received_wall=response.received_wall,
        date=response.date,
    )


# The minimum timeout of a request whose deadline is near or past, so that a last
# status read can still succeed. A wait may overrun its deadline by this much.
MIN_REQUEST_SECONDS = 0.5


def request(
    method: Method,
    path: str,
    params: Mapping[str, ParamValue] | None = None,
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
    clock: Clock | None = None,
    deadline: float | None = None,
) -> Operation[Reply]:
    """Send one request under ``retry`` and decode its response.

    ``deadline`` is a time on ``clock.monotonic()``: each attempt's timeouts
    are cut to the time left, and no retry starts after it. A write whose
    response was lost raises OutcomeUnknownError and is never sent again.
    """
    encoded = encode_params(params)
    started = clock.monotonic() if clock is not None else 0.0
    attempt = 0
    while True:
        now = clock.monotonic() if clock is not None else 0.0
        time_left = None if deadline is None else max(deadline - now, MIN_REQUEST_SECONDS)
        outcome: RawResponse | TransportError = yield Send(method, path, encoded, time_left)
        if isinstance(outcome, RawResponse) and outcome.status_code < 400:
            logger.debug("%s %s -> %d in %.3f s", method, path, outcome.status_code, outcome.elapsed_seconds)
            return decode_reply(method, path, outcome)

        now = clock.monotonic() if clock is not None else 0.0
        signal = outcome if isinstance(outcome, TransportError) else outcome.status_code
        if retry.should_retry(method, attempt, signal, now - started):
            pause = retry.pause_seconds(attempt)
            within_budget = now + pause - started <= retry.budget_seconds
            if within_budget and (deadline is None or now + pause < deadline):
                logger.info(
                    "%s %s failed (%s); retry %d in %.2f s", method, path, _brief(outcome), attempt + 1, pause
                )
                yield Sleep(pause)
                attempt += 1
                continue

        if isinstance(outcome, TransportError):
            logger.debug("%s %s failed: %s", method, path, outcome)
            if method != "GET" and outcome.request_sent:
                raise _outcome_unknown(outcome) from outcome
            raise outcome
        logger.debug("%s %s -> %d in %.3f s", method, path, outcome.status_code, outcome.elapsed_seconds)
        raise error_from_response(method, path, outcome, retries=attempt, elapsed_seconds=now - started)


def _outcome_unknown(failure: TransportError) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"{failure.method} {failure.url}: the request was sent but its response was lost ({type(failure).__name__}), "
        "so PVE may or may not have carried it out; pvekit does not send it again. Check the recent tasks "
        "of the node or VM (tasks.list, pvekit task list) before sending it again",
        method=failure.method,
        url=failure.url,
    )


def _brief(outcome: RawResponse | TransportError) -> str:
    if isinstance(outcome, TransportError):
        return type(outcome).__name__
    return f"HTTP {outcome.status_code} {outcome.reason}"


def gather(operations: Sequence[Operation[Any]], limit: int) -> Operation[list[Any]]:
    """Run operations with bounded concurrency; each entry is a result or the PveError raised."""
    results: list[Any] = yield Gather(tuple(operations), limit)
    return results


def sleep(seconds: float) -> Operation[None]:
    """Sleep through the client's clock."""
    yield Sleep(seconds)


def exclusive(operation: Operation[T]) -> Operation[T]:
    """Run an operation alone among the client's Exclusive operations; re-raise what it raised."""
    outcome = yield Exclusive(operation)
    if isinstance(outcome, PveError):
        raise outcome
    result: T = outcome
    return result


VMID_MIN = 100
VMID_MAX = 999_999_999


def check_vmid(vmid: int) -> int:
    """Return the VMID, or raise InvalidInputError when it is outside PVE's 100 to 999999999."""
    if isinstance(vmid, bool) or not isinstance(vmid, int):
        try:
            vmid = int(str(vmid))
        except ValueError:
            raise InvalidInputError(
                f"VMID {vmid!r} is not a number; use an integer from 100 to 999999999"
            ) from None
    if not VMID_MIN <= vmid <= VMID_MAX:
        raise InvalidInputError(f"VMID {vmid} is outside PVE's range; use an integer from 100 to 999999999")
    return vmid


def check_node(node: str) -> str:
    """Return the node name, or raise InvalidInputError for an empty one."""
    if not node or not isinstance(node, str) or "/" in node:
        raise InvalidInputError(f"node name {node!r} is invalid; use the name PVE lists under /nodes")
    return node


# How many UPIDs of started tasks a session keeps: enough for a bulk action on a large cluster.
STARTED_UPIDS_KEPT = 4096


class Session:
    """State shared by the operations of one client: clock, retry policy, identity and caches."""

    def __init__(self, *, clock: Clock, retry: RetryPolicy, auth_id: str | None, concurrency: int) -> None:
        self.clock = clock
        self.retry = retry
        self.auth_id = auth_id
        self.concurrency = concurrency
        # VMID -> node, filled from every cluster listing read and dropped when PVE
        # reports that the VM is not on that node any more (it migrated).
        self.node_of: dict[int, str] = {}
        # VMIDs of LXC containers, from the same listings.
        self.containers: set[int] = set()
        # UPIDs of the tasks this client's power actions started, newest last. A lookup after a lost
        # response skips them, because the lost request cannot have started a task seen before it.
        self.started_upids: collections.deque[str] = collections.deque(maxlen=STARTED_UPIDS_KEPT)
        # True once PVE has sent this client any HTTP response, so a later connection failure
        # is an outage rather than a wrong host or port.
        self.responded = False

    def request(
        self,
        method: Method,
        path: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        deadline: float | None = None,
    ) -> Operation[Reply]:
        """Send a request under the retry policy; ``deadline`` is a time on the clock's monotonic scale."""
        try:
            reply = yield from request(method, path, params, retry=self.retry, clock=self.clock, deadline=deadline)
        except ApiError:
            self.responded = True
            raise
        self.responded = True
        return reply

    def rides_out(self, error: PveError) -> bool:
        """Tell whether a wait goes on after this failed read: an outage (``is_outage``) after PVE has responded."""
        return self.responded and is_outage(error)

    def get(
        self, path: str, params: Mapping[str, ParamValue] | None = None, *, deadline: float | None = None
    ) -> Operation[Any]:
        """Send a GET and return the answer's ``data``."""
        reply = yield from self.request("GET", path, params, deadline=deadline)
        return reply.data
