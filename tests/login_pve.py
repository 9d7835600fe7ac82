"""A fake PVE with the login steps fakepve 0.5.0 leaves out, and a record of the credential headers it got.

fakepve checks every ``/access/ticket`` password against the user's password,
so it cannot renew a ticket (PVE accepts a valid ticket as the password) or
finish a two-factor login (PVE 7 and later: a challenge ticket, then
``tfa-challenge`` with ``password=totp:<code>``). LoginPve adds both, and
``login_cluster`` starts a FakeCluster serving it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

import fakecluster.cluster
from fakecluster import FakeCluster, WorkloadPve

TOTP_CODE = "123456"
RECOVERY_KEY = "4f1c-9a2b-77e0-0d3c"
# A challenge modelled on the URL-encoded JSON that PVE 7 and later put between "PVE:!tfa!" and the next
# ':', here naming TOTP and recovery keys.
CHALLENGE = '{"totp"%3Atrue,"recovery"%3A[0,1,2]}'


@dataclass(frozen=True)
class Seen:
    """One request as the fake received it: its credential headers, and the body of login requests."""

    method: str
    path: str
    cookie: str | None
    csrf: str | None
    authorization: str | None
    login_body: bytes | None


class LoginPve(WorkloadPve):
    """WorkloadPve whose ``/access/ticket`` also renews tickets and runs PVE 7's two-factor steps.

    ``logins`` lists each successful login step: "password", "renewal",
    "challenge" (a password step that got a TFA challenge) and "tfa".
    ``issued`` keeps every ticket, challenge ticket and CSRF token handed out,
    even after ``revoke_tickets()``. Setting ``set_cookie`` adds that
    ``Set-Cookie`` header to every response.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: list[Seen] = []
        self.logins: list[str] = []
        self.issued: list[str] = []
        self.set_cookie: str | None = None
        self._challenges: dict[str, str] = {}

    def _build_app(self) -> web.Application:
        app = super()._build_app()
        # First in the list, so it is the outermost and records requests that fakepve rejects too.
        app.middlewares.insert(0, self._record_headers)
        return app

    @web.middleware
    async def _record_headers(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read() if request.path.endswith("/access/ticket") else None
        self.seen.append(
            Seen(
                method=request.method,
                path=request.path.removeprefix("/api2/json"),
                cookie=request.headers.get("Cookie"),
                csrf=request.headers.get("CSRFPreventionToken"),
                authorization=request.headers.get("Authorization"),
                login_body=body,
            )
        )
        response: web.StreamResponse = await handler(request)
        if self.set_cookie is not None:
            response.headers["Set-Cookie"] = self.set_cookie
        return response

    async def _ticket(self, request: web.Request) -> web.Response:
        form = await request.post()
        user = str(form.get("username", ""))
        password = str(form.get("password", ""))
        challenge = form.get("tfa-challenge")

        if challenge is not None:
            if self._challenges.pop(str(challenge), None) != user or password not in (
                f"totp:{TOTP_CODE}",
                f"recovery:{RECOVERY_KEY}",
            ):
                return _rejected()
            self.logins.append("tfa")
            return self._granted(user)
        if self._is_live_ticket(user, password):
            self.logins.append("renewal")
            return self._granted(user)
        if not self.check_password(user, password):
            return _rejected()
        if self.tfa:
            ticket = f"PVE:!tfa!{CHALLENGE}:{int(time.time()):08X}::{secrets.token_hex(16)}"
            self._challenges[ticket] = user
            self.issued.append(ticket)
            self.logins.append("challenge")
            return web.json_response({"data": {"ticket": ticket, "username": user, "NeedTFA": 1}})
        self.logins.append("password")
        return self._granted(user)

    def _is_live_ticket(self, user: str, ticket: str) -> bool:
        session = self.tickets.get(ticket)
        return session is not None and session["user"] == user and session["expires"] >= time.time()

    def _granted(self, user: str) -> web.Response:
        ticket, csrf = self.issue_ticket(user)
        self.issued += [ticket, csrf]
        return web.json_response({"data": {"ticket": ticket, "CSRFPreventionToken": csrf, "username": user}})

    def requests_to(self, path: str) -> list[Seen]:
        """Return the recorded requests whose path (below /api2/json) is ``path``."""
        return [seen for seen in self.seen if seen.path == path]

    def live_session(self) -> tuple[str, str]:
        """Return the newest ticket and its CSRF token."""
        ticket, session = list(self.tickets.items())[-1]
        return ticket, str(session["csrf"])


def _rejected() -> web.Response:
    return web.json_response({"data": None}, status=401, reason="authentication failure")


@contextmanager
def login_cluster(monkeypatch: pytest.MonkeyPatch, password: str) -> Iterator[tuple[FakeCluster, LoginPve]]:
    """Start a FakeCluster that serves a LoginPve with user root@pam and ``password``."""
    with monkeypatch.context() as patch:
        patch.setattr(fakecluster.cluster, "WorkloadPve", LoginPve)
        cluster = FakeCluster(password=password)
    with cluster:
        assert isinstance(cluster.pve, LoginPve)
        yield cluster, cluster.pve
