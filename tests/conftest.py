"""Shared fixtures: a fake PVE cluster per test and an API token registered on it.

All tests talk only to loopback. Each FakeCluster listens on 127.0.0.1 with a port the system picks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakecluster import FakeCluster

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
