"""Certificate pinning, CA files, reading a certificate, token headers, and secrets kept out of logs and reprs.

Integration tests run on Client and AsyncClient against the fake cluster, which serves the
self-signed certificate in ``cluster.ca_file``.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fakepve.certs import make_cert

from fakecluster import FakeCluster
from pvekit import (
    AsyncClient,
    CertificateFingerprintMismatch,
    CertificateInfo,
    Client,
    InvalidInputError,
    PveConnectionError,
    PveError,
    TLSError,
    fetch_certificate,
)
from tests.conftest import Api, FakeClock, close_client
from tests.login_pve import RECOVERY_KEY, LoginPve, login_cluster

KINDS = ["sync", "async"]
TOKEN_SECRET = "00000000-0000-0000-0000-000000000001"


def client_of(kind: str, cluster: FakeCluster, **options: Any) -> Client | AsyncClient:
    factory = Client if kind == "sync" else AsyncClient
    return factory(cluster.host, **options)


def der_of(pem_file: str | Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(Path(pem_file).read_text())


def fingerprint_of(pem_file: str | Path) -> str:
    """Return the SHA-256 fingerprint of a PEM certificate in PVE's form, AB:CD:..."""
    digest = hashlib.sha256(der_of(pem_file)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@pytest.fixture
def other_cert(tmp_path: Path) -> str:
    """A self-signed certificate for 127.0.0.1 that the fake does not serve."""
    certfile, _keyfile, _der = make_cert(str(tmp_path), name="other", hosts=("127.0.0.1",))
    return certfile


# --------------------------------------------------------------- pinning


def pin_forms(colon_upper: str) -> list[str]:
    plain = colon_upper.replace(":", "")
    return [
        colon_upper,
        plain.lower(),
        plain[:32].lower() + plain[32:],
        colon_upper.lower(),
        f"sha256 Fingerprint={colon_upper}",
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_matching_pin_connects_in_every_form(kind: str, cluster: FakeCluster, token: str) -> None:
    # cluster.host is an IP address and the certificate is self-signed: the pin alone decides.
    for pin in pin_forms(fingerprint_of(cluster.ca_file)):
        api = Api(client_of(kind, cluster, token=token, fingerprint=pin))
        try:
            assert await api.call(lambda pve: pve.cluster.nodes()) == ["pve1"]
        finally:
            await close_client(api.client)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("auth", ["token", "password"])
async def test_pin_mismatch_sends_no_request(
    kind: str, auth: str, cluster: FakeCluster, token: str, other_cert: str
) -> None:
    credentials = {"token": token} if auth == "token" else {"user": "root@pam", "password": cluster.password}
    wrong = fingerprint_of(other_cert)
    api = Api(client_of(kind, cluster, fingerprint=wrong.replace(":", "").lower(), **credentials))

    try:
        with pytest.raises(CertificateFingerprintMismatch) as caught:
            await api.call(lambda pve: pve.cluster.nodes())
    finally:
        await close_client(api.client)

    error = caught.value
    presented = fingerprint_of(cluster.ca_file)
    assert error.expected == (wrong,)
    assert error.presented == presented
    assert wrong in str(error)
    assert presented in str(error)
    assert "Node > System > Certificates" in str(error)
    assert "no request was sent" in str(error)
    assert error.url.endswith("/nodes") or error.url.endswith("/access/ticket")
    assert cluster.pve.requests == []


@pytest.mark.parametrize("kind", KINDS)
async def test_several_pins_allow_rotation(kind: str, cluster: FakeCluster, token: str, other_cert: str) -> None:
    pins = [fingerprint_of(other_cert), fingerprint_of(cluster.ca_file)]
    api = Api(client_of(kind, cluster, token=token, fingerprint=pins))

    try:
        assert await api.call(lambda pve: pve.cluster.nodes()) == ["pve1"]
    finally:
        await close_client(api.client)


@pytest.mark.parametrize(
    ("pin", "expected"),
    [
        ("AB:CD", "has 4 hex digits"),
        ("aa" * 20, "SHA-1"),
        ("zz" * 32, "other than hex digits"),
        ([], "empty sequence"),
    ],
)
def test_invalid_pin_rejected_before_any_request(pin: Any, expected: str) -> None:
    with pytest.raises(InvalidInputError, match=expected):
        Client("127.0.0.1:9", token=f"root@pam!ci={TOKEN_SECRET}", fingerprint=pin)


def test_pin_excludes_ca_file_and_verify_false(cluster: FakeCluster, token: str) -> None:
    pin = fingerprint_of(cluster.ca_file)

    with pytest.raises(InvalidInputError, match="ca_file"):
        Client(cluster.host, token, fingerprint=pin, ca_file=cluster.ca_file)
    with pytest.raises(InvalidInputError, match="verify=False"):
        Client(cluster.host, token, fingerprint=pin, verify=False)


# --------------------------------------------------------------- CA files


@pytest.mark.parametrize("kind", KINDS)
async def test_ca_file_verifies(kind: str, cluster: FakeCluster, token: str) -> None:
    api = Api(client_of(kind, cluster, token=token, ca_file=cluster.ca_file))

    try:
        assert await api.call(lambda pve: pve.cluster.nodes()) == ["pve1"]
    finally:
        await close_client(api.client)


@pytest.mark.parametrize("kind", KINDS)
async def test_wrong_ca_file_raises_tls_error(kind: str, cluster: FakeCluster, token: str, other_cert: str) -> None:
    api = Api(client_of(kind, cluster, token=token, ca_file=other_cert))

    try:
        with pytest.raises(TLSError, match="fingerprint=") as caught:
            await api.call(lambda pve: pve.cluster.nodes())
    finally:
        await close_client(api.client)

    assert not isinstance(caught.value, CertificateFingerprintMismatch)
    assert cluster.pve.requests == []


def test_verify_false_warns_with_safer_options(
    caplog: pytest.LogCaptureFixture, cluster: FakeCluster, token: str
) -> None:
    caplog.set_level(logging.WARNING, logger="pvekit")
    filters_before = list(warnings.filters)

    for _ in range(2):
        with Client(cluster.host, token, verify=False) as pve:
            pve.cluster.nodes()
            pve.cluster.nodes()

    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(messages) == 2
    assert "ca_file" in messages[0]
    assert "fingerprint" in messages[0]
    assert warnings.filters == filters_before


# --------------------------------------------------------------- reading a certificate


def test_fetch_certificate_reads_without_request(cluster: FakeCluster) -> None:
    info = fetch_certificate(cluster.host, timeout=5)

    expected = x509.load_pem_x509_certificate(Path(cluster.ca_file).read_bytes())
    assert info.fingerprint_sha256 == fingerprint_of(cluster.ca_file)
    assert info.subject == "CN=fakecluster"
    assert info.issuer == "CN=fakecluster"
    assert info.self_signed
    assert info.not_before == expected.not_valid_before_utc
    assert info.not_after == expected.not_valid_after_utc
    assert info.serial_number == expected.serial_number
    assert info.subject_alt_names == ("DNS:localhost", "IP:127.0.0.1")
    assert info.pem.strip() == Path(cluster.ca_file).read_text().strip()
    assert "der=" not in repr(info)
    assert cluster.pve.requests == []


def test_fetched_fingerprint_works_as_pin(cluster: FakeCluster, token: str) -> None:
    info = fetch_certificate(f"https://{cluster.host}")

    with Client(cluster.host, token, fingerprint=info.fingerprint_sha256) as pve:
        assert pve.cluster.nodes() == ["pve1"]


def test_fetch_certificate_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(PveConnectionError, match=r"connecting to 127\.0\.0\.1"):
        fetch_certificate(f"127.0.0.1:{port}", timeout=5)


def test_fetch_certificate_rejects_bad_timeout() -> None:
    with pytest.raises(InvalidInputError, match="timeout"):
        fetch_certificate("127.0.0.1:9", timeout=0)


def make_certificate_der(subject: x509.Name, not_before: datetime.datetime, not_after: datetime.datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Proxmox Virtual Environment CA")]))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("pve1.example.com"), x509.IPAddress(ipaddress.ip_address("::1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def test_certificate_fields_decoded() -> None:
    # 1960 is written as UTCTime "60...", 2060 as GeneralizedTime: both forms are read.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "pve1.example.com"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "PVE Cluster Node"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Prüfstand"),
        ]
    )
    start = datetime.datetime(1960, 5, 1, 12, 30, 5, tzinfo=datetime.timezone.utc)
    end = datetime.datetime(2060, 5, 1, 12, 30, 5, tzinfo=datetime.timezone.utc)
    der = make_certificate_der(subject, start, end)

    info = CertificateInfo.from_der(der)

    assert info.subject == "CN=pve1.example.com, OU=PVE Cluster Node, O=Prüfstand"
    assert info.issuer == "CN=Proxmox Virtual Environment CA"
    assert not info.self_signed
    assert (info.not_before, info.not_after) == (start, end)
    assert info.serial_number == 7
    assert info.subject_alt_names == ("DNS:pve1.example.com", "IP:::1")


def test_undecodable_certificate_raises_tls_error() -> None:
    with pytest.raises(TLSError, match="cannot be decoded"):
        CertificateInfo.from_der(b"\x30\x03\x02\x01")


# --------------------------------------------------------------- token headers


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeCluster, LoginPve]]:
    """A LoginPve cluster, which records the credential headers of every request, with VM 100 stopped."""
    with login_cluster(monkeypatch, "root-password") as (cluster, pve):
        pve.add_vm(100, "web01", node="pve1", status="stopped")
        yield cluster, pve


@pytest.mark.parametrize("kind", KINDS)
async def test_token_requests_carry_no_cookie_or_csrf(kind: str, recording: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = recording
    token = cluster.add_token("root@pam", "ci", TOKEN_SECRET)
    # A cookie the server sets must not come back either.
    pve.set_cookie = "PVEAuthCookie=PVE:root@pam:65F0A1B2::SERVERSET; Path=/; Secure"
    api = Api(client_of(kind, cluster, token=token, ca_file=cluster.ca_file))

    try:
        task = await api.call(lambda client: client.vms.start(100, node="pve1"))
        await api.call(lambda client: task.wait(timeout=30))
    finally:
        await close_client(api.client)

    assert {seen.method for seen in pve.seen} == {"GET", "POST"}
    assert pve.requests_to("/access/ticket") == []
    for seen in pve.seen:
        assert seen.authorization == f"PVEAPIToken={token}"
        assert seen.cookie is None
        assert seen.csrf is None


# --------------------------------------------------------------- planted secrets

PLANTED_TOKEN_SECRET = "7a1b2c3d-5eed-4bad-8eef-0f1a2b3c4d5e"
PLANTED_WRONG_SECRET = "9f8e7d6c-5eed-4bad-8eef-a1b2c3d4e5f6"
PLANTED_PASSWORD = "Pl4nted&pässwörd%=+"
PLANTED_WRONG_PASSWORD = "Wr0ng&planted%pw"
AGENT_INTERFACES = [
    {"name": "lo", "hardware-address": "00:00:00:00:00:00",
     "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]},
    {"name": "eth0", "hardware-address": "bc:24:11:00:00:01",
     "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.2", "prefix": 24}]},
]  # fmt: skip

Use = Callable[[Any], Any]


def api_calls() -> list[tuple[str, Use]]:
    """Every public method that can run against the fake, with arguments that make some of them fail."""
    return [
        ("vms.list", lambda pve: pve.vms.list()),
        ("vms.list node", lambda pve: pve.vms.list("pve1", status="running")),
        ("vms.list_by_node", lambda pve: pve.vms.list_by_node()),
        ("vms.get", lambda pve: pve.vms.get(100)),
        ("vms.locate", lambda pve: pve.vms.locate(100)),
        ("vms.status", lambda pve: pve.vms.status(100)),
        ("vms.config", lambda pve: pve.vms.config(100)),
        ("vms.status missing", lambda pve: pve.vms.status(999)),
        ("cluster.nodes", lambda pve: pve.cluster.nodes()),
        ("cluster.guests", lambda pve: pve.cluster.guests()),
        ("metrics.snapshot", lambda pve: pve.metrics.snapshot(100)),
        ("metrics.rates", lambda pve: pve.metrics.rates(100, interval=1)),
        ("metrics.cluster_snapshot", lambda pve: pve.metrics.cluster_snapshot()),
        ("metrics.cluster_rates", lambda pve: pve.metrics.cluster_rates(interval=1)),
        ("metrics.sampler", lambda pve: pve.metrics.sampler(interval=1).sample()),
        ("rrd.series", lambda pve: pve.rrd.series(100)),
        ("rrd.series bad timeframe", lambda pve: pve.rrd.series(100, timeframe="fortnight")),
        ("rrd.node_series", lambda pve: pve.rrd.node_series("pve1")),
        ("rrd.current", lambda pve: pve.rrd.current(100)),
        ("rrd.current_many", lambda pve: pve.rrd.current_many([100, 101])),
        ("agent.network", lambda pve: pve.agent.network(100)),
        ("agent.primary_address", lambda pve: pve.agent.primary_address(100)),
        ("agent.networks_many", lambda pve: pve.agent.networks_many([100, 101])),
        ("agent.wait_for_address", lambda pve: pve.agent.wait_for_address(100, timeout=5)),
        ("agent.network stopped", lambda pve: pve.agent.network(101)),
        ("vms.start", lambda pve: pve.vms.start(101)),
        ("vms.suspend", lambda pve: pve.vms.suspend(100)),
        ("vms.resume", lambda pve: pve.vms.resume(100)),
        ("vms.reboot", lambda pve: pve.vms.reboot(100)),
        ("vms.reset", lambda pve: pve.vms.reset(100)),
        ("vms.shutdown", lambda pve: pve.vms.shutdown(101, timeout=5)),
        ("vms.stop", lambda pve: pve.vms.stop(101)),
        ("vms.start running", lambda pve: pve.vms.start(100)),
        ("tasks.list node", lambda pve: pve.tasks.list("pve1")),
        ("tasks.list vm", lambda pve: pve.tasks.list(vmid=100)),
        ("tasks.list cluster", lambda pve: pve.tasks.list()),
    ]


def task_calls(upid: str) -> list[tuple[str, Use]]:
    return [
        ("tasks.get", lambda pve: repr(pve.tasks.get(upid))),
        ("tasks.status", lambda pve: pve.tasks.status(upid)),
        ("tasks.log", lambda pve: pve.tasks.log(upid)),
        ("tasks.wait", lambda pve: pve.tasks.wait(upid, timeout=30)),
        ("tasks.stop", lambda pve: pve.tasks.stop(upid)),
        ("task.status", lambda pve: pve.tasks.get(upid).status()),
        ("task.log", lambda pve: pve.tasks.get(upid).log()),
        ("task.wait", lambda pve: pve.tasks.get(upid).wait(timeout=30)),
    ]


def describe(value: Any) -> str:
    """Return every text a value shows: repr and str, and for exceptions their attributes and chain."""
    texts = [repr(value), str(value)]
    if isinstance(value, BaseException):
        texts += [repr(value.args), repr(vars(value))]
        for linked in (value.__cause__, value.__context__):
            if linked is not None:
                texts.append(describe(linked))
    return "\n".join(texts)


async def run_everything(api: Api, label: str, outcomes: dict[str, Any]) -> None:
    """Call every public method; store each result or raised PveError under ``label`` and its name."""
    for name, use in api_calls():
        try:
            outcomes[f"{label} {name}"] = await api.call(use)
        except PveError as exc:
            outcomes[f"{label} {name}"] = exc
    for name, use in task_calls(outcomes[f"{label} vms.stop"].upid):
        try:
            outcomes[f"{label} {name}"] = await api.call(use)
        except PveError as exc:
            outcomes[f"{label} {name}"] = exc


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeCluster, LoginPve]]:
    """A LoginPve cluster whose root@pam has PLANTED_PASSWORD, with a planted token and two VMs."""
    with login_cluster(monkeypatch, PLANTED_PASSWORD) as (cluster, pve):
        cluster.add_token("root@pam", "planted", PLANTED_TOKEN_SECRET)
        vm = pve.add_vm(100, "web01", node="pve1", status="running", config={"agent": "1"})
        vm.agent = {"interfaces": AGENT_INTERFACES}
        pve.add_vm(101, "db01", node="pve1", status="stopped")
        yield cluster, pve


@pytest.mark.parametrize("kind", KINDS)
async def test_planted_secrets_never_shown(
    kind: str,
    planted: tuple[FakeCluster, LoginPve],
    other_cert: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster, pve = planted
    caplog.set_level(logging.DEBUG)
    rendered_texts: list[str] = []
    outcomes: dict[str, Any] = {}

    def remember_client(client: Client | AsyncClient) -> Api:
        rendered_texts.extend([repr(client), str(client), repr(vars(client))])
        return Api(client)

    token = f"root@pam!planted={PLANTED_TOKEN_SECRET}"
    token_api = remember_client(client_of(kind, cluster, token=token, ca_file=cluster.ca_file, clock=FakeClock()))
    # A second factor by recovery key, so the login runs both of PVE 7's steps.
    clock = FakeClock()
    password_api = remember_client(
        client_of(
            kind,
            cluster,
            user="root",
            password=PLANTED_PASSWORD,
            otp_callback=lambda: f"recovery:{RECOVERY_KEY}",
            ca_file=cluster.ca_file,
            clock=clock,
        )
    )
    failing = {
        "wrong token": remember_client(
            client_of(kind, cluster, token=f"root@pam!planted={PLANTED_WRONG_SECRET}", ca_file=cluster.ca_file)
        ),
        "wrong password": remember_client(
            client_of(kind, cluster, user="root@pam", password=PLANTED_WRONG_PASSWORD, ca_file=cluster.ca_file)
        ),
        "pin mismatch": remember_client(client_of(kind, cluster, token=token, fingerprint=fingerprint_of(other_cert))),
        "no second factor": remember_client(
            client_of(kind, cluster, user="root@pam", password=PLANTED_PASSWORD, ca_file=cluster.ca_file)
        ),
    }
    try:
        await run_everything(token_api, "token", outcomes)
        pve.tfa = True
        await run_everything(password_api, "ticket", outcomes)

        # Renewal, re-login after a 401, and the clock-skew error.
        clock.offset += 3600
        outcomes["after renewal"] = await password_api.call(lambda client: client.cluster.nodes())
        pve.revoke_tickets()
        outcomes["after re-login"] = await password_api.call(lambda client: client.cluster.nodes())
        pve.ticket_ttl = -1
        pve.revoke_tickets()
        for name, api in [("clock skew", password_api), *failing.items()]:
            try:
                outcomes[name] = await api.call(lambda client: client.cluster.nodes())
            except PveError as exc:
                outcomes[name] = exc
    finally:
        for api in [token_api, password_api, *failing.values()]:
            rendered_texts.append(repr(vars(api.client)))
            await close_client(api.client)

    # The run went through the paths it is meant to cover.
    assert pve.logins.count("renewal") == 1
    assert "tfa" in pve.logins
    for label in ("token", "ticket"):
        assert not isinstance(outcomes[f"{label} vms.list"], PveError)
        assert not isinstance(outcomes[f"{label} agent.network"], PveError)
        assert not isinstance(outcomes[f"{label} task.wait"], PveError)
        assert isinstance(outcomes[f"{label} vms.status missing"], PveError)
    expected_errors = {"clock skew", "wrong token", "wrong password", "pin mismatch", "no second factor"}
    assert {name for name in expected_errors if isinstance(outcomes[name], PveError)} == expected_errors

    secrets = [PLANTED_TOKEN_SECRET, PLANTED_WRONG_SECRET, PLANTED_PASSWORD, PLANTED_WRONG_PASSWORD, RECOVERY_KEY]
    secrets += [quote_plus(secret) for secret in secrets] + [quote(secret) for secret in secrets]
    secrets += pve.issued
    assert len(pve.issued) >= 8

    # Records from the fake's own thread are the server's, not pvekit's.
    records = [record for record in caplog.records if record.threadName != "fakecluster"]
    assert any(record.name.startswith("httpcore") for record in records)
    assert any(record.name == "pvekit" and record.levelno == logging.DEBUG for record in records)
    corpus = [caplog.text, *(repr(vars(record)) for record in records), *(record.getMessage() for record in records)]
    corpus += rendered_texts + [describe(outcome) for outcome in outcomes.values()]
    printed = capsys.readouterr()
    corpus += [printed.out, printed.err]
    text = "\n".join(corpus)
    for secret in set(secrets):
        assert secret not in text, f"a planted secret appears in the output: {secret[:4]}..."
