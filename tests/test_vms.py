"""VM listings, status, configuration and node lookup against the fake cluster, on both clients."""

from __future__ import annotations

import pytest

from fakecluster import FakeCluster
from pvekit import Guest, InvalidInputError, NodeUnreachableError, PowerState, VmNotFoundError
from tests.conftest import Api

CONFIG = {
    "cores": 2,
    "sockets": 1,
    "memory": "2048",
    "agent": "1",
    "tags": "prod;web",
    "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
    "scsi0": "local-lvm:vm-100-disk-0,size=32G",
}


@pytest.fixture
def vms(cluster: FakeCluster) -> FakeCluster:
    """Three VMs on two nodes, one container, one VM paused."""
    pve = cluster.pve
    pve.add_vm(100, "web01", node="pve1", status="running", config=CONFIG, pool="production")
    pve.add_vm(101, "db01", node="pve2", status="stopped", config={"tags": "prod"})
    paused = pve.add_vm(102, "batch01", node="pve2", status="running")
    paused.qmpstatus = "paused"
    pve.add_ct(200, "proxy01", node="pve1", status="running")
    return cluster


async def test_cluster_listing_one_request(api: Api, vms: FakeCluster) -> None:
    before = len(vms.pve.requests)

    listed = await api.call(lambda pve: pve.vms.list())

    assert [vm.vmid for vm in listed] == [100, 101, 102]
    assert all(isinstance(vm, Guest) and vm.kind == "qemu" for vm in listed)
    assert [path for _, path, _ in vms.pve.requests[before:]] == ["/api2/json/cluster/resources"]


async def test_containers_recognised(api: Api, vms: FakeCluster) -> None:
    guests = await api.call(lambda pve: pve.cluster.guests())

    kinds = {guest.vmid: guest.kind for guest in guests}
    assert kinds[200] == "lxc"
    assert kinds[100] == "qemu"


async def test_node_listing(api: Api, vms: FakeCluster) -> None:
    listed = await api.call(lambda pve: pve.vms.list("pve2"))

    assert [(vm.vmid, vm.node) for vm in listed] == [(101, "pve2"), (102, "pve2")]


async def test_listing_filters(api: Api, vms: FakeCluster) -> None:
    running = await api.call(lambda pve: pve.vms.list(status="running"))
    tagged = await api.call(lambda pve: pve.vms.list(tags=["prod"]))
    pooled = await api.call(lambda pve: pve.vms.list(pool="production"))
    named = await api.call(lambda pve: pve.vms.list(name="*01"))

    assert [vm.vmid for vm in running] == [100, 102]
    assert [vm.vmid for vm in tagged] == [100, 101]
    assert [vm.vmid for vm in pooled] == [100]
    assert [vm.vmid for vm in named] == [100, 101, 102]


async def test_status_power_states(api: Api, vms: FakeCluster) -> None:
    running = await api.call(lambda pve: pve.vms.status(100))
    stopped = await api.call(lambda pve: pve.vms.status(101))
    paused = await api.call(lambda pve: pve.vms.status(102))

    assert running.power_state is PowerState.RUNNING
    assert running.node == "pve1"
    assert running.maxmem_bytes == 2048 * 1024 * 1024
    assert stopped.power_state is PowerState.STOPPED
    assert paused.power_state is PowerState.PAUSED
    assert paused.status == "running"


async def test_hibernated_state(api: Api, vms: FakeCluster) -> None:
    task = await api.call(lambda pve: pve.vms.suspend(100, to_disk=True))
    await api.call(lambda pve: task.wait(timeout=10))

    status = await api.call(lambda pve: pve.vms.status(100))

    assert status.power_state is PowerState.HIBERNATED
    assert status.lock == "suspended"


async def test_config_typed_and_raw(api: Api, vms: FakeCluster) -> None:
    config = await api.call(lambda pve: pve.vms.config(100))

    assert config.cores == 2
    assert config.memory_mib == 2048
    assert config.agent_enabled is True
    assert config.tags == ("prod", "web")
    assert config.nets[0].mac == "BC:24:11:00:00:01"
    assert config.nets[0].bridge == "vmbr0"
    assert config.disks[0].size_bytes == 32 * 1024**3
    assert config.raw["scsi0"] == "local-lvm:vm-100-disk-0,size=32G"
    assert config.digest


async def test_unknown_vmid_not_found(api: Api, vms: FakeCluster) -> None:
    with pytest.raises(VmNotFoundError) as caught:
        await api.call(lambda pve: pve.vms.status(999))

    assert caught.value.vmid == 999
    assert "999" in str(caught.value)


async def test_vmid_out_of_range_rejected_before_request(api: Api, vms: FakeCluster) -> None:
    before = len(vms.pve.requests)

    with pytest.raises(InvalidInputError, match="100 to 999999999"):
        await api.call(lambda pve: pve.vms.status(99))

    assert len(vms.pve.requests) == before


async def test_node_found_once_and_cached(api: Api, vms: FakeCluster) -> None:
    await api.call(lambda pve: pve.vms.status(101))
    before = len(vms.pve.requests)

    await api.call(lambda pve: pve.vms.config(101))

    assert [path for _, path, _ in vms.pve.requests[before:]] == ["/api2/json/nodes/pve2/qemu/101/config"]


async def test_migrated_vm_found_again(api: Api, vms: FakeCluster) -> None:
    await api.call(lambda pve: pve.vms.status(100))
    vms.pve.vm(100).node = "pve3"
    vms.pve.add_node("pve3")

    status = await api.call(lambda pve: pve.vms.status(100))

    assert status.node == "pve3"


async def test_explicit_node_respected(api: Api, vms: FakeCluster) -> None:
    with pytest.raises(VmNotFoundError, match="not found on node 'pve2'"):
        await api.call(lambda pve: pve.vms.status(100, node="pve2"))


async def test_node_names_keep_case(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(100, "web01", node="HomeNet", status="running")

    listed = await api.call(lambda pve: pve.vms.list("HomeNet"))
    nodes = await api.call(lambda pve: pve.cluster.nodes())

    assert [vm.node for vm in listed] == ["HomeNet"]
    assert "HomeNet" in nodes
    assert any(path == "/api2/json/nodes/HomeNet/qemu" for _, path, _ in cluster.pve.requests)


async def test_one_node_down_keeps_the_others(timed_api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running")
    cluster.pve.add_vm(101, "db01", node="pve2", status="running")
    cluster.pve.set_node_offline("pve2")

    listing = await timed_api.call(lambda pve: pve.vms.list_by_node(["pve1", "pve2"]))

    assert [vm.vmid for vm in listing.guests] == [100, 101]
    assert listing.guests[0].power_state is PowerState.RUNNING_OR_PAUSED
    assert listing.guests[1].node == "pve2"
    assert listing.guests[1].name == "db01"
    assert listing.guests[1].power_state is PowerState.UNKNOWN
    assert listing.guests[1].mem_bytes is None
    assert [failure.node for failure in listing.failures] == ["pve2"]
    assert isinstance(listing.failures[0].error, NodeUnreachableError)
    assert listing.failures[0].error.status_code == 595
    requests_to_pve2 = [path for _, path, _ in cluster.pve.requests if path == "/api2/json/nodes/pve2/qemu"]
    # The first attempt and the default policy's 3 retries after backing off.
    assert len(requests_to_pve2) == 4


async def test_container_vmid_named_as_container(api: Api, vms: FakeCluster) -> None:
    with pytest.raises(VmNotFoundError, match="LXC container"):
        await api.call(lambda pve: pve.vms.status(200))


async def test_single_tag_string_accepted(api: Api, vms: FakeCluster) -> None:
    tagged = await api.call(lambda pve: pve.vms.list(tags="web"))

    assert [vm.vmid for vm in tagged] == [100]


@pytest.mark.parametrize(("status", "message"), [("bogus", "running, stopped"), ("paused", "cannot tell paused")])
async def test_unknown_status_filter_rejected(api: Api, vms: FakeCluster, status: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await api.call(lambda pve: pve.vms.list(status=status))
