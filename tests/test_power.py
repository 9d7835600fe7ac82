"""Power operations and their tasks against the fake cluster, on both clients."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from fakecluster import FakeCluster
from pvekit import AsyncTask, PowerState, Task, TaskFailedError, TaskResult
from tests.conftest import Api


@pytest.fixture
def vms(cluster: FakeCluster) -> FakeCluster:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running")
    cluster.pve.add_vm(101, "db01", node="pve2", status="stopped")
    return cluster


def last_form(cluster: FakeCluster, path_end: str) -> dict[str, str]:
    """Return the form fields of the newest request whose path ends with ``path_end``."""
    for _, path, body in reversed(cluster.pve.requests):
        if path.endswith(path_end):
            return dict(parse_qsl(body.decode()))
    raise AssertionError(f"no request to {path_end}")


async def power(api: Api, action: str, vmid: int, **options: object) -> TaskResult:
    task = await api.call(lambda pve: getattr(pve.vms, action)(vmid, **options))
    assert isinstance(task, (Task, AsyncTask))
    assert task.upid.startswith("UPID:")
    return await api.call(lambda pve: task.wait(timeout=10))


async def test_start_and_stop(api: Api, vms: FakeCluster) -> None:
    started = await power(api, "start", 101)
    running = await api.call(lambda pve: pve.vms.status(101))
    stopped = await power(api, "stop", 101)
    after = await api.call(lambda pve: pve.vms.status(101))

    assert started.status.succeeded
    assert started.status.task_type == "qmstart"
    assert started.status.auth_id == "root@pam!pvekit-test"
    assert running.power_state is PowerState.RUNNING
    assert stopped.status.task_type == "qmstop"
    assert after.power_state is PowerState.STOPPED


async def test_shutdown_sends_pve_parameters(api: Api, vms: FakeCluster) -> None:
    result = await power(api, "shutdown", 100, timeout=60, force_stop=True)

    assert result.status.task_type == "qmshutdown"
    assert last_form(vms, "/status/shutdown") == {"timeout": "60", "forceStop": "1"}


async def test_stop_sends_overrule_shutdown(api: Api, vms: FakeCluster) -> None:
    await power(api, "stop", 100, timeout=30, overrule_shutdown=True)

    assert last_form(vms, "/status/stop") == {"timeout": "30", "overrule-shutdown": "1"}


async def test_suspend_pauses_and_resume_continues(api: Api, vms: FakeCluster) -> None:
    await power(api, "suspend", 100)
    paused = await api.call(lambda pve: pve.vms.status(100))
    await power(api, "resume", 100)
    resumed = await api.call(lambda pve: pve.vms.status(100))

    assert last_form(vms, "/status/suspend") == {}
    assert paused.power_state is PowerState.PAUSED
    assert resumed.power_state is PowerState.RUNNING


async def test_suspend_to_disk_hibernates(api: Api, vms: FakeCluster) -> None:
    await power(api, "suspend", 100, to_disk=True, state_storage="local-lvm")
    hibernated = await api.call(lambda pve: pve.vms.status(100))
    await power(api, "start", 100)
    woken = await api.call(lambda pve: pve.vms.status(100))

    assert last_form(vms, "/status/suspend") == {"todisk": "1", "statestorage": "local-lvm"}
    assert hibernated.power_state is PowerState.HIBERNATED
    assert woken.power_state is PowerState.RUNNING


async def test_reboot_and_reset(api: Api, vms: FakeCluster) -> None:
    rebooted = await power(api, "reboot", 100, timeout=120)
    reset = await power(api, "reset", 100)

    assert rebooted.status.task_type == "qmreboot"
    assert last_form(vms, "/status/reboot") == {"timeout": "120"}
    assert reset.status.task_type == "qmreset"


async def test_failed_task_carries_exit_status_and_log(api: Api, vms: FakeCluster) -> None:
    vms.pve.vm(101).start_error = "start failed: QEMU exited with code 1"

    with pytest.raises(TaskFailedError) as caught:
        await power(api, "start", 101)

    assert caught.value.exitstatus == "start failed: QEMU exited with code 1"
    assert caught.value.upid.startswith("UPID:pve2:")
    assert any("QEMU exited with code 1" in line for line in caught.value.log_tail)
    assert "start failed" in str(caught.value)


async def test_power_on_running_vm_fails_in_task(api: Api, vms: FakeCluster) -> None:
    with pytest.raises(TaskFailedError, match="already running"):
        await power(api, "start", 100)


async def test_power_action_is_never_sent_twice(api: Api, vms: FakeCluster) -> None:
    vms.pve.fail("POST", "/nodes/pve2/qemu/101/status/start", 503, "Service Unavailable", times=1)

    with pytest.raises(Exception, match="503"):
        await api.call(lambda pve: pve.vms.start(101))

    posts = [path for method, path, _ in vms.pve.requests if method == "POST"]
    assert posts == ["/api2/json/nodes/pve2/qemu/101/status/start"]
