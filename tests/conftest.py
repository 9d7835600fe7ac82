"""Shared fixtures: a fake PVE cluster per test and an API token registered on it.

All tests talk only to loopback. Each FakeCluster listens on 127.0.0.1 with a port the system picks.
"""

from __future__ import annotations

import inspect
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from fakecluster import FakeCluster
from pvekit import AsyncClient, Client, Clock

TEST_TOKEN_USER = "root@pam"
TEST_TOKEN_NAME = "pvekit-test"
# A fixed, obviously fake secret in the UUID form PVE uses for token secrets.
TEST_TOKEN_SECRET = "00000000-0000-0000-0000-000000000001"


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    """A fresh, empty FakeCluster for one test, stopped afterwards."""
    with FakeCluster() as fake:
        yield fake


@pytest.fixture
def token(cluster: FakeCluster) -> str:
    """The full API token ``root@pam!pvekit-test=<secret>``, registered on ``cluster``."""
    return cluster.add_token(TEST_TOKEN_USER, TEST_TOKEN_NAME, TEST_TOKEN_SECRET)


# --------------------------------------------------------------- clients


class Api:
    """A Client or AsyncClient behind one interface, so each integration test runs on both.

    ``await api.call(lambda pve: pve.vms.list())`` returns the result for either client.
    """

    def __init__(self, client: Client | AsyncClient) -> None:
        self.client = client
        self.is_async = isinstance(client, AsyncClient)

    async def call(self, use: Callable[[Any], Any]) -> Any:
        """Call ``use(client)`` and await its result when the client is async."""
        result = use(self.client)
        if inspect.isawaitable(result):
            return await result
        return result


class FakeClock(Clock):
    """A clock whose sleeps return at once and move its monotonic and wall time forward."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds


def closed_loopback_port() -> int:
    """Return a loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_client(kind: str, cluster: FakeCluster, token: str, **options: Any) -> Client | AsyncClient:
    """Build a client of the given kind ('sync' or 'async') that verifies the fake's certificate."""
    factory = Client if kind == "sync" else AsyncClient
    return factory(cluster.host, token, ca_file=cluster.ca_file, **options)


async def close_client(client: Client | AsyncClient) -> None:
    """Close either kind of client."""
    if isinstance(client, AsyncClient):
        await client.aclose()
    else:
        client.close()


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest, cluster: FakeCluster, token: str) -> AsyncIterator[Api]:
    """A Client and then an AsyncClient on ``cluster``, with the CA passed explicitly."""
    client = make_client(request.param, cluster, token)
    try:
        yield Api(client)
    finally:
        await close_client(client)


@pytest.fixture
def clock() -> FakeClock:
    """A clock for tests that wait: sleeps return at once."""
    return FakeClock()


@pytest.fixture(params=["sync", "async"])
async def timed_api(
    request: pytest.FixtureRequest, cluster: FakeCluster, token: str, clock: FakeClock
) -> AsyncIterator[Api]:
    """Like ``api``, with the FakeClock as the client's clock."""
    client = make_client(request.param, cluster, token, clock=clock)
    try:
        yield Api(client)
    finally:
        await close_client(client)
