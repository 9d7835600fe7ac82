"""The CLI under faults: locked VMs, an offline node, lost responses, outages, Ctrl-C and narrow terminals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import connection_args, parse_json, run, run_on

from fakecluster import FakeCluster
from pvekit import OutcomeUnknownError, VmLockedError
from pvekit.cli import power as power_command
from pvekit.cli import task as task_command
from pvekit.cli.app import ExitCode, exit_code_for
from tests.conftest import closed_loopback_port

UPID = "UPID:pve1:00001000:00002000:6419CAF8:qmstart:100:root@pam!pvekit-test:"


@pytest.fixture
def two_nodes(cluster: FakeCluster) -> FakeCluster:
    """The cluster with VM 100 running on pve1 and VM 101 running on pve2."""
    cluster.pve.add_vm(100, "web01", node="pve1", status="running")
    cluster.pve.add_vm(101, "db01", node="pve2", status="running")
    return cluster


def pvekit(cluster: FakeCluster, token: str, tmp_path: Path, *args: str) -> Any:
    """Run pvekit against the cluster and return the click Result."""
    return run_on(cluster, token, args, config_home=tmp_path)


def test_locked_vm_stop_exits_1_naming_lock(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.snapshot_lock(100, "backup")

    result = pvekit(two_nodes, token, tmp_path, "stop", "100")

    assert result.exit_code == ExitCode.FAILED
    assert "VM is locked (backup)" in result.stderr
    assert "a backup of it is running" in result.stderr
    assert two_nodes.pve.vms[0].status == "running"


def test_locked_vm_stop_with_skiplock(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.snapshot_lock(100, "snapshot")

    outcomes = parse_json(pvekit(two_nodes, token, tmp_path, "stop", "100", "--skiplock", "--wait", "-o", "json"))

    assert outcomes[0]["succeeded"] is True
    assert two_nodes.pve.vms[0].status == "stopped"


@pytest.mark.parametrize("action", ["start", "stop", "shutdown", "reset", "suspend", "resume"])
def test_skiplock_offered_where_pve_takes_it(action: str, tmp_path: Path, cluster: FakeCluster, token: str) -> None:
    result = pvekit(cluster, token, tmp_path, action, "--help")

    assert result.exit_code == 0
    assert "--skiplock" in result.stdout


def test_reboot_has_no_skiplock(tmp_path: Path, cluster: FakeCluster, token: str) -> None:
    result = pvekit(cluster, token, tmp_path, "reboot", "--help")

    assert "--skiplock" not in result.stdout


def test_offline_node_vms_listed_with_note(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.set_node_offline("pve2")

    result = pvekit(two_nodes, token, tmp_path, "vms")

    assert result.exit_code == 0
    assert "db01" in result.stdout
    assert "unknown" in result.stdout
    assert "Status unknown on pve2" in result.stderr


def test_offline_node_top_names_it(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.set_node_offline("pve2")

    lines = pvekit(two_nodes, token, tmp_path, "top", "-o", "json", "--iterations", "1", "--interval", "0.2")

    assert lines.exit_code == 0
    assert '"offline_nodes":["pve2"]' in lines.stdout.replace(" ", "")


def test_exit_status_for_unknown_outcome() -> None:
    lost = OutcomeUnknownError("stop of VM 100: response lost", vmid=100)

    assert exit_code_for(lost) == ExitCode.OUTCOME_UNKNOWN == 6
    assert exit_code_for(VmLockedError("VM is locked (backup)", lock="backup")) == ExitCode.FAILED


def test_exit_status_6_documented(cluster: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(cluster, token, tmp_path, "--help")

    assert "6    outcome unknown" in result.stdout


def test_ctrl_c_during_wait_exits_130(
    two_nodes: FakeCluster, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(task_command, "watch_task", interrupted)

    result = pvekit(two_nodes, token, tmp_path, "task", "wait", UPID)

    assert result.exit_code == ExitCode.INTERRUPTED
    assert "Error: interrupted" in result.stderr


def test_task_list_shows_vm_tasks(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    assert pvekit(two_nodes, token, tmp_path, "stop", "100", "--wait").exit_code == 0

    tasks = parse_json(pvekit(two_nodes, token, tmp_path, "task", "list", "--vmid", "100", "-o", "json"))

    assert [task["type"] for task in tasks] == ["qmstop"]
    assert tasks[0]["id"] == "100"
    assert tasks[0]["node"] == "pve1"
    assert tasks[0]["running"] is False
    assert tasks[0]["exitstatus"] == "OK"
    assert tasks[0]["upid"].startswith("UPID:pve1:")


def test_task_list_errors_only(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.vms[0].status = "stopped"
    two_nodes.pve.vms[0].start_error = "start failed: QEMU exited with code 1"
    pvekit(two_nodes, token, tmp_path, "start", "100", "--wait")
    pvekit(two_nodes, token, tmp_path, "stop", "101", "--wait")

    result = pvekit(two_nodes, token, tmp_path, "task", "list", "--node", "pve1", "--errors")
    # fakepve's /cluster/tasks is a placeholder, so each node is read on its own.
    on_pve2 = parse_json(pvekit(two_nodes, token, tmp_path, "task", "list", "--node", "pve2", "-o", "json"))

    assert result.exit_code == 0
    assert "qmstart" in result.stdout
    assert "qmstop" not in result.stdout
    assert [task["type"] for task in on_pve2] == ["qmstop"]


def test_wait_on_slow_link_reports_result(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.time_scale = 1.0
    two_nodes.pve.slow_network(0.8)

    result = pvekit(two_nodes, token, tmp_path, "--node", "pve1", "stop", "100", "--wait", "--wait-timeout", "2")

    assert result.exit_code == 0, result.stderr
    assert two_nodes.pve.vms[0].status == "stopped"
    assert "timed out" not in result.stderr


def test_offline_node_top_table_notes_it(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.set_node_offline("pve2")

    result = pvekit(two_nodes, token, tmp_path, "top", "--once", "--interval", "0.2")

    assert result.exit_code == 0
    assert "db01" in result.stdout
    assert "offline nodes, their guests have no rates: pve2" in result.stderr


def test_ctrl_c_during_power_wait_names_tasks(
    two_nodes: FakeCluster, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(power_command, "watch_task", interrupted)

    result = pvekit(two_nodes, token, tmp_path, "stop", "100", "--wait")

    assert result.exit_code == ExitCode.INTERRUPTED
    assert "These tasks go on in PVE" in result.stderr
    assert "VM 100: UPID:pve1:" in result.stderr
    assert ":qmstop:100:" in result.stderr


@pytest.mark.parametrize(
    ("how", "seconds"),
    [("flag", "0.3"), ("environment", "0.3"), ("profile", "0.3")],
)
def test_read_timeout_setting_applies(
    how: str, seconds: str, two_nodes: FakeCluster, token: str, tmp_path: Path
) -> None:
    two_nodes.pve.time_scale = 1.0
    two_nodes.pve.slow_network(1.5)
    args = [*connection_args(two_nodes)]
    env = {"PVE_TOKEN": token}
    if how == "flag":
        args += ["--read-timeout", seconds]
    elif how == "environment":
        env["PVE_READ_TIMEOUT"] = seconds
    else:
        config = tmp_path / "pvekit" / "config.toml"
        config.parent.mkdir()
        config.write_text(f"[profiles.default]\nread_timeout = {seconds}\n", encoding="utf-8")

    result = run([*args, "vms"], config_home=tmp_path, env=env)

    assert result.exit_code == ExitCode.CONNECTION
    assert "timed out reading" in result.stderr
    assert "--read-timeout SECONDS" in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_invalid_read_timeout_variable(value: str, cluster: FakeCluster, token: str, tmp_path: Path) -> None:
    result = run(
        [*connection_args(cluster), "vms"], config_home=tmp_path, env={"PVE_TOKEN": token, "PVE_READ_TIMEOUT": value}
    )

    assert result.exit_code == ExitCode.USAGE
    assert f"PVE_READ_TIMEOUT={value!r} is invalid" in result.stderr


def test_invalid_read_timeout_in_profile(cluster: FakeCluster, token: str, tmp_path: Path) -> None:
    config = tmp_path / "pvekit" / "config.toml"
    config.parent.mkdir()
    config.write_text('[profiles.default]\nread_timeout = "30"\n', encoding="utf-8")

    result = run([*connection_args(cluster), "vms"], config_home=tmp_path, env={"PVE_TOKEN": token})

    assert result.exit_code == ExitCode.USAGE
    assert "read_timeout in profile 'default'" in result.stderr
    assert "a positive number of seconds" in result.stderr


def test_power_wait_rides_out_outage(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    # One whole status read fails: its first attempt and its 3 retries.
    two_nodes.pve.drop_connection("GET", "/status", times=4)

    outcomes = parse_json(pvekit(two_nodes, token, tmp_path, "--node", "pve1", "stop", "100", "--wait", "-o", "json"))

    assert outcomes[0]["succeeded"] is True
    assert two_nodes.pve.vms[0].status == "stopped"


def test_task_wait_unreached_host_fails(cluster: FakeCluster, token: str, tmp_path: Path) -> None:
    args = ["--host", f"127.0.0.1:{closed_loopback_port()}", "--ca-file", str(cluster.ca_file), "task", "wait", UPID]

    result = run(args, env={"PVE_TOKEN": token}, config_home=tmp_path)

    assert result.exit_code == ExitCode.CONNECTION
    assert "connection failed" in result.stderr


def test_wait_timeout_line_states_time_once(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.time_scale = 1.0
    two_nodes.pve.vms[0].shutdown_secs = 3600

    result = pvekit(two_nodes, token, tmp_path, "--node", "pve1", "shutdown", "100", "--wait", "--wait-timeout", "1")

    assert result.exit_code == ExitCode.FAILED
    assert "shutdown VM 100: timed out after 1 s, still running\n" in result.stderr


def test_top_json_survives_failed_refresh(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    # After the baseline, the first refresh fails whole: its first attempt and its 3 retries.
    two_nodes.pve.drop_connection("GET", "/cluster/resources", times=4, after=1)

    result = pvekit(two_nodes, token, tmp_path, "top", "-o", "json", "--iterations", "3", "--interval", "0.1")

    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    [report] = [line for line in result.stderr.splitlines() if line.startswith("Refresh failed")]
    assert report.startswith("Refresh failed, trying again in 0.1 s: GET https://")
    assert "/api2/json/cluster/resources: connection failed" in report
    assert report.endswith("closed the connection")


def test_lost_action_json_not_marked_failed(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.drop_connection("POST", "/qemu/100/status/stop")

    result = pvekit(two_nodes, token, tmp_path, "--node", "pve1", "stop", "100", "-o", "json")

    [outcome] = json.loads(result.stdout)
    assert result.exit_code == ExitCode.OUTCOME_UNKNOWN
    assert outcome["succeeded"] is None
    assert outcome["warnings"] is None
    assert outcome["exit_code"] == ExitCode.OUTCOME_UNKNOWN


def test_unknown_outcome_wins_exit_status(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.drop_connection("POST", "/qemu/100/status/stop")

    result = pvekit(two_nodes, token, tmp_path, "stop", "100", "999")

    assert result.exit_code == ExitCode.OUTCOME_UNKNOWN
    assert "1 of 2 VMs failed; for 1 of 2 VMs the stop may or may not have happened" in result.stderr


def test_rejected_action_json_marked_failed(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(two_nodes, token, tmp_path, "stop", "999", "-o", "json")

    [outcome] = json.loads(result.stdout)
    assert outcome["succeeded"] is False
    assert outcome["waited"] is False


def test_wait_timeout_implies_wait(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(two_nodes, token, tmp_path, "--node", "pve1", "stop", "100", "--wait-timeout", "30", "-o", "json")

    [outcome] = parse_json(result)
    assert outcome["waited"] is True
    assert outcome["succeeded"] is True


def test_task_list_errors_skips_ok(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    pvekit(two_nodes, token, tmp_path, "stop", "100", "--wait")
    two_nodes.pve.vms[0].start_error = "start failed: QEMU exited with code 1"
    pvekit(two_nodes, token, tmp_path, "start", "100", "--wait")

    tasks = parse_json(pvekit(two_nodes, token, tmp_path, "task", "list", "--node", "pve1", "--errors", "-o", "json"))

    assert [task["type"] for task in tasks] == ["qmstart"]


def narrow(cluster: FakeCluster, token: str, tmp_path: Path, *args: str) -> Any:
    """Run pvekit with tables 80 columns wide, as on a small terminal."""
    return run([*connection_args(cluster), *args], env={"PVE_TOKEN": token, "COLUMNS": "80"}, config_home=tmp_path)


def test_narrow_vms_keeps_columns(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.vms[0].name = "web-server-01.example"

    lines = narrow(two_nodes, token, tmp_path, "vms").stdout.splitlines()

    assert lines[0].split() == ["VMID", "NAME", "NODE", "STATUS", "CPU", "CPUS", "MEMORY", "UPTIME", "TAGS"]
    assert lines[1].split()[:2] == ["100", "web-server-01.e"]
    assert lines[2].split()[0] == "xample"
    assert "…" not in "".join(lines)


def test_narrow_power_keeps_columns(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    lines = narrow(two_nodes, token, tmp_path, "stop", "100", "101").stdout.splitlines()

    assert lines[0].split() == ["VMID", "ACTION", "RESULT", "TASK"]
    assert lines[1].split()[:3] == ["100", "stop", "started"]
    assert "…" not in "".join(lines)


def test_narrow_top_drops_whole_columns(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.vms[0].name = "a-rather-long-web-server-name.example"

    result = narrow(two_nodes, token, tmp_path, "top", "--once", "--interval", "0.1")

    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.split()[:2] == ["VMID", "NAME"])
    rows = [line.split() for line in lines if line.split() and line.split()[0] in ("100", "101")]
    assert result.exit_code == 0, result.stderr
    assert all(len(line) <= 80 for line in lines)
    assert "TYPE" not in header
    assert "Too narrow for NODE, TYPE" in result.stderr
    assert sorted(row[0] for row in rows) == ["100", "101"]
    assert all(row[-1].endswith("/s") or row[-1] == "-" for row in rows)


def test_top_json_retakes_failed_baseline(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    # The first sample fails whole: its first attempt and its 3 retries get HTTP 503.
    two_nodes.pve.fail("GET", "/cluster/resources", 503, "pveproxy busy", times=4)

    result = pvekit(two_nodes, token, tmp_path, "top", "-o", "json", "--iterations", "3", "--interval", "0.1")

    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert "Refresh failed, trying again in 0.1 s" in result.stderr


def test_top_once_fails_with_its_refresh(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.drop_connection("GET", "/cluster/resources", times=4, after=1)

    result = pvekit(two_nodes, token, tmp_path, "top", "--once", "--interval", "0.1")

    assert result.exit_code == ExitCode.CONNECTION
    assert result.stdout == ""
    assert "connection failed" in result.stderr


def test_wait_deadline_names_last_failure(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.time_scale = 1.0
    two_nodes.pve.vms[0].shutdown_secs = 3600
    two_nodes.pve.fail("GET", "/status", 503, "pveproxy busy")

    result = pvekit(two_nodes, token, tmp_path, "--node", "pve1", "shutdown", "100", "--wait-timeout", "2")

    assert result.exit_code == ExitCode.FAILED
    assert "could not be read within 2 s (the last read failed with HTTP 503: pveproxy busy)" in result.stderr


def test_lost_action_shown_as_unknown(two_nodes: FakeCluster, token: str, tmp_path: Path) -> None:
    two_nodes.pve.drop_connection("POST", "/qemu/100/status/stop", times=2)

    result = pvekit(two_nodes, token, tmp_path, "stop", "100", "101", "--wait", "-o", "json")
    table = pvekit(two_nodes, token, tmp_path, "stop", "100", "101")

    lost = next(outcome for outcome in json.loads(result.stdout) if outcome["vmid"] == 100)
    assert lost["waited"] is False
    assert lost["succeeded"] is None
    assert "stop VM 100: unknown outcome" in result.stderr
    assert table.exit_code == ExitCode.OUTCOME_UNKNOWN
    assert table.stdout.splitlines()[1].split()[:4] == ["100", "stop", "unknown", "outcome"]
