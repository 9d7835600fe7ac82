"""pvekit: a Proxmox VE client for managing and monitoring virtual machines.

Example:
    >>> import pvekit
    >>> with pvekit.Client("pve1.example.com", token="automation@pve!ci=...") as pve:
    ...     print([vm.name for vm in pve.vms.list()])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from ._certificate import CertificateInfo, fetch_certificate
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
        NoQuorumError,
        NotFoundError,
        OutcomeUnknownError,
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
        TwoFactorRequiredError,
        VmLockedError,
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
    from ._models import CpuUsage, Disk, Guest, NetDevice, NicCounters, PowerState, VmConfig, VmStatus, parse_guest_id
    from ._retry import RetryPolicy
    from ._rrd import CONSOLIDATION_FUNCTIONS, TIMEFRAMES, CurrentRates, RrdPoint, mean
    from ._tasks import ExitStatus, TaskResult, TaskStatus, TaskSummary, vmid_from_task_id
    from ._upid import Upid
    from ._vm_ops import GuestListing, NodeFailure

__version__ = "0.1.0"

# Public name -> private module. Names are imported on first use, so that
# `import pvekit` (and the CLI's start) does not pay for asyncio, ipaddress and
# every model module up front.
_EXPORTS = {
    "AddressWaitTimeoutError": "_exceptions",
    "Agent": "_client",
    "AgentInterface": "_agent",
    "AgentNotEnabledError": "_exceptions",
    "AgentNotRunningError": "_exceptions",
    "ApiError": "_exceptions",
    "ApiToken": "_auth",
    "AsyncAgent": "_async_client",
    "AsyncClient": "_async_client",
    "AsyncCluster": "_async_client",
    "AsyncClusterSampler": "_async_client",
    "AsyncMetrics": "_async_client",
    "AsyncRrd": "_async_client",
    "AsyncTask": "_async_client",
    "AsyncTasks": "_async_client",
    "AsyncVms": "_async_client",
    "AuthenticationError": "_exceptions",
    "BadRequestError": "_exceptions",
    "CONSOLIDATION_FUNCTIONS": "_rrd",
    "CertificateFingerprintMismatch": "_exceptions",
    "CertificateInfo": "_certificate",
    "Client": "_client",
    "Clock": "_clock",
    "Cluster": "_client",
    "ClusterRates": "_metrics",
    "ClusterSampler": "_client",
    "ClusterSnapshot": "_metrics",
    "Counters": "_metrics",
    "CpuUsage": "_models",
    "CurrentRates": "_rrd",
    "Disk": "_models",
    "ExitStatus": "_tasks",
    "Guest": "_models",
    "GuestAgentError": "_exceptions",
    "GuestListing": "_vm_ops",
    "GuestNetwork": "_agent",
    "InvalidInputError": "_exceptions",
    "InvalidTokenError": "_exceptions",
    "IpAddress": "_agent",
    "Metrics": "_client",
    "MetricsSnapshot": "_metrics",
    "NetDevice": "_models",
    "NicCounters": "_models",
    "NodeFailure": "_vm_ops",
    "NodeUnreachableError": "_exceptions",
    "NoQuorumError": "_exceptions",
    "OutcomeUnknownError": "_exceptions",
    "RetryPolicy": "_retry",
    "VmLockedError": "_exceptions",
    "NotFoundError": "_exceptions",
    "PermissionDeniedError": "_exceptions",
    "PowerState": "_models",
    "ProxyError": "_exceptions",
    "PveConnectionError": "_exceptions",
    "PveError": "_exceptions",
    "PveTimeoutError": "_exceptions",
    "RRDError": "_exceptions",
    "RateTracker": "_metrics",
    "Rates": "_metrics",
    "Rrd": "_client",
    "RrdPoint": "_rrd",
    "ServerError": "_exceptions",
    "TIMEFRAMES": "_rrd",
    "TLSError": "_exceptions",
    "Task": "_client",
    "TaskFailedError": "_exceptions",
    "TaskResult": "_tasks",
    "TaskStatus": "_tasks",
    "TaskSummary": "_tasks",
    "TaskTimeoutError": "_exceptions",
    "Tasks": "_client",
    "TransportError": "_exceptions",
    "TwoFactorRequiredError": "_exceptions",
    "Upid": "_upid",
    "VmConfig": "_models",
    "VmNotFoundError": "_exceptions",
    "VmNotRunningError": "_exceptions",
    "VmStatus": "_models",
    "Vms": "_client",
    "compute_rates": "_metrics",
    "fetch_certificate": "_certificate",
    "format_bytes": "_format",
    "format_bytes_per_sec": "_format",
    "mean": "_rrd",
    "parse_guest_id": "_models",
    "vmid_from_task_id": "_tasks",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pvekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pvekit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
    "CertificateInfo",
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
    "NoQuorumError",
    "OutcomeUnknownError",
    "RetryPolicy",
    "VmLockedError",
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
    "TwoFactorRequiredError",
    "Upid",
    "VmConfig",
    "VmNotFoundError",
    "VmNotRunningError",
    "VmStatus",
    "Vms",
    "compute_rates",
    "fetch_certificate",
    "format_bytes",
    "format_bytes_per_sec",
    "mean",
    "parse_guest_id",
    "vmid_from_task_id",
    "__version__",
]
