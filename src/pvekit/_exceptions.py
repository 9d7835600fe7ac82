"""The exceptions pvekit raises, all below one root.

PveError
├── InvalidInputError          bad local input, raised before any request (also a ValueError)
│   └── InvalidTokenError      a malformed API token
├── TransportError             no usable HTTP response
│   ├── PveConnectionError     connection refused, reset or DNS failure
│   ├── PveTimeoutError        connect or read timeout
│   ├── OutcomeUnknownError    a write was sent but its response was lost
│   └── TLSError               certificate verification failed
│       └── CertificateFingerprintMismatch
├── ApiError                   PVE answered with an HTTP error status
│   ├── BadRequestError        400, with PVE's per-parameter ``errors``
│   ├── AuthenticationError    401
│   │   └── TwoFactorRequiredError   the login needs a second factor that was not given
│   ├── PermissionDeniedError  403
│   ├── NotFoundError          404, or a VM or node that does not exist
│   │   └── VmNotFoundError
│   ├── ServerError            500 and other 5xx
│   │   ├── RRDError           500 whose message starts with "RRD error:"
│   │   ├── VmLockedError      the VM is locked (backup, migrate, snapshot, ...)
│   │   ├── NoQuorumError      the cluster lost quorum, so writes fail
│   │   └── GuestAgentError    the QEMU guest agent cannot answer
│   │       ├── AgentNotEnabledError
│   │       ├── AgentNotRunningError
│   │       └── VmNotRunningError
│   └── ProxyError             pveproxy could not reach another node (595 to 599)
│       └── NodeUnreachableError   595 and 596
├── TaskFailedError            a task ended with an exit status other than OK or WARNINGS
└── TaskTimeoutError           a wait ran past its deadline
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class PveError(Exception):
    """Root of every exception pvekit raises."""


class InvalidInputError(PveError, ValueError):
    """A value given to pvekit is invalid; raised before any request is sent."""


class InvalidTokenError(InvalidInputError):
    """An API token string is malformed. The message never contains the secret."""


class TransportError(PveError):
    """The request got no usable HTTP response.

    Attributes:
        method: the HTTP method of the request.
        url: the request's URL, without its query.
        request_sent: False when the failure came before any byte of the
            request left (connection refused, DNS failure, TLS handshake), so
            PVE cannot have seen it; True when it may have reached PVE.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", request_sent: bool = True) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.request_sent = request_sent


class PveConnectionError(TransportError):
    """The connection to PVE failed: refused, reset, or the host name did not resolve."""


class PveTimeoutError(TransportError):
    """Connecting to PVE or reading its response took longer than the configured timeout."""


class OutcomeUnknownError(TransportError):
    """A write (a power action, a login) was sent, but its response was lost.

    PVE may or may not have carried it out, so pvekit does not send it again.
    For a power action pvekit first looks for the task it may have started,
    and raises this only when it finds none. Check the VM's recent tasks
    (``tasks.list(vmid=...)``, ``pvekit task list --vmid VMID``) before sending it again.

    Attributes:
        vmid: the VM the action was for, when it was one.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", vmid: int | None = None) -> None:
        super().__init__(message, method=method, url=url, request_sent=True)
        self.vmid = vmid


class TLSError(TransportError):
    """The server's certificate failed verification."""


class CertificateFingerprintMismatch(TLSError):
    """The server presented a certificate whose SHA-256 fingerprint is not one of the pinned ones."""

    def __init__(self, message: str, *, expected: Sequence[str], presented: str, url: str = "") -> None:
        # The check runs in the TLS handshake, before any byte of the request.
        super().__init__(message, url=url, request_sent=False)
        self.expected = tuple(expected)
        self.presented = presented


class ApiError(PveError):
    """An HTTP error status from PVE.

    Attributes:
        status_code: the HTTP status, including PVE's non-standard 595 to 599.
        reason: the reason phrase from the status line, as PVE or its proxy sent it.
        message: PVE's message, from the body when there is one, else the reason.
        method: the HTTP method of the request.
        path: the API path of the request, below ``/api2/json``.
        errors: PVE's per-parameter messages (400 responses), else an empty mapping.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        reason: str = "",
        method: str = "",
        path: str = "",
        errors: Mapping[str, str] | None = None,
        hint: str = "",
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.message = message
        self.method = method
        self.path = path
        self.errors: Mapping[str, str] = dict(errors or {})
        # What to do next, appended to str() only, so that ``message`` stays PVE's.
        self.hint = hint
        super().__init__(self._describe() + (f"; {hint}" if hint else ""))

    def _describe(self) -> str:
        # Errors that pvekit concludes itself, such as a VMID missing from the
        # cluster listing, have no request path and no HTTP status of their own.
        text = f"{self.method} {self.path}: HTTP {self.status_code}: {self.message}" if self.path else self.message
        if self.errors:
            details = "; ".join(f"{name}: {problem}" for name, problem in sorted(self.errors.items()))
            text += f" ({details})"
        return text


class BadRequestError(ApiError):
    """PVE rejected the parameters (HTTP 400); ``errors`` maps each parameter to PVE's message."""


class AuthenticationError(ApiError):
    """PVE rejected the credentials (HTTP 401): wrong or expired token, ticket or password."""


class TwoFactorRequiredError(AuthenticationError):
    """The user has two-factor authentication on, and the login got no code for the second factor.

    PVE responds to the password step with HTTP 200 and ``NeedTFA``; the login is not complete, so
    ``status_code`` is 401, as for any rejected login. The error carries no secret.

    Attributes:
        userid: the user whose login needs the second factor, ``user@realm``.
        factors: the second-factor types PVE offered (``totp``, ``recovery``, ...), when its
            challenge names them; otherwise empty.
    """

    def __init__(
        self, message: str, *, userid: str, factors: Sequence[str] = (), method: str = "", path: str = ""
    ) -> None:
        self.userid = userid
        self.factors = tuple(factors)
        super().__init__(message, status_code=401, reason="second factor required", method=method, path=path)

    def _describe(self) -> str:
        return self.message


class PermissionDeniedError(ApiError):
    """The credentials are valid but lack a privilege (HTTP 403).

    PVE names the ACL path and privilege it checked, for example
    ``Permission check failed (/vms/100, VM.PowerMgmt)``; they are in ``acl_path``
    and ``privilege`` when the message has that form.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        reason: str = "",
        method: str = "",
        path: str = "",
        errors: Mapping[str, str] | None = None,
        acl_path: str | None = None,
        privilege: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, reason=reason, method=method, path=path, errors=errors)
        self.acl_path = acl_path
        self.privilege = privilege


class NotFoundError(ApiError):
    """The requested object does not exist (HTTP 404, or PVE's 500 for a missing VM config)."""


class VmNotFoundError(NotFoundError):
    """No VM with this VMID exists in the cluster, or not on the node that was named."""

    def __init__(
        self,
        message: str,
        *,
        vmid: int,
        node: str | None = None,
        status_code: int = 404,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message, status_code=status_code, method=method, path=path)
        self.vmid = vmid
        self.node = node


class ServerError(ApiError):
    """PVE failed to carry out the request (HTTP 500 and other 5xx); ``message`` is PVE's."""


class RRDError(ServerError):
    """PVE could not read the RRD series (HTTP 500 whose message starts with ``RRD error:``)."""


class VmLockedError(ServerError):
    """PVE rejected an action because the VM is locked (HTTP 500 ``VM is locked (backup)``).

    Attributes:
        lock: PVE's lock name: backup, migrate, snapshot, snapshot-delete,
            rollback, clone, create, disk, suspended and others.
        vmid: the VM, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        lock: str,
        vmid: int | None = None,
        status_code: int = 500,
        reason: str = "",
        method: str = "",
        path: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(message, status_code=status_code, reason=reason, method=method, path=path, hint=hint)
        self.lock = lock
        self.vmid = vmid


class NoQuorumError(ServerError):
    """The cluster has lost quorum, so ``/etc/pve`` is read-only: reads work, writes and VM actions fail."""


class GuestAgentError(ServerError):
    """The QEMU guest agent of a VM cannot respond."""

    def __init__(
        self, message: str, *, vmid: int, node: str, status_code: int = 500, method: str = "", path: str = ""
    ) -> None:
        super().__init__(message, status_code=status_code, method=method, path=path)
        self.vmid = vmid
        self.node = node


class AgentNotEnabledError(GuestAgentError):
    """The VM's configuration does not enable the guest agent (``agent: 1`` is missing)."""


class AgentNotRunningError(GuestAgentError):
    """The agent is enabled but does not respond: not installed, not started yet, or hung."""


class VmNotRunningError(GuestAgentError):
    """The VM is not running, so nothing inside it can respond."""


class ProxyError(ApiError):
    """pveproxy could not complete a request it forwarded to another node (HTTP 595 to 599)."""


class NodeUnreachableError(ProxyError):
    """The node that owns the resource is down or unreachable from the node pvekit talks to (595, 596)."""


class TaskFailedError(PveError):
    """A PVE task ended with an exit status other than ``OK`` or ``WARNINGS: N``.

    Attributes:
        upid: the task's UPID.
        exitstatus: PVE's exit status text, for example ``VM 100 already running``.
        log_tail: the last lines of the task log.
        hint: what to do next, when the exit status names a known cause such as a lock; else "".
    """

    def __init__(self, upid: str, exitstatus: str, log_tail: Sequence[str], *, hint: str = "") -> None:
        self.upid = upid
        self.exitstatus = exitstatus
        self.log_tail = tuple(log_tail)
        self.hint = hint
        text = f"task {upid} failed: {exitstatus}"
        if hint:
            text += f"; {hint}"
        if self.log_tail:
            text += "\nlast log lines:\n  " + "\n  ".join(self.log_tail)
        super().__init__(text)


class TaskTimeoutError(PveError):
    """A wait's deadline passed before the task was seen to end. The task itself goes on.

    Attributes:
        last_status: the task's status at the last read, or None when that
            read failed or was cut short at the deadline, so it is unknown.
        last_failure: why the last read failed, when it did.
    """

    def __init__(
        self, upid: str, timeout_seconds: float, last_status: str | None, *, last_failure: str | None = None
    ) -> None:
        if last_status is None and last_failure is None:
            last_failure = "the last read timed out at the deadline"
        self.upid = upid
        self.timeout_seconds = timeout_seconds
        self.last_status = last_status
        self.last_failure = last_failure
        if last_status is None:
            text = (
                f"the status of task {upid} could not be read within {timeout_seconds:g} s "
                f"({last_failure}). The task goes on in PVE: "
                "read it with tasks.status or pvekit task status, or wait again"
            )
        else:
            text = (
                f"task {upid} still {last_status} after {timeout_seconds:g} s; "
                "wait again with a longer timeout, or stop the task"
            )
        super().__init__(text)


class AddressWaitTimeoutError(PveError, TimeoutError):
    """No usable address appeared before the wait's deadline."""

    def __init__(self, vmid: int, timeout_seconds: float, last_problem: str) -> None:
        self.vmid = vmid
        self.timeout_seconds = timeout_seconds
        self.last_problem = last_problem
        super().__init__(
            f"VM {vmid} had no usable IP address after {timeout_seconds:g} s ({last_problem}); "
            "check that the guest agent runs in the VM and its network is up, or wait longer"
        )
