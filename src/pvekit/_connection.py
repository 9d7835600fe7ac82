"""Connection settings: the host forms PVE users write, TLS contexts and timeouts."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ._exceptions import InvalidInputError, PveConnectionError, PveTimeoutError, TLSError, TransportError
from ._tls import make_pinned_context

logger = logging.getLogger("pvekit")

DEFAULT_PORT = 8006
API_BASE_PATH = "/api2/json"
# pveproxy closes keep-alive connections after a few idle seconds (5 s has been
# reported); dropping ours sooner avoids sending on a connection it just closed.
KEEPALIVE_EXPIRY_SECONDS = 3.0
# pveproxy runs few worker processes, so one client keeps few connections open.
DEFAULT_MAX_CONNECTIONS = 8


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Location of the API: host (an IPv6 address without brackets), port and base URL."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        """``https://host:port/api2/json``, with IPv6 addresses in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{API_BASE_PATH}"


def parse_host(text: str) -> Endpoint:
    """Parse ``pve1``, ``pve1:8006``, ``https://pve1:8006``, ``192.0.2.10``, ``[2001:db8::10]:8006``.

    A bare IPv6 address without brackets is accepted too. The port defaults to
    8006. Host names and IPv6 addresses are returned in lower case.

    Raises:
        InvalidInputError: the text is empty, uses a scheme other than https,
            has a path, user name, query or fragment, an invalid port, or a
            host that is neither a name nor an IP address.
    """
    value = text.strip() if isinstance(text, str) else ""
    # A URL's user part may carry a password, so messages show it masked.
    masked_text = _USER_PART.sub(r"\1***@", value)
    if not value:
        raise InvalidInputError("host is empty; give a name or address such as pve1 or pve1.example.com:8006")
    if "://" not in value:
        if _is_bare_ipv6(value):
            return Endpoint(value.lower(), DEFAULT_PORT)
        value = "https://" + value
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError as exc:
        detail = re.sub(r"[^\s']*@", "***@", str(exc))
        raise InvalidInputError(
            f"host {masked_text!r} is invalid ({detail}); "
            "give a name or address such as pve1:8006 or [2001:db8::10]:8006"
        ) from None
    if parts.scheme != "https":
        raise InvalidInputError(
            f"host {masked_text!r} uses {parts.scheme}://; PVE's API is served over https only, "
            f"so use https://{hostname or 'HOST'}:{DEFAULT_PORT}"
        )
    if parts.path not in ("", "/", API_BASE_PATH, API_BASE_PATH + "/"):
        raise InvalidInputError(f"host {masked_text!r} has a path; give only the host and port, such as pve1:8006")
    if parts.username is not None or parts.query or parts.fragment or "#" in value or "?" in value:
        raise InvalidInputError(
            f"host {masked_text!r} has a user name, query or fragment; give only the host and port, such as pve1:8006, "
            "and the credentials as token= or user= and password="
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise InvalidInputError(f"host {masked_text!r} has an invalid port; use a number from 1 to 65535")
    if not hostname:
        raise InvalidInputError(f"host {masked_text!r} has no host name")
    if any(character.isspace() or not character.isprintable() for character in hostname):
        raise InvalidInputError(f"host {masked_text!r} contains whitespace or control characters; check the host name")
    return Endpoint(hostname, port or DEFAULT_PORT)


_USER_PART = re.compile(r"^((?:[a-zA-Z][a-zA-Z0-9+.-]*://)?)[^/?#]*@")


def _is_bare_ipv6(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv6Address)
    except ValueError:
        return False


def make_ssl_context(verify: bool, ca_file: str | None, fingerprints: Sequence[str] = ()) -> ssl.SSLContext:
    """Build the TLS context: the system's CAs, only ``ca_file``, pinned fingerprints, or no verification.

    Returning our own context means httpx reads no certificate variables
    (SSL_CERT_FILE, REQUESTS_CA_BUNDLE) when ``ca_file`` is given.

    Raises:
        InvalidInputError: ``ca_file`` cannot be read as PEM certificates, or
            the settings contradict each other (a pin with a CA file or with
            ``verify=False``).
    """
    if fingerprints:
        if ca_file is not None:
            raise InvalidInputError(
                "fingerprint and ca_file exclude each other: a pinned certificate is checked without a CA; "
                "drop one of them"
            )
        if not verify:
            raise InvalidInputError(
                "fingerprint and verify=False exclude each other: the pin is the verification; drop verify=False"
            )
        return make_pinned_context(fingerprints)
    if ca_file is not None:
        if not verify:
            raise InvalidInputError("ca_file and verify=False exclude each other; drop one of them")
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInputError(
                f"CA file {ca_file!r} cannot be read as PEM certificates ({exc}); "
                "export the cluster's CA, /etc/pve/pve-root-ca.pem, and pass its path"
            ) from None
    if verify:
        return ssl.create_default_context()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def make_timeout(connect_seconds: float, read_seconds: float) -> httpx.Timeout:
    """Build per-request timeouts; writing and waiting for a pooled connection share the read timeout."""
    for name, value in (("connect_timeout", connect_seconds), ("read_timeout", read_seconds)):
        if not value > 0:
            raise InvalidInputError(f"{name} {value!r} must be a positive number of seconds")
    return httpx.Timeout(connect=connect_seconds, read=read_seconds, write=read_seconds, pool=read_seconds)


def make_limits(max_connections: int) -> httpx.Limits:
    """Build the connection pool limits."""
    if max_connections < 1:
        raise InvalidInputError(f"max_connections {max_connections!r} must be at least 1")
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
    )


def transport_error(
    exc: httpx.HTTPError, method: str, url: str, timeout: httpx.Timeout | None = None
) -> TransportError:
    """Convert an httpx failure into pvekit's exception, with the next step in the message.

    ``timeout`` is the request's, so that a timeout's message names the limit that ran out.
    """
    detail = _failure_detail(exc)
    # Connecting (TCP and the TLS handshake) and waiting for a pooled
    # connection come before any byte of the request leaves.
    sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    if isinstance(exc, httpx.TimeoutException):
        # The detail is left out: the sync and async transports word the same timeout differently.
        connecting = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
        kind, setting = ("connecting", "connect_timeout") if connecting else ("reading", "read_timeout")
        limit = None
        if timeout is not None:
            limit = timeout.connect if connecting else timeout.read
        after = "" if limit is None else f" after {limit:g} s"
        return PveTimeoutError(
            f"{method} {url}: timed out {kind}{after}; check that the host is reachable, or raise {setting}",
            method=method,
            url=url,
            request_sent=sent,
        )
    if _is_certificate_error(exc):
        return TLSError(
            f"{method} {url}: TLS certificate verification failed ({detail}); pass ca_file with the "
            "cluster's CA (/etc/pve/pve-root-ca.pem), or pin the certificate with fingerprint= "
            "(Node > System > Certificates)",
            method=method,
            url=url,
            request_sent=sent,
        )
    if sent:
        # The host was reached, so its name and port are right.
        advice = "pveproxy may be restarting, or a proxy or firewall between closed the connection"
    else:
        advice = f"check the host name, the port ({_port_of(url)}) and that pveproxy runs"
    return PveConnectionError(
        f"{method} {url}: connection failed ({detail}); {advice}",
        method=method,
        url=url,
        request_sent=sent,
    )


def _failure_detail(exc: httpx.HTTPError) -> str:
    """Return the operating system's words for the failure when it gave any, else httpx's.

    The sync transport reports a refused connection as "[Errno 111] Connection refused" and
    the async one as "All connection attempts failed", so the error that caused both is used.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            break
        if isinstance(seen, OSError) and isinstance(seen.errno, int) and seen.errno > 0:
            return os.strerror(seen.errno)  # asyncio words its own: "Connect call failed (host, port)"
        if isinstance(seen, OSError) and seen.errno is not None and seen.strerror:
            return str(seen.strerror)  # a name lookup failure, whose errno is negative
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def _is_certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _port_of(url: str) -> int:
    try:
        return httpx.URL(url).port or DEFAULT_PORT
    except httpx.InvalidURL:
        return DEFAULT_PORT
