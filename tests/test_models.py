"""Models built from PVE responses: power state, CPU fraction, VMIDs, config parsing and task status."""

from __future__ import annotations

import pytest

from pvekit import (
    CpuUsage,
    ExitStatus,
    Guest,
    PowerState,
    TaskStatus,
    VmConfig,
    VmStatus,
    parse_guest_id,
    vmid_from_task_id,
)

PAUSED_STATUS = {
    "vmid": 100, "name": "web01", "status": "running", "qmpstatus": "paused", "uptime": 3600,
    "cpu": 0, "cpus": 2, "mem": 1073741824, "maxmem": 2147483648, "agent": 1,
}  # fmt: skip


def test_paused_vm_is_paused_not_running() -> None:
    status = VmStatus.from_api(PAUSED_STATUS, "pve1", 100)

    assert status.power_state is PowerState.PAUSED
    assert not status.power_state.is_running
    assert status.uptime_seconds == 3600
    assert status.agent_enabled is True


def test_listing_row_without_qmpstatus_does_not_guess() -> None:
    row = {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "name": "web01", "status": "running"}

    guest = Guest.from_api(row)

    assert guest.power_state is PowerState.RUNNING_OR_PAUSED
    assert guest.power_state.value == "running (pause state unknown)"
    assert not guest.power_state.is_running


@pytest.mark.parametrize(
    ("status", "qmpstatus", "lock", "expected"),
    [
        ("running", "running", None, PowerState.RUNNING),
        ("running", "paused", None, PowerState.PAUSED),
        ("stopped", "stopped", None, PowerState.STOPPED),
        ("stopped", "stopped", "suspended", PowerState.HIBERNATED),
        ("unknown", None, None, PowerState.UNKNOWN),
    ],
)
def test_power_state_table(status: str, qmpstatus: str | None, lock: str | None, expected: PowerState) -> None:
    assert PowerState.from_api(status, qmpstatus, lock) is expected


def test_cpu_fraction_percent_and_cores() -> None:
    rows = [
        {"id": "node/pve1", "type": "node", "node": "pve1", "cpu": 0.255540285174369, "maxcpu": 48},
        {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "cpu": 0.5, "maxcpu": 4, "status": "running"},
    ]
    node = CpuUsage(rows[0]["cpu"], rows[0]["maxcpu"])  # type: ignore[arg-type]
    vm = Guest.from_api(rows[1])

    assert node.percent == pytest.approx(25.55, abs=0.01)
    assert node.cores == pytest.approx(12.27, abs=0.01)
    assert vm.cpu.ratio == 0.5
    assert vm.cpu.percent == 50.0
    assert vm.cpu.cores == 2.0


def test_numbers_sent_as_strings() -> None:
    row = {
        "vmid": "101",
        "node": "pve2",
        "status": "stopped",
        "mem": "1024",
        "maxmem": "2048",
        "cpu": "0.25",
        "maxcpu": "2",
    }

    guest = Guest.from_api(row)

    assert guest.vmid == 101
    assert isinstance(guest.vmid, int)
    assert guest.mem_bytes == 1024
    assert guest.cpu.cores == 0.5


def test_missing_optional_fields() -> None:
    status = VmStatus.from_api({}, "pve1", 100)
    guest = Guest.from_api({"vmid": 100})

    assert status.vmid == 100
    assert status.cpu.percent is None
    assert status.netin_bytes is None
    assert guest.tags == ()
    assert guest.power_state is PowerState.UNKNOWN


def test_container_row_recognised() -> None:
    guest = Guest.from_api({"id": "lxc/200", "type": "lxc", "vmid": 200, "node": "pve1", "status": "running"})

    assert guest.kind == "lxc"
    assert guest.is_container


def test_config_typed_fields() -> None:
    data = {
        "name": "web01", "cores": 2, "sockets": "1", "memory": "2048", "balloon": 1024,
        "agent": "enabled=1,fstrim_cloned_disks=1", "tags": "prod;web", "boot": "order=scsi0;net0", "onboot": 1,
        "net0": "virtio=bc:24:11:00:00:01,bridge=vmbr0,firewall=1,tag=20",
        "net1": "model=e1000,macaddr=BC:24:11:00:00:02,bridge=vmbr1",
        "scsi0": "local-lvm:vm-100-disk-0,iothread=1,size=32G",
        "ide2": "local:iso/debian-13.iso,media=cdrom,size=650M",
        "efidisk0": "local-lvm:vm-100-disk-1,efitype=4m,size=4M",
        "virtio1": "/dev/disk/by-id/ata-EXAMPLE,size=1T",
        "digest": "abc",
    }  # fmt: skip

    config = VmConfig.from_api(data, "pve1", 100)

    assert config.name == "web01"
    assert config.cores == 2
    assert config.sockets == 1
    assert config.memory_mib == 2048
    assert config.memory_bytes == 2048 * 1024 * 1024
    assert config.balloon_mib == 1024
    assert config.agent_enabled is True
    assert config.tags == ("prod", "web")
    assert config.boot == "order=scsi0;net0"
    assert config.onboot is True
    assert [(n.key, n.model, n.mac, n.bridge, n.vlan_tag, n.firewall) for n in config.nets] == [
        ("net0", "virtio", "BC:24:11:00:00:01", "vmbr0", 20, True),
        ("net1", "e1000", "BC:24:11:00:00:02", "vmbr1", None, False),
    ]
    disks = {disk.key: disk for disk in config.disks}
    assert disks["scsi0"].storage == "local-lvm"
    assert disks["scsi0"].volume == "local-lvm:vm-100-disk-0"
    assert disks["scsi0"].size_bytes == 32 * 1024**3
    assert disks["ide2"].media == "cdrom"
    assert disks["ide2"].size_bytes == 650 * 1024**2
    assert disks["efidisk0"].size_bytes == 4 * 1024**2
    assert disks["virtio1"].storage is None
    assert disks["virtio1"].size_bytes == 1024**4
    assert config.raw["digest"] == "abc"


def test_config_agent_disabled_forms() -> None:
    assert VmConfig.from_api({"agent": "0"}, "pve1", 100).agent_enabled is False
    assert VmConfig.from_api({}, "pve1", 100).agent_enabled is False
    assert VmConfig.from_api({"agent": "1"}, "pve1", 100).agent_enabled is True


WARNINGS_STATUS = {
    "upid": "UPID:pve1:00007323:001036A5:6419CAF8:qmstart:100:root@pam:", "node": "pve1", "pid": 29475,
    "pstart": 1062565, "starttime": 1679411960, "type": "qmstart", "id": "100", "user": "root@pam",
    "status": "stopped", "exitstatus": "WARNINGS: 1",
}  # fmt: skip
RUNNING_STATUS = {
    "upid": "UPID:pve1:000D7AA2:08D5A17C:63DF62A5:vzclone:200:root@pam!api_token:", "node": "pve1",
    "pid": 883362, "pstart": 148218236, "starttime": 1675584165, "type": "vzclone", "id": "200",
    "user": "root@pam", "tokenid": "api_token", "status": "running",
}  # fmt: skip


def test_task_warnings_is_success() -> None:
    status = TaskStatus.from_api(WARNINGS_STATUS, WARNINGS_STATUS["upid"])

    assert status.finished is True
    assert status.succeeded is True
    assert status.warnings == 1


def test_running_task_has_no_exitstatus() -> None:
    status = TaskStatus.from_api(RUNNING_STATUS, RUNNING_STATUS["upid"])

    assert status.finished is False
    assert status.exitstatus is None
    assert status.succeeded is None
    assert status.auth_id == "root@pam!api_token"


@pytest.mark.parametrize(
    ("text", "succeeded", "warnings"),
    [
        ("OK", True, 0),
        ("WARNINGS: 1", True, 1),
        ("WARNINGS: 12", True, 12),
        ("unexpected status", False, 0),
        ("start failed: QEMU exited with code 1", False, 0),
    ],
)
def test_exit_status_classification(text: str, succeeded: bool, warnings: int) -> None:
    outcome = ExitStatus.classify(text)

    assert outcome.succeeded is succeeded
    assert outcome.warnings == warnings
    assert outcome.text == text


def test_vmid_number_or_string_is_int() -> None:
    status = VmStatus.from_api({"vmid": 100, "status": "running", "name": "web01"}, "pve1", 100)
    container = Guest.from_api({"vmid": "101", "type": "lxc", "status": "running", "name": "ct01"})

    assert status.vmid == 100
    assert container.vmid == 101
    assert isinstance(container.vmid, int)
    assert container.kind == "lxc"


def test_task_id_stays_text() -> None:
    status = TaskStatus.from_api({"id": "100", "type": "qmstart", "status": "stopped", "exitstatus": "OK"}, UPID_100)

    assert status.id == "100"
    assert status.vmid == 100
    assert vmid_from_task_id("100") == 100
    assert vmid_from_task_id("") is None
    assert vmid_from_task_id("local-lvm") is None


def test_resource_id_parsed() -> None:
    assert parse_guest_id("qemu/100") == ("qemu", 100)
    assert parse_guest_id("lxc/101") == ("lxc", 101)
    with pytest.raises(ValueError, match="qemu/VMID"):
        parse_guest_id("node/pve1")
    assert Guest.from_api({"id": "lxc/200", "vmid": 200}).kind == "lxc"


UPID_100 = "UPID:pve1:00007323:001036A5:6419CAF8:qmstart:100:root@pam:"
