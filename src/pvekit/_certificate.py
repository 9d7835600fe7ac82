"""Reading a server's TLS certificate without trusting it and without sending credentials."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime

from ._connection import parse_host
from ._exceptions import InvalidInputError, PveConnectionError, PveTimeoutError, TLSError
from ._tls import format_fingerprint, sha256_fingerprint
from ._x509 import parse_certificate

DEFAULT_FETCH_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """A server's TLS certificate as ``fetch_certificate`` read it, for deciding whether to trust it.

    Attributes:
        subject: the owner's distinguished name, attributes in certificate order:
            ``CN=pve1.example.com, OU=PVE Cluster Node, O=Proxmox Virtual Environment``.
        issuer: the signer's distinguished name; equal to ``subject`` when self-signed.
        not_before: start of the validity period, timezone-aware UTC.
        not_after: end of the validity period, timezone-aware UTC.
        fingerprint_sha256: SHA-256 of the DER bytes as PVE shows it under
            Node > System > Certificates (``AB:CD:...``); pass it as ``fingerprint=``.
        subject_alt_names: ``DNS:name`` and ``IP:address`` entries.
        serial_number: the serial number the issuer gave the certificate.
        der: the certificate, DER-encoded.

    Example:
        >>> info = pvekit.fetch_certificate("pve1.example.com")
        >>> info.fingerprint_sha256
        'AB:CD:...'
    """

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    subject_alt_names: tuple[str, ...]
    serial_number: int
    der: bytes = field(repr=False)

    @classmethod
    def from_der(cls, der: bytes) -> CertificateInfo:
        """Decode a DER-encoded certificate.

        Raises:
            TLSError: the bytes are not an X.509 certificate that pvekit can decode.
        """
        try:
            fields = parse_certificate(der)
        except (ValueError, IndexError) as exc:
            raise TLSError(f"the server's certificate cannot be decoded ({exc})") from None
        return cls(
            subject=fields.subject,
            issuer=fields.issuer,
            not_before=fields.not_before,
            not_after=fields.not_after,
            fingerprint_sha256=format_fingerprint(sha256_fingerprint(der)),
            subject_alt_names=fields.subject_alt_names,
            serial_number=fields.serial_number,
            der=der,
        )

    @property
    def self_signed(self) -> bool:
        """True when subject and issuer are the same name, as in PVE's default node certificate."""
        return self.subject == self.issuer

    @property
    def pem(self) -> str:
        """The certificate in PEM form, for saving it as a CA file."""
        return ssl.DER_cert_to_PEM_cert(self.der)


def fetch_certificate(host: str, timeout: float = DEFAULT_FETCH_TIMEOUT_SECONDS) -> CertificateInfo:
    """Read the certificate a PVE host presents, without trusting it and without sending credentials.

    Only a TCP connection and a TLS handshake take place; no HTTP request is
    sent. Show the result to a person who compares the fingerprint with the
    one under Node > System > Certificates before pinning it.

    Args:
        host: the forms ``Client`` accepts: ``pve1``, ``pve1:8006``,
            ``https://pve1:8006``, an IP address; the port defaults to 8006.
        timeout: seconds for connecting and for the handshake.

    Raises:
        InvalidInputError: the host or the timeout is invalid.
        PveTimeoutError: connecting or the handshake took longer than ``timeout``.
        PveConnectionError: the connection failed.
        TLSError: the TLS handshake failed, or the certificate cannot be decoded.

    Example:
        >>> info = pvekit.fetch_certificate("pve1.example.com")
        >>> print(info.subject, info.not_after, info.fingerprint_sha256)
    """
    endpoint = parse_host(host)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InvalidInputError(f"timeout {timeout!r} must be a positive number of seconds")
    url = endpoint.base_url
    where = f"{endpoint.host}:{endpoint.port}"

    # Nothing is trusted here: the caller decides after seeing the certificate.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=endpoint.host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except TimeoutError:
        raise PveTimeoutError(
            f"reading the certificate of {where} timed out after {timeout:g} s; check that the host is reachable",
            url=url,
        ) from None
    except ssl.SSLError as exc:
        raise TLSError(
            f"TLS handshake with {where} failed ({exc}); check that port {endpoint.port} serves HTTPS", url=url
        ) from None
    except OSError as exc:
        raise PveConnectionError(
            f"connecting to {where} failed ({exc}); check the host name, the port ({endpoint.port}) "
            "and that pveproxy runs",
            url=url,
        ) from None
    if der is None:
        raise TLSError(f"{where} completed the TLS handshake without presenting a certificate", url=url)
    return CertificateInfo.from_der(der)
