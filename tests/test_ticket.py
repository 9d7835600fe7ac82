"""Ticket login with user and password: form encoding, cookie and CSRF, renewal, re-login and second factors.

The integration tests run on Client and AsyncClient against LoginPve (tests/login_pve.py); replayed
login responses drive the login state directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import pytest

from fakecluster import FakeCluster
from pvekit import (
    AsyncClient,
    AuthenticationError,
    Client,
    InvalidInputError,
    TwoFactorRequiredError,
)
from pvekit._core import Exclusive, Operation, Send
from pvekit._exceptions import PveError
from pvekit._ticket import TicketAuth, challenge_factors, login_userid, ticket_issue_time
from tests.conftest import Api, FakeClock, close_client
from tests.login_pve import RECOVERY_KEY, TOTP_CODE, LoginPve, login_cluster
from tests.scripted import response

PASSWORD = "correct-horse-7"
KINDS = ["sync", "async"]

# A login response as PVE sends it, with the issue time 0x65F0A1B2 = 2024-03-12T18:40:50Z.
REPLAYED_LOGIN = {
    "data": {
        "username": "api@pve",
        "ticket": "PVE:api@pve:65F0A1B2::EXAMPLESIG",
        "CSRFPreventionToken": "65F0A1B2:EXAMPLECSRF",
    }
}
REPLAYED_ISSUED = 1710268850


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeCluster, LoginPve]]:
    """A LoginPve cluster whose root@pam has PASSWORD, with VM 100 stopped on pve1."""
    with login_cluster(monkeypatch, PASSWORD) as (cluster, pve):
        pve.add_vm(100, "web01", node="pve1", status="stopped")
        yield cluster, pve


@asynccontextmanager
async def password_api(kind: str, cluster: FakeCluster, **options: Any) -> AsyncIterator[Api]:
    """Open a Client or AsyncClient that logs in as root@pam with PASSWORD, unless ``options`` override them."""
    options.setdefault("user", "root@pam")
    options.setdefault("password", PASSWORD)
    factory = Client if kind == "sync" else AsyncClient
    client = factory(cluster.host, ca_file=cluster.ca_file, **options)
    try:
        yield Api(client)
    finally:
        await close_client(client)


def form(body: bytes | None) -> dict[str, list[str]]:
    assert body is not None
    return parse_qs(body.decode("ascii"), keep_blank_values=True)


# --------------------------------------------------------------- pure parts


def test_ticket_issue_time_from_hex_field() -> None:
    assert ticket_issue_time("PVE:api@pve:65F0A1B2::EXAMPLESIG") == REPLAYED_ISSUED
    assert ticket_issue_time("not a ticket") is None


def test_user_without_realm_is_pam() -> None:
    assert login_userid("root") == "root@pam"
    assert login_userid("api@pve") == "api@pve"
    assert login_userid("user.name@example.com@entra") == "user.name@example.com@entra"


@pytest.mark.parametrize("user", ["", "  ", "@pve", "api@"])
def test_invalid_user_rejected(user: str) -> None:
    with pytest.raises(InvalidInputError):
        login_userid(user)


def test_token_id_as_user_hides_secret() -> None:
    with pytest.raises(InvalidInputError) as caught:
        login_userid("dev@pve!ci=11111111-2222-3333-4444-555555555555")

    assert "token=" in str(caught.value)
    assert "11111111" not in str(caught.value)


def test_challenge_names_factors() -> None:
    assert challenge_factors('PVE:!tfa!{"totp"%3Atrue,"recovery"%3A[0]}:65F0A1B2::SIG') == ("recovery", "totp")
    assert challenge_factors("PVE:!tfa!0123abcd:65F0A1B2::SIG") == ()
    assert challenge_factors("PVE:api@pve:65F0A1B2::SIG") == ()


class WallClock(FakeClock):
    """A FakeClock whose wall time is set by the test."""

    def __init__(self, wall: float) -> None:
        super().__init__()
        self.now = wall

    def wall(self) -> float:
        return self.now


def run_scripted(operation: Operation[Any], replies: list[Any]) -> list[Send]:
    """Run an operation, replying to each Send with the next response and running Exclusive effects inline."""
    sent: list[Send] = []

    def run(current: Operation[Any]) -> Any:
        value: Any = None
        try:
            while True:
                effect = current.send(value)
                if isinstance(effect, Exclusive):
                    try:
                        value = run(effect.operation)
                    except PveError as exc:
                        value = exc
                elif isinstance(effect, Send):
                    sent.append(effect)
                    value = replies.pop(0)
                else:
                    raise AssertionError(f"unexpected effect {effect!r}")
        except StopIteration as stop:
            return stop.value

    run(operation)
    return sent


def test_replayed_login_headers_and_renewal() -> None:
    clock = WallClock(REPLAYED_ISSUED + 5)
    auth = TicketAuth("api@pve", "Ex[mp&le%pw5", clock=clock)

    sent = run_scripted(auth.ensure_ticket(), [response(200, REPLAYED_LOGIN)])
    assert [(s.method, s.path) for s in sent] == [("POST", "/access/ticket")]
    assert dict(sent[0].params) == {"username": "api@pve", "password": "Ex[mp&le%pw5"}
    assert auth.headers("GET", "/nodes") == {"Cookie": "PVEAuthCookie=PVE:api@pve:65F0A1B2::EXAMPLESIG"}
    assert auth.headers("POST", "/nodes/pve1/qemu/100/status/start") == {
        "Cookie": "PVEAuthCookie=PVE:api@pve:65F0A1B2::EXAMPLESIG",
        "CSRFPreventionToken": "65F0A1B2:EXAMPLECSRF",
    }
    assert auth.headers("POST", "/access/ticket") == {}

    clock.now = REPLAYED_ISSUED + 3599
    assert run_scripted(auth.ensure_ticket(), []) == []

    clock.now = REPLAYED_ISSUED + 3600
    renewed = {"data": {"ticket": "PVE:api@pve:65F0AFC2::NEWSIG", "CSRFPreventionToken": "65F0AFC2:NEWCSRF"}}
    sent = run_scripted(auth.ensure_ticket(), [response(200, renewed)])
    assert dict(sent[0].params) == {"username": "api@pve", "password": "PVE:api@pve:65F0A1B2::EXAMPLESIG"}
    assert auth.headers("DELETE", "/nodes/pve1/tasks/x") == {
        "Cookie": "PVEAuthCookie=PVE:api@pve:65F0AFC2::NEWSIG",
        "CSRFPreventionToken": "65F0AFC2:NEWCSRF",
    }


def test_skewed_clock_times_renewal_from_arrival(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pvekit")
    # This host's clock is 2 h 27 min ahead of the node that issued the ticket.
    clock = WallClock(REPLAYED_ISSUED + 8820)
    auth = TicketAuth("api@pve", "Ex[mp&le%pw5", clock=clock)

    run_scripted(auth.ensure_ticket(), [response(200, REPLAYED_LOGIN)])

    assert auth.age_seconds() == 0
    assert run_scripted(auth.ensure_ticket(), []) == []
    assert any("clock" in record.getMessage() for record in caplog.records)


def test_login_state_repr_hides_secrets() -> None:
    clock = WallClock(REPLAYED_ISSUED)
    auth = TicketAuth("api@pve", "Ex[mp&le%pw5", otp="012345", clock=clock)
    run_scripted(auth.ensure_ticket(), [response(200, REPLAYED_LOGIN)])

    text = repr(auth) + repr(vars(auth))
    for secret in ("Ex[mp&le%pw5", "012345", "EXAMPLESIG", "EXAMPLECSRF"):
        assert secret not in text


# --------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"token": "root@pam!ci=00000000-0000-0000-0000-000000000001", "password": "x"}, "exclude each other"),
        ({}, "no credentials"),
        ({"password": "x"}, "without user"),
        ({"user": "api@pve"}, "no password"),
        ({"user": "api@pve", "password": ""}, "password is empty"),
        ({"user": "api@pve", "password": "x", "otp": "1", "otp_callback": lambda: "1"}, "exclude each other"),
        ({"user": "api@pve", "password": "x", "otp": 12345}, "string"),
    ],
)
def test_invalid_credentials_rejected_before_any_request(options: dict[str, Any], expected: str) -> None:
    # 127.0.0.1:9 has nothing listening; the error must come from checking the settings.
    with pytest.raises(InvalidInputError, match=expected):
        Client("127.0.0.1:9", **options)


def test_repr_names_user_only() -> None:
    pve = Client("127.0.0.1:9", user="api@pve", password="Ex[mp&le%pw5")
    try:
        assert repr(pve) == "Client(host='https://127.0.0.1:9/api2/json', user='api@pve')"
        assert pve.auth_id == "api@pve"
    finally:
        pve.close()


# --------------------------------------------------------------- against the fake


@pytest.mark.parametrize("kind", KINDS)
async def test_login_then_cookie_without_csrf_on_reads(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login

    async with password_api(kind, cluster) as api:
        vms = await api.call(lambda client: client.vms.list())

    assert [vm.vmid for vm in vms] == [100]
    ticket, _csrf = pve.live_session()
    [login_request] = pve.requests_to("/access/ticket")
    assert (login_request.cookie, login_request.csrf, login_request.authorization) == (None, None, None)
    [listing] = pve.requests_to("/cluster/resources")
    assert listing.cookie == f"PVEAuthCookie={ticket}"
    assert listing.csrf is None
    assert listing.authorization is None


@pytest.fixture(
    params=[
        ("Ex[mp&le%pw5", b"username=api%40pve&password=Ex%5Bmp%26le%25pw5"),
        ("pässwörd+1=2", b"username=api%40pve&password=p%C3%A4ssw%C3%B6rd%2B1%3D2"),
    ],
    ids=["ascii-specials", "non-ascii"],
)
def api_user(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeCluster, LoginPve, str, bytes]]:
    """A LoginPve cluster with user api@pve, whose password needs encoding, and the login body expected for it."""
    password, encoded = request.param
    with login_cluster(monkeypatch, "root-password") as (cluster, pve):
        pve.users["api@pve"] = password
        yield cluster, pve, password, encoded


@pytest.mark.parametrize("kind", KINDS)
async def test_password_is_form_encoded(kind: str, api_user: tuple[FakeCluster, LoginPve, str, bytes]) -> None:
    cluster, pve, password, encoded = api_user

    async with password_api(kind, cluster, user="api@pve", password=password) as api:
        nodes = await api.call(lambda client: client.cluster.nodes())

    assert nodes == ["pve1"]
    [login_request] = pve.requests_to("/access/ticket")
    assert login_request.login_body == encoded


@pytest.mark.parametrize("kind", KINDS)
async def test_user_without_realm_sent_as_pam(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login

    async with password_api(kind, cluster, user="root") as api:
        await api.call(lambda client: client.cluster.nodes())

    [login_request] = pve.requests_to("/access/ticket")
    assert form(login_request.login_body)["username"] == ["root@pam"]


@pytest.mark.parametrize("kind", KINDS)
async def test_csrf_sent_on_writes_only(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login

    async with password_api(kind, cluster) as api:
        task = await api.call(lambda client: client.vms.start(100, node="pve1"))
        await api.call(lambda client: task.wait(timeout=30))

    ticket, csrf = pve.live_session()
    after_login = [seen for seen in pve.seen if seen.path != "/access/ticket"]
    assert {seen.method for seen in after_login} == {"GET", "POST"}
    for seen in after_login:
        assert seen.cookie == f"PVEAuthCookie={ticket}"
        assert seen.csrf == (csrf if seen.method == "POST" else None), (seen.method, seen.path)


@pytest.mark.parametrize("kind", KINDS)
async def test_renewal_after_one_hour_replaces_csrf(
    kind: str, login: tuple[FakeCluster, LoginPve], clock: FakeClock
) -> None:
    cluster, pve = login

    async with password_api(kind, cluster, clock=clock) as api:
        await api.call(lambda client: client.cluster.nodes())
        first_ticket, _ = pve.live_session()
        # PVE writes the issue time in whole seconds and real time passes between the calls, so the
        # clock stops a minute short of the hour rather than one second short.
        clock.offset += 3540
        await api.call(lambda client: client.cluster.nodes())
        assert pve.logins == ["password"]

        clock.offset += 61
        await api.call(lambda client: client.vms.start(100, node="pve1"))

    assert pve.logins == ["password", "renewal"]
    renewal = pve.requests_to("/access/ticket")[1]
    assert form(renewal.login_body) == {"username": ["root@pam"], "password": [first_ticket]}
    ticket, csrf = pve.live_session()
    assert ticket != first_ticket
    [start] = [seen for seen in pve.seen if seen.method == "POST" and seen.path.endswith("/status/start")]
    assert start.cookie == f"PVEAuthCookie={ticket}"
    assert start.csrf == csrf


@pytest.mark.parametrize("kind", KINDS)
async def test_failed_renewal_logs_in_with_password(
    kind: str, login: tuple[FakeCluster, LoginPve], clock: FakeClock
) -> None:
    cluster, pve = login

    async with password_api(kind, cluster, clock=clock) as api:
        await api.call(lambda client: client.cluster.nodes())
        pve.revoke_tickets()
        clock.offset += 3600
        nodes = await api.call(lambda client: client.cluster.nodes())

    assert nodes == ["pve1"]
    assert pve.logins == ["password", "password"]
    assert len(pve.requests_to("/access/ticket")) == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_renewal_error_keeps_current_ticket(
    kind: str, login: tuple[FakeCluster, LoginPve], clock: FakeClock
) -> None:
    cluster, pve = login

    async with password_api(kind, cluster, clock=clock) as api:
        await api.call(lambda client: client.cluster.nodes())
        first_ticket, _ = pve.live_session()
        pve.fail("POST", "/access/ticket", 503, "Service Unavailable", times=1)
        clock.offset += 3600
        nodes = await api.call(lambda client: client.cluster.nodes())
        assert nodes == ["pve1"]
        assert pve.logins == ["password"]
        assert pve.requests_to("/nodes")[-1].cookie == f"PVEAuthCookie={first_ticket}"

        await api.call(lambda client: client.cluster.nodes())

    assert pve.logins == ["password", "renewal"]


@pytest.mark.parametrize("kind", KINDS)
async def test_401_logs_in_again_and_retries_once(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login

    async with password_api(kind, cluster) as api:
        await api.call(lambda client: client.cluster.nodes())
        pve.revoke_tickets()
        nodes = await api.call(lambda client: client.cluster.nodes())

    assert nodes == ["pve1"]
    assert pve.logins == ["password", "password"]
    assert len(pve.requests_to("/nodes")) == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_second_401_raises_mentioning_clock_skew(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login
    # Every ticket is expired when issued, as a node whose clock runs far ahead would judge it.
    pve.ticket_ttl = -1

    async with password_api(kind, cluster) as api:
        with pytest.raises(AuthenticationError) as caught:
            await api.call(lambda client: client.cluster.nodes())

    assert "clock skew" in str(caught.value)
    assert caught.value.status_code == 401
    assert pve.logins == ["password", "password"]
    assert len(pve.requests_to("/nodes")) == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_wrong_password_raises_once(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login

    async with password_api(kind, cluster, password="Wr0ng&pass") as api:
        with pytest.raises(AuthenticationError) as caught:
            await api.call(lambda client: client.cluster.nodes())

    assert "root@pam" in str(caught.value)
    assert "password" in str(caught.value)
    assert "Wr0ng&pass" not in str(caught.value) + repr(caught.value)
    assert len(pve.requests_to("/access/ticket")) == 1
    assert pve.requests_to("/nodes") == []


async def test_concurrent_requests_share_one_login(login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login

    async with password_api("async", cluster) as api:
        client = api.client
        assert isinstance(client, AsyncClient)
        statuses = await asyncio.gather(*(client.vms.status(100, node="pve1") for _ in range(6)))

    assert len(statuses) == 6
    assert pve.logins == ["password"]


# --------------------------------------------------------------- second factor


@pytest.mark.parametrize("kind", KINDS)
async def test_second_factor_without_code_raises(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login
    pve.tfa = True

    async with password_api(kind, cluster) as api:
        with pytest.raises(TwoFactorRequiredError) as caught:
            await api.call(lambda client: client.cluster.nodes())

    error = caught.value
    assert isinstance(error, AuthenticationError)
    assert error.userid == "root@pam"
    assert error.factors == ("recovery", "totp")
    assert "otp=" in str(error)
    assert "otp_callback=" in str(error)
    assert "PVE:!tfa!" not in str(error) + repr(error)
    assert PASSWORD not in str(error) + repr(error)
    assert pve.logins == ["challenge"]


@pytest.mark.parametrize("kind", KINDS)
async def test_totp_code_answers_challenge(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login
    pve.tfa = True

    async with password_api(kind, cluster, otp=TOTP_CODE) as api:
        nodes = await api.call(lambda client: client.cluster.nodes())

    assert nodes == ["pve1"]
    assert pve.logins == ["challenge", "tfa"]
    second = form(pve.requests_to("/access/ticket")[1].login_body)
    assert second["username"] == ["root@pam"]
    assert second["password"] == [f"totp:{TOTP_CODE}"]
    assert second["tfa-challenge"][0].startswith("PVE:!tfa!")


@pytest.mark.parametrize("kind", KINDS)
async def test_recovery_key_sent_as_given(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login
    pve.tfa = True

    async with password_api(kind, cluster, otp=f"recovery:{RECOVERY_KEY}") as api:
        await api.call(lambda client: client.cluster.nodes())

    assert pve.logins == ["challenge", "tfa"]


@pytest.mark.parametrize("kind", KINDS)
async def test_static_code_serves_one_login(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login
    pve.tfa = True

    async with password_api(kind, cluster, otp=TOTP_CODE) as api:
        await api.call(lambda client: client.cluster.nodes())
        pve.revoke_tickets()
        with pytest.raises(TwoFactorRequiredError, match="otp_callback"):
            await api.call(lambda client: client.cluster.nodes())


@pytest.mark.parametrize("kind", KINDS)
async def test_code_callback_asked_at_each_login(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login
    pve.tfa = True
    code_requests: list[str] = []

    def current_code() -> str:
        code_requests.append("code")
        return TOTP_CODE

    async with password_api(kind, cluster, otp_callback=current_code) as api:
        await api.call(lambda client: client.cluster.nodes())
        pve.revoke_tickets()
        nodes = await api.call(lambda client: client.cluster.nodes())

    assert nodes == ["pve1"]
    assert code_requests == ["code", "code"]
    assert pve.logins == ["challenge", "tfa", "challenge", "tfa"]


@pytest.mark.parametrize("kind", KINDS)
async def test_wrong_code_raises(kind: str, login: tuple[FakeCluster, LoginPve]) -> None:
    cluster, pve = login
    pve.tfa = True

    async with password_api(kind, cluster, otp="654321") as api:
        with pytest.raises(AuthenticationError, match="second factor") as caught:
            await api.call(lambda client: client.cluster.nodes())

    assert not isinstance(caught.value, TwoFactorRequiredError)
    assert "654321" not in str(caught.value)
    assert pve.logins == ["challenge"]


def test_challenge_body_is_json_in_fake() -> None:
    # The fake's challenge must be what challenge_factors reads, or the tests above prove nothing.
    from tests.login_pve import CHALLENGE

    assert json.loads(CHALLENGE.replace("%3A", ":")) == {"totp": True, "recovery": [0, 1, 2]}
