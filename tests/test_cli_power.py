"""Tests of the power commands and ``pvekit task`` against the demo cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cli_support import parse_json, run_on

from fakecluster import FakeCluster, build_demo

UPID = re.compile(r"^UPID:pve\d:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:\w+:\d+:root@pam!pvekit-test:$")
OUTCOME_KEYS = {"vmid", "action", "upid", "waited", "exitstatus", "succeeded", "warnings", "error", "exit_code"}


@pytest.fixture
def demo(cluster: FakeCluster) -> FakeCluster:
    """The test's cluster with the demo's 3 nodes and 10 VMs."""
    build_demo(cluster)
    return cluster


def pvekit(cluster: FakeCluster, token: str, tmp_path: Path, *args: str) -> Any:
    """Run pvekit against the cluster and return the click Result."""
    return run_on(cluster, token, args, config_home=tmp_path)


def test_start_without_wait_prints_task(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    outcomes = parse_json(pvekit(demo, token, tmp_path, "start", "106", "-o", "json"))

    assert len(outcomes) == 1
    outcome = outcomes[0]
    assert set(outcome) == OUTCOME_KEYS
    assert outcome["vmid"] == 106
    assert outcome["action"] == "start"
    assert UPID.match(outcome["upid"])
    assert ":qmstart:106:" in outcome["upid"]
    assert outcome["waited"] is False
    assert outcome["succeeded"] is None
    assert outcome["exit_code"] == 0


def test_start_wait_succeeds(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "start", "106", "--wait")

    assert result.exit_code == 0, result.output
    assert re.search(r"106\s+start\s+OK\s+UPID:pve1:", result.stdout)
    assert re.search(r"start VM 106: OK after \d+\.\d s", result.stderr)
    assert demo.pve.vm(106).status == "running"


def test_several_vms_at_once(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    outcomes = parse_json(
        pvekit(demo, token, tmp_path, "start", "105", "106", "108", "106", "--wait", "-j", "2", "-o", "json")
    )

    assert [outcome["vmid"] for outcome in outcomes] == [105, 106, 108]
    assert all(outcome["succeeded"] is True for outcome in outcomes)
    assert all(outcome["exitstatus"] == "OK" for outcome in outcomes)
    assert all(demo.pve.vm(vmid).status == "running" for vmid in (105, 106, 108))


def test_task_failure_exits_1_with_log_tail(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    demo.pve.vm(106).start_error = "boom"

    result = pvekit(demo, token, tmp_path, "start", "106", "--wait")
    as_json = pvekit(demo, token, tmp_path, "start", "106", "--wait", "-o", "json")

    assert result.exit_code == 1
    assert re.search(r"106\s+start\s+failed: boom", result.stdout)
    assert re.search(r"Error: task UPID:pve1:\S+:qmstart:106:\S+ failed: boom", result.stderr)
    assert "TASK ERROR: boom" in result.stderr
    assert as_json.exit_code == 1
    outcome = parse_json_any(as_json)[0]
    assert outcome["succeeded"] is False
    assert outcome["exitstatus"] == "boom"
    assert outcome["exit_code"] == 1


def parse_json_any(result: Any) -> Any:
    """Parse standard output as JSON whatever the exit status."""
    return json.loads(result.stdout)


def test_follow_streams_task_log(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "start", "106", "--follow")

    assert result.exit_code == 0, result.output
    assert "start VM 106: TASK OK" in result.stderr


def test_mixed_outcomes_exit_with_the_shared_status(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    demo.pve.vm(108).start_error = "boom"

    not_found = pvekit(demo, token, tmp_path, "start", "105", "999")
    mixed = pvekit(demo, token, tmp_path, "start", "106", "108", "998", "--wait")

    assert not_found.exit_code == 5
    assert "Error: VM 999: VM 999 not found in the cluster" in not_found.stderr
    assert "Error: 1 of 2 VMs failed" in not_found.stderr
    assert mixed.exit_code == 1
    assert "Error: 2 of 3 VMs failed" in mixed.stderr


def test_shutdown_passes_timeout_and_force_stop(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    demo.pve.vm(100).acpi = False

    timed_out = pvekit(demo, token, tmp_path, "shutdown", "100", "--timeout", "5", "--wait")
    forced = pvekit(demo, token, tmp_path, "shutdown", "100", "--timeout", "5", "--force-stop", "--wait")

    assert timed_out.exit_code == 1
    assert "VM quit/powerdown failed - got timeout" in timed_out.stderr
    assert forced.exit_code == 0, forced.output
    assert demo.pve.vm(100).status == "stopped"
    bodies = [body for method, path, body in demo.pve.requests if path.endswith("/qemu/100/status/shutdown")]
    assert "timeout=5" in str(bodies[-1])
    assert "forceStop=1" in str(bodies[-1])


def test_stop_overrule_shutdown(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "stop", "100", "--overrule-shutdown", "--wait")

    assert result.exit_code == 0, result.output
    body = [body for method, path, body in demo.pve.requests if path.endswith("/qemu/100/status/stop")][-1]
    assert "overrule-shutdown=1" in str(body)


def test_suspend_resume_and_hibernate(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    paused = pvekit(demo, token, tmp_path, "suspend", "100", "--wait")
    paused_state = parse_json(pvekit(demo, token, tmp_path, "status", "100", "-o", "json"))["power_state"]
    resumed = pvekit(demo, token, tmp_path, "resume", "100", "--wait")
    hibernated = pvekit(demo, token, tmp_path, "suspend", "101", "--to-disk", "--state-storage", "local-lvm", "--wait")

    assert paused.exit_code == 0, paused.output
    assert paused_state == "paused"
    assert resumed.exit_code == 0, resumed.output
    assert hibernated.exit_code == 0, hibernated.output
    assert demo.pve.vm(101).lock == "suspended"


def test_state_storage_needs_to_disk(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "suspend", "100", "--state-storage", "local-lvm")

    assert result.exit_code == 2
    assert "--state-storage needs --to-disk" in result.stderr


def test_reboot_and_reset(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    outcomes = parse_json(pvekit(demo, token, tmp_path, "reboot", "100", "--wait", "-o", "json"))
    reset = parse_json(pvekit(demo, token, tmp_path, "reset", "101", "--wait", "-o", "json"))

    assert outcomes[0]["succeeded"] is True
    assert ":qmreboot:100:" in outcomes[0]["upid"]
    assert reset[0]["succeeded"] is True
    assert ":qmreset:101:" in reset[0]["upid"]


def test_power_requires_a_vmid(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "start")

    assert result.exit_code == 2
    assert "Missing argument 'VMID...'" in result.stderr


# ------------------------------------------------------------------ task


def started_task(demo: FakeCluster, token: str, tmp_path: Path, vmid: int = 106) -> str:
    """Start a VM without waiting and return the UPID of its start task."""
    upid: str = parse_json(pvekit(demo, token, tmp_path, "start", str(vmid), "-o", "json"))[0]["upid"]
    return upid


def test_task_status_json_shape(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    upid = started_task(demo, token, tmp_path)

    data = parse_json(pvekit(demo, token, tmp_path, "task", "status", upid, "-o", "json"))

    assert data["upid"] == upid
    assert data["node"] == "pve1"
    assert data["type"] == "qmstart"
    assert data["id"] == "106"
    assert data["user"] == "root@pam!pvekit-test"
    assert data["status"] == "stopped"
    assert data["finished"] is True
    assert data["exitstatus"] == "OK"
    assert data["succeeded"] is True
    assert data["warnings"] == 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", data["started_at"])


def test_task_status_table(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    upid = started_task(demo, token, tmp_path)

    result = pvekit(demo, token, tmp_path, "task", "status", upid)

    assert result.exit_code == 0, result.output
    assert re.search(r"Exit status\s+OK", result.stdout)
    assert re.search(r"Type\s+qmstart", result.stdout)


def test_task_log(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    upid = started_task(demo, token, tmp_path)

    plain = pvekit(demo, token, tmp_path, "task", "log", upid)
    followed = pvekit(demo, token, tmp_path, "task", "log", upid, "--follow")
    as_json = parse_json(pvekit(demo, token, tmp_path, "task", "log", upid, "-o", "json"))

    assert plain.stdout.splitlines()[-1] == "TASK OK"
    assert followed.stdout == plain.stdout
    assert as_json == {"upid": upid, "start": 0, "lines": plain.stdout.splitlines()}


def test_task_wait_success_and_failure(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    upid = started_task(demo, token, tmp_path)
    demo.pve.vm(108).start_error = "boom"
    failed_upid = started_task(demo, token, tmp_path, 108)

    waited = parse_json(pvekit(demo, token, tmp_path, "task", "wait", upid, "-o", "json"))
    failed = pvekit(demo, token, tmp_path, "task", "wait", failed_upid, "--timeout", "10", "-o", "json")

    assert waited["succeeded"] is True
    assert failed.exit_code == 1
    failure = parse_json_any(failed)
    assert failure["succeeded"] is False
    assert failure["exitstatus"] == "boom"
    assert failure["log_tail"][-1] == "TASK ERROR: boom"
    assert "failed: boom" in failed.stderr


def test_task_stop(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    upid = started_task(demo, token, tmp_path)

    result = pvekit(demo, token, tmp_path, "task", "stop", upid)

    assert result.exit_code == 0, result.output
    assert f"Stop requested for task {upid}" in result.stderr


def test_task_invalid_upid_is_usage_error(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "task", "status", "UPID:pve1:nothex")

    assert result.exit_code == 2
    assert "invalid UPID 'UPID:pve1:nothex': expected UPID:node:pid:pstart:starttime:type:id:user:" in result.stderr
