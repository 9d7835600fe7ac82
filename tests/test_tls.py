"""TLS settings against the fake cluster: the CA file wins over the environment, and verify=False warns."""

from __future__ import annotations

import logging

import pytest

from fakecluster import FakeCluster
from pvekit import AsyncClient, Client, InvalidInputError, TLSError
from tests.conftest import Api, close_client, make_client


async def test_ca_file_wins_over_environment(monkeypatch: pytest.MonkeyPatch, cluster: FakeCluster, token: str) -> None:
    # The system bundle in these variables does not contain the fake's certificate.
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    cluster.pve.add_vm(100, "web01", node="pve1", status="running")

    for kind in ("sync", "async"):
        api = Api(make_client(kind, cluster, token))
        try:
            assert [vm.vmid for vm in await api.call(lambda pve: pve.vms.list())] == [100]
        finally:
            await close_client(api.client)


async def test_system_cas_reject_self_signed(cluster: FakeCluster, token: str) -> None:
    for plain in (Api(Client(cluster.host, token)), Api(AsyncClient(cluster.host, token))):
        try:
            with pytest.raises(TLSError, match="ca_file"):
                await plain.call(lambda pve: pve.vms.list())
        finally:
            await close_client(plain.client)


def test_unreadable_ca_file_rejected(cluster: FakeCluster, token: str) -> None:
    with pytest.raises(InvalidInputError, match="cannot be read"):
        Client(cluster.host, token, ca_file="/nonexistent/ca.pem")


def test_verify_false_warns_once_per_client(caplog: pytest.LogCaptureFixture, cluster: FakeCluster, token: str) -> None:
    caplog.set_level(logging.WARNING, logger="pvekit")

    with Client(cluster.host, token, verify=False) as pve:
        pve.vms.list()
        pve.vms.list()

    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ca_file" in warnings[0].getMessage()
    assert "--ca-file" in warnings[0].getMessage()
