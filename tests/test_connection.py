"""Host forms, timeouts and pool settings; all parsing, no connection."""

from __future__ import annotations

import pytest

from pvekit import InvalidInputError
from pvekit._connection import KEEPALIVE_EXPIRY_SECONDS, make_limits, make_timeout, parse_host


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("pve1", "https://pve1:8006/api2/json"),
        ("pve1:8006", "https://pve1:8006/api2/json"),
        ("pve1.example.com:443", "https://pve1.example.com:443/api2/json"),
        ("https://pve1:8006", "https://pve1:8006/api2/json"),
        ("https://pve1:8006/", "https://pve1:8006/api2/json"),
        ("https://pve1:8006/api2/json", "https://pve1:8006/api2/json"),
        ("192.0.2.10", "https://192.0.2.10:8006/api2/json"),
        ("192.0.2.10:8443", "https://192.0.2.10:8443/api2/json"),
        ("[2001:db8::10]:8006", "https://[2001:db8::10]:8006/api2/json"),
        ("[2001:db8::10]", "https://[2001:db8::10]:8006/api2/json"),
        ("2001:db8::10", "https://[2001:db8::10]:8006/api2/json"),
        ("  pve1  ", "https://pve1:8006/api2/json"),
    ],
)
def test_host_forms(host: str, base_url: str) -> None:
    assert parse_host(host).base_url == base_url


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("", "host is empty"),
        ("http://pve1:8006", "https only"),
        ("pve1:99999", "invalid port"),
        ("https://pve1:8006/somewhere", "has a path"),
    ],
)
def test_bad_host_explained(host: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_host(host)


def test_timeouts_configurable_and_checked() -> None:
    timeout = make_timeout(2.5, 60)

    assert timeout.connect == 2.5
    assert timeout.read == 60
    with pytest.raises(InvalidInputError, match="connect_timeout"):
        make_timeout(0, 60)


def test_idle_connections_dropped_before_pveproxy_closes_them() -> None:
    # pveproxy closes idle keep-alive connections after a few seconds (5 s reported).
    assert KEEPALIVE_EXPIRY_SECONDS < 4
    assert make_limits(4).keepalive_expiry == KEEPALIVE_EXPIRY_SECONDS
    assert make_limits(4).max_connections == 4


def test_connection_error_names_the_port_used() -> None:
    import httpx

    from pvekit._connection import transport_error

    error = transport_error(httpx.ConnectError("refused"), "GET", "https://127.0.0.1:1/api2/json/nodes")

    assert "the port (1)" in str(error)
