"""pvekit: a Proxmox VE client for managing and monitoring virtual machines.

Example:
    >>> import pvekit
    >>> with pvekit.Client("pve1.example.com", token="automation@pve!ci=...") as pve:
    ...     print([vm.name for vm in pve.vms.list()])
"""

from ._agent import AgentInterface, GuestNetwork, IpAddress
from ._async_client import (
    AsyncAgent,
    AsyncClient,
    AsyncCluster,
    AsyncClusterSampler,
    AsyncMetrics,
    AsyncRrd,
    AsyncTask,
    AsyncTasks,
    AsyncVms,
)
from ._auth import ApiToken
from ._client import Agent, Client, Cluster, ClusterSampler, Metrics, Rrd, Task, Tasks, Vms
from ._clock import Clock
from ._exceptions import (
    AddressWaitTimeoutError,
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
from ._format import format_bytes, format_bytes_per_sec
from ._metrics import (
    ClusterRates,
    ClusterSnapshot,
    Counters,
    MetricsSnapshot,
    Rates,
    RateTracker,
    compute_rates,
)
from ._models import CpuUsage, Disk, Guest, NetDevice, NicCounters, PowerState, VmConfig, VmStatus
from ._rrd import CONSOLIDATION_FUNCTIONS, TIMEFRAMES, CurrentRates, RrdPoint, mean
from ._tasks import ExitStatus, TaskResult, TaskStatus, TaskSummary
from ._upid import Upid
from ._vm_ops import GuestListing, NodeFailure

__version__ = "0.1.0"

__all__ = [
    "AddressWaitTimeoutError",
    "Agent",
    "AgentInterface",
    "AgentNotEnabledError",
    "AgentNotRunningError",
    "ApiError",
    "ApiToken",
    "AsyncAgent",
    "AsyncClient",
    "AsyncCluster",
    "AsyncClusterSampler",
    "AsyncMetrics",
    "AsyncRrd",
    "AsyncTask",
    "AsyncTasks",
    "AsyncVms",
    "AuthenticationError",
    "BadRequestError",
    "CONSOLIDATION_FUNCTIONS",
    "CertificateFingerprintMismatch",
    "Client",
    "Clock",
    "Cluster",
    "ClusterRates",
    "ClusterSampler",
    "ClusterSnapshot",
    "Counters",
    "CpuUsage",
    "CurrentRates",
    "Disk",
    "ExitStatus",
    "Guest",
    "GuestAgentError",
    "GuestListing",
    "GuestNetwork",
    "InvalidInputError",
    "InvalidTokenError",
    "IpAddress",
    "Metrics",
    "MetricsSnapshot",
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
    "RateTracker",
    "Rates",
    "Rrd",
    "RrdPoint",
    "ServerError",
    "TIMEFRAMES",
    "TLSError",
    "Task",
    "TaskFailedError",
    "TaskResult",
    "TaskStatus",
    "TaskSummary",
    "TaskTimeoutError",
    "Tasks",
    "TransportError",
    "Upid",
    "VmConfig",
    "VmNotFoundError",
    "VmNotRunningError",
    "VmStatus",
    "Vms",
    "compute_rates",
    "format_bytes",
    "format_bytes_per_sec",
    "mean",
    "__version__",
]
