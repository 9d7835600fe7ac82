"""Tests of the fake cluster itself over HTTPS to loopback: counters, rrddata, tokens and the demo."""

from __future__ import annotations

import ipaddress
import itertools
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fakecluster import DEMO_VMS, RRD_POINTS, RRD_STEPS, FakeCluster, Rates, build_demo
from fakecluster.pve import rrd_points

RATES = Rates(cpu=0.25, netin=2_000_000, netout=500_000, diskread=1_000_000, diskwrite=250_000)
COUNTERS = ("netin", "netout", "diskread", "diskwrite")
VM_PATH = "/nodes/pve1/qemu/100"
# Allowed relative error of a rate measured between two requests about one second apart.
RATE_TOLERANCE = 0.05


def open_client(cluster: FakeCluster, token: str) -> httpx.Client:
    """Open an HTTPS client that trusts only the cluster's certificate and sends the API token."""
    # An explicit context, so the SSL_CERT_FILE of the environment plays no part in verification.
    context = ssl.create_default_context(cafile=cluster.ca_file)
    return httpx.Client(
        base_url=f"{cluster.url}/api2/json",
        verify=context,
        headers={"Authorization": f"PVEAPIToken={token}"},
        timeout=10.0,
    )


@pytest.fixture
def api(cluster: FakeCluster, token: str) -> Iterator[httpx.Client]:
    """An HTTPS client of ``cluster`` authenticated with ``token``, with VM 100 running on pve1 at RATES."""
    cluster.pve.add_vm(
        100,
        "web01",
        node="pve1",
        status="running",
        config={"cores": 2, "sockets": 1, "memory": "2048", "scsi0": "local-lvm:vm-100-disk-0,size=32G"},
        rates=RATES,
    )
    with open_client(cluster, token) as client:
        yield client


def get_data(client: httpx.Client, path: str, **params: str) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def post_action(client: httpx.Client, action: str) -> None:
    response = client.post(f"{VM_PATH}/status/{action}")
    assert response.status_code == 200, response.text


def read_status(client: httpx.Client) -> tuple[dict[str, Any], float]:
    """Return VM 100's status/current and the monotonic time halfway through its round trip."""
    sent_at = time.monotonic()
    data = get_data(client, f"{VM_PATH}/status/current")
    return data, (sent_at + time.monotonic()) / 2


def tail_without_values(points: list[dict[str, Any]]) -> int:
    count = 0
    for point in reversed(points):
        if set(point) != {"time"}:
            break
        count += 1
    return count


def test_counters_grow_at_rates(api: httpx.Client) -> None:
    first, first_at = read_status(api)
    time.sleep(1.0)
    second, second_at = read_status(api)

    elapsed = second_at - first_at
    for key in COUNTERS:
        measured = (second[key] - first[key]) / elapsed
        expected = getattr(RATES, key)
        assert measured == pytest.approx(expected, rel=RATE_TOLERANCE), key
    assert second["cpu"] == RATES.cpu
    assert second["status"] == "running"


def test_counters_start_one_day_back(api: httpx.Client) -> None:
    status, _ = read_status(api)

    assert 86400 <= status["uptime"] <= 86400 + 5
    assert status["netin"] == pytest.approx(RATES.netin * status["uptime"], rel=0.001)


def test_counters_agree_across_endpoints(api: httpx.Client) -> None:
    before, _ = read_status(api)
    resources = get_data(api, "/cluster/resources", type="vm")
    listing = get_data(api, "/nodes/pve1/qemu")
    after, _ = read_status(api)

    resource = next(item for item in resources if item["vmid"] == 100)
    listed = next(item for item in listing if item["vmid"] == 100)
    for key in COUNTERS:
        assert before[key] <= resource[key] <= after[key], key
    for key in ("netin", "netout"):
        assert before[key] <= listed[key] <= after[key], key


def test_counters_restart_after_stop_and_start(api: httpx.Client) -> None:
    running, _ = read_status(api)
    assert running["netin"] > RATES.netin * 3600

    post_action(api, "stop")
    stopped, _ = read_status(api)
    assert stopped["status"] == "stopped"
    for key in (*COUNTERS, "cpu", "mem", "uptime"):
        assert stopped[key] == 0, key

    post_action(api, "start")
    started_at = time.monotonic()
    restarted, restarted_at = read_status(api)
    assert restarted["status"] == "running"
    assert restarted["uptime"] <= 1
    for key in COUNTERS:
        limit = getattr(RATES, key) * (restarted_at - started_at + 1.0)
        assert 0 <= restarted[key] <= limit, key

    time.sleep(0.5)
    later, _ = read_status(api)
    assert later["netin"] > restarted["netin"]


def test_counters_frozen_while_paused(api: httpx.Client) -> None:
    post_action(api, "suspend")
    first, _ = read_status(api)
    time.sleep(0.5)
    second, _ = read_status(api)

    assert second["qmpstatus"] == "paused"
    assert second["cpu"] == 0
    for key in COUNTERS:
        assert second[key] == first[key], key

    post_action(api, "resume")
    time.sleep(0.3)
    resumed, _ = read_status(api)
    assert resumed["netin"] > second["netin"]


def test_stopped_vm_reports_no_usage(cluster: FakeCluster, token: str) -> None:
    cluster.pve.add_vm(101, "idle01", node="pve1", status="stopped", rates=RATES)

    with open_client(cluster, token) as client:
        status = get_data(client, "/nodes/pve1/qemu/101/status/current")

    assert status["status"] == "stopped"
    for key in (*COUNTERS, "cpu", "mem", "uptime"):
        assert status[key] == 0, key


def test_rrddata_hour_matches_rates(api: httpx.Client) -> None:
    status, _ = read_status(api)
    points = get_data(api, f"{VM_PATH}/rrddata", timeframe="hour")

    assert len(points) == RRD_POINTS
    times = [point["time"] for point in points]
    assert all(moment % 60 == 0 for moment in times)
    assert [later - earlier for earlier, later in itertools.pairwise(times)] == [60] * (RRD_POINTS - 1)
    assert times[-1] - 60 <= time.time() < times[-1] + 1

    empty = tail_without_values(points)
    assert 1 <= empty <= 2
    expected = {
        "cpu": RATES.cpu,
        "maxcpu": status["cpus"],
        "mem": status["mem"],
        "maxmem": status["maxmem"],
        "disk": 0,
        "maxdisk": status["maxdisk"],
        **{key: getattr(RATES, key) for key in COUNTERS},
    }
    for point in points[: RRD_POINTS - empty]:
        assert {key: value for key, value in point.items() if key != "time"} == expected


def test_rrddata_gap_while_stopped(cluster: FakeCluster, api: httpx.Client) -> None:
    end = (int(time.time()) // 60 - 10) * 60
    start = end - 15 * 60
    cluster.pve.workload[100].record_outage(start, end)

    points = get_data(api, f"{VM_PATH}/rrddata", timeframe="hour")
    empty = tail_without_values(points)
    gap = {point["time"] for point in points[: RRD_POINTS - empty] if set(point) == {"time"}}

    # A point covers the minute that ends at its time, so the outage empties the points start+60 to end.
    assert gap == set(range(start + 60, end + 1, 60))
    status, _ = read_status(api)
    assert time.time() - end - 2 <= status["uptime"] <= time.time() - end + 1


def test_rrddata_history_records_stop_and_start(cluster: FakeCluster, api: httpx.Client) -> None:
    before = time.time()
    post_action(api, "stop")
    stopped = cluster.pve.workload[100].history[-1]
    post_action(api, "start")
    started = cluster.pve.workload[100].history[-1]
    after = time.time()

    assert stopped[1] == "stopped"
    assert started[1] == "running"
    assert before <= stopped[0] <= started[0] <= after


@pytest.mark.parametrize("timeframe", ["day", "week", "month", "year"])
def test_rrddata_timeframe_steps(api: httpx.Client, timeframe: str) -> None:
    step = RRD_STEPS[timeframe]
    average = get_data(api, f"{VM_PATH}/rrddata", timeframe=timeframe, cf="AVERAGE")
    maximum = get_data(api, f"{VM_PATH}/rrddata", timeframe=timeframe, cf="MAX")

    for points in (average, maximum):
        assert len(points) == RRD_POINTS
        assert all(point["time"] % step == 0 for point in points)
        assert points[-1]["time"] - points[0]["time"] == (RRD_POINTS - 1) * step
    by_time = {point["time"]: point for point in maximum}
    for point in average:
        if point["time"] in by_time and len(point) > 1 and len(by_time[point["time"]]) > 1:
            assert point == by_time[point["time"]]


def test_rrddata_rejects_unknown_timeframe(api: httpx.Client) -> None:
    response = api.get(f"{VM_PATH}/rrddata", params={"timeframe": "fortnight"})

    assert response.status_code == 400
    assert "timeframe" in response.json()["errors"]


def test_rrddata_missing_vm_is_500(api: httpx.Client) -> None:
    response = api.get("/nodes/pve1/qemu/999/rrddata", params={"timeframe": "hour"})

    assert response.status_code == 500
    assert "999.conf' does not exist" in response.json()["message"]


def test_rrd_points_paused_has_zero_rates(cluster: FakeCluster) -> None:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running", rates=RATES)
    tracked = cluster.pve.workload[100]
    now = float((int(time.time()) // 60) * 60 + 45)
    tracked.history = [(now - 3600 * 2, "running"), (now - 1800, "paused")]
    usage = {"maxcpu": 1, "maxmem": 512 * 1024 * 1024, "maxdisk": 0}

    points = rrd_points(tracked, usage, "hour", now)

    paused = [point for point in points if point["time"] - 30 >= now - 1800 and len(point) > 1]
    running = [point for point in points if point["time"] - 30 < now - 1800]
    assert paused
    assert all(point["netin"] == 0 and point["cpu"] == 0 for point in paused)
    assert all(point["netin"] == RATES.netin for point in running)
    assert tail_without_values(points) == 1


def test_token_with_wrong_secret_is_401(cluster: FakeCluster, token: str) -> None:
    cluster.pve.add_vm(100, "web01", node="pve1", status="running")
    wrong = token.rpartition("=")[0] + "=00000000-0000-0000-0000-000000000002"

    with open_client(cluster, wrong) as client:
        response = client.get(f"{VM_PATH}/status/current")

    assert response.status_code == 401


def test_add_token_returns_full_form(cluster: FakeCluster) -> None:
    assert cluster.add_token("automation@pve", "ci", "abc") == "automation@pve!ci=abc"
    assert cluster.pve.apitokens["automation@pve!ci"] == "abc"
    with pytest.raises(ValueError, match="expected user@realm"):
        cluster.add_token("automation", "ci", "abc")
    with pytest.raises(ValueError, match="without '!'"):
        cluster.add_token("automation@pve", "c!i", "abc")


def test_cluster_listens_on_loopback(cluster: FakeCluster) -> None:
    host, _, port = cluster.host.rpartition(":")

    assert ipaddress.ip_address(host).is_loopback
    assert int(port) > 0
    assert cluster.url == f"https://{cluster.host}"


def test_cluster_stop_closes_port() -> None:
    fake = FakeCluster()
    token = fake.add_token("root@pam", "pvekit-test", "00000000-0000-0000-0000-000000000001")
    with open_client(fake, token) as client:
        assert client.get("/version").status_code == 200
    context = ssl.create_default_context(cafile=fake.ca_file)

    fake.stop()
    fake.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.url}/api2/json/version", verify=context, timeout=5.0)
    with pytest.raises(RuntimeError, match="stopped"):
        fake.call(_noop())


async def _noop() -> None:
    return None


def test_demo_cluster_contents(cluster: FakeCluster) -> None:
    token = build_demo(cluster)

    with open_client(cluster, token) as client:
        resources = get_data(client, "/cluster/resources")
        vms = {item["vmid"]: item for item in resources if item["type"] == "qemu"}
        nodes = {item["node"] for item in resources if item["type"] == "node"}
        assert nodes == {"pve1", "pve2", "pve3"}
        assert set(vms) == {demo.vmid for demo in DEMO_VMS}

        for demo in DEMO_VMS:
            item = vms[demo.vmid]
            assert item["name"] == demo.name
            assert item["node"] == demo.node
            assert item["status"] == ("running" if demo.running else "stopped")
            assert item["tags"] == demo.tags
            assert item.get("pool") == demo.pool

            points = get_data(client, f"/nodes/{demo.node}/qemu/{demo.vmid}/rrddata", timeframe="hour")
            with_values = [point for point in points if len(point) > 1]
            if demo.running:
                assert with_values[-1]["netin"] == demo.rates.netin, demo.name
                assert with_values[-1]["cpu"] == demo.rates.cpu, demo.name
            else:
                assert with_values == [], demo.name


def test_demo_guest_agent_addresses_are_documentation_ranges(cluster: FakeCluster) -> None:
    token = build_demo(cluster)
    with_agent = [demo for demo in DEMO_VMS if demo.agent and demo.running]
    assert with_agent
    documentation = [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32")]

    with open_client(cluster, token) as client:
        for demo in with_agent:
            path = f"/nodes/{demo.node}/qemu/{demo.vmid}/agent/network-get-interfaces"
            interfaces = get_data(client, path)["result"]
            addresses = [
                ipaddress.ip_address(entry["ip-address"])
                for item in interfaces
                for entry in item.get("ip-addresses", [])
            ]
            assert addresses, demo.name
            for address in addresses:
                reserved = address.is_loopback or address.is_link_local
                assert reserved or any(address in network for network in documentation), (demo.name, address)


def test_vm_created_through_api_is_tracked_idle(cluster: FakeCluster, api: httpx.Client) -> None:
    created = api.post("/nodes/pve1/qemu", data={"vmid": "120", "name": "new01", "memory": "1024"})
    assert created.status_code == 200, created.text
    started = api.post("/nodes/pve1/qemu/120/status/start")
    assert started.status_code == 200, started.text

    status = get_data(api, "/nodes/pve1/qemu/120/status/current")
    points = get_data(api, "/nodes/pve1/qemu/120/rrddata", timeframe="hour")

    assert status["status"] == "running"
    assert status["cpu"] == 0
    for key in COUNTERS:
        assert status[key] == 0, key
    assert status["mem"] == 512 * 1024 * 1024
    assert len(points) == RRD_POINTS
    assert all(set(point) == {"time"} for point in points)
    assert cluster.pve.workload[120].rates == Rates()
