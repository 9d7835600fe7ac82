"""Certificate fingerprint pinning for Client and AsyncClient.

A pinned connection skips CA and host name checks and accepts the server only
when the SHA-256 fingerprint of the certificate it presents is one of the
pinned ones. The check runs inside the TLS handshake call, through the
``sslsocket_class`` and ``sslobject_class`` hooks of ``ssl.SSLContext``, so it
covers the blocking sockets of Client and the memory-BIO TLS objects of
AsyncClient alike. A mismatch raises before the handshake call returns, so the
HTTP layer never gets a connection to write a request on.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Sequence

from ._exceptions import CertificateFingerprintMismatch, InvalidInputError, TLSError

SHA256_HEX_DIGITS = 64
SHA1_HEX_DIGITS = 40
# Prefix of the line that ``openssl x509 -noout -fingerprint -sha256`` prints.
_OPENSSL_PREFIX = "sha256 fingerprint="
_HEX_DIGITS = frozenset("0123456789abcdef")


def normalize_fingerprint(text: str) -> str:
    """Return a SHA-256 fingerprint as 64 lower-case hex digits.

    Accepts PVE's ``AB:CD:...`` form, the digits without colons in any case,
    and the ``sha256 Fingerprint=AB:CD:...`` line that openssl prints.

    Raises:
        InvalidInputError: the text is not a SHA-256 fingerprint.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"fingerprint must be a string such as 'AB:CD:...', not {type(text).__name__}")
    value = text.strip().lower()
    if value.startswith(_OPENSSL_PREFIX):
        value = value[len(_OPENSSL_PREFIX) :]
    digits = "".join(value.replace(":", "").split())
    if not set(digits) <= _HEX_DIGITS:
        raise InvalidInputError(
            f"fingerprint {text!r} contains characters other than hex digits and ':'; "
            "copy the SHA-256 fingerprint shown under Node > System > Certificates"
        )
    if len(digits) == SHA1_HEX_DIGITS:
        raise InvalidInputError(
            f"fingerprint {text!r} has 40 hex digits, so it is a SHA-1 fingerprint; "
            "pvekit pins SHA-256 (64 hex digits), which PVE shows under Node > System > Certificates"
        )
    if len(digits) != SHA256_HEX_DIGITS:
        raise InvalidInputError(
            f"fingerprint {text!r} has {len(digits)} hex digits; a SHA-256 fingerprint has 64, "
            "as PVE shows it under Node > System > Certificates (AB:CD:...)"
        )
    return digits


def format_fingerprint(digits: str) -> str:
    """Render hex digits the way PVE shows a fingerprint: upper case, in pairs joined by ``:``."""
    upper = digits.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


def sha256_fingerprint(der: bytes) -> str:
    """Return the SHA-256 fingerprint of a DER-encoded certificate, as 64 lower-case hex digits."""
    return hashlib.sha256(der).hexdigest()


def parse_fingerprints(fingerprint: str | Sequence[str] | None) -> tuple[str, ...]:
    """Normalize the ``fingerprint=`` setting: None, one fingerprint, or several (for rotation).

    Raises:
        InvalidInputError: an entry is not a SHA-256 fingerprint, or the sequence is empty.
    """
    if fingerprint is None:
        return ()
    if isinstance(fingerprint, str):
        return (normalize_fingerprint(fingerprint),)
    pins = tuple(dict.fromkeys(normalize_fingerprint(entry) for entry in fingerprint))
    if not pins:
        raise InvalidInputError("fingerprint is an empty sequence; give at least one SHA-256 fingerprint, or None")
    return pins


class _PinnedSSLSocket(ssl.SSLSocket):
    """A blocking TLS socket that checks the pins as soon as its handshake completes."""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        try:
            check_pins(self.context, self.getpeercert(binary_form=True), self.server_hostname)
        except TLSError:
            # SSLSocket._create (Python 3.11 ssl.py) closes the socket after a failed handshake only
            # for OSError and ValueError, so a pin mismatch closes it here.
            self.close()
            raise


class _PinnedSSLObject(ssl.SSLObject):
    """A memory-BIO TLS object (used by asyncio and anyio) that checks the pins once its handshake completes."""

    def do_handshake(self) -> None:
        super().do_handshake()
        check_pins(self.context, self.getpeercert(binary_form=True), self.server_hostname)


class PinnedSSLContext(ssl.SSLContext):
    """A client TLS context that accepts a server by its certificate's SHA-256 fingerprint alone.

    Build it with ``make_pinned_context``. CA and host name checks are off
    because the pin replaces them, which also makes pinning work for IP
    addresses and PVE's self-signed certificates.
    """

    sslsocket_class = _PinnedSSLSocket
    sslobject_class = _PinnedSSLObject
    pins: tuple[str, ...] = ()


def make_pinned_context(pins: Sequence[str]) -> PinnedSSLContext:
    """Build a TLS client context that accepts only certificates whose SHA-256 fingerprint is in ``pins``."""
    if not pins:
        raise InvalidInputError("a pinned TLS context needs at least one fingerprint")
    context = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.pins = tuple(normalize_fingerprint(pin) for pin in pins)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def check_pins(context: ssl.SSLContext, der: bytes | None, server: str | None) -> None:
    """Raise unless the presented certificate's fingerprint is one of the context's pins.

    Raises:
        CertificateFingerprintMismatch: the fingerprint is not pinned.
        TLSError: the server presented no certificate, or the context carries no pins.
    """
    where = server or "the server"
    if not isinstance(context, PinnedSSLContext) or not context.pins:
        # Fail closed: a pinned TLS object without pins would accept any certificate.
        raise TLSError(f"TLS connection to {where} has no pinned fingerprint to check, so it is not used")
    if der is None:
        raise TLSError(f"{where} presented no certificate, so its fingerprint cannot be checked against the pin")

    presented = sha256_fingerprint(der)
    if presented in context.pins:
        return

    expected = [format_fingerprint(pin) for pin in context.pins]
    shown = format_fingerprint(presented)
    raise CertificateFingerprintMismatch(
        f"the certificate of {where} does not match the pinned SHA-256 fingerprint, so no request was sent.\n"
        f"  expected:  {' or '.join(expected)}\n"
        f"  presented: {shown}\n"
        "The certificate changed: it was renewed, or someone between this host and the server "
        "presented their own. Compare the presented fingerprint with the one PVE shows under "
        "Node > System > Certificates, and update the pin only if they are the same.",
        expected=expected,
        presented=shown,
    )
