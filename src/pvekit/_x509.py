"""A small DER reader for the X.509 fields pvekit shows about a server certificate.

The standard library returns a parsed certificate only after it has verified
the certificate, and a fingerprint is read precisely before the certificate is
trusted, so the fields are decoded here from the DER bytes (RFC 5280).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timezone

_SEQUENCE = 0x30
_SET = 0x31
_INTEGER = 0x02
_OCTET_STRING = 0x04
_OID = 0x06
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_VERSION = 0xA0  # [0] EXPLICIT, before the serial number
_EXTENSIONS = 0xA3  # [3] EXPLICIT, at the end of the TBSCertificate

_SUBJECT_ALT_NAME = "2.5.29.17"

# Short names of the attribute types found in the names of PVE and ACME certificates.
_ATTRIBUTE_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "1.2.840.113549.1.9.1": "emailAddress",
}

# GeneralName choices (context-specific, implicit tags) and how they are shown.
_GENERAL_NAME_PREFIXES = {0x81: "email", 0x82: "DNS", 0x86: "URI"}
_GENERAL_NAME_IP = 0x87


@dataclass(frozen=True, slots=True)
class CertificateFields:
    """The decoded fields of one certificate."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    serial_number: int
    subject_alt_names: tuple[str, ...]


def parse_certificate(der: bytes) -> CertificateFields:
    """Decode subject, issuer, validity, serial number and subject alternative names.

    Raises:
        ValueError: the bytes are not a DER-encoded X.509 certificate.
    """
    certificate = _expect(_SEQUENCE, der)
    tbs = _expect(_SEQUENCE, certificate)
    fields = _elements(tbs)
    if fields and fields[0][0] == _VERSION:
        fields = fields[1:]
    if len(fields) < 6:
        raise ValueError("the certificate has fewer fields than X.509 requires")

    serial_tag, serial = fields[0]
    if serial_tag != _INTEGER:
        raise ValueError("the certificate's serial number is not an INTEGER")
    not_before, not_after = _validity(_content_of(_SEQUENCE, fields[3]))
    extensions = next((content for tag, content in fields[6:] if tag == _EXTENSIONS), None)

    return CertificateFields(
        subject=_name(_content_of(_SEQUENCE, fields[4])),
        issuer=_name(_content_of(_SEQUENCE, fields[2])),
        not_before=not_before,
        not_after=not_after,
        serial_number=int.from_bytes(serial, "big", signed=True),
        subject_alt_names=_subject_alt_names(extensions) if extensions is not None else (),
    )


def _read(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """Read the element at ``offset``; return its tag, its content and the offset after it."""
    if offset + 2 > len(data):
        raise ValueError("the DER data ends inside an element header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags do not occur in the certificate fields read here")
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or offset + count > len(data):
            raise ValueError("invalid DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    end = offset + length
    if end > len(data):
        raise ValueError("the DER data ends inside an element")
    return tag, data[offset:end], end


def _elements(data: bytes) -> list[tuple[int, bytes]]:
    elements: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        tag, content, offset = _read(data, offset)
        elements.append((tag, content))
    return elements


def _expect(tag: int, data: bytes) -> bytes:
    found, content, _ = _read(data, 0)
    if found != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}, found 0x{found:02x}")
    return content


def _content_of(tag: int, element: tuple[int, bytes]) -> bytes:
    if element[0] != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}, found 0x{element[0]:02x}")
    return element[1]


def _oid(content: bytes) -> str:
    if not content:
        raise ValueError("empty object identifier")
    first = min(content[0] // 40, 2)
    arcs = [first, content[0] - 40 * first]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(str(arc) for arc in arcs)


def _text(tag: int, content: bytes) -> str:
    if tag == 0x0C:  # UTF8String
        return content.decode("utf-8", errors="replace")
    if tag == 0x1E:  # BMPString
        return content.decode("utf-16-be", errors="replace")
    if tag == 0x1C:  # UniversalString
        return content.decode("utf-32-be", errors="replace")
    if tag in (0x12, 0x13, 0x14, 0x16, 0x1A):  # Numeric, Printable, Teletex, IA5, Visible
        return content.decode("latin-1")
    return "#" + content.hex()


def _name(content: bytes) -> str:
    """Render a Name as ``CN=..., O=...``, in the order of the certificate."""
    parts: list[str] = []
    for relative in _elements(content):
        for attribute in _elements(_content_of(_SET, relative)):
            pair = _elements(_content_of(_SEQUENCE, attribute))
            if len(pair) != 2:
                raise ValueError("a name attribute is not a type and value pair")
            oid = _oid(_content_of(_OID, pair[0]))
            parts.append(f"{_ATTRIBUTE_NAMES.get(oid, oid)}={_text(*pair[1])}")
    return ", ".join(parts)


def _time(tag: int, content: bytes) -> datetime:
    text = content.decode("ascii", errors="replace")
    if tag == _UTC_TIME and len(text) == 13 and text.endswith("Z"):
        # RFC 5280: two-digit years from 50 are 19xx, below 50 they are 20xx.
        year = int(text[:2])
        year += 1900 if year >= 50 else 2000
        digits = text[2:12]
    elif tag == _GENERALIZED_TIME and len(text) == 15 and text.endswith("Z"):
        year = int(text[:4])
        digits = text[4:14]
    else:
        raise ValueError(f"unsupported certificate time {text!r}")
    if not digits.isdigit():
        raise ValueError(f"invalid certificate time {text!r}")
    month, day, hour, minute, second = (int(digits[i : i + 2]) for i in range(0, 10, 2))
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


def _validity(content: bytes) -> tuple[datetime, datetime]:
    times = _elements(content)
    if len(times) != 2:
        raise ValueError("the certificate's validity is not two times")
    return _time(*times[0]), _time(*times[1])


def _subject_alt_names(extensions: bytes) -> tuple[str, ...]:
    for extension in _elements(_expect(_SEQUENCE, extensions)):
        parts = _elements(_content_of(_SEQUENCE, extension))
        if not parts or _oid(_content_of(_OID, parts[0])) != _SUBJECT_ALT_NAME:
            continue
        # The value is the last part; a "critical" BOOLEAN may come before it.
        general_names = _expect(_SEQUENCE, _content_of(_OCTET_STRING, parts[-1]))
        return tuple(_general_name(tag, content) for tag, content in _elements(general_names))
    return ()


def _general_name(tag: int, content: bytes) -> str:
    if tag == _GENERAL_NAME_IP and len(content) in (4, 16):
        return f"IP:{ipaddress.ip_address(content)}"
    prefix = _GENERAL_NAME_PREFIXES.get(tag)
    if prefix is not None:
        return f"{prefix}:{content.decode('latin-1')}"
    return f"other:0x{tag:02x}"
