"""The fault matrix: each fault fakepve can inject, run through the public API of Client and AsyncClient.

For each fault the tests check the exception and its message, or the
recovered result. They check that PVE acted on no write twice, counting
requests where they arrive at the fake, before its simulated network drops or
hangs them. And they check that waits end at their deadline without
measuring time: the outcome shows it, for example a status read that would
have succeeded after the deadline was cut short instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from fakecluster import FakeCluster, Rates
from pvekit import (
    AddressWaitTimeoutError,
    AsyncClient,
    Client,
    NodeUnreachableError,
    NoQuorumError,
    OutcomeUnknownError,
    PowerState,
    PveConnectionError,
    PveTimeoutError,
    RetryPolicy,
    ServerError,
    TaskFailedError,
    TaskTimeoutError,
    VmLockedError,
)
from tests.conftest import Api, FakeClock, close_client, closed_loopback_port, make_client
from tests.login_pve import LoginPve, login_cluster

KINDS = ["sync", "async"]
VM_PATH = "/api2/json/nodes/pve1/qemu/100"


@asynccontextmanager
async def client_for(kind: str, cluster: FakeCluster, token: str, **options: Any) -> AsyncIterator[Api]:
    """Open a Client or AsyncClient on the cluster with the given options, closed afterwards."""
    client = make_client(kind, cluster, token, **options)
    try:
        yield Api(client)
    finally:
        await close_client(client)


def arrivals(cluster: FakeCluster, method: str, path: str) -> int:
    """Count the requests that arrived at the fake with this method and path, dropped ones included."""
    return sum(1 for seen in cluster.pve.arrivals if seen == (method, path))


def tasks_of(cluster: FakeCluster, task_type: str, vmid: int) -> list[dict[str, Any]]:
    """Return the tasks of this type the fake started for the VM."""
    return [task for task in cluster.pve.tasklog if task["type"] == task_type and task["id"] == str(vmid)]


def seed_network(cluster: FakeCluster, seed: int) -> None:
    """Make the fake's random drops and hangs repeatable.

    fakepve 0.5.0 reads ``network["seed"]`` only when the server starts, so
    its random source is seeded here directly.
    """
    cluster.pve._random.seed(seed)


@pytest.fixture
def vm(cluster: FakeCluster) -> FakeCluster:
    """The cluster with VM 100 running on pve1 and VM 101 running on pve2."""
    cluster.pve.add_vm(100, "web01", node="pve1", status="running", rates=Rates(netin=1000.0))
    cluster.pve.add_vm(101, "db01", node="pve2", status="running", rates=Rates(netin=2000.0))
    return cluster


# --------------------------------------------------------------- slow network


@pytest.mark.parametrize("kind", KINDS)
async def test_slow_network_still_answers(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.time_scale = 1.0
    vm.pve.slow_network(0.2, jitter=0.1)

    async with client_for(kind, vm, token) as api:
        guests = await api.call(lambda pve: pve.vms.list())

    assert [guest.vmid for guest in guests] == [100, 101]
    assert arrivals(vm, "GET", "/api2/json/cluster/resources") == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_slow_network_wait_times_out(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.time_scale = 1.0
    vm.pve.vms[0].shutdown_secs = 3600
    async with client_for(kind, vm, token) as api:
        task = await api.call(lambda pve: pve.vms.shutdown(100, node="pve1", timeout=3600))
        vm.pve.slow_network(0.2)

        with pytest.raises(TaskTimeoutError) as caught:
            await api.call(lambda pve: task.wait(timeout=1.0))

    assert caught.value.upid == task.upid
    assert caught.value.last_status == "running"
    assert "still running" in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_wait_rides_out_short_outage(kind: str, vm: FakeCluster, token: str, clock: FakeClock) -> None:
    async with client_for(kind, vm, token, clock=clock) as api:
        task = await api.call(lambda pve: pve.vms.stop(100, node="pve1"))
        # Two whole status reads fail, each after its first attempt and 3 retries.
        vm.pve.drop_connection("GET", f"/tasks/{task.upid}/status", times=8)

        result = await api.call(lambda pve: task.wait(timeout=60))

    assert result.status.exitstatus == "OK"
    assert arrivals(vm, "GET", f"/api2/json/nodes/pve1/tasks/{task.upid}/status") == 9


@pytest.mark.parametrize("kind", KINDS)
async def test_wait_through_outage_times_out(kind: str, vm: FakeCluster, token: str, clock: FakeClock) -> None:
    async with client_for(kind, vm, token, clock=clock) as api:
        task = await api.call(lambda pve: pve.vms.stop(100, node="pve1"))
        vm.pve.drop_connection("GET", f"/tasks/{task.upid}/status", times=10_000)

        with pytest.raises(TaskTimeoutError) as caught:
            await api.call(lambda pve: task.wait(timeout=30))

    assert caught.value.last_status is None
    assert caught.value.last_failure == "the connection failed at the last read"
    assert "could not be read within 30 s (the connection failed at the last read)" in str(caught.value)
    assert "The task goes on in PVE" in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_wait_unreached_host_fails(
    kind: str, vm: FakeCluster, token: str, clock: FakeClock
) -> None:
    factory = Client if kind == "sync" else AsyncClient
    client = factory(f"127.0.0.1:{closed_loopback_port()}", token, ca_file=vm.ca_file, clock=clock)
    upid = "UPID:pve1:00001000:00002000:6419CAF8:qmstop:100:root@pam!pvekit-test:"
    try:
        with pytest.raises(PveConnectionError):
            await Api(client).call(lambda pve: pve.tasks.get(upid).wait(timeout=600))
    finally:
        await close_client(client)

    # The retries of the one failed read slept; the wait itself did not poll on.
    assert sum(clock.sleeps) < 5


@pytest.mark.parametrize("kind", KINDS)
async def test_refused_connection_worded_alike(kind: str, vm: FakeCluster, token: str) -> None:
    factory = Client if kind == "sync" else AsyncClient
    client = factory(f"127.0.0.1:{closed_loopback_port()}", token, ca_file=vm.ca_file, retry=None)
    try:
        with pytest.raises(PveConnectionError) as caught:
            await Api(client).call(lambda pve: pve.vms.list())
    finally:
        await close_client(client)

    assert "connection failed (Connection refused)" in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_closed_after_sending_advice(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.drop_connection("GET", "/cluster/resources")

    async with client_for(kind, vm, token, retry=None) as api:
        with pytest.raises(PveConnectionError) as caught:
            await api.call(lambda pve: pve.vms.list())

    assert caught.value.request_sent
    assert "a proxy or firewall between closed the connection" in str(caught.value)
    assert "check the host name" not in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_read_timeout_worded_alike(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.flaky_network(hang_rate=1.0, hang_secs=1)

    async with client_for(kind, vm, token, read_timeout=0.3) as api:
        with pytest.raises(PveTimeoutError) as caught:
            await api.call(lambda pve: pve.vms.list())

    assert "/cluster/resources: timed out reading after 0.3 s; check that the host is reachable" in str(caught.value)
    assert "raise read_timeout" in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_wait_status_unread_at_deadline(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.time_scale = 1.0
    async with client_for(kind, vm, token) as api:
        task = await api.call(lambda pve: pve.vms.stop(100, node="pve1"))
        vm.pve.slow_network(3.0)

        with pytest.raises(TaskTimeoutError) as caught:
            await api.call(lambda pve: task.wait(timeout=1.0))

    # The stop task had ended, so a status read left to finish would have returned its result.
    assert caught.value.last_status is None
    assert caught.value.last_failure == "the last read timed out at the deadline"
    assert "could not be read within 1 s (the last read timed out at the deadline)" in str(caught.value)
    assert "still" not in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_read_timeout_not_retried(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.time_scale = 1.0
    vm.pve.slow_network(1.5)

    async with client_for(kind, vm, token, read_timeout=0.3) as api:
        with pytest.raises(PveTimeoutError, match="timed out reading"):
            await api.call(lambda pve: pve.vms.list())

    assert arrivals(vm, "GET", "/api2/json/cluster/resources") == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_timed_out_power_action_not_resent(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.time_scale = 1.0
    vm.pve.slow_network(1.5)

    async with client_for(kind, vm, token, read_timeout=0.3) as api:
        with pytest.raises(OutcomeUnknownError) as caught:
            await api.call(lambda pve: pve.vms.stop(100, node="pve1"))

    assert "may or may not have happened" in str(caught.value)
    assert caught.value.vmid == 100
    assert arrivals(vm, "POST", f"{VM_PATH}/status/stop") == 1


# --------------------------------------------------------------- flaky network


@pytest.mark.parametrize("kind", KINDS)
async def test_dropped_reads_recover(kind: str, vm: FakeCluster, token: str, clock: FakeClock) -> None:
    vm.pve.flaky_network(drop_rate=0.3)
    seed_network(vm, 6)

    async with client_for(kind, vm, token, clock=clock) as api:
        listings = [await api.call(lambda pve: pve.vms.list()) for _ in range(10)]

    assert all([guest.vmid for guest in listing] == [100, 101] for listing in listings)
    # Some requests were dropped and sent again.
    assert arrivals(vm, "GET", "/api2/json/cluster/resources") > 10
    assert clock.sleeps


@pytest.mark.parametrize("kind", KINDS)
async def test_dropped_power_action_not_resent(kind: str, vm: FakeCluster, token: str, clock: FakeClock) -> None:
    vm.pve.flaky_network(drop_rate=1.0)

    async with client_for(kind, vm, token, clock=clock) as api:
        with pytest.raises(OutcomeUnknownError) as caught:
            await api.call(lambda pve: pve.vms.stop(100, node="pve1"))

    message = str(caught.value)
    assert "stop of VM 100 on pve1" in message
    assert "reading the node's task list failed too" in message
    assert "pvekit task list --vmid 100" in message
    assert arrivals(vm, "POST", f"{VM_PATH}/status/stop") == 1
    assert vm.pve.vms[0].status == "running"


async def stop_then_start(api: Api) -> None:
    """Stop VM 100 and start it again, each waited for, so that the node lists an earlier stop task."""
    stopped = await api.call(lambda pve: pve.vms.stop(100, node="pve1"))
    await api.call(lambda pve: stopped.wait(timeout=30))
    started = await api.call(lambda pve: pve.vms.start(100, node="pve1"))
    await api.call(lambda pve: started.wait(timeout=30))


@pytest.mark.parametrize("kind", KINDS)
async def test_dropped_stop_skips_earlier_stop(kind: str, vm: FakeCluster, token: str) -> None:
    async with client_for(kind, vm, token) as api:
        await stop_then_start(api)
        vm.pve.drop_connection("POST", "/qemu/100/status/stop")

        with pytest.raises(OutcomeUnknownError):
            await api.call(lambda pve: pve.vms.stop(100, node="pve1"))

    assert len(tasks_of(vm, "qmstop", 100)) == 1
    assert vm.pve.vms[0].status == "running"


class ClockBehind(FakeClock):
    """A clock whose wall time is a minute behind the fake's nodes, as on a host without NTP."""

    def wall(self) -> float:
        return super().wall() - 60


@pytest.mark.parametrize("kind", KINDS)
async def test_dropped_stop_on_lagging_clock(kind: str, vm: FakeCluster, token: str) -> None:
    async with client_for(kind, vm, token) as api:
        await stop_then_start(api)
    # The earlier stop ran 20 s ago, through another client with the same token.
    [earlier_task] = tasks_of(vm, "qmstop", 100)
    earlier_task["starttime"] -= 20
    vm.pve.drop_connection("POST", "/qemu/100/status/stop")

    async with client_for(kind, vm, token, clock=ClockBehind()) as api:
        with pytest.raises(OutcomeUnknownError):
            await api.call(lambda pve: pve.vms.stop(100, node="pve1"))

    assert vm.pve.vms[0].status == "running"


@pytest.mark.parametrize("kind", KINDS)
async def test_lost_stop_response_finds_its_task(kind: str, vm: FakeCluster, token: str) -> None:
    async with client_for(kind, vm, token, clock=ClockBehind()) as api:
        await stop_then_start(api)
        vm.pve.drop_connection("POST", "/qemu/100/status/stop", handled=True)

        task = await api.call(lambda pve: pve.vms.stop(100, node="pve1"))

    stops = tasks_of(vm, "qmstop", 100)
    assert len(stops) == 2
    assert task.upid == stops[-1]["upid"]


@pytest.mark.parametrize("kind", KINDS)
async def test_hung_read_times_out_once(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.flaky_network(hang_rate=1.0, hang_secs=3)

    async with client_for(kind, vm, token, read_timeout=0.3) as api:
        with pytest.raises(PveTimeoutError):
            await api.call(lambda pve: pve.vms.status(100, node="pve1"))

    assert arrivals(vm, "GET", f"{VM_PATH}/status/current") == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_hung_power_action_outcome_unknown(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.flaky_network(hang_rate=1.0, hang_secs=3)

    async with client_for(kind, vm, token, read_timeout=0.3) as api:
        with pytest.raises(OutcomeUnknownError):
            await api.call(lambda pve: pve.vms.reset(100, node="pve1"))

    assert arrivals(vm, "POST", f"{VM_PATH}/status/reset") == 1


# --------------------------------------------------------------- node offline


@pytest.mark.parametrize("kind", KINDS)
async def test_offline_node_guests_listed_unknown(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.set_node_offline("pve2")

    async with client_for(kind, vm, token) as api:
        guests = await api.call(lambda pve: pve.vms.list())

    by_vmid = {guest.vmid: guest for guest in guests}
    assert sorted(by_vmid) == [100, 101]
    assert by_vmid[100].power_state is PowerState.RUNNING_OR_PAUSED
    assert by_vmid[101].power_state is PowerState.UNKNOWN
    # The cluster listing still carries the offline node's last values; they are stale.
    assert by_vmid[101].cpu.ratio is None
    assert by_vmid[101].cpu.cpus is not None
    assert by_vmid[101].mem_bytes is None
    assert by_vmid[101].uptime_seconds is None
    assert by_vmid[101].maxmem_bytes is not None


@pytest.mark.parametrize("kind", KINDS)
async def test_offline_node_sampling_degrades(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.set_node_offline("pve2")

    async with client_for(kind, vm, token) as api:
        rates = await api.call(lambda pve: pve.metrics.cluster_rates(interval=0.5))

    assert rates.offline_nodes == ("pve2",)
    assert rates[100].netin_per_second == pytest.approx(1000.0, rel=0.1)
    assert rates[101].netin_per_second is None
    assert rates[101].snapshot.node == "pve2"
    assert rates[101].snapshot.mem_bytes is None
    assert rates[101].snapshot.counters.netin_bytes is None
    assert arrivals(vm, "GET", "/api2/json/cluster/resources") == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_offline_node_vm_read_unreachable(
    kind: str, vm: FakeCluster, token: str, clock: FakeClock
) -> None:
    vm.pve.set_node_offline("pve2")

    async with client_for(kind, vm, token, clock=clock) as api:
        with pytest.raises(NodeUnreachableError) as caught:
            await api.call(lambda pve: pve.vms.status(101))

    assert caught.value.status_code == 595
    assert "No route to host" in str(caught.value)
    # The first attempt, then the default policy's 3 retries after growing pauses.
    assert arrivals(vm, "GET", "/api2/json/nodes/pve2/qemu/101/status/current") == 4
    assert len(clock.sleeps) == 3
    assert clock.sleeps == sorted(clock.sleeps)


@pytest.mark.parametrize("kind", KINDS)
async def test_offline_node_power_action_not_retried(
    kind: str, vm: FakeCluster, token: str, clock: FakeClock
) -> None:
    vm.pve.set_node_offline("pve2")

    async with client_for(kind, vm, token, clock=clock) as api:
        with pytest.raises(NodeUnreachableError):
            await api.call(lambda pve: pve.vms.start(101, node="pve2"))

    assert arrivals(vm, "POST", "/api2/json/nodes/pve2/qemu/101/status/start") == 1


# --------------------------------------------------------------- quorum, locks, failing tasks


@pytest.mark.parametrize("kind", KINDS)
async def test_lost_quorum_blocks_writes_not_reads(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.lose_quorum()

    async with client_for(kind, vm, token) as api:
        guests = await api.call(lambda pve: pve.vms.list())
        with pytest.raises(NoQuorumError) as caught:
            await api.call(lambda pve: pve.vms.start(100, node="pve1"))

    assert len(guests) == 2
    assert "lost quorum" in str(caught.value)
    assert caught.value.message == "cluster not ready - no quorum?"
    assert arrivals(vm, "POST", f"{VM_PATH}/status/start") == 1


@pytest.mark.parametrize("action", ["stop", "shutdown", "reset", "suspend"])
@pytest.mark.parametrize("kind", KINDS)
async def test_locked_vm_names_lock(kind: str, action: str, vm: FakeCluster, token: str) -> None:
    vm.pve.snapshot_lock(100, "backup")

    async with client_for(kind, vm, token) as api:
        with pytest.raises(VmLockedError) as caught:
            await api.call(lambda pve: getattr(pve.vms, action)(100, node="pve1"))

    assert caught.value.lock == "backup"
    assert caught.value.vmid == 100
    assert "VM is locked (backup)" in str(caught.value)
    assert "a backup of it is running" in str(caught.value)
    bodies = [body for method, path, body in vm.pve.requests if method == "POST" and path.endswith(action)]
    assert len(bodies) == 1
    assert b"skiplock" not in (bodies[0] or b"")


@pytest.mark.parametrize(
    ("lock", "advice"),
    [
        ("backup", "a backup of it is running"),
        ("migrate", "it is being migrated"),
        ("snapshot", "qm unlock 100"),
        ("suspended", "it is hibernated; start it to resume it"),
    ],
)
async def test_lock_error_advises_per_lock(lock: str, advice: str, vm: FakeCluster, token: str) -> None:
    vm.pve.snapshot_lock(100, lock)

    async with client_for("sync", vm, token) as api:
        with pytest.raises(VmLockedError) as caught:
            await api.call(lambda pve: pve.vms.stop(100, node="pve1"))

    assert caught.value.lock == lock
    assert advice in str(caught.value)
    assert ("skiplock" in str(caught.value)) is (lock == "snapshot")


@pytest.mark.parametrize("kind", KINDS)
async def test_locked_vm_stop_with_skiplock(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.snapshot_lock(100, "snapshot")

    async with client_for(kind, vm, token) as api:
        task = await api.call(lambda pve: pve.vms.stop(100, node="pve1", skiplock=True))
        result = await api.call(lambda pve: task.wait(timeout=30))

    assert result.status.succeeded is True
    assert vm.pve.vms[0].status == "stopped"
    bodies = [body for method, path, body in vm.pve.requests if method == "POST" and path.endswith("/stop")]
    assert b"skiplock=1" in bodies[0]


@pytest.mark.parametrize("kind", KINDS)
async def test_locked_vm_start_task_names_lock(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.vms[0].status = "stopped"
    vm.pve.snapshot_lock(100, "migrate")

    async with client_for(kind, vm, token) as api:
        task = await api.call(lambda pve: pve.vms.start(100, node="pve1"))
        with pytest.raises(TaskFailedError) as caught:
            await api.call(lambda pve: task.wait(timeout=30))

    assert caught.value.exitstatus == "VM is locked (migrate)"
    assert caught.value.hint == "it is being migrated; wait until the migration ends"
    assert "failed: VM is locked (migrate); it is being migrated" in str(caught.value)
    assert len(tasks_of(vm, "qmstart", 100)) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_held_config_lock_fails_task(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.vms[0].status = "stopped"
    vm.call(vm.pve.hold_config_lock(100, None))

    async with client_for(kind, vm, token) as api:
        task = await api.call(lambda pve: pve.vms.start(100, node="pve1"))
        with pytest.raises(TaskFailedError) as caught:
            await api.call(lambda pve: task.wait(timeout=30))

    assert "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout" in caught.value.exitstatus
    assert "another task holds the VM's configuration lock" in str(caught.value)
    assert len(tasks_of(vm, "qmstart", 100)) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_failing_task_raises_with_log(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.vms[0].status = "stopped"
    vm.pve.vms[0].start_error = "start failed: QEMU exited with code 1"

    async with client_for(kind, vm, token) as api:
        task = await api.call(lambda pve: pve.vms.start(100, node="pve1"))
        with pytest.raises(TaskFailedError) as caught:
            await api.call(lambda pve: task.wait(timeout=30))

    assert caught.value.exitstatus == "start failed: QEMU exited with code 1"
    assert any("QEMU exited with code 1" in line for line in caught.value.log_tail)
    assert arrivals(vm, "POST", f"{VM_PATH}/status/start") == 1


# --------------------------------------------------------------- migration, tickets, injected statuses


@pytest.mark.parametrize("kind", KINDS)
async def test_vm_migrated_mid_operation_followed(kind: str, vm: FakeCluster, token: str) -> None:
    async with client_for(kind, vm, token) as api:
        before = await api.call(lambda pve: pve.vms.status(100))
        vm.call(vm.pve.migrate(100, "pve2", secs=0))
        task = await api.call(lambda pve: pve.vms.stop(100))
        await api.call(lambda pve: task.wait(timeout=30))

    assert before.node == "pve1"
    assert task.node == "pve2"
    # pve1 rejected the first POST because the configuration is gone, so PVE acted once.
    assert arrivals(vm, "POST", f"{VM_PATH}/status/stop") == 1
    assert arrivals(vm, "POST", "/api2/json/nodes/pve2/qemu/100/status/stop") == 1
    assert len(tasks_of(vm, "qmstop", 100)) == 1


PASSWORD = "fault-matrix-password"


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeCluster, LoginPve]]:
    """A cluster that logs in root@pam with PASSWORD, with VM 100 stopped on pve1."""
    with login_cluster(monkeypatch, PASSWORD) as (cluster, pve):
        pve.add_vm(100, "web01", node="pve1", status="stopped")
        yield cluster, pve


@pytest.mark.parametrize("kind", KINDS)
async def test_expired_ticket_renewed_once(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login
    factory = Client if kind == "sync" else AsyncClient
    client = factory(cluster.host, user="root@pam", password=PASSWORD, ca_file=cluster.ca_file)
    api = Api(client)
    try:
        await api.call(lambda client: client.vms.status(100))
        pve.revoke_tickets()
        task = await api.call(lambda client: client.vms.start(100))
        result = await api.call(lambda client: task.wait(timeout=30))
    finally:
        await close_client(client)

    assert result.status.succeeded is True
    assert pve.logins == ["password", "password"]
    # PVE rejected the first POST before acting, so the VM was started once.
    assert len(tasks_of(cluster, "qmstart", 100)) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_500_on_path_not_retried(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.fail("GET", "/cluster/resources", 500, "unable to read /etc/pve/.vmlist")

    async with client_for(kind, vm, token) as api:
        with pytest.raises(ServerError, match=r"unable to read /etc/pve/\.vmlist"):
            await api.call(lambda pve: pve.vms.list())

    assert arrivals(vm, "GET", "/api2/json/cluster/resources") == 1


@pytest.mark.parametrize("code", [595, 596])
@pytest.mark.parametrize("kind", KINDS)
async def test_proxy_codes_retried_then_recovered(
    kind: str, code: int, vm: FakeCluster, token: str, clock: FakeClock
) -> None:
    vm.pve.fail("GET", "/nodes/pve1/qemu/100/status/current", code, "Broken pipe", times=2)

    async with client_for(kind, vm, token, clock=clock) as api:
        status = await api.call(lambda pve: pve.vms.status(100, node="pve1"))

    assert status.vmid == 100
    assert arrivals(vm, "GET", f"{VM_PATH}/status/current") == 3


@pytest.mark.parametrize("code", [595, 596])
@pytest.mark.parametrize("kind", KINDS)
async def test_proxy_codes_exhaust_retries(kind: str, code: int, vm: FakeCluster, token: str, clock: FakeClock) -> None:
    vm.pve.fail("GET", "/nodes/pve1/qemu/100/status/current", code, "Broken pipe")
    policy = RetryPolicy(max_retries=1)

    async with client_for(kind, vm, token, clock=clock, retry=policy) as api:
        with pytest.raises(NodeUnreachableError) as caught:
            await api.call(lambda pve: pve.vms.status(100, node="pve1"))

    assert caught.value.status_code == code
    assert arrivals(vm, "GET", f"{VM_PATH}/status/current") == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_retry_off_sends_once(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.fail("GET", "/nodes/pve1/qemu/100/status/current", 503, "Service Unavailable")

    async with client_for(kind, vm, token, retry=None) as api:
        with pytest.raises(ServerError):
            await api.call(lambda pve: pve.vms.status(100, node="pve1"))

    assert arrivals(vm, "GET", f"{VM_PATH}/status/current") == 1


# --------------------------------------------------------------- bounded load


def add_vms(cluster: FakeCluster, count: int) -> list[int]:
    vmids = list(range(200, 200 + count))
    for vmid in vmids:
        cluster.pve.add_vm(vmid, f"vm{vmid}", node="pve1", status="running")
    return vmids


async def test_async_fan_out_respects_cap(cluster: FakeCluster, token: str) -> None:
    vmids = add_vms(cluster, 8)
    cluster.pve.time_scale = 1.0
    cluster.pve.slow_network(0.2)

    async with client_for("async", cluster, token, concurrency=2) as api:
        current = await api.call(lambda pve: pve.rrd.current_many(vmids))
        statuses = await asyncio.gather(*(api.call(lambda pve, v=v: pve.vms.status(v)) for v in vmids))

    assert sorted(current) == vmids
    assert [status.vmid for status in statuses] == vmids
    assert cluster.pve.peak_in_flight == 2


def test_threads_sharing_client_respect_cap(cluster: FakeCluster, token: str) -> None:
    vmids = add_vms(cluster, 8)
    cluster.pve.time_scale = 1.0
    cluster.pve.slow_network(0.2)
    errors: list[BaseException] = []

    with Client(cluster.host, token, ca_file=cluster.ca_file, concurrency=3) as pve:
        pve.vms.list()

        def read(vmid: int) -> None:
            try:
                pve.vms.status(vmid)
            except BaseException as exc:  # reported by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(vmid,)) for vmid in vmids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert errors == []
    assert cluster.pve.peak_in_flight == 3


# --------------------------------------------------------------- cancellation


def open_connections(client: Client | AsyncClient) -> list[Any]:
    """Return the pool's connections that are not idle or closed (httpcore's pool, as httpx 0.27 builds it)."""
    pool = client._http._transport._pool  # type: ignore[union-attr]
    return [connection for connection in pool.connections if not (connection.is_idle() or connection.is_closed())]


async def test_cancelled_wait_stops_and_frees_connections(vm: FakeCluster, token: str) -> None:
    vm.pve.time_scale = 1.0
    vm.pve.vms[0].shutdown_secs = 3600
    vm.pve.slow_network(0.3)

    async with client_for("async", vm, token) as api:
        task = await api.call(lambda pve: pve.vms.shutdown(100, node="pve1", timeout=3600))
        waiting = asyncio.ensure_future(api.call(lambda pve: task.wait(timeout=600)))
        await asyncio.sleep(0.5)
        waiting.cancel()

        with pytest.raises(asyncio.CancelledError):
            await waiting
        polls = arrivals(vm, "GET", f"/api2/json/nodes/pve1/tasks/{task.upid}/status")
        await asyncio.sleep(1.0)

        assert polls >= 1
        assert arrivals(vm, "GET", f"/api2/json/nodes/pve1/tasks/{task.upid}/status") == polls
        assert open_connections(api.client) == []


async def test_cancelled_fan_out_cancels_every_request(cluster: FakeCluster, token: str) -> None:
    vmids = add_vms(cluster, 6)
    cluster.pve.time_scale = 1.0
    cluster.pve.slow_network(1.0)

    async with client_for("async", cluster, token, concurrency=3) as api:
        await api.call(lambda pve: pve.vms.list())
        fan_out = asyncio.ensure_future(api.call(lambda pve: pve.rrd.current_many(vmids)))
        await asyncio.sleep(0.3)
        fan_out.cancel()

        with pytest.raises(asyncio.CancelledError):
            await fan_out

        assert open_connections(api.client) == []


class InterruptingClock(FakeClock):
    """A clock whose second sleep raises KeyboardInterrupt, as Ctrl-C during a wait does."""

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if len(self.sleeps) == 2:
            raise KeyboardInterrupt


def test_interrupted_sync_wait_leaves_client_usable(vm: FakeCluster, token: str) -> None:
    vm.pve.time_scale = 1.0
    vm.pve.vms[0].shutdown_secs = 3600

    with Client(vm.host, token, ca_file=vm.ca_file, clock=InterruptingClock()) as pve:
        task = pve.vms.shutdown(100, node="pve1", timeout=3600)
        with pytest.raises(KeyboardInterrupt):
            task.wait(timeout=600)

        assert open_connections(pve) == []
        assert pve.vms.status(100, node="pve1").vmid == 100


@pytest.mark.parametrize("kind", KINDS)
async def test_wait_on_noisy_network_stops(kind: str, vm: FakeCluster, token: str) -> None:
    vm.pve.time_scale = 1.0
    vm.pve.vms[0].shutdown_secs = 3600

    async with client_for(kind, vm, token, read_timeout=1.0) as api:
        task = await api.call(lambda pve: pve.vms.shutdown(100, node="pve1", timeout=3600))
        vm.pve.flaky_network(drop_rate=0.2, hang_rate=0.2, hang_secs=2)
        seed_network(vm, 11)

        with pytest.raises((TaskTimeoutError, PveTimeoutError)):
            await api.call(lambda pve: task.wait(timeout=2.0))
        polls = arrivals(vm, "GET", f"/api2/json/nodes/pve1/tasks/{task.upid}/status")
        await asyncio.sleep(1.0)

    assert polls >= 1
    assert arrivals(vm, "GET", f"/api2/json/nodes/pve1/tasks/{task.upid}/status") == polls


@pytest.mark.parametrize("kind", KINDS)
async def test_address_wait_cut_at_deadline(kind: str, cluster: FakeCluster, token: str) -> None:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running", config={"agent": "1"})
    cluster.pve.time_scale = 1.0
    cluster.pve.slow_network(3.0)

    async with client_for(kind, cluster, token) as api:
        with pytest.raises(AddressWaitTimeoutError) as caught:
            await api.call(lambda pve: pve.agent.wait_for_address(100, node="pve1", timeout=1.0))

    # The agent would have responded after 3 s; the read was cut at the 1 s deadline instead.
    assert "timed out at the deadline" in str(caught.value)


async def test_cancelled_sampler_stops(vm: FakeCluster, token: str) -> None:
    async with client_for("async", vm, token) as api:
        sampler = api.client.metrics.sampler(0.2)
        seen: list[int] = []

        async def consume() -> None:
            async for rates in sampler:
                seen.append(len(rates))

        consuming = asyncio.ensure_future(consume())
        await asyncio.sleep(1.0)
        consuming.cancel()

        with pytest.raises(asyncio.CancelledError):
            await consuming

        assert seen
        assert all(count == 2 for count in seen)
        assert open_connections(api.client) == []
