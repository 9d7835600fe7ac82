"""Tasks: waiting against a deadline, logs, paged listings, and replayed task responses and lost power responses."""

from __future__ import annotations

import email.utils

import pytest

from fakecluster import FakeCluster
from pvekit import (
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PveConnectionError,
    RetryPolicy,
    TaskTimeoutError,
)
from pvekit._clock import Clock
from pvekit._core import RawResponse, Send, Session
from pvekit._task_ops import MAX_POLL_SECONDS, TaskOps
from pvekit._vm_ops import VmOps
from tests.conftest import Api, FakeClock
from tests.scripted import drive, response, sends

WARNINGS_UPID = "UPID:pve1:00007323:001036A5:6419CAF8:qmstart:100:root@pam:"
WARNINGS_STATUS = {
    "upid": WARNINGS_UPID, "node": "pve1", "pid": 29475, "pstart": 1062565, "starttime": 1679411960,
    "type": "qmstart", "id": "100", "user": "root@pam", "status": "stopped", "exitstatus": "WARNINGS: 1",
}  # fmt: skip
WARNINGS_LOG = [
    {"n": 1, "t": "WARN: no efidisk configured! Using temporary efivars disk."},
    {"n": 2, "t": "TASK WARNINGS: 1"},
]
RUNNING_UPID = "UPID:pve1:000D7AA2:08D5A17C:63DF62A5:vzclone:200:root@pam!api_token:"
RUNNING_STATUS = {
    "upid": RUNNING_UPID, "node": "pve1", "pid": 883362, "pstart": 148218236, "starttime": 1675584165,
    "type": "vzclone", "id": "200", "user": "root@pam", "tokenid": "api_token", "status": "running",
}  # fmt: skip


def ops(clock: Clock | None = None) -> TaskOps:
    session = Session(
        clock=clock or FakeClock(), retry=RetryPolicy(max_retries=2), auth_id="root@pam!ci", concurrency=4
    )
    return TaskOps(session, VmOps(session))


def test_warnings_task_succeeds_with_warning_lines() -> None:
    result, effects = drive(
        ops().wait(WARNINGS_UPID, 30), [response(200, {"data": WARNINGS_STATUS}), response(200, {"data": WARNINGS_LOG})]
    )

    assert result.status.succeeded is True
    assert result.warnings == 1
    assert result.warning_lines == ("WARN: no efidisk configured! Using temporary efivars disk.", "TASK WARNINGS: 1")
    assert sends(effects)[0] == ("GET", f"/nodes/pve1/tasks/{WARNINGS_UPID}/status")


def test_running_task_keeps_polling_then_finishes() -> None:
    finished = dict(RUNNING_STATUS, status="stopped", exitstatus="OK")
    replies = [response(200, {"data": RUNNING_STATUS})] * 3 + [response(200, {"data": finished})]

    result, effects = drive(ops().wait(RUNNING_UPID, 60), replies)

    assert result.status.succeeded is True
    assert result.status.auth_id == "root@pam!api_token"
    assert len(sends(effects)) == 4


def test_unexpected_status_is_failure() -> None:
    failed = dict(WARNINGS_STATUS, exitstatus="unexpected status")
    log = [{"n": 1, "t": "starting"}]

    with pytest.raises(Exception, match="unexpected status"):
        drive(ops().wait(WARNINGS_UPID, 30), [response(200, {"data": failed}), response(200, {"data": log})])


async def test_wait_times_out_against_deadline(timed_api: Api, cluster: FakeCluster, clock: FakeClock) -> None:
    cluster.pve.time_scale = 1.0
    vm = cluster.pve.add_vm(100, "web01", node="pve1", status="running")
    vm.shutdown_secs = 3600
    task = await timed_api.call(lambda pve: pve.vms.shutdown(100, timeout=3600))

    with pytest.raises(TaskTimeoutError) as caught:
        await timed_api.call(lambda pve: task.wait(timeout=20))

    assert caught.value.upid == task.upid
    assert caught.value.last_status == "running"
    assert sum(clock.sleeps) == pytest.approx(20, abs=1)
    assert clock.sleeps[1] > clock.sleeps[0]
    assert max(clock.sleeps) <= MAX_POLL_SECONDS
    assert "still running after 20 s" in str(caught.value)


async def test_wait_returns_promptly_when_done(timed_api: Api, cluster: FakeCluster, clock: FakeClock) -> None:
    cluster.pve.add_vm(101, "db01", node="pve1", status="stopped")
    task = await timed_api.call(lambda pve: pve.vms.start(101))

    result = await timed_api.call(lambda pve: task.wait(timeout=60))

    assert result.status.succeeded
    assert clock.sleeps == []


async def test_wait_rejects_non_positive_timeout(api: Api, cluster: FakeCluster) -> None:
    with pytest.raises(ValueError, match="positive"):
        await api.call(lambda pve: pve.tasks.wait(WARNINGS_UPID, timeout=0))


async def test_task_status_and_log(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(101, "db01", node="pve1", status="stopped")
    task = await api.call(lambda pve: pve.vms.start(101))
    await api.call(lambda pve: task.wait(timeout=10))

    status = await api.call(lambda pve: pve.tasks.status(task.upid))
    lines = await api.call(lambda pve: pve.tasks.log(task.upid))
    tail = await api.call(lambda pve: pve.tasks.log(task.upid, start=len(lines) - 1))

    assert status.finished and status.exitstatus == "OK"
    assert lines[-1] == "TASK OK"
    assert tail == ["TASK OK"]


async def test_node_task_history_is_paged(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(101, "db01", node="pve1", status="stopped")
    for _ in range(137):
        cluster.call(cluster.pve.task("pve1", "qmstart", 101, "root@pam", _no_work))
    before = len(cluster.pve.requests)

    tasks = await api.call(lambda pve: pve.tasks.list("pve1"))

    assert len(tasks) == 137
    assert len(cluster.pve.requests) - before == 3
    assert all(task.node == "pve1" for task in tasks)


async def test_vm_tasks_found_on_its_node(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(101, "db01", node="pve2", status="stopped")
    task = await api.call(lambda pve: pve.vms.start(101))

    listed = await api.call(lambda pve: pve.tasks.list(vmid=101))

    assert [summary.upid for summary in listed] == [task.upid]
    assert listed[0].auth_id == "root@pam!pvekit-test"


async def _no_work() -> None:
    return None


def test_cluster_tasks_sent_without_limit() -> None:
    _, effects = drive(ops().cluster_list(), [response(200, {"data": []})])

    assert effects == [Send("GET", "/cluster/tasks", ())]


CLUSTER_TASKS = [
    {"upid": "UPID:pve1:1:1:1:qmstart:100:root@pam:", "node": "pve1", "type": "qmstart", "id": "100",
     "user": "root@pam", "starttime": 30, "endtime": 31, "status": "start failed: QEMU exited with code 1"},
    {"upid": "UPID:pve1:2:2:2:vzdump:101:root@pam:", "node": "pve1", "type": "vzdump", "id": "101",
     "user": "root@pam", "starttime": 20, "endtime": 25, "status": "OK"},
    {"upid": "UPID:pve2:3:3:3:qmstart:102:root@pam:", "node": "pve2", "type": "qmstart", "id": "102",
     "user": "root@pam", "starttime": 10, "endtime": 11, "status": "WARNINGS: 1"},
    {"upid": "UPID:pve2:4:4:4:qmigrate:103:root@pam:", "node": "pve2", "type": "qmigrate", "id": "103",
     "user": "root@pam", "starttime": 5},
]  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["qmstart", "vzdump", "qmstart", "qmigrate"]),
        ({"errors_only": True}, ["qmstart"]),
        ({"task_type": "qmstart"}, ["qmstart", "qmstart"]),
        ({"source": "active"}, ["qmigrate"]),
        ({"source": "archive", "limit": 2}, ["qmstart", "vzdump"]),
    ],
)
def test_cluster_tasks_filtered_here(filters: dict[str, object], expected: list[str]) -> None:
    tasks, effects = drive(ops().find(**filters), [response(200, {"data": CLUSTER_TASKS})])  # type: ignore[arg-type]

    assert [task.task_type for task in tasks] == expected
    assert effects == [Send("GET", "/cluster/tasks", ())]


@pytest.mark.parametrize(("source", "limit"), [("bogus", None), ("all", 0), ("all", -1), ("all", True)])
def test_task_listing_rejects_bad_filters(source: str, limit: int | None) -> None:
    for operation in (ops().find(source=source, limit=limit), ops().node_tasks("pve1", source=source, limit=limit)):
        with pytest.raises(InvalidInputError):
            drive(operation, [])


def test_node_tasks_follow_total() -> None:
    rows = [{"upid": WARNINGS_UPID, "node": "pve1", "type": "qmstart", "starttime": 1, "endtime": 2, "status": "OK"}]
    replies = [
        response(200, {"data": rows * 50, "total": 137}),
        response(200, {"data": rows * 50, "total": 137}),
        response(200, {"data": rows * 37, "total": 137}),
    ]

    tasks, effects = drive(ops().node_tasks("pve1"), replies)

    assert len(tasks) == 137
    starts = [dict(effect.params)["start"] for effect in effects if isinstance(effect, Send)]
    assert starts == ["0", "50", "100"]
    assert all(dict(effect.params)["source"] == "all" for effect in effects if isinstance(effect, Send))


# This machine's wall time in the lost-response tests. It does not move.
LOCAL_NOW = 1_800_000_000.0


class StillClock(FakeClock):
    """A clock whose wall time stays at LOCAL_NOW, so task start times can be written as numbers."""

    def wall(self) -> float:
        return LOCAL_NOW


def upid_at(starttime: float, task_type: str = "qmstart", tokenid: str = "ci") -> str:
    return f"UPID:pve1:00001000:00002000:{int(starttime):08X}:{task_type}:105:root@pam!{tokenid}:"


START_UPID = upid_at(LOCAL_NOW)


def task_row(starttime: float, task_type: str = "qmstart", tokenid: str = "ci") -> dict[str, object]:
    return {"upid": upid_at(starttime, task_type, tokenid), "node": "pve1", "type": task_type, "id": "105",
            "user": "root@pam", "tokenid": tokenid, "starttime": int(starttime)}  # fmt: skip


def http_date(moment: float) -> str:
    return email.utils.formatdate(moment, usegmt=True)


def vm_ops() -> VmOps:
    session = Session(clock=StillClock(), retry=RetryPolicy(max_retries=2), auth_id="root@pam!ci", concurrency=4)
    session.node_of[105] = "pve1"
    return VmOps(session)


def lookup_reply(rows: list[dict[str, object]], node_ahead_seconds: float | None = 0.0) -> RawResponse:
    """Build the task list's response; the node's clock runs ``node_ahead_seconds`` ahead, or has no Date header."""
    date = None if node_ahead_seconds is None else http_date(LOCAL_NOW + node_ahead_seconds)
    return response(200, {"data": rows}, received_wall=LOCAL_NOW, date=date)


def test_lost_power_answer_finds_started_task() -> None:
    upid, effects = drive(vm_ops().start(105), [PveConnectionError("reset"), lookup_reply([task_row(LOCAL_NOW)])])

    assert upid == START_UPID
    assert sends(effects) == [("POST", "/nodes/pve1/qemu/105/status/start"), ("GET", "/nodes/pve1/tasks")]
    lookup = dict(effects[1].params)
    assert lookup["vmid"] == "105"
    assert lookup["source"] == "all"
    assert lookup["typefilter"] == "qmstart"


def test_lost_answer_skips_earlier_task() -> None:
    earlier = task_row(LOCAL_NOW - 20)

    with pytest.raises(OutcomeUnknownError):
        drive(vm_ops().start(105), [PveConnectionError("reset"), lookup_reply([earlier])])


def test_lost_answer_node_clock_ahead() -> None:
    # The node's clock is 60 s ahead, so a task it stamped 30 s after this machine's "now" is 30 s old.
    earlier = task_row(LOCAL_NOW + 30)

    with pytest.raises(OutcomeUnknownError):
        drive(vm_ops().start(105), [PveConnectionError("reset"), lookup_reply([earlier], node_ahead_seconds=60)])


def test_lost_answer_node_clock_behind() -> None:
    # The node's clock is 60 s behind: the task it stamped 59 s before this machine's "now" is new.
    started = task_row(LOCAL_NOW - 59)
    replies = [PveConnectionError("reset"), lookup_reply([started], node_ahead_seconds=-60)]

    upid, _ = drive(vm_ops().start(105), replies)

    assert upid == started["upid"]


def test_lost_answer_without_date_header() -> None:
    rows = [task_row(LOCAL_NOW + 1), task_row(LOCAL_NOW - 20)]

    upid, _ = drive(vm_ops().start(105), [PveConnectionError("reset"), lookup_reply(rows, node_ahead_seconds=None)])

    assert upid == upid_at(LOCAL_NOW + 1)


def test_lost_answer_skips_returned_task() -> None:
    operations = vm_ops()
    first, _ = drive(operations.start(105), [response(200, {"data": START_UPID})])

    with pytest.raises(OutcomeUnknownError):
        drive(operations.start(105), [PveConnectionError("reset"), lookup_reply([task_row(LOCAL_NOW)])])
    assert first == START_UPID


def test_lost_answer_takes_first_new_task() -> None:
    # PVE lists the newest task first: a later start by the same token comes before the lost one's.
    rows = [task_row(LOCAL_NOW + 5), task_row(LOCAL_NOW + 1)]

    upid, _ = drive(vm_ops().start(105), [PveConnectionError("reset"), lookup_reply(rows)])

    assert upid == upid_at(LOCAL_NOW + 1)


def test_lost_answer_skips_other_tasks() -> None:
    rows = [task_row(LOCAL_NOW, tokenid="other"), task_row(LOCAL_NOW, task_type="qmstop")]

    with pytest.raises(OutcomeUnknownError):
        drive(vm_ops().start(105), [PveConnectionError("reset"), lookup_reply(rows)])


def test_lost_power_answer_without_task_not_sent_again() -> None:
    replies = [PveConnectionError("reset"), response(200, {"data": []})]

    with pytest.raises(OutcomeUnknownError) as caught:
        drive(vm_ops().start(105), replies)

    message = str(caught.value)
    assert "start of VM 105 on pve1" in message
    assert "may or may not have happened" in message
    assert "pvekit task list --vmid 105" in message
    assert caught.value.vmid == 105


def test_lost_power_answer_sends_post_once() -> None:
    operation = vm_ops().stop(105)
    requests = [operation.send(None)]
    requests.append(operation.send(PveConnectionError("reset")))

    with pytest.raises(OutcomeUnknownError):
        operation.send(response(200, {"data": []}))

    assert [(r.method, r.path) for r in requests if isinstance(r, Send)] == [
        ("POST", "/nodes/pve1/qemu/105/status/stop"),
        ("GET", "/nodes/pve1/tasks"),
    ]


def test_lost_power_answer_and_failed_lookup() -> None:
    replies = [PveConnectionError("reset"), response(500, {"message": "no"})]

    with pytest.raises(OutcomeUnknownError, match="reading the node's task list failed too"):
        drive(vm_ops().start(105), replies)


def test_refused_power_action_sent_again() -> None:
    connection_refused = PveConnectionError("refused", request_sent=False)

    upid, effects = drive(vm_ops().start(105), [connection_refused, response(200, {"data": START_UPID})])

    assert upid == START_UPID
    assert [method for method, _ in sends(effects)] == ["POST", "POST"]


def test_get_retried_once_after_reset_on_stale_connection() -> None:
    session = Session(clock=FakeClock(), retry=RetryPolicy(max_retries=2), auth_id=None, concurrency=4)
    status = {"vmid": 105, "status": "running", "qmpstatus": "running"}

    data, effects = drive(session.get("/nodes/pve1/lxc/105/status/current"),
                          [PveConnectionError("reset before response"), response(200, {"data": status})])  # fmt: skip

    assert data == status
    assert len(sends(effects)) == 2


async def test_running_task_can_be_stopped(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.time_scale = 1.0
    vm = cluster.pve.add_vm(100, "web01", node="pve1", status="running")
    vm.shutdown_secs = 3600
    task = await api.call(lambda pve: pve.vms.shutdown(100, timeout=3600))

    await api.call(lambda pve: task.stop())

    deletes = [path for method, path, _ in cluster.pve.requests if method == "DELETE"]
    assert deletes == [f"/api2/json/nodes/pve1/tasks/{task.upid}"]


async def test_unknown_task_not_found(api: Api, cluster: FakeCluster) -> None:
    with pytest.raises(NotFoundError, match="not found on node 'pve1'"):
        await api.call(lambda pve: pve.tasks.status(WARNINGS_UPID))
