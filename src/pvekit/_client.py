"""The blocking client: carries out the core's effects with httpx.Client."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._agent import AddressFamily, GuestNetwork, IpAddress
from ._auth import ApiToken
from ._base_client import (
    DEFAULT_CONCURRENCY,
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_READ_TIMEOUT_SECONDS,
    BaseClient,
)
from ._clock import Clock
from ._core import Effect, Exclusive, Operation, RawResponse, Send, Sleep
from ._exceptions import PveError, TransportError
from ._metrics import ClusterRates, ClusterSnapshot, MetricsSnapshot, Rates, RateTracker
from ._models import Guest, VmConfig, VmStatus
from ._monitor_ops import check_interval
from ._retry import DEFAULT_RETRY, RetryPolicy
from ._rrd import CurrentRates, RrdPoint
from ._tasks import TaskResult, TaskStatus, TaskSummary
from ._ticket import OtpCallback
from ._upid import Upid
from ._vm_ops import GuestListing

T = TypeVar("T")

DEFAULT_WAIT_SECONDS = 300.0


class Client(BaseClient):
    """A blocking PVE client over one keep-alive connection pool.

    Use it as a context manager, or call ``close()``. Every request has connect
    and read timeouts, and at most ``concurrency`` requests are in flight at
    once, whoever sends them.

    Retry policy (``RetryPolicy.should_retry``): a GET is sent again, by
    default at most 3 times within 30 s, with a backoff of 0.25 s doubling to
    4 s and random jitter, after a connection failure (refused, reset, or
    closed by the server while idle) and after HTTP 502, 503, 595 and 596.
    A write (power actions above all) is sent again only when its connection
    failed before any byte of the request left. When its response is lost, a
    power action looks for the task it may have started and returns it. When
    there is none, it raises OutcomeUnknownError rather than sending again.

    Give either ``token`` or ``user`` and ``password``. A password login gets a
    ticket, renews it after an hour (PVE's tickets live two hours), and logs in
    again once when PVE responds with 401.

    Args:
        host: ``pve1``, ``pve1:8006``, ``https://pve1:8006``, an IPv4 address or
            ``[2001:db8::10]:8006``. The port defaults to 8006.
        token: ``user@realm!tokenid=secret``, or an ApiToken built from parts.
        user: ``name@realm`` for a password login; without ``@realm`` the realm is pam.
        password: the user's password.
        otp: the current TOTP code, for a user with two-factor login. It serves
            one login only; a later one (after a 401) needs ``otp_callback``.
        otp_callback: called without arguments whenever a login needs a second
            factor; returns the current code.
        verify: verify the server's certificate (default). False logs a warning.
        ca_file: PEM file of the CA to trust instead of the system's, for
            example the cluster's ``/etc/pve/pve-root-ca.pem``.
        fingerprint: the SHA-256 fingerprint of the node's certificate as PVE
            shows it under Node > System > Certificates (``AB:CD:...``, colons and case
            optional), or several for rotation. It replaces CA and host name
            checks and is checked before any request byte is sent.
        connect_timeout: seconds to wait for a connection.
        read_timeout: seconds to wait for each response.
        retry: the RetryPolicy; None (or ``RetryPolicy.off()``) never retries.
        concurrency: requests in flight at once to the cluster, from all
            threads sharing this client. The default, 4, suits pveproxy's 3
            worker processes. Fan-outs run one request after another on Client.
        clock: the time source; tests pass their own.

    Raises:
        InvalidTokenError: the token is malformed (before any request).
        InvalidInputError: another setting is invalid, or the credentials are
            missing or given twice.

    Example:
        >>> with Client("pve1.example.com", token="automation@pve!ci=...") as pve:
        ...     for vm in pve.vms.list():
        ...         print(vm.vmid, vm.name, vm.power_state.value)
        >>> pinned = Client("pve1.example.com", user="api@pve", password=password, fingerprint="AB:CD:...")
    """

    def __init__(
        self,
        host: str,
        token: str | ApiToken | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        otp: str | None = None,
        otp_callback: OtpCallback | None = None,
        verify: bool = True,
        ca_file: str | None = None,
        fingerprint: str | Sequence[str] | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            host,
            token,
            user=user,
            password=password,
            otp=otp,
            otp_callback=otp_callback,
            verify=verify,
            ca_file=ca_file,
            fingerprint=fingerprint,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
            concurrency=concurrency,
            clock=clock,
        )
        self._http = httpx.Client(**self._http_options())
        # Held while a login or renewal runs, so threads sharing the client log in once.
        self._exclusive_lock = threading.Lock()
        # Admits at most `concurrency` requests at once from the threads sharing the client.
        self._in_flight = threading.BoundedSemaphore(self.concurrency)
        self.vms = Vms(self)
        self.tasks = Tasks(self)
        self.cluster = Cluster(self)
        self.metrics = Metrics(self)
        self.rrd = Rrd(self)
        self.agent = Agent(self)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ running

    def _run(self, operation: Operation[T]) -> T:
        value: Any = None
        try:
            while True:
                effect = operation.send(value)
                value = self._perform(effect)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            operation.close()

    def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, Send):
            return self._send(effect)
        if isinstance(effect, Sleep):
            self._clock.sleep(effect.seconds)
            return None
        if isinstance(effect, Exclusive):
            with self._exclusive_lock:
                return self._run_captured(effect.operation)
        return [self._run_captured(operation) for operation in effect.operations]

    def _run_captured(self, operation: Operation[Any]) -> Any:
        try:
            return self._run(operation)
        except PveError as exc:
            return exc

    def _send(self, send: Send) -> RawResponse | TransportError:
        with self._in_flight:
            started = self._clock.monotonic()
            try:
                response = self._http.request(send.method, self._url(send), **self._request_arguments(send))
            except httpx.HTTPError as exc:
                return self._failure(exc, send)
            except TransportError as exc:
                # Raised inside the TLS handshake, for example a fingerprint mismatch.
                return self._located(exc, send)
            return self._raw_response(response, started)


class Task:
    """A handle on a PVE task, as power operations return it. Reading it sends no request.

    Example:
        >>> task = pve.vms.start(100)
        >>> result = task.wait(timeout=120)
        >>> result.warnings
        0
    """

    def __init__(self, client: Client, upid: str) -> None:
        self.upid = upid.strip()
        self.parsed = Upid.parse(self.upid)
        self._client = client

    @property
    def node(self) -> str:
        """The node the task runs on, from the UPID."""
        return self.parsed.node

    def status(self) -> TaskStatus:
        """Read the task's status."""
        return self._client._run(self._client._task_ops.status(self.upid))

    def wait(self, timeout: float = DEFAULT_WAIT_SECONDS) -> TaskResult:
        """Wait until the task ends, at most ``timeout`` seconds.

        Returns the final status; ``WARNINGS: N`` counts as success and the
        warning lines are kept.

        Raises:
            TaskFailedError: the task ended with another exit status; carries the log tail.
            TaskTimeoutError: the task still ran at the deadline (it goes on running).
        """
        return self._client._run(self._client._task_ops.wait(self.upid, timeout))

    def log(self, start: int = 0, limit: int | None = None) -> list[str]:
        """Read the task log from line ``start``; ``limit=None`` reads to the end."""
        return self._client._run(self._client._task_ops.log(self.upid, start, limit))

    def stop(self) -> None:
        """Stop the task."""
        self._client._run(self._client._task_ops.stop(self.upid))

    def __repr__(self) -> str:
        return f"Task({self.upid!r})"


class Vms:
    """QEMU virtual machines: ``client.vms``.

    A power action on a locked VM (backup, migrate, snapshot, ...) raises
    VmLockedError, which names the lock. PVE checks a start's lock inside the
    task, so there the task's wait raises TaskFailedError with PVE's
    ``VM is locked (backup)``. ``skiplock=True`` is sent only when passed, and
    PVE accepts it only from root@pam logged in with its password: it rejects
    every API token, root@pam's included.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._ops = client._vm_ops

    def list(
        self,
        node: str | None = None,
        *,
        status: str | None = None,
        tags: Sequence[str] | str = (),
        pool: str | None = None,
        name: str | None = None,
    ) -> list[Guest]:
        """List the VMs of the cluster in one request (``/cluster/resources``), or of one node.

        Containers are left out. Filters: ``status`` (running, stopped,
        unknown or hibernated), every tag in ``tags`` (one tag or a list),
        ``pool``, and ``name`` as a shell pattern (``web*``).

        Example:
            >>> [vm.vmid for vm in pve.vms.list(status="running", tags=["prod"])]
        """
        return self._client._run(self._ops.list_vms(node, status=status, tags=tags, pool=pool, name=name))

    def list_by_node(self, nodes: Sequence[str] | None = None) -> GuestListing:
        """List VMs node by node; a node that fails (down: 595) is reported in ``failures``, not raised."""
        return self._client._run(self._ops.list_by_node(nodes))

    def get(self, vmid: int) -> Guest:
        """Return the VM's row of the cluster listing (one request).

        Raises:
            VmNotFoundError: no guest has this VMID.
        """
        return self._client._run(self._ops.get(vmid))

    def locate(self, vmid: int) -> str:
        """Return the node a VM runs on, from a cache filled by cluster listings."""
        return self._client._run(self._ops.locate(vmid))

    def status(self, vmid: int, *, node: str | None = None) -> VmStatus:
        """Read a VM's current status (``status/current``).

        ``power_state`` distinguishes running, paused, stopped and hibernated.

        Raises:
            VmNotFoundError: no VM has this VMID (or not on ``node``).
        """
        return self._client._run(self._ops.status(vmid, node))

    def config(self, vmid: int, *, node: str | None = None, current: bool = False) -> VmConfig:
        """Read a VM's configuration: common fields typed, every key in ``raw``.

        ``current=True`` leaves out changes pending until the next start.
        """
        return self._client._run(self._ops.config(vmid, node, current=current))

    def start(
        self, vmid: int, *, node: str | None = None, timeout: int | None = None, skiplock: bool = False
    ) -> Task:
        """Start a VM, or wake a hibernated one. Returns the task; call ``wait()`` on it."""
        return self._task(self._ops.start(vmid, node, timeout=timeout, skiplock=skiplock))

    def stop(
        self,
        vmid: int,
        *,
        node: str | None = None,
        timeout: int | None = None,
        overrule_shutdown: bool = False,
        skiplock: bool = False,
    ) -> Task:
        """Hard stop: end the VM's QEMU process at once, like pulling the power cord.

        The guest OS gets no chance to shut down; use ``shutdown`` for that.
        ``overrule_shutdown`` aborts a running shutdown task first.
        """
        return self._task(
            self._ops.stop(
                vmid, node, timeout=timeout, overrule_shutdown=overrule_shutdown, skiplock=skiplock
            )
        )

    def shutdown(
        self,
        vmid: int,
        *,
        node: str | None = None,
        timeout: int | None = None,
        force_stop: bool = False,
        skiplock: bool = False,
    ) -> Task:
        """ACPI shutdown: ask the guest OS to power off cleanly.

        The task fails after ``timeout`` seconds (PVE's default when None) unless
        ``force_stop`` hard-stops the VM then.
        """
        return self._task(
            self._ops.shutdown(vmid, node, timeout=timeout, force_stop=force_stop, skiplock=skiplock)
        )

    def reboot(self, vmid: int, *, node: str | None = None, timeout: int | None = None) -> Task:
        """ACPI reboot: clean shutdown, then start; pending configuration changes apply."""
        return self._task(self._ops.reboot(vmid, node, timeout=timeout))

    def reset(self, vmid: int, *, node: str | None = None, skiplock: bool = False) -> Task:
        """Hard reset, like the reset button: the guest OS gets no warning."""
        return self._task(self._ops.reset(vmid, node, skiplock=skiplock))

    def suspend(
        self,
        vmid: int,
        *,
        node: str | None = None,
        to_disk: bool = False,
        state_storage: str | None = None,
        skiplock: bool = False,
    ) -> Task:
        """Pause the VM (PVE's suspend); ``to_disk=True`` hibernates it, saving RAM to ``state_storage``.

        A paused VM keeps ``status: running`` and shows ``qmpstatus: paused``;
        ``resume`` continues it. A hibernated VM is stopped and is woken by ``start``.
        """
        return self._task(
            self._ops.suspend(vmid, node, to_disk=to_disk, state_storage=state_storage, skiplock=skiplock)
        )

    def resume(self, vmid: int, *, node: str | None = None, skiplock: bool = False) -> Task:
        """Resume a paused VM."""
        return self._task(self._ops.resume(vmid, node, skiplock=skiplock))

    def _task(self, operation: Operation[str]) -> Task:
        return Task(self._client, self._client._run(operation))


class Tasks:
    """PVE tasks: ``client.tasks``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._ops = client._task_ops

    def get(self, upid: str) -> Task:
        """Return a handle on a task from its UPID; no request is sent."""
        return Task(self._client, upid)

    def status(self, upid: str) -> TaskStatus:
        """Read a task's status; a running task has ``finished`` False and no exit status."""
        return self._client._run(self._ops.status(upid))

    def log(self, upid: str, start: int = 0, limit: int | None = None) -> list[str]:
        """Read a task's log lines from line ``start``; ``limit=None`` reads every page."""
        return self._client._run(self._ops.log(upid, start, limit))

    def wait(self, upid: str, timeout: float = DEFAULT_WAIT_SECONDS) -> TaskResult:
        """Wait for a task; see ``Task.wait``."""
        return self._client._run(self._ops.wait(upid, timeout))

    def stop(self, upid: str) -> None:
        """Stop a running task."""
        self._client._run(self._ops.stop(upid))

    def list(
        self,
        node: str | None = None,
        *,
        vmid: int | None = None,
        source: str = "all",
        task_type: str | None = None,
        errors_only: bool = False,
        limit: int | None = None,
    ) -> list[TaskSummary]:
        """List recent tasks of a node, of a VM (its node is found), or of the cluster.

        ``source="all"`` (default) includes running tasks. Node listings are read
        page by page until ``limit`` or the end. Without node and VMID the
        cluster's list is read, which PVE does not page.
        """
        return self._client._run(
            self._ops.find(
                node, vmid=vmid, source=source, task_type=task_type, errors_only=errors_only, limit=limit
            )
        )


class Cluster:
    """Cluster-wide reads: ``client.cluster``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def nodes(self) -> list[str]:
        """Return the node names, exactly as PVE spells them (they are case-sensitive)."""
        return self._client._run(self._client._vm_ops.nodes())

    def guests(self) -> list[Guest]:
        """List every VM and container of the cluster in one request; ``kind`` distinguishes them."""
        return self._client._run(self._client._vm_ops.cluster_guests())


class Metrics:
    """Usage, counters and rates: ``client.metrics``.

    PVE's net and disk figures in status responses are cumulative byte counters
    since the guest started. Rates need two snapshots; ``rates`` and
    ``cluster_rates`` take them, and ``sampler`` keeps the previous one for
    repeated polling.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._ops = client._metric_ops

    def snapshot(self, vmid: int, *, node: str | None = None) -> MetricsSnapshot:
        """Read a VM's cpu, memory, uptime and byte counters, stamped with the response's arrival time."""
        return self._client._run(self._ops.snapshot(vmid, node))

    def rates(self, vmid: int, interval: float = 5.0, *, node: str | None = None) -> Rates:
        """Sample a VM twice, ``interval`` seconds apart, and return bytes per second.

        The rate divides by the time between the two responses. A rate is None
        for a stopped VM, a missing counter or a reset (restart, migration),
        never negative.

        Example:
            >>> r = pve.metrics.rates(100, interval=5)
            >>> format_bytes_per_sec(r.netin_per_second)
            '1.50 KiB/s'
        """
        return self._client._run(self._ops.rates(vmid, interval, node))

    def cluster_snapshot(self) -> ClusterSnapshot:
        """Read the counters of every guest in the cluster in one request."""
        return self._client._run(self._ops.cluster_snapshot())

    def cluster_rates(self, interval: float = 5.0) -> ClusterRates:
        """Return the rates of every guest from two cluster-wide requests, ``interval`` seconds apart."""
        return self._client._run(self._ops.cluster_rates(interval))

    def sampler(self, interval: float = 5.0) -> ClusterSampler:
        """Return a sampler that yields cluster-wide rates every ``interval`` seconds, one request each."""
        return ClusterSampler(self._client, interval)


class ClusterSampler:
    """Repeated cluster-wide sampling that keeps the previous snapshot.

    ``sample()`` costs one request and returns the rates since the previous
    call (None rates on the first). Iterating sleeps ``interval`` between
    samples and yields rates from the second sample on, until the caller
    stops or Ctrl-C.

    Example:
        >>> for rates in pve.metrics.sampler(interval=5):
        ...     print(rates[100].netin_per_second)
    """

    def __init__(self, client: Client, interval: float) -> None:
        self._client = client
        self.interval = check_interval(interval)
        self._tracker = RateTracker()

    def sample(self) -> ClusterRates:
        """Take one cluster snapshot and return rates against the previous one."""
        return self._client._run(self._client._metric_ops.sample(self._tracker))

    def __iter__(self) -> Iterator[ClusterRates]:
        if self._tracker.previous is None:
            self.sample()
        while True:
            self._client._clock.sleep(self.interval)
            yield self.sample()


class Rrd:
    """RRD series, whose net and disk values are already bytes per second: ``client.rrd``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._ops = client._rrd_ops

    def series(
        self, vmid: int, timeframe: str = "hour", cf: str = "AVERAGE", *, node: str | None = None
    ) -> list[RrdPoint]:
        """Read a VM's RRD series, oldest first.

        ``timeframe`` is hour, day, week, month or year (decade from PVE 9);
        ``cf`` is AVERAGE or MAX. Both are checked before any request. Missing,
        null and NaN values are None.

        Raises:
            InvalidInputError: invalid timeframe or cf; the message lists the valid values.
            RRDError: PVE could not read the RRD file.
        """
        return self._client._run(self._ops.series(vmid, timeframe, cf, node))

    def node_series(self, node: str, timeframe: str = "hour", cf: str = "AVERAGE") -> list[RrdPoint]:
        """Read a node's RRD series; the node name is case-sensitive."""
        return self._client._run(self._ops.node_series(node, timeframe, cf))

    def current(self, vmid: int, *, node: str | None = None, cf: str = "AVERAGE") -> CurrentRates | None:
        """Return the newest RRD point with values and its age, or None when the VM has no data yet."""
        return self._client._run(self._ops.current(vmid, node, cf))

    def current_many(
        self, vmids: Sequence[int], cf: str = "AVERAGE"
    ) -> dict[int, CurrentRates | PveError | None]:
        """Read many VMs' current RRD rates; a VM that fails maps to its error instead of raising."""
        return self._client._run(self._ops.current_many(vmids, cf))


class Agent:
    """The QEMU guest agent's view of a VM's network: ``client.agent``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._ops = client._agent_ops

    def network(self, vmid: int, *, node: str | None = None) -> GuestNetwork:
        """Read every interface with its MAC and addresses; interfaces without addresses are normal.

        Raises:
            AgentNotEnabledError: the VM's configuration does not enable the agent.
            AgentNotRunningError: the agent is enabled but does not respond.
            VmNotRunningError: the VM is not running.
        """
        return self._client._run(self._ops.network(vmid, node))

    def primary_address(
        self, vmid: int, *, node: str | None = None, family: AddressFamily | None = None
    ) -> IpAddress | None:
        """Return the primary usable address (never loopback or link-local), or None when there is none yet."""
        return self._client._run(self._ops.primary_address(vmid, node, family))

    def wait_for_address(
        self,
        vmid: int,
        timeout: float = 300.0,
        *,
        node: str | None = None,
        family: AddressFamily | None = None,
    ) -> IpAddress:
        """Wait until the VM has one usable address, at most ``timeout`` seconds.

        Raises:
            AddressWaitTimeoutError: no usable address by the deadline.
            AgentNotEnabledError, VmNotRunningError: waiting cannot help.
        """
        return self._client._run(self._ops.wait_for_address(vmid, timeout, node, family))

    def networks_many(self, vmids: Sequence[int]) -> dict[int, GuestNetwork | PveError]:
        """Read many VMs' interfaces; a VM whose agent fails maps to its error, the others still come."""
        return self._client._run(self._ops.networks_many(vmids))
