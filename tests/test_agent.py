"""Guest agent addresses: agent responses replayed from bug reports, and the fake's agent on both clients."""

from __future__ import annotations

import pytest

from fakecluster import FakeCluster
from pvekit import (
    AddressWaitTimeoutError,
    AgentNotEnabledError,
    AgentNotRunningError,
    GuestNetwork,
    VmNotRunningError,
)
from tests.conftest import Api, FakeClock

LOOPBACK = {
    "name": "lo",
    "hardware-address": "00:00:00:00:00:00",
    "ip-addresses": [
        {"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8},
        {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128},
    ],
}
NO_ADDRESS_YET = {"result": [LOOPBACK, {"name": "eth0", "hardware-address": "bc:24:11:00:00:01"}]}
AFTER_BOOT = {
    "result": [
        {"name": "lo", "hardware-address": "00:00:00:00:00:00",
         "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]},
        {"name": "eth0", "hardware-address": "bc:24:11:00:00:01", "ip-addresses": [
            {"ip-address-type": "ipv4", "ip-address": "192.0.2.10", "prefix": 24},
            {"ip-address-type": "ipv6", "ip-address": "fe80::be24:11ff:fe00:1", "prefix": 64}]},
    ]
}  # fmt: skip
CONTAINER_HOST = {
    "result": [
        {"name": "lo", "hardware-address": "00:00:00:00:00:00",
         "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]},
        {"name": "eth0", "hardware-address": "bc:24:11:00:00:01",
         "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "192.0.2.11", "prefix": 24}]},
        {"name": "docker0", "hardware-address": "02:42:00:00:00:01"},
        {"name": "veth1a2b3c", "hardware-address": "0a:00:00:00:00:01", "ip-addresses": []},
    ]
}  # fmt: skip
WINDOWS_ADDRESSES = [
    {"ip-address": "fe80::a1b2:c3d4:e5f6:789a%5", "ip-address-type": "ipv6", "prefix": 64},
    {"ip-address": "2001:db8::50", "ip-address-type": "ipv6", "prefix": 64},
    {"ip-address": "192.0.2.50", "ip-address-type": "ipv4", "prefix": 24},
]


def network(data: dict[str, object]) -> GuestNetwork:
    return GuestNetwork.from_api(data, vmid=100, node="pve1")


def test_interface_without_addresses_is_normal() -> None:
    guest = network(NO_ADDRESS_YET)

    eth0 = guest.interfaces[1]
    assert eth0.mac == "bc:24:11:00:00:01"
    assert eth0.addresses == ()
    assert guest.usable_addresses() == []
    assert guest.primary_address() is None


def test_loopback_dropped_by_address_link_local_skipped() -> None:
    guest = network(AFTER_BOOT)

    primary = guest.primary_address()
    assert primary is not None
    assert primary.address == "192.0.2.10"
    assert primary.prefix == 24
    assert guest.addresses() == ["192.0.2.10"]
    assert guest.primary_address("ipv6") is None


def test_loopback_on_any_interface_name_dropped() -> None:
    guest = network({"result": [{"name": "Loopback Pseudo-Interface 1", "ip-addresses": LOOPBACK["ip-addresses"]}]})

    assert guest.usable_addresses() == []


def test_one_address_is_enough() -> None:
    guest = network(CONTAINER_HOST)

    assert guest.primary_address().address == "192.0.2.11"  # type: ignore[union-attr]
    assert [nic.name for nic in guest.interfaces] == ["lo", "eth0", "docker0", "veth1a2b3c"]
    assert guest.interfaces[2].addresses == ()
    assert guest.interfaces[3].addresses == ()


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 0, 2]])
def test_zone_suffix_and_order_do_not_decide(order: list[int]) -> None:
    guest = network({"result": [{"name": "Ethernet", "hardware-address": "BC:24:11:00:00:03",
                                 "ip-addresses": [WINDOWS_ADDRESSES[i] for i in order]}]})  # fmt: skip

    assert guest.primary_address("ipv4").address == "192.0.2.50"  # type: ignore[union-attr]
    assert guest.primary_address("ipv6").address == "2001:db8::50"  # type: ignore[union-attr]
    assert guest.primary_address().address == "192.0.2.50"  # type: ignore[union-attr]
    link_local = next(a for a in guest.interfaces[0].addresses if a.is_link_local)
    assert link_local.address == "fe80::a1b2:c3d4:e5f6:789a"
    assert link_local.zone == "5"


def test_link_local_and_mac_selection() -> None:
    guest = network(AFTER_BOOT)

    with_link_local = guest.usable_addresses(include_link_local=True)
    by_mac = guest.usable_addresses(mac="BC:24:11:00:00:01")
    by_name = guest.usable_addresses(interface="lo")

    assert [str(address) for _, address in with_link_local] == ["192.0.2.10/24", "fe80::be24:11ff:fe00:1/64"]
    assert [address.address for _, address in by_mac] == ["192.0.2.10"]
    assert by_name == []


def test_container_bridge_ranks_last() -> None:
    data = {"result": [
        {"name": "docker0", "ip-addresses": [{"ip-address": "192.0.2.1", "ip-address-type": "ipv4", "prefix": 24}]},
        {"name": "ens18", "ip-addresses": [{"ip-address": "192.0.2.200", "ip-address-type": "ipv4", "prefix": 24}]},
    ]}  # fmt: skip

    assert network(data).primary_address().address == "192.0.2.200"  # type: ignore[union-attr]


@pytest.fixture
def agent_vm(cluster: FakeCluster) -> FakeCluster:
    vm = cluster.pve.add_vm(100, "web01", node="pve1", status="running", config={"agent": "1"})
    vm.agent = {"interfaces": CONTAINER_HOST["result"]}
    return cluster


async def test_network_from_fake(api: Api, agent_vm: FakeCluster) -> None:
    guest = await api.call(lambda pve: pve.agent.network(100))
    primary = await api.call(lambda pve: pve.agent.primary_address(100))

    assert [nic.name for nic in guest.interfaces] == ["lo", "eth0", "docker0", "veth1a2b3c"]
    assert primary.address == "192.0.2.11"


async def test_agent_not_running(api: Api, agent_vm: FakeCluster) -> None:
    agent_vm.pve.vm(100).agent = None

    with pytest.raises(AgentNotRunningError) as caught:
        await api.call(lambda pve: pve.agent.network(100))

    assert caught.value.vmid == 100
    assert caught.value.node == "pve1"
    assert not str(caught.value).endswith("\n")


async def test_agent_not_enabled(api: Api, agent_vm: FakeCluster) -> None:
    agent_vm.pve.fail("GET", "/agent/network-get-interfaces", 500, "No QEMU guest agent configured")

    with pytest.raises(AgentNotEnabledError, match="agent: 1"):
        await api.call(lambda pve: pve.agent.network(100))


async def test_vm_not_running(api: Api, agent_vm: FakeCluster) -> None:
    agent_vm.pve.fail("GET", "/agent/network-get-interfaces", 500, "VM 100 not running")

    with pytest.raises(VmNotRunningError):
        await api.call(lambda pve: pve.agent.network(100))


async def test_many_vms_record_unknown_and_carry_on(api: Api, agent_vm: FakeCluster) -> None:
    agent_vm.pve.add_vm(101, "db01", node="pve2", status="running", config={"agent": "1"})

    results = await api.call(lambda pve: pve.agent.networks_many([100, 101]))

    assert results[100].primary_address().address == "192.0.2.11"
    assert isinstance(results[101], AgentNotRunningError)


async def test_wait_for_address_until_agent_answers(timed_api: Api, agent_vm: FakeCluster, clock: FakeClock) -> None:
    vm = agent_vm.pve.vm(100)
    vm.agent = {"interfaces": NO_ADDRESS_YET["result"]}
    agent_vm.pve.fail("GET", "/agent/network-get-interfaces", 500, "QEMU guest agent is not running", times=2)
    original_sleep = clock.sleep
    original_async_sleep = clock.async_sleep
    polls = []

    def answer_later() -> None:
        polls.append(1)
        if len(polls) == 4:
            vm.agent = {"interfaces": AFTER_BOOT["result"]}

    def sleep(seconds: float) -> None:
        answer_later()
        original_sleep(seconds)

    async def async_sleep(seconds: float) -> None:
        answer_later()
        await original_async_sleep(seconds)

    clock.sleep = sleep  # type: ignore[method-assign]
    clock.async_sleep = async_sleep  # type: ignore[method-assign]

    address = await timed_api.call(lambda pve: pve.agent.wait_for_address(100, timeout=60))

    assert address.address == "192.0.2.10"
    assert len(clock.sleeps) == 4


async def test_wait_for_address_rides_out_outage(timed_api: Api, agent_vm: FakeCluster) -> None:
    agent_vm.pve.vm(100).agent = {"interfaces": AFTER_BOOT["result"]}
    # One whole read fails: its first attempt and its 3 retries.
    agent_vm.pve.drop_connection("GET", "/agent/network-get-interfaces", times=4)

    address = await timed_api.call(lambda pve: pve.agent.wait_for_address(100, timeout=60))

    assert address.address == "192.0.2.10"
    reads = [seen for seen in agent_vm.pve.arrivals if seen[1].endswith("/agent/network-get-interfaces")]
    assert len(reads) == 5


async def test_wait_for_address_deadline(timed_api: Api, agent_vm: FakeCluster, clock: FakeClock) -> None:
    agent_vm.pve.vm(100).agent = {"interfaces": NO_ADDRESS_YET["result"]}

    with pytest.raises(AddressWaitTimeoutError) as caught:
        await timed_api.call(lambda pve: pve.agent.wait_for_address(100, timeout=12))

    assert sum(clock.sleeps) == pytest.approx(12, abs=1)
    assert "eth0" in str(caught.value)


async def test_wait_for_address_stops_when_agent_not_enabled(
    timed_api: Api, agent_vm: FakeCluster, clock: FakeClock
) -> None:
    agent_vm.pve.fail("GET", "/agent/network-get-interfaces", 500, "No QEMU guest agent configured")

    with pytest.raises(AgentNotEnabledError):
        await timed_api.call(lambda pve: pve.agent.wait_for_address(100, timeout=60))

    assert clock.sleeps == []


def test_invalid_family_rejected() -> None:
    with pytest.raises(ValueError, match="'inet6'"):
        network(CONTAINER_HOST).primary_address("inet6")  # type: ignore[arg-type]


def test_container_interfaces_old_form() -> None:
    data = [
        {"name": "lo", "hwaddr": "00:00:00:00:00:00", "inet": "127.0.0.1/8", "inet6": "::1/128"},
        {"name": "eth0", "hwaddr": "BC:24:11:00:00:20", "inet": "192.0.2.20/24", "inet6": "fe80::be24:11ff:fe00:20/64"},
        {"name": "eth1", "hwaddr": "BC:24:11:00:00:21"},
    ]

    guest = GuestNetwork.from_lxc(data, vmid=200, node="pve1")

    assert [nic.name for nic in guest.interfaces] == ["lo", "eth0", "eth1"]
    assert guest.interfaces[1].mac == "bc:24:11:00:00:20"
    assert guest.interfaces[2].addresses == ()
    assert guest.primary_address().address == "192.0.2.20"  # type: ignore[union-attr]
    assert guest.primary_address().prefix == 24  # type: ignore[union-attr]


async def test_container_addresses_without_agent(api: Api, cluster: FakeCluster) -> None:
    config = {"net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:20,ip=192.0.2.20/24,ip6=2001:db8::20/64"}
    cluster.pve.add_ct(200, "proxy01", node="pve1", status="running", config=config)

    guest = await api.call(lambda pve: pve.agent.network(200))
    primary = await api.call(lambda pve: pve.agent.primary_address(200, family="ipv6"))

    assert [nic.name for nic in guest.interfaces] == ["lo", "eth0"]
    assert guest.primary_address().address == "192.0.2.20"
    assert primary.address == "2001:db8::20"
    assert any(path == "/api2/json/nodes/pve1/lxc/200/interfaces" for _, path, _ in cluster.pve.requests)


async def test_stopped_container_not_running(api: Api, cluster: FakeCluster) -> None:
    cluster.pve.add_ct(201, "ct02", node="pve1", status="stopped")

    with pytest.raises(VmNotRunningError, match="container 201"):
        await api.call(lambda pve: pve.agent.network(201))
