"""Tests of ``pvekit top``: one refresh without the full screen, and the live view in a real terminal (tmux)."""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import run_on, write_private
from rich.console import Console

from fakecluster import DEMO_VMS, FakeCluster, build_demo
from pvekit import Client, PowerState
from pvekit.cli.output import power_state_json, power_state_label
from pvekit.cli.top import render_screen, sort_rates

# Seconds to wait for the live view to draw, and for pvekit to exit after q.
TMUX_TIMEOUT_SECONDS = 20.0


@pytest.fixture
def demo(cluster: FakeCluster) -> FakeCluster:
    """The test's cluster with the demo's 3 nodes and 10 VMs."""
    build_demo(cluster)
    return cluster


def test_top_once_table_sorted_by_cpu(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = run_on(demo, token, ["top", "--once", "--interval", "0.2"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.match(rf"pvekit top - {re.escape(demo.host)} - 10 guests, 7 running - sort: cpu - every 0.2 s", lines[0])
    assert lines[1].split()[:3] == ["VMID", "NAME", "NODE"]
    rows = [line.split() for line in lines[3:]]
    running = sorted((vm for vm in DEMO_VMS if vm.running), key=lambda vm: -vm.rates.cpu)
    assert [row[1] for row in rows[: len(running)]] == [vm.name for vm in running]
    assert {row[1] for row in rows[len(running) :]} == {vm.name for vm in DEMO_VMS if not vm.running}
    assert re.search(r"db01 .* running +35\.0% .* KiB/s", result.stdout)


def test_top_once_json(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = run_on(
        demo, token, ["top", "--once", "--interval", "0.2", "--sort", "netin", "-o", "json"], config_home=tmp_path
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    screen = json.loads(lines[0])
    assert screen["sort"] == "netin"
    assert screen["offline_nodes"] == []
    guests = {guest["vmid"]: guest for guest in screen["guests"]}
    assert set(guests) == {vm.vmid for vm in DEMO_VMS}
    for vm in DEMO_VMS:
        guest = guests[vm.vmid]
        # /cluster/resources does not say whether a running VM is paused.
        assert guest["status"] == ("running" if vm.running else "stopped"), vm.name
        assert guest["power_state"] == ("running_or_paused" if vm.running else "stopped"), vm.name
        if vm.running:
            assert guest["netin_per_second"] == pytest.approx(vm.rates.netin, rel=0.5), vm.name
            assert guest["interval_seconds"] == pytest.approx(0.2, abs=0.15), vm.name
        else:
            assert guest["netin_per_second"] is None, vm.name
    order = [guest["netin_per_second"] for guest in screen["guests"] if guest["netin_per_second"] is not None]
    assert order == sorted(order, reverse=True)


@pytest.mark.parametrize(
    ("state", "status", "label", "json_name"),
    [
        (PowerState.RUNNING_OR_PAUSED, "running", "running", "running_or_paused"),
        (PowerState.RUNNING, "running", "running", "running"),
        (PowerState.PAUSED, "running", "paused", "paused"),
        (PowerState.STOPPED, "stopped", "stopped", "stopped"),
        (PowerState.HIBERNATED, "stopped", "hibernated", "hibernated"),
        (PowerState.UNKNOWN, None, "unknown", "unknown"),
        (PowerState.UNKNOWN, "prelaunch", "prelaunch", "unknown"),
    ],
)
def test_power_state_label_and_json_name(state: PowerState, status: str | None, label: str, json_name: str) -> None:
    assert power_state_label(state, status) == label
    assert power_state_json(state) == json_name


def test_top_iterations_and_node_filter(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = run_on(
        demo,
        token,
        ["top", "--iterations", "2", "--interval", "0.2", "--node", "pve2", "--sort", "name", "-o", "json"],
        config_home=tmp_path,
    )

    assert result.exit_code == 0, result.output
    screens = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(screens) == 2
    for screen in screens:
        assert [guest["name"] for guest in screen["guests"]] == ["backup01", "cache01", "web02"]


def test_screen_rows_fit_height(demo: FakeCluster, token: str) -> None:
    with Client(demo.host, token, ca_file=demo.ca_file) as client:
        rates = client.metrics.sampler(0.2).sample()
    console = Console(width=160, height=8, record=True, file=io.StringIO())

    console.print(render_screen(rates, order="name", node=None, host=demo.host, interval=2.0, height=8, problem=None))

    text = console.export_text()
    names = [rate.name or "" for rate in sort_rates(rates, "name", None)]
    # The summary, the table's header and rule, and the footer leave 4 of the 8 lines for guests.
    assert len(text.splitlines()) == 8
    assert all(name in text for name in names[:4])
    assert not any(name in text for name in names[4:])
    assert "showing 4 of 10" in text


@pytest.fixture
def tmux_socket(tmp_path: Path) -> Iterator[Path]:
    """A tmux server of this test only, on its own socket, killed afterwards."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed; install it (apt-get install tmux) to test the live view in a terminal")
    socket = tmp_path / "tmux.sock"
    yield socket
    subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False, timeout=10)


def tmux(socket: Path, *args: str) -> str:
    completed = subprocess.run(
        ["tmux", "-S", str(socket), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return completed.stdout


def wait_for_pane(socket: Path, pattern: str) -> str:
    """Return the pane's text once it matches ``pattern``; fail after TMUX_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + TMUX_TIMEOUT_SECONDS
    text = ""
    while time.monotonic() < deadline:
        text = tmux(socket, "capture-pane", "-p", "-t", "top")
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"the pane never showed {pattern!r}; it shows:\n{text}")


def test_top_live_view_in_terminal(demo: FakeCluster, token: str, tmp_path: Path, tmux_socket: Path) -> None:
    token_file = write_private(tmp_path / "pve.token", token)
    script = tmp_path / "run-top.sh"
    # The script records the terminal settings before and after pvekit, so the test can see that they
    # were restored, then keeps the pane open for capture-pane.
    script.write_text(
        f"""export XDG_CONFIG_HOME={shlex.quote(str(tmp_path))}
export PVE_HOST={shlex.quote(demo.host)} PVE_CA_FILE={shlex.quote(demo.ca_file)}
export PVE_TOKEN_FILE={shlex.quote(str(token_file))}
before=$(stty -g)
{shlex.quote(sys.executable)} -m pvekit top --interval 0.2
status=$?
[ "$before" = "$(stty -g)" ] && echo TERMINAL-RESTORED
echo "EXIT-STATUS=$status"
sleep 60
""",
        encoding="utf-8",
    )

    tmux(tmux_socket, "new-session", "-d", "-s", "top", "-x", "160", "-y", "30", f"sh {shlex.quote(str(script))}")
    screen = wait_for_pane(tmux_socket, r"db01.*KiB/s")
    in_alternate_screen = tmux(tmux_socket, "display-message", "-p", "-t", "top", "#{alternate_on}").strip()
    tmux(tmux_socket, "send-keys", "-t", "top", "n")
    sorted_by_name = wait_for_pane(tmux_socket, r"sort: name")
    tmux(tmux_socket, "send-keys", "-t", "top", "q")
    after = wait_for_pane(tmux_socket, r"EXIT-STATUS=\d+")
    alternate_after = tmux(tmux_socket, "display-message", "-p", "-t", "top", "#{alternate_on}").strip()

    assert in_alternate_screen == "1"
    for vm in DEMO_VMS:
        assert vm.name in screen, vm.name
    assert "q quit" in screen
    assert sorted_by_name.index("backup01") < sorted_by_name.index("web01")
    assert "EXIT-STATUS=0" in after
    assert "TERMINAL-RESTORED" in after
    assert alternate_after == "0"
    assert "Error" not in after
