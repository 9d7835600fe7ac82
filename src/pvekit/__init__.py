"""pvekit: a Proxmox VE client for managing and monitoring virtual machines.

Example:
    >>> import pvekit
    >>> with pvekit.Client("pve1.example.com", token="automation@pve!ci=...") as pve:
    ...     print([vm.name for vm in pve.vms.list()])
"""

from ._async_client import AsyncClient, AsyncCluster, AsyncTask, AsyncTasks, AsyncVms
from ._auth import ApiToken
from ._client import Client, Cluster, Task, Tasks, Vms
from ._clock import Clock
from ._exceptions import (
    AgentNotEnabledError,
    AgentNotRunningError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    CertificateFingerprintMismatch,
    GuestAgentError,
    InvalidInputError,
    InvalidTokenError,
    NodeUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    ProxyError,
    PveConnectionError,
    PveError,
    PveTimeoutError,
    RRDError,
    ServerError,
    TaskFailedError,
    TaskTimeoutError,
    TLSError,
    TransportError,
    VmNotFoundError,
    VmNotRunningError,
)
from ._models import CpuUsage, Disk, Guest, NetDevice, NicCounters, PowerState, VmConfig, VmStatus
from ._tasks import ExitStatus, TaskResult, TaskStatus, TaskSummary
from ._upid import Upid
from ._vm_ops import GuestListing, NodeFailure

__version__ = "0.1.0"

__all__ = [
    "AgentNotEnabledError",
    "AgentNotRunningError",
    "ApiError",
    "ApiToken",
    "AsyncClient",
    "AsyncCluster",
    "AsyncTask",
    "AsyncTasks",
    "AsyncVms",
    "AuthenticationError",
    "BadRequestError",
    "CertificateFingerprintMismatch",
    "Client",
    "Clock",
    "Cluster",
    "CpuUsage",
    "Disk",
    "ExitStatus",
    "Guest",
    "GuestAgentError",
    "GuestListing",
    "InvalidInputError",
    "InvalidTokenError",
    "NetDevice",
    "NicCounters",
    "NodeFailure",
    "NodeUnreachableError",
    "NotFoundError",
    "PermissionDeniedError",
    "PowerState",
    "ProxyError",
    "PveConnectionError",
    "PveError",
    "PveTimeoutError",
    "RRDError",
    "ServerError",
    "Task",
    "TaskFailedError",
    "TaskResult",
    "TaskStatus",
    "TaskSummary",
    "TaskTimeoutError",
    "Tasks",
    "TLSError",
    "TransportError",
    "Upid",
    "VmConfig",
    "VmNotFoundError",
    "VmNotRunningError",
    "VmStatus",
    "Vms",
    "__version__",
]
