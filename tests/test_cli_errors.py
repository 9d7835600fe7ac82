"""Tests of pvekit's exit statuses, error messages and settings sources, and that no secret is printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import connection_args, free_loopback_port, parse_json, run, run_on, write_private
from conftest import TEST_TOKEN_SECRET

from fakecluster import FakeCluster, build_demo

WRONG_SECRET = "00000000-0000-0000-0000-00000000dead"


@pytest.fixture
def demo(cluster: FakeCluster) -> FakeCluster:
    """The test's cluster with the demo's 3 nodes and 10 VMs."""
    build_demo(cluster)
    return cluster


def test_wrong_token_exits_3_and_names_token_id(demo: FakeCluster, tmp_path: Path) -> None:
    wrong = f"root@pam!pvekit-test={WRONG_SECRET}"

    result = run_on(demo, wrong, ["vms"], config_home=tmp_path)

    assert result.exit_code == 3
    assert f"PVE on {demo.host} rejected the API token root@pam!pvekit-test (HTTP 401)" in result.stderr
    assert "check the token id and secret" in result.stderr
    assert WRONG_SECRET not in result.output
    assert result.stdout == ""


def test_permission_denied_exits_3_and_names_privilege(demo: FakeCluster, tmp_path: Path) -> None:
    token = demo.add_token("ops@pve", "cli", "00000000-0000-0000-0000-0000000000a1")
    demo.pve.grant("ops@pve!cli", "/", "VM.Audit")

    listed = run_on(demo, token, ["vms", "-o", "json"], config_home=tmp_path)
    started = run_on(demo, token, ["start", "106"], config_home=tmp_path)

    assert listed.exit_code == 0, listed.output
    assert started.exit_code == 3
    assert "Permission check failed (/vms/106, VM.PowerMgmt)" in started.stderr
    assert "give the token ops@pve!cli a role with that privilege" in started.stderr


def test_unknown_vmid_exits_5(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    for command in (["status", "999"], ["config", "999"], ["metrics", "999"], ["rrd", "999"], ["ips", "999"]):
        result = run_on(demo, token, command, config_home=tmp_path)

        assert result.exit_code == 5, command
        assert "VM 999 not found in the cluster; check the VMID with `pvekit vms`" in result.stderr, command
        assert "HTTP 404" not in result.stderr, command


def test_vmid_outside_pve_range_is_usage_error(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = run_on(demo, token, ["status", "99"], config_home=tmp_path)

    assert result.exit_code == 2
    assert "Invalid value for 'VMID': 99 is not in the range 100<=x<=999999999" in result.stderr


def test_unreachable_host_exits_4(tmp_path: Path, cluster: FakeCluster, token: str) -> None:
    port = free_loopback_port()

    result = run(
        ["--host", f"127.0.0.1:{port}", "--ca-file", cluster.ca_file, "vms"],
        config_home=tmp_path,
        env={"PVE_TOKEN": token},
    )

    assert result.exit_code == 4
    assert f"https://127.0.0.1:{port}/api2/json/cluster/resources: connection failed" in result.stderr
    assert f"check the host name, the port ({port}) and that pveproxy runs" in result.stderr


def test_certificate_not_trusted_exits_4(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    # Without --ca-file the system's CAs are used, and they do not trust the fake's own certificate.
    result = run(["--host", demo.host, "vms"], config_home=tmp_path, env={"PVE_TOKEN": token})

    assert result.exit_code == 4
    assert "TLS certificate verification failed" in result.stderr
    assert "In pvekit, these are --ca-file PATH and --fingerprint SHA256" in result.stderr
    assert f"pvekit trust {demo.host} shows the node's certificate and pins it" in result.stderr


def test_missing_host_is_usage_error(tmp_path: Path, token: str) -> None:
    result = run(["vms"], config_home=tmp_path, env={"PVE_TOKEN": token})

    assert result.exit_code == 2
    assert "Error: no PVE host given; pass --host pve1.example.com, set PVE_HOST" in result.stderr


def test_malformed_token_is_usage_error_without_secret(demo: FakeCluster, tmp_path: Path) -> None:
    result = run_on(demo, f"root@pam:pvekit-test={WRONG_SECRET}", ["vms"], config_home=tmp_path)

    assert result.exit_code == 2
    assert "API token has no '!'" in result.stderr
    assert "token: PVE_TOKEN" in result.stderr
    assert WRONG_SECRET not in result.output


def test_unreadable_ca_file_is_usage_error(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing-ca.pem"

    result = run(
        ["--host", demo.host, "--ca-file", str(missing), "vms"], config_home=tmp_path, env={"PVE_TOKEN": token}
    )

    assert result.exit_code == 2
    assert f"CA file '{missing}' cannot be read as PEM certificates" in result.stderr


def test_token_from_file(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    token_file = write_private(tmp_path / "pve.token", token + "\n")

    result = run([*connection_args(demo), "--token-file", str(token_file), "vms", "-o", "json"], config_home=tmp_path)

    assert len(parse_json(result)) == 10


def test_token_from_standard_input(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = run(
        [*connection_args(demo), "--token-file", "-", "vms", "-o", "json"], config_home=tmp_path, stdin=token + "\n"
    )

    assert len(parse_json(result)) == 10


def test_settings_from_named_profile(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    token_file = write_private(tmp_path / "lab.token", token)
    config = tmp_path / "pvekit" / "config.toml"
    config.parent.mkdir()
    write_private(
        config,
        f'[profiles.default]\nhost = "pve1.example.com"\ntoken_file = "{token_file}"\n\n'
        f'[profiles.lab]\nhost = "{demo.host}"\ntoken_file = "{token_file}"\nca_file = "{demo.ca_file}"\n'
        'node = "pve2"\n',
    )

    listed = run(["--profile", "lab", "vms", "-o", "json"], config_home=tmp_path)
    on_profile_node = run(["--profile", "lab", "status", "101", "-o", "json"], config_home=tmp_path)
    off_profile_node = run(["--profile", "lab", "status", "100"], config_home=tmp_path)

    assert len(parse_json(listed)) == 10
    assert parse_json(on_profile_node)["node"] == "pve2"
    assert off_profile_node.exit_code == 5
    assert f"(the node 'pve2' comes from profile 'lab' in {config})" in off_profile_node.stderr


def test_flags_override_profile(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    config = tmp_path / "pvekit" / "config.toml"
    config.parent.mkdir()
    write_private(config, '[profiles.default]\nhost = "pve1.example.com"\nca_file = "/nonexistent/ca.pem"\n')

    result = run([*connection_args(demo), "vms", "-o", "json"], config_home=tmp_path, env={"PVE_TOKEN": token})

    assert len(parse_json(result)) == 10


def test_unknown_profile_is_usage_error(tmp_path: Path) -> None:
    result = run(["--profile", "nope", "vms"], config_home=tmp_path)

    assert result.exit_code == 2
    assert "profile 'nope' not found" in result.stderr


def test_no_secret_in_any_output(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    demo.pve.vm(106).start_error = "boom"
    commands = [
        ["-vv", "vms"],
        ["-vv", "status", "100"],
        ["-vv", "start", "106", "--wait", "--follow"],
        ["-vv", "status", "999"],
        ["-vv", "top", "--once", "--interval", "0.2"],
        ["--token", f"root@pam!pvekit-test={TEST_TOKEN_SECRET}x", "vms"],
    ]
    for command in commands:
        result = run_on(demo, token, command, config_home=tmp_path)

        assert TEST_TOKEN_SECRET not in result.output, command
        assert TEST_TOKEN_SECRET not in repr(result.exception), command


def test_verbose_logs_requests_to_stderr(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = run_on(demo, token, ["-vv", "vms", "-o", "json"], config_home=tmp_path)

    assert result.exit_code == 0
    assert "Debug: GET /cluster/resources" in result.stderr
    assert "Debug" not in result.stdout


def test_help_of_every_command(tmp_path: Path) -> None:
    commands = [
        ["vms"], ["status"], ["config"], ["ips"], ["metrics"], ["rrd"], ["start"], ["stop"], ["shutdown"],
        ["reboot"], ["reset"], ["suspend"], ["resume"], ["task"], ["task", "status"], ["task", "log"],
        ["task", "wait"], ["task", "stop"], ["top"], ["trust"],
    ]  # fmt: skip
    root = run(["--help"], config_home=tmp_path)

    assert root.exit_code == 0
    assert "_PVEKIT_COMPLETE=bash_source pvekit" in root.stdout
    assert "3    authentication or permission failure" in root.stdout
    assert "prefer --token-file or PVE_TOKEN" in root.stdout
    for command in commands:
        result = run([*command, "--help"], config_home=tmp_path)

        assert result.exit_code == 0, command
        assert "Example" in result.stdout, command
        assert "Exit status:" in result.stdout, command


def test_version(tmp_path: Path) -> None:
    from pvekit import __version__

    result = run(["--version"], config_home=tmp_path)

    assert result.stdout.strip() == f"pvekit {__version__}"


def test_python_dash_m_runs_the_tool(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}

    completed = subprocess.run(
        [sys.executable, "-m", "pvekit", "--help"], capture_output=True, text=True, env=env, timeout=60, check=False
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("Usage: pvekit [OPTIONS] COMMAND [ARGS]...")


def test_bash_completion_script(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "_PVEKIT_COMPLETE": "bash_source"}

    completed = subprocess.run(
        [sys.executable, "-m", "pvekit"], capture_output=True, text=True, env=env, timeout=60, check=False
    )

    assert completed.returncode == 0, completed.stderr
    assert "_PVEKIT_COMPLETE=bash_complete" in completed.stdout
    assert "complete -o nosort -F" in completed.stdout


def test_entry_point_says_how_to_install_missing_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pvekit import _entry

    real_find_spec = _entry.importlib.util.find_spec
    monkeypatch.setattr(
        _entry.importlib.util, "find_spec", lambda name: None if name == "plotext" else real_find_spec(name)
    )

    with pytest.raises(SystemExit) as exited:
        _entry.main()

    assert exited.value.code == 2
    assert capsys.readouterr().err == "pvekit's command-line tool needs its extra: pip install 'pvekit[cli]'\n"
