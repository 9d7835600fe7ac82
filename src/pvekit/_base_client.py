"""Settings and operations that Client and AsyncClient share; only their I/O differs."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlencode

import httpx

from ._auth import ApiToken
from ._clock import Clock
from ._connection import (
    make_limits,
    make_ssl_context,
    make_timeout,
    parse_host,
    transport_error,
)
from ._core import RawResponse, Send, Session
from ._exceptions import InvalidInputError, TransportError
from ._monitor_ops import AgentOps, MetricsOps, RrdOps
from ._retry import DEFAULT_RETRY, RetryPolicy
from ._task_ops import TaskOps
from ._ticket import TICKET_PATH, OtpCallback, TicketAuth, TicketSession, login_userid
from ._tls import parse_fingerprints
from ._vm_ops import VmOps

logger = logging.getLogger("pvekit")

DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_READ_TIMEOUT_SECONDS = 30.0
# Requests one client keeps in flight to the cluster. pveproxy runs 3 worker
# processes (max_workers in pve-manager's PVE/Service/pveproxy.pm), so a
# client that sends many more mostly waits in its queue.
DEFAULT_CONCURRENCY = 4


class BaseClient:
    """Parses and checks the settings, keeps the I/O-free operations, and builds each request's auth headers."""

    def __init__(
        self,
        host: str,
        token: str | ApiToken | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        otp: str | None = None,
        otp_callback: OtpCallback | None = None,
        verify: bool = True,
        ca_file: str | None = None,
        fingerprint: str | Sequence[str] | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Clock | None = None,
    ) -> None:
        self._endpoint = parse_host(host)
        self._clock = clock or Clock()
        self._token, self._ticket_auth = _credentials(token, user, password, otp, otp_callback, self._clock)
        retry = RetryPolicy.off() if retry is None else retry
        if not isinstance(retry, RetryPolicy):
            raise InvalidInputError(f"retry must be a RetryPolicy or None, not {type(retry).__name__}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInputError(f"concurrency {concurrency!r} must be a whole number, at least 1")
        self.retry = retry
        self.concurrency = concurrency

        self._ssl_context: ssl.SSLContext = make_ssl_context(verify, ca_file, parse_fingerprints(fingerprint))
        if not verify:
            credential = "API token" if self._token is not None else "password and ticket"
            logger.warning(
                "TLS verification is off for %s: anyone on the path can read the %s. Pass ca_file (in the "
                "CLI, --ca-file) with the cluster's CA (/etc/pve/pve-root-ca.pem), or fingerprint (--fingerprint, "
                "or pvekit trust HOST) with the SHA-256 fingerprint shown under Node > System > Certificates, instead",
                self._endpoint.host,
                credential,
            )
        self._timeout = make_timeout(connect_timeout, read_timeout)
        # One connection per request in flight: the runners admit at most `concurrency` at once.
        self._limits = make_limits(concurrency)

        if self._ticket_auth is not None:
            self._session: Session = TicketSession(
                auth=self._ticket_auth, clock=self._clock, retry=retry, concurrency=concurrency
            )
        else:
            self._session = Session(
                clock=self._clock, retry=retry, auth_id=self.auth_id, concurrency=concurrency
            )
        self._vm_ops = VmOps(self._session)
        self._task_ops = TaskOps(self._session, self._vm_ops)
        self._metric_ops = MetricsOps(self._session, self._vm_ops)
        self._rrd_ops = RrdOps(self._session, self._vm_ops)
        self._agent_ops = AgentOps(self._session, self._vm_ops)

    @property
    def base_url(self) -> str:
        """The API's base URL, ``https://host:port/api2/json``."""
        return self._endpoint.base_url

    @property
    def auth_id(self) -> str:
        """Who the requests run as: the token id ``user@realm!tokenid``, or ``user@realm`` after a ticket login.

        PVE shows this id in tasks and UPIDs.
        """
        if self._token is not None:
            return self._token.token_id
        assert self._ticket_auth is not None
        return self._ticket_auth.userid

    def _http_options(self) -> dict[str, Any]:
        # trust_env=False: proxy and certificate variables of the environment do
        # not change where credentials are sent or which CAs are trusted.
        # The cookie jar accepts no cookie, so a cookie reaches PVE only when
        # _auth_headers() adds it: never with an API token.
        return {
            "base_url": self._endpoint.base_url,
            "headers": {"Accept": "application/json"},
            "cookies": CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            "verify": self._ssl_context,
            "timeout": self._timeout,
            "limits": self._limits,
            "trust_env": False,
            "follow_redirects": False,
        }

    def _auth_headers(self, send: Send) -> dict[str, str]:
        """Build one request's credential headers from the current auth state."""
        if self._ticket_auth is not None:
            return self._ticket_auth.headers(send.method, send.path)
        if send.path == TICKET_PATH or self._token is None:
            # An API token is never sent to the login endpoint.
            return {}
        return {"Authorization": self._token.authorization_header()}

    def _url(self, send: Send) -> str:
        # The whole URL, query included, as one string: httpx then parses it once,
        # where merging a relative path and params with base_url parses it three times.
        url = self._endpoint.base_url + send.path
        if send.params and send.method in ("GET", "DELETE"):
            url += "?" + urlencode(send.params)
        return url

    def _request_arguments(self, send: Send) -> dict[str, Any]:
        arguments: dict[str, Any] = {"headers": self._auth_headers(send)}
        if send.time_left is not None:
            arguments["timeout"] = self._timeout_within(send.time_left)
        if send.method not in ("GET", "DELETE"):
            arguments["data"] = dict(send.params)
        return arguments

    def _timeout_within(self, seconds: float) -> httpx.Timeout:
        """Return the client's timeouts, each cut to ``seconds`` (the time left before a caller's deadline)."""
        timeout = self._timeout
        return httpx.Timeout(
            connect=min(timeout.connect or seconds, seconds),
            read=min(timeout.read or seconds, seconds),
            write=min(timeout.write or seconds, seconds),
            pool=min(timeout.pool or seconds, seconds),
        )

    def _raw_response(self, response: httpx.Response, started: float) -> RawResponse:
        now = self._clock.monotonic()
        return RawResponse(
            status_code=response.status_code,
            reason=response.reason_phrase,
            body=response.content,
            received_monotonic=now,
            received_wall=self._clock.wall(),
            elapsed_seconds=now - started,
            date=response.headers.get("date"),
        )

    def _failure(self, exc: httpx.HTTPError, send: Send) -> TransportError:
        timeout = self._timeout if send.time_left is None else self._timeout_within(send.time_left)
        return transport_error(exc, send.method, self._endpoint.base_url + send.path, timeout)

    def _located(self, exc: TransportError, send: Send) -> TransportError:
        """Fill in the request of an error raised below httpx, such as a fingerprint mismatch in the handshake."""
        exc.method = exc.method or send.method
        exc.url = exc.url or self._endpoint.base_url + send.path
        return exc

    def __repr__(self) -> str:
        identity = "token" if self._token is not None else "user"
        return f"{type(self).__name__}(host={self._endpoint.base_url!r}, {identity}={self.auth_id!r})"


def _credentials(
    token: str | ApiToken | None,
    user: str | None,
    password: str | None,
    otp: str | None,
    otp_callback: OtpCallback | None,
    clock: Clock,
) -> tuple[ApiToken | None, TicketAuth | None]:
    """Check that exactly one kind of credentials is given; return the token or the ticket login state."""
    if token is not None:
        if user is not None or password is not None or otp is not None or otp_callback is not None:
            raise InvalidInputError(
                "token and user/password exclude each other: an API token needs no login; pass one of them"
            )
        return _parse_token(token), None
    if user is None and password is None:
        raise InvalidInputError("no credentials given: pass token='user@realm!tokenid=secret', or user= and password=")
    if user is None:
        raise InvalidInputError("password given without user; pass user='name@realm' too")
    if password is None:
        raise InvalidInputError(f"user {login_userid(user)!r} has no password; pass password= too")
    return None, TicketAuth(user, password, otp=otp, otp_callback=otp_callback, clock=clock)


def _parse_token(token: str | ApiToken) -> ApiToken:
    if isinstance(token, str):
        return ApiToken.parse(token)
    if isinstance(token, ApiToken):
        return token
    raise InvalidInputError(
        f"token must be a string user@realm!tokenid=secret or an ApiToken, not {type(token).__name__}"
    )
