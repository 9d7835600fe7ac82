"""Property tests of every parser that takes data from PVE or from the user.

Arbitrary JSON-like input raises only the error a parser documents (parsers of
PVE responses raise nothing and leave fields None), and valid input read back
from its text form gives the same parts.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pvekit import (
    ApiToken,
    ClusterSnapshot,
    Disk,
    Guest,
    GuestNetwork,
    InvalidInputError,
    InvalidTokenError,
    MetricsSnapshot,
    NetDevice,
    Upid,
    VmConfig,
    VmStatus,
    parse_guest_id,
)
from pvekit._connection import Endpoint, parse_host
from pvekit._metrics import COUNTERS
from pvekit._rrd import newest_point_in_rows, newest_with_values, parse_series

# Few examples per test keep this module near 10 s on a two-core machine. The
# strategies below steer the examples towards PVE's keys and value forms.
FEW = settings(max_examples=60, deadline=None)
MANY = settings(max_examples=100, deadline=None)

# ----------------------------------------------------------------- strategies

# Ints that do not fit a C long or a float, as a JSON decoder returns them.
HUGE_INTS = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**20, 2**1100, -(2**1100)])
# Strings that look like numbers to some converters and not to others.
NUMERIC_TEXT = (
    st.sampled_from(
        [
            *("0", "1", "-1", " 42 ", "3.5", "1e3", "1e400", "-1e400", "NaN", "inf", "-inf", "0x10", "1_000"),
            *("\u00b2", "\u0661\u0662", "", " ", "1e308P", "-5G", "12abc"),
        ]
    )
    | st.integers().map(str)
    | st.floats().map(str)
)
SCALARS = st.none() | st.booleans() | st.integers() | HUGE_INTS | st.floats() | st.text(max_size=20) | NUMERIC_TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
NOT_TEXT = JSON_VALUES.filter(lambda value: not isinstance(value, str))
# Values of one key in a row: flatter than JSON_VALUES, so that rows of many keys draw quickly.
FIELD_VALUES = SCALARS | st.lists(SCALARS, max_size=2) | st.dictionaries(st.text(max_size=4), SCALARS, max_size=2)


def pve_value(*typical: Any) -> st.SearchStrategy[Any]:
    """Draw one of the values PVE typically sends for a key, or any other JSON value."""
    return st.sampled_from(typical) | FIELD_VALUES


def row_of(keys: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Draw a dict containing any subset of ``keys``, plus a few unknown keys."""
    known = st.fixed_dictionaries({}, optional=dict(keys))
    unknown = st.dictionaries(st.text(max_size=8), FIELD_VALUES, max_size=2)
    return st.builds(lambda extra, row: {**extra, **row}, unknown, known)


NUMBER = pve_value(0, 1, 2, 100, 0.25, "8", "2147483648", 3.5, "\u00b2", "1e400", 2**1100)
GUEST_ROW = row_of(
    {
        "id": pve_value("qemu/100", "lxc/101", "qemu/x", "storage/pve1/local"),
        "type": pve_value("qemu", "lxc", "node", "storage"),
        "vmid": pve_value(100, "101", 0, -1, 999999999, "\u00b2"),
        "node": pve_value("pve1", "PVE2", ""),
        "name": pve_value("web01", ""),
        "status": pve_value("running", "stopped", "unknown", "paused"),
        "qmpstatus": pve_value("running", "paused", "suspended", "prelaunch"),
        "lock": pve_value("backup", "suspended", "migrate"),
        "template": pve_value(0, 1, "1", "on", True),
        "tags": pve_value("prod;web", "a,b c", ";;", ""),
        "pool": pve_value("pool1"),
        "hastate": pve_value("started", "stopped"),
        "ha": pve_value({"managed": 1, "state": "started"}, {"managed": 0}),
        "agent": pve_value(0, 1, "1"),
        "nics": pve_value({"tap100i0": {"netin": 10, "netout": "20"}}, {"tap100i0": None}),
        **dict.fromkeys(
            ["cpu", "cpus", "maxcpu", "mem", "maxmem", "maxdisk", "disk", "uptime", "balloon", "pid"],
            NUMBER,
        ),
        **dict.fromkeys(COUNTERS, NUMBER),
    }
)

PROPERTY_ITEMS = st.sampled_from(
    [
        "virtio=BC:24:11:00:00:01",
        "e1000=bc:24:11:00:00:02",
        "model=virtio",
        "macaddr=bc:24:11:00:00:03",
        "bridge=vmbr0",
        "tag=5",
        "tag=\u00b2",
        "firewall=1",
        "firewall=yes",
        "local-lvm:vm-100-disk-0",
        "/dev/sdb",
        "none",
        "file=local:iso/debian.iso",
        "media=cdrom",
        "size=32G",
        "size=1.5T",
        "size=1e308P",
        "size=-1G",
        "size=",
        "=",
        "",
        " = ",
    ]
) | st.text(max_size=12)
PROPERTY_STRINGS = st.lists(PROPERTY_ITEMS, max_size=6).map(",".join)
CONFIG_KEYS = st.sampled_from(
    ["net0", "net1", "net10", "scsi0", "ide2", "virtio1", "efidisk0", "tpmstate0", "unused0", "sata3"]
)
VM_CONFIG = st.builds(
    lambda devices, row: {**devices, **row},
    st.dictionaries(CONFIG_KEYS, PROPERTY_STRINGS | JSON_VALUES, max_size=5),
    row_of(
        {
            "name": pve_value("web01"),
            "cores": NUMBER,
            "sockets": NUMBER,
            "memory": pve_value(2048, "4096", "current=2048", "=", ""),
            "balloon": NUMBER,
            "agent": pve_value(1, "0", "enabled=1,fstrim_cloned_disks=1", "fstrim_cloned_disks=1", "=", ","),
            "tags": pve_value("prod;web"),
            "boot": pve_value("order=scsi0;net0"),
            "onboot": pve_value(0, 1),
            "ostype": pve_value("l26", "win11"),
            "digest": pve_value("0123456789abcdef"),
        }
    ),
)

IP_TEXT = pve_value("192.0.2.10", "127.0.0.1", "fe80::1%eth0", "2001:db8::1", "169.254.1.1", "::1", "300.1.1.1")
ADDRESS_ENTRY = row_of(
    {
        "ip-address": IP_TEXT,
        "prefix": pve_value(24, "64", -1, 129),
        "ip-address-type": pve_value("ipv4", "ipv6"),
    }
)
AGENT_INTERFACE = row_of(
    {
        "name": pve_value("eth0", "lo", "docker0", "veth1234", "Br-x"),
        "hardware-address": pve_value("BC:24:11:00:00:01", "00:00:00:00:00:00"),
        "ip-addresses": st.lists(ADDRESS_ENTRY | JSON_VALUES, max_size=4) | pve_value(True, 5, "192.0.2.10"),
        "statistics": pve_value({"rx-bytes": 1, "tx-bytes": 2}),
    }
)
AGENT_DATA = (
    st.builds(lambda result: {"result": result}, st.lists(AGENT_INTERFACE | JSON_VALUES, max_size=4) | JSON_VALUES)
    | st.lists(AGENT_INTERFACE, max_size=4)
    | JSON_VALUES
)
LXC_INTERFACE = row_of(
    {
        "name": pve_value("eth0", "lo"),
        "hwaddr": pve_value("bc:24:11:00:00:01"),
        "inet": pve_value("192.0.2.10/24", "127.0.0.1/8 10.0.0.1/8", "192.0.2.10", "/", "x/y"),
        "inet6": pve_value("2001:db8::10/64", "fe80::1/64", "::1/128"),
        "ip-addresses": st.lists(ADDRESS_ENTRY, max_size=2) | pve_value(True, 5, "192.0.2.10"),
    }
)
LXC_DATA = st.lists(LXC_INTERFACE | JSON_VALUES, max_size=4) | JSON_VALUES

RRD_ROW = row_of(
    {
        "time": pve_value(1710000000, 1710000060, "1710000120", 0, -1, 10**20, -(10**20), 2**1100, "abc"),
        **dict.fromkeys(
            ["cpu", "maxcpu", "mem", "maxmem", "netin", "netout", "diskread", "diskwrite", "disk", "maxdisk"],
            NUMBER,
        ),
    }
)
RRD_ROWS = st.lists(RRD_ROW | JSON_VALUES, max_size=6) | JSON_VALUES


# ----------------------------------------------------------------- helpers


def touch(value: Any) -> None:
    """Read every public field and property of a parsed object, and of the parsed objects inside it.

    Some properties are computed only when read, so reading is what runs them.
    """
    if isinstance(value, (str, bytes, int, float, datetime, enum.Enum)) or value is None:
        repr(value)
        return
    if isinstance(value, Mapping):
        for item in value.values():
            touch(item)
        return
    if isinstance(value, (tuple, list, frozenset, set)):
        for item in value:
            touch(item)
        return

    repr(value)
    str(value)
    for name in dir(value):
        if name.startswith("_"):
            continue
        attribute = getattr(value, name)
        if not callable(attribute):
            touch(attribute)


def assert_int_or_none(value: object) -> None:
    assert value is None or type(value) is int, value


def assert_finite_or_none(value: object) -> None:
    assert value is None or (type(value) is float and math.isfinite(value)), value


# ----------------------------------------------------------------- UPID

UPID_FIELD = st.text(alphabet=st.characters(exclude_characters=":"), max_size=8)
HEX_FIELD = st.sampled_from(["00007323", "001036a5", "6419CAF8", "0", "", "-1", "+1", "0x10", "1_0", "\u0661"]) | (
    st.integers(0, 2**70).map(lambda number: f"{number:X}")
)


@st.composite
def upid_like_text(draw: st.DrawFn) -> str:
    """Draw a string of UPID shape whose fields may each be anything without a colon."""
    fields = [
        draw(st.just("UPID") | st.sampled_from(["upid", "TASK"])),
        draw(UPID_FIELD),
        draw(HEX_FIELD),
        draw(HEX_FIELD),
        draw(HEX_FIELD),
        draw(UPID_FIELD),
        draw(st.sampled_from(["100", "", "\u00b2", "0100", "9" * 40]) | UPID_FIELD),
        draw(UPID_FIELD),
        *draw(st.lists(UPID_FIELD, max_size=2)),
    ]
    return ":".join(fields) + draw(st.sampled_from([":", "", ": \n"]))


@MANY
@given(st.text(max_size=60) | upid_like_text())
@example("UPID:pve1:00007323:001036A5:6419CAF8:qmstart:\u00b2:root@pam:")
@example("UPID:pve1:00007323:001036A5:FFFFFFFFFFFF:qmstart:100:root@pam:")
@example("UPID:pve1:00007323:001036A5:-6419CAF8:qmstart:100:root@pam:")
def test_upid_any_text(text: str) -> None:
    try:
        upid = Upid.parse(text)
    except InvalidInputError:
        return

    touch(upid)
    assert min(upid.pid, upid.pstart, upid.starttime) >= 0
    assert isinstance(upid.started_at, datetime)
    assert upid.vmid is None or upid.vmid >= 0
    assert Upid.parse(str(upid)) == upid


@FEW
@given(NOT_TEXT)
@example(None)
def test_upid_not_text(value: Any) -> None:
    with pytest.raises(InvalidInputError, match="invalid UPID"):
        Upid.parse(value)


@FEW
@given(
    node=st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,20}", fullmatch=True),
    numbers=st.lists(st.integers(0, 0xFFFFFFFF), min_size=3, max_size=3),
    task_type=st.from_regex(r"[a-zA-Z]{1,12}", fullmatch=True),
    task_id=st.from_regex(r"[0-9a-z-]{0,10}", fullmatch=True),
    user=st.from_regex(r"[a-z]{1,8}@(pam|pve)(![a-z_]{1,8})?", fullmatch=True),
    extra=st.lists(st.from_regex(r"[a-z0-9]{0,6}", fullmatch=True), max_size=2),
)
def test_upid_text_round_trip(
    node: str, numbers: list[int], task_type: str, task_id: str, user: str, extra: list[str]
) -> None:
    hex_fields = [f"{number:08X}" for number in numbers]
    text = ":".join(["UPID", node, *hex_fields, task_type, task_id, user, *extra]) + ":"

    upid = Upid.parse(text)

    assert str(upid) == text
    assert (upid.node, upid.task_type, upid.id, upid.user) == (node, task_type, task_id, user)
    assert [upid.pid, upid.pstart, upid.starttime] == numbers
    assert upid.extra == tuple(extra)
    assert upid.started_at.timestamp() == numbers[2]
    assert upid.vmid == (int(task_id) if task_id.isdigit() else None)


# ----------------------------------------------------------------- API tokens

# Obviously fake secrets: the token tests need a value in the secret's place, not a real one.
FAKE_SECRET = st.from_regex(r"fake-[0-9a-f=]{0,12}", fullmatch=True)


@st.composite
def token_like_text(draw: st.DrawFn) -> str:
    """Draw text of roughly token shape whose parts may be empty or contain separators."""
    part = st.text(max_size=6) | st.sampled_from(["", "dev", "root", "pve", "pam", "ci", "a@b", "x!y", "x=y", " "])
    prefix = draw(st.sampled_from(["", "PVEAPIToken=", "  "]))
    user = draw(part)
    realm = draw(part)
    name = draw(part)
    secret = draw(FAKE_SECRET | part)
    separators = draw(st.lists(st.sampled_from(["@", "!", "="]), min_size=3, max_size=3))
    return prefix + user + separators[0] + realm + separators[1] + name + separators[2] + secret


@MANY
@given(st.text(max_size=40) | token_like_text())
def test_token_any_text(text: str) -> None:
    try:
        token = ApiToken.parse(text)
    except InvalidTokenError:
        return

    touch(token)
    assert "secret=" not in repr(token)
    assert str(token) == f"{token.token_id}=***"
    assert ApiToken.parse(token.authorization_header()) == token


@FEW
@given(NOT_TEXT)
@example(None)
@example(12345)
def test_token_not_text(value: Any) -> None:
    with pytest.raises(InvalidTokenError):
        ApiToken.parse(value)


# PVE user names exclude white space, ':' and '/'; '!' and '=' would end the user part of a token.
TOKEN_USER = st.text(
    alphabet=st.characters(exclude_categories=("Z", "C"), exclude_characters=":/!="), min_size=1, max_size=12
)
TOKEN_REALM = st.from_regex(r"[A-Za-z][A-Za-z0-9.\-_]{0,8}", fullmatch=True)
TOKEN_NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9.\-_]{0,8}", fullmatch=True)


@FEW
@given(
    user=TOKEN_USER,
    realm=TOKEN_REALM,
    token_name=TOKEN_NAME,
    secret=FAKE_SECRET,
    prefix=st.sampled_from(["", "PVEAPIToken=", " ", "\t"]),
)
def test_token_parts_round_trip(user: str, realm: str, token_name: str, secret: str, prefix: str) -> None:
    token = ApiToken(user=user, realm=realm, token_name=token_name, secret=secret)

    parsed = ApiToken.parse(f"{prefix}{token.token_id}={secret}\n")

    assert parsed == token
    assert (parsed.user, parsed.realm, parsed.token_name, parsed.secret) == (user, realm, token_name, secret)
    assert ApiToken.parse(parsed.authorization_header()) == token


# ----------------------------------------------------------------- hosts


@MANY
@given(st.text(max_size=30) | st.text(alphabet="pve1.:/@?#%-0123456789abcdefhtps []", max_size=30))
@example("pve1:99999")
@example("pve1:0")
@example("http://pve1")
@example("FE80::1")
@example("pve1[")
@example("[::1")
@example("[pve1]:8006")
@example("[v9.x")
@example("pve\uff03x")
@example("https://root:example@pve1")
def test_host_any_text(text: str) -> None:
    try:
        endpoint = parse_host(text)
    except InvalidInputError:
        return

    touch(endpoint)
    assert endpoint.host
    assert 0 < endpoint.port <= 65535
    again = parse_host(endpoint.base_url)
    assert again.host == endpoint.host
    assert again.port == endpoint.port


@FEW
@given(NOT_TEXT)
def test_host_not_text(value: Any) -> None:
    with pytest.raises(InvalidInputError):
        parse_host(value)


@pytest.mark.parametrize("text", ["pve1[", "[::1", "[pve1]:8006", "[v9.x", "pve\uff03x", "pve1:0", "a b", "pve1?x=1"])
def test_host_invalid_text_rejected(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_host(text)


def test_host_user_part_masked() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_host("https://root:hunter2@pve1:8006")

    assert "hunter2" not in str(caught.value)
    assert "***@pve1" in str(caught.value)


DNS_NAME = st.lists(st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True), min_size=1, max_size=3).map(
    ".".join
)
HOST = DNS_NAME | st.ip_addresses(v=4).map(str) | st.ip_addresses(v=6).map(str)


@FEW
@given(host=HOST, port=st.integers(1, 65535))
def test_host_round_trip(host: str, port: int) -> None:
    endpoint = Endpoint(host, port)
    in_url = f"[{host}]" if ":" in host else host

    assert parse_host(endpoint.base_url) == endpoint
    assert parse_host(f"{in_url}:{port}") == endpoint
    assert parse_host(f" https://{in_url}:{port}/ ") == endpoint
    assert parse_host(host) == Endpoint(host, 8006)
    assert parse_host(f"https://{in_url}") == Endpoint(host, 8006)


# ----------------------------------------------------------------- VM configuration


@MANY
@given(VM_CONFIG)
@example({"net0": "virtio=BC:24:11:00:00:01,tag=\u00b2"})
@example({"scsi0": "local-lvm:vm-100-disk-0,size=1e308P"})
@example({"memory": "\u00b2", "cores": 2**1100})
def test_vm_config_any_data(data: dict[str, Any]) -> None:
    config = VmConfig.from_api(data, "pve1", 100)

    touch(config)
    for name in ("cores", "sockets", "memory_mib", "balloon_mib", "memory_bytes"):
        assert_int_or_none(getattr(config, name))
    net_numbers = [int(net.key[3:]) for net in config.nets]
    assert net_numbers == sorted(net_numbers)
    assert {key for key in data if re.fullmatch(r"net[0-9]+", key)} <= {net.key for net in config.nets}
    for net in config.nets:
        assert_int_or_none(net.vlan_tag)
    for disk in config.disks:
        assert_int_or_none(disk.size_bytes)
        assert disk.size_bytes is None or disk.size_bytes >= 0


@MANY
@given(key=st.text(max_size=8), value=PROPERTY_STRINGS | st.text(max_size=40))
def test_net_device_and_disk_any_text(key: str, value: str) -> None:
    net = NetDevice.parse(key, value)
    disk = Disk.parse(key, value)

    touch(net)
    touch(disk)
    assert net.key == key
    assert disk.key == key


OPTION_TEXT = st.text(alphabet=st.characters(exclude_categories=("Z", "C"), exclude_characters=",="), max_size=10)
MAC = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(lambda octets: ":".join(f"{o:02x}" for o in octets))


@FEW
@given(
    model=st.sampled_from(["virtio", "e1000", "rtl8139", "vmxnet3"]),
    mac=MAC,
    bridge=OPTION_TEXT,
    tag=st.integers(1, 4094),
    firewall=st.booleans(),
    rate=OPTION_TEXT,
)
def test_net_device_parts_round_trip(model: str, mac: str, bridge: str, tag: int, firewall: bool, rate: str) -> None:
    options = {model: mac, "bridge": bridge, "tag": str(tag), "firewall": str(int(firewall)), "rate": rate}
    text = ",".join(f"{name}={setting}" for name, setting in options.items())

    net = NetDevice.parse("net0", text)

    assert net.model == model
    assert net.mac == mac.upper()
    assert net.bridge == bridge
    assert net.vlan_tag == tag
    assert net.firewall is firewall
    assert dict(net.options) == options


@FEW
@given(
    storage=st.from_regex(r"[a-z][a-z0-9\-_]{0,10}", fullmatch=True),
    volume_name=st.from_regex(r"vm-[0-9]{3,6}-disk-[0-9]", fullmatch=True),
    size=st.integers(0, 2**20),
    unit=st.sampled_from(["", "K", "M", "G", "T"]),
    extra=st.dictionaries(st.sampled_from(["cache", "discard", "iothread", "ssd"]), OPTION_TEXT, max_size=3),
)
def test_disk_parts_round_trip(storage: str, volume_name: str, size: int, unit: str, extra: dict[str, str]) -> None:
    volume = f"{storage}:{volume_name}"
    options = {**extra, "size": f"{size}{unit}"}
    text = ",".join([volume, *(f"{name}={setting}" for name, setting in options.items())])

    disk = Disk.parse("scsi0", text)

    assert disk.volume == volume
    assert disk.storage == storage
    assert disk.size_bytes == size * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[unit]
    assert disk.media == "disk"
    assert dict(disk.options) == options


# ----------------------------------------------------------------- guest agent and container interfaces


def check_network(network: GuestNetwork) -> None:
    touch(network)
    for family in (None, "ipv4", "ipv6"):
        for address in (
            network.primary_address(family),
            *(pair[1] for pair in network.usable_addresses(family=family)),
        ):
            if address is not None:
                assert not address.ip.is_loopback
    network.usable_addresses(include_link_local=True, interface="eth0", mac="BC:24:11:00:00:01")
    for address in network.addresses():
        ipaddress.ip_address(address)


@MANY
@given(AGENT_DATA)
@example({"result": [{"name": "eth0", "ip-addresses": 5}]})
@example({"result": [{"name": "eth0", "ip-addresses": [{"ip-address": "192.0.2.10", "prefix": "\u00b2"}]}]})
def test_agent_network_any_data(data: Any) -> None:
    check_network(GuestNetwork.from_api(data, vmid=100, node="pve1"))


@MANY
@given(LXC_DATA)
@example([{"name": "eth0", "ip-addresses": True}])
def test_lxc_network_any_data(data: Any) -> None:
    check_network(GuestNetwork.from_lxc(data, vmid=101, node="pve1"))


@FEW
@given(
    addresses=st.lists(
        st.tuples(st.ip_addresses(), st.integers(0, 128)),
        min_size=1,
        max_size=4,
    ),
)
def test_interface_addresses_round_trip(addresses: list[tuple[Any, int]]) -> None:
    entries = [{"ip-address": str(ip), "prefix": prefix} for ip, prefix in addresses]
    inet = [f"{ip}/{prefix}" for ip, prefix in addresses]

    agent = GuestNetwork.from_api({"result": [{"name": "eth0", "ip-addresses": entries}]}, vmid=100, node="pve1")
    lxc = GuestNetwork.from_lxc([{"name": "eth0", "inet": " ".join(inet)}], vmid=101, node="pve1")

    assert [str(address) for address in agent.interfaces[0].addresses] == inet
    assert [str(address) for address in lxc.interfaces[0].addresses] == inet
    assert [address.family for address in agent.interfaces[0].addresses] == [f"ipv{ip.version}" for ip, _ in addresses]


# ----------------------------------------------------------------- RRD rows


@MANY
@given(RRD_ROWS)
@example(5)
@example([{"time": 10**20, "cpu": 0.5}])
@example([{"time": 2**1100, "cpu": 0.5}, {"time": -(10**20), "netin": 1}])
def test_rrd_rows_any_data(rows: Any) -> None:
    points = parse_series(rows)
    newest = newest_point_in_rows(rows)

    touch(points)
    touch(newest)
    assert [point.time for point in points] == sorted(point.time for point in points)
    for point in points:
        assert_finite_or_none(point.cpu)
        assert_finite_or_none(point.netin_per_second)
    if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
        assert newest == newest_with_values(points)


# ----------------------------------------------------------------- cluster resources and status


@MANY
@given(GUEST_ROW, st.sampled_from([None, "pve1"]))
@example({"vmid": "\u00b2", "cpu": 2**1100, "maxcpu": -(2**1100)}, None)
def test_guest_any_row(row: dict[str, Any], node: str | None) -> None:
    guest = Guest.from_api(row, node)

    touch(guest)
    hash(guest)
    assert guest == Guest.from_api(row, node)
    assert type(guest.vmid) is int
    assert guest.kind in ("qemu", "lxc")
    for name in ("mem_bytes", "maxmem_bytes", "maxdisk_bytes", "uptime_seconds"):
        assert_int_or_none(getattr(guest, name))
    assert_finite_or_none(guest.cpu.ratio)
    assert_finite_or_none(guest.cpu.cpus)


@MANY
@given(GUEST_ROW)
@example({"vmid": 100, "mem": 2**1100, "cpus": 2**1100})
def test_status_and_snapshot_any_data(data: dict[str, Any]) -> None:
    status = VmStatus.from_api(data, "pve1", 100)
    snapshot = MetricsSnapshot.from_api(data, vmid=100, node="pve1", monotonic_seconds=5.0, wall_seconds=1.7e9)

    touch(status)
    touch(snapshot)
    for name in COUNTERS:
        assert_int_or_none(snapshot.counters.get(name))
        assert_int_or_none(getattr(status, f"{name}_bytes"))
    assert_finite_or_none(status.cpu.cpus)
    assert_finite_or_none(snapshot.cpu.ratio)


@MANY
@given(st.lists(GUEST_ROW | JSON_VALUES, max_size=5) | JSON_VALUES)
@example(7)
@example([{"type": "qemu", "vmid": "\u00b2"}])
def test_cluster_snapshot_any_rows(rows: Any) -> None:
    snapshot = ClusterSnapshot.from_rows(rows, monotonic_seconds=5.0, wall_seconds=1.7e9)

    touch(snapshot)
    for vmid, guest in snapshot.guests.items():
        assert vmid == guest.vmid
        assert guest.kind in ("qemu", "lxc")


@MANY
@given(st.text(max_size=20) | st.builds("{}/{}".format, st.sampled_from(["qemu", "lxc", "node"]), NUMERIC_TEXT))
@example("qemu/\u00b2")
def test_guest_id_any_text(text: str) -> None:
    try:
        kind, vmid = parse_guest_id(text)
    except InvalidInputError:
        return

    assert kind in ("qemu", "lxc")
    assert type(vmid) is int
    assert parse_guest_id(f"{kind}/{vmid}") == (kind, vmid)
