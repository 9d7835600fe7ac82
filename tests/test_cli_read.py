"""Tests of the read commands (vms, status, config, ips, metrics, rrd) against the demo cluster."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from cli_support import parse_json, run_on

from fakecluster import DEMO_VMS, RRD_POINTS, FakeCluster, build_demo
from fakecluster.demo import guest_agent_results

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
GUEST_KEYS = {
    "vmid", "name", "node", "type", "status", "power_state", "cpu_ratio", "cpus", "mem_bytes", "maxmem_bytes",
    "maxdisk_bytes", "uptime_seconds", "tags", "pool", "lock", "template", "ha_state",
}  # fmt: skip
RATE_KEYS = ("netin_per_second", "netout_per_second", "diskread_per_second", "diskwrite_per_second")


@pytest.fixture
def demo(cluster: FakeCluster) -> FakeCluster:
    """The test's cluster with the demo's 3 nodes and 10 VMs."""
    build_demo(cluster)
    return cluster


def pvekit(cluster: FakeCluster, token: str, tmp_path: Path, *args: str) -> Any:
    """Run pvekit against the cluster and return the click Result."""
    return run_on(cluster, token, args, config_home=tmp_path)


# ------------------------------------------------------------------ vms


def test_vms_table_lists_every_vm(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "vms")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["VMID", "NAME", "NODE", "STATUS"]
    for vm in DEMO_VMS:
        assert any(line.split()[:3] == [str(vm.vmid), vm.name, vm.node] for line in lines), vm.name


def test_vms_json_shape(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    rows = parse_json(pvekit(demo, token, tmp_path, "vms", "--output", "json"))

    assert [row["vmid"] for row in rows] == sorted(vm.vmid for vm in DEMO_VMS)
    web01 = rows[0]
    assert set(web01) == GUEST_KEYS
    assert web01["name"] == "web01"
    assert web01["type"] == "qemu"
    assert web01["status"] == "running"
    # The listing does not say whether a running VM is paused.
    assert web01["power_state"] == "running_or_paused"
    assert web01["tags"] == ["web", "prod"]
    assert web01["pool"] == "production"
    assert web01["cpus"] == 2
    assert isinstance(web01["mem_bytes"], int)
    assert web01["maxmem_bytes"] == 2048 * 1024 * 1024
    assert web01["template"] is False
    assert web01["lock"] is None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--node", "pve2"], [101, 104, 108]),
        (["--status", "stopped"], [105, 106, 108]),
        (["--tag", "prod", "--tag", "db"], [102, 103]),
        (["--pool", "production"], [100, 101, 102, 103]),
        (["--name", "web*"], [100, 101]),
        (["--node", "pve1", "--status", "running", "--name", "d*"], [102, 109]),
    ],
)
def test_vms_filters(demo: FakeCluster, token: str, tmp_path: Path, filters: list[str], expected: list[int]) -> None:
    rows = parse_json(pvekit(demo, token, tmp_path, "vms", *filters, "-o", "json"))

    assert [row["vmid"] for row in rows] == expected


def test_vms_unknown_node_is_not_found(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "vms", "--node", "pve9")

    assert result.exit_code == 5
    assert "node 'pve9' not found; the cluster's nodes: pve1, pve2, pve3" in result.stderr


# ------------------------------------------------------------------ status and config


def test_status_table(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "status", "100")

    assert result.exit_code == 0, result.output
    assert re.search(r"Name\s+web01", result.stdout)
    assert re.search(r"Node\s+pve1", result.stdout)
    assert re.search(r"CPU\s+12\.0% of 2 CPUs", result.stdout)
    assert re.search(r"Memory\s+1\.00 GiB / 2\.00 GiB \(50%\)", result.stdout)
    assert re.search(r"Guest agent\s+yes", result.stdout)


def test_status_json_shape(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    data = parse_json(pvekit(demo, token, tmp_path, "status", "102", "-o", "json"))

    assert data["vmid"] == 102
    assert data["node"] == "pve1"
    assert data["status"] == "running"
    assert data["power_state"] == "running"
    assert data["qmpstatus"] == "running"
    assert data["cpu_ratio"] == pytest.approx(0.35)
    assert data["cpus"] == 4
    assert data["maxmem_bytes"] == 8192 * 1024 * 1024
    for key in ("netin_bytes", "netout_bytes", "diskread_bytes", "diskwrite_bytes", "uptime_seconds"):
        assert isinstance(data[key], int), key
    assert isinstance(data["nics"], dict)
    assert data["ha_managed"] is False
    assert data["agent_enabled"] is True
    assert data["tags"] == ["db", "prod"]


def test_status_of_stopped_vm(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    data = parse_json(pvekit(demo, token, tmp_path, "status", "105", "-o", "json"))

    assert data["status"] == "stopped"
    assert data["power_state"] == "stopped"


def test_status_with_node_option(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    found = pvekit(demo, token, tmp_path, "status", "101", "--node", "pve2", "-o", "json")
    wrong_node = pvekit(demo, token, tmp_path, "status", "101", "--node", "pve1")

    assert parse_json(found)["node"] == "pve2"
    assert wrong_node.exit_code == 5
    assert "VM 101 not found on node 'pve1'" in wrong_node.stderr


def test_config_table_shows_devices_and_every_key(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "config", "100")

    assert result.exit_code == 0, result.output
    assert re.search(r"Memory\s+2048 MiB", result.stdout)
    assert re.search(r"net0\s+virtio\s+BC:24:11:00:00:01\s+vmbr0", result.stdout)
    assert re.search(r"scsi0\s+local-lvm\s+local-lvm:vm-100-disk-0\s+32\.00 GiB", result.stdout)
    assert re.search(r"ostype\s+l26", result.stdout)


def test_config_json_shape(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    data = parse_json(pvekit(demo, token, tmp_path, "config", "102", "-o", "json"))

    assert data["vmid"] == 102
    assert data["name"] == "db01"
    assert data["cores"] == 4
    assert data["memory_mib"] == 8192
    assert data["memory_bytes"] == 8192 * 1024 * 1024
    assert data["agent_enabled"] is True
    assert data["nets"] == [
        {
            "key": "net0",
            "model": "virtio",
            "mac": "BC:24:11:00:00:03",
            "bridge": "vmbr0",
            "vlan_tag": None,
            "firewall": False,
            "options": {"virtio": "BC:24:11:00:00:03", "bridge": "vmbr0"},
        }
    ]
    assert data["disks"][0]["key"] == "scsi0"
    assert data["disks"][0]["storage"] == "local-lvm"
    assert data["disks"][0]["size_bytes"] == 32 * 1024**3
    assert data["raw"]["ostype"] == "l26"
    assert data["raw"]["tags"] == "db;prod"


# ------------------------------------------------------------------ ips


def agent_addresses(vmid: int) -> dict[str, list[str]]:
    """Return the demo agent's addresses of a VM by interface, as the fake reports them."""
    index, vm = next((i, vm) for i, vm in enumerate(DEMO_VMS) if vm.vmid == vmid)
    interfaces: list[dict[str, Any]] = guest_agent_results(index, vm)["interfaces"]  # type: ignore[assignment]
    return {nic["name"]: [entry["ip-address"] for entry in nic.get("ip-addresses", [])] for nic in interfaces}


def test_ips_shows_usable_addresses_only(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    expected = agent_addresses(100)
    usable = [address for address in expected["eth0"] if not address.startswith("fe80:")]

    data = parse_json(pvekit(demo, token, tmp_path, "ips", "100", "-o", "json"))

    assert data["vmid"] == 100
    assert data["node"] == "pve1"
    assert data["primary_address"] == usable[0]
    assert [nic["name"] for nic in data["interfaces"]] == ["eth0"]
    assert [entry["address"] for entry in data["interfaces"][0]["addresses"]] == usable
    assert data["interfaces"][0]["mac"] == "bc:24:11:00:00:01"
    assert data["interfaces"][0]["addresses"][0]["family"] == "ipv4"
    assert data["interfaces"][0]["addresses"][0]["prefix"] == 24


def test_ips_all_shows_every_interface(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    expected = agent_addresses(100)

    data = parse_json(pvekit(demo, token, tmp_path, "ips", "100", "--all", "-o", "json"))
    table = pvekit(demo, token, tmp_path, "ips", "100", "--all")

    reported = {nic["name"]: [entry["address"] for entry in nic["addresses"]] for nic in data["interfaces"]}
    assert reported == expected
    assert reported["docker0"] == []
    assert table.exit_code == 0
    assert re.search(r"docker0\s+02:42:00:00:00:01\s+-", table.stdout)
    assert "fe80:" in table.stdout
    assert "127.0.0.1/8" in table.stdout


def test_ips_table_hides_loopback_and_link_local(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "ips", "100")

    assert result.exit_code == 0, result.output
    assert "eth0" in result.stdout
    assert "127.0.0.1" not in result.stdout
    assert "fe80:" not in result.stdout
    assert "docker0" not in result.stdout


def test_ips_agent_not_running(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "ips", "103")

    assert result.exit_code == 1
    assert "VM 103 on pve3: QEMU guest agent is not running" in result.stderr
    assert "install and start qemu-guest-agent" in result.stderr


# ------------------------------------------------------------------ metrics


def test_metrics_snapshot_json_shape(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    data = parse_json(pvekit(demo, token, tmp_path, "metrics", "100", "-o", "json"))

    assert data["vmid"] == 100
    assert data["name"] == "web01"
    assert data["status"] == "running"
    assert data["cpu_ratio"] == pytest.approx(0.12)
    assert ISO_UTC.match(data["received_at"])
    for key in ("netin_bytes", "netout_bytes", "diskread_bytes", "diskwrite_bytes"):
        assert isinstance(data[key], int), key
        assert data[key] > 0, key
    assert not any(key in data for key in RATE_KEYS)


def test_metrics_table_shows_totals(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "metrics", "100")

    assert result.exit_code == 0, result.output
    assert re.search(r"Net in \(total\)\s+\d+\.\d\d GiB", result.stdout)


def test_metrics_interval_gives_rates(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    data = parse_json(pvekit(demo, token, tmp_path, "metrics", "102", "--interval", "0.2", "-o", "json"))

    assert data["interval_seconds"] == pytest.approx(0.2, abs=0.15)
    db01 = next(vm for vm in DEMO_VMS if vm.vmid == 102)
    # Two requests 0.2 s apart: the fake's counters are exact at request time, the client's clock is read
    # at each response, so request latency shifts the measured rate a little.
    assert data["netin_per_second"] == pytest.approx(db01.rates.netin, rel=0.5)
    assert data["diskwrite_per_second"] == pytest.approx(db01.rates.diskwrite, rel=0.5)
    assert data["resets"] == []


def test_metrics_interval_table(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "metrics", "100", "--interval", "0.2")

    assert result.exit_code == 0, result.output
    assert re.search(r"Measured over\s+0\.\d\d s", result.stdout)
    assert re.search(r"Net out\s+\d+\.\d\d (KiB|MiB)/s", result.stdout)


def test_metrics_interval_of_stopped_vm_has_no_rates(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    data = parse_json(pvekit(demo, token, tmp_path, "metrics", "105", "--interval", "0.2", "-o", "json"))
    table = pvekit(demo, token, tmp_path, "metrics", "105", "--interval", "0.2")

    assert all(data[key] is None for key in RATE_KEYS)
    assert re.search(r"Net in\s+-", table.stdout)
    assert "the VM is not running, so there is no rate" in table.stdout


def test_metrics_rejects_zero_interval(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "metrics", "100", "--interval", "0")

    assert result.exit_code == 2
    assert "Invalid value for '--interval'" in result.stderr


# ------------------------------------------------------------------ rrd


def test_rrd_json_shape(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    data = parse_json(pvekit(demo, token, tmp_path, "rrd", "100", "-o", "json"))

    assert data["vmid"] == 100
    assert data["timeframe"] == "hour"
    assert data["cf"] == "AVERAGE"
    points = data["points"]
    assert len(points) == RRD_POINTS
    assert all(ISO_UTC.match(point["time"]) for point in points)
    assert [point["time"] for point in points] == sorted(point["time"] for point in points)
    full = points[0]
    assert full["netin_per_second"] == pytest.approx(400 * 1024)
    assert full["cpu_ratio"] == pytest.approx(0.12)
    # The newest point is not consolidated yet: its values are null, never 0.
    assert points[-1]["netin_per_second"] is None
    assert points[-1]["cpu_ratio"] is None


def test_rrd_outage_points_are_null(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    data = parse_json(pvekit(demo, token, tmp_path, "rrd", "104", "-o", "json"))

    values = [point["netin_per_second"] for point in data["points"]]
    # cache01 was stopped from 40 to 25 minutes ago.
    assert None in values[:-2]
    assert 0 not in values


def test_rrd_csv(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "rrd", "100", "--timeframe", "day", "--cf", "max", "-o", "csv")

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == RRD_POINTS
    assert list(rows[0]) == [
        "time", "cpu_ratio", "maxcpu", "mem_bytes", "maxmem_bytes", "netin_per_second", "netout_per_second",
        "diskread_per_second", "diskwrite_per_second", "disk_bytes", "maxdisk_bytes",
    ]  # fmt: skip
    assert ISO_UTC.match(rows[0]["time"])
    assert rows[-1]["netin_per_second"] == ""


def test_rrd_table_without_chart_when_not_a_terminal(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "rrd", "100")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["TIME", "CPU"]
    assert len(lines) == RRD_POINTS + 1
    assert "400.00 KiB/s" in result.stdout
    assert "┤" not in result.stdout


def test_rrd_chart_on_request(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "rrd", "100", "--chart")

    assert result.exit_code == 0, result.output
    assert "VM 100, hour, AVERAGE: Network (MiB/s)" in result.stdout
    assert "Disk (KiB/s)" in result.stdout
    assert "CPU (% of the VM's CPUs)" in result.stdout
    assert "\x1b[" not in result.stdout


def test_rrd_chart_of_vm_without_data(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "rrd", "105", "--chart")

    assert result.exit_code == 0, result.output
    assert "No RRD point has values yet, so there is no chart." in result.stderr


def test_rrd_bad_timeframe_is_usage_error(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = pvekit(demo, token, tmp_path, "rrd", "100", "--timeframe", "fortnight")

    assert result.exit_code == 2
    assert "Invalid value for '--timeframe': 'fortnight' is not one of 'hour', 'day'" in result.stderr
    assert result.stdout == ""
