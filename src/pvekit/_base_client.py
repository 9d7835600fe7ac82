"""Settings and operations that Client and AsyncClient share; only their I/O differs."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httpx

from ._auth import ApiToken
from ._clock import Clock
from ._connection import (
    DEFAULT_MAX_CONNECTIONS,
    make_limits,
    make_ssl_context,
    make_timeout,
    parse_host,
    transport_error,
)
from ._core import RawResponse, Send, Session
from ._exceptions import InvalidInputError, TransportError
from ._monitor_ops import AgentOps, MetricsOps, RrdOps
from ._task_ops import TaskOps
from ._vm_ops import VmOps

logger = logging.getLogger("pvekit")

DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_READ_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 2
# Requests an AsyncClient fan-out (per-node listings, RRD for many VMs) keeps in flight.
DEFAULT_CONCURRENCY = 8


class BaseClient:
    """Parses and checks the settings, and holds the I/O-free operations."""

    def __init__(
        self,
        host: str,
        token: str | ApiToken,
        *,
        verify: bool = True,
        ca_file: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Clock | None = None,
    ) -> None:
        self._endpoint = parse_host(host)
        if isinstance(token, str):
            token = ApiToken.parse(token)
        elif not isinstance(token, ApiToken):
            raise InvalidInputError(
                f"token must be a string user@realm!tokenid=secret or an ApiToken, not {type(token).__name__}"
            )
        self._token = token
        if max_retries < 0:
            raise InvalidInputError(f"max_retries {max_retries!r} must be 0 or more")
        if concurrency < 1:
            raise InvalidInputError(f"concurrency {concurrency!r} must be at least 1")
        self._ssl_context: ssl.SSLContext = make_ssl_context(verify, ca_file)
        if not verify:
            logger.warning(
                "TLS verification is off for %s: anyone on the path can read the API token. "
                "Pass ca_file with the cluster's CA (/etc/pve/pve-root-ca.pem) instead",
                self._endpoint.host,
            )
        self._timeout = make_timeout(connect_timeout, read_timeout)
        self._limits = make_limits(max_connections)
        self._clock = clock or Clock()
        self._session = Session(
            clock=self._clock, max_retries=max_retries, auth_id=token.token_id, concurrency=concurrency
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
        """The API token's id, ``user@realm!tokenid``, as PVE shows it in tasks."""
        return self._token.token_id

    def _http_options(self) -> dict[str, Any]:
        # trust_env=False: proxy and certificate variables of the environment do
        # not change where the token is sent or which CAs are trusted.
        return {
            "base_url": self._endpoint.base_url,
            "headers": {"Authorization": self._token.authorization_header(), "Accept": "application/json"},
            "verify": self._ssl_context,
            "timeout": self._timeout,
            "limits": self._limits,
            "trust_env": False,
            "follow_redirects": False,
        }

    def _request_arguments(self, send: Send) -> dict[str, Any]:
        if send.method in ("GET", "DELETE"):
            return {"params": send.params}
        return {"data": dict(send.params)}

    def _raw_response(self, response: httpx.Response, started: float) -> RawResponse:
        now = self._clock.monotonic()
        return RawResponse(
            status_code=response.status_code,
            reason=response.reason_phrase,
            body=response.content,
            received_monotonic=now,
            received_wall=self._clock.wall(),
            elapsed_seconds=now - started,
        )

    def _failure(self, exc: httpx.HTTPError, send: Send) -> TransportError:
        return transport_error(exc, send.method, self._endpoint.base_url + send.path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self._endpoint.base_url!r}, token={self._token.token_id!r})"
