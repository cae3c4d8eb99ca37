"""Pure helpers for discovery's sniff: the bytes we send to a silent port and how we
classify what comes back. No I/O here, so every branch is unit-testable.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from chanscan.model import Channel
from chanscan.obs.http import HttpObservation

AUTHD_MARKER = b"VMware Authentication Daemon"
RDP_PORTS = frozenset({3389, 2179})
HTTP_PORTS = frozenset({80, 5985, 8080})
SSH_PORTS = frozenset({22, 2222})
# The SSH probe's caps on lines before the identification (see probes/ssh_wire.py).
_PRE_BANNER_LINES = 1024
_PRE_BANNER_BYTES = 64 * 1024
_TLS_HEADER = 5

# Cipher suites offered by the sniff hello: TLS 1.3, then modern and legacy 1.2 and
# below, so that a TLS 1.0-only appliance answers with a ServerHello (or an alert)
# rather than silence. Values from the IANA TLS Cipher Suites registry.
_SNIFF_SUITES = (
    0x1301, 0x1302, 0x1303,  # TLS_AES_128_GCM_SHA256, _256_GCM_SHA384, CHACHA20
    0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,  # ECDHE AEAD
    0xC009, 0xC013, 0xC00A, 0xC014,  # ECDHE CBC
    0x009E, 0x009F, 0x0033, 0x0039,  # DHE
    0x009C, 0x009D, 0x002F, 0x0035, 0x000A, 0x0005, 0x0004,  # static RSA, 3DES, RC4
    0x00FF,  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV
)  # fmt: skip


def _ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(body)) + body


def build_client_hello(server_name: str | None) -> bytes:
    """A TLS record carrying a ClientHello that TLS 1.0 to 1.3 servers all answer.

    RFC 8446 4.1.2 / 4.2; SNI per RFC 6066 3 only for a DNS name (never an IP literal).
    """
    exts = b""
    if server_name:
        name = server_name.encode("idna")
        entry = b"\x00" + struct.pack("!H", len(name)) + name
        exts += _ext(0x0000, struct.pack("!H", len(entry)) + entry)
    groups = struct.pack("!5H", 0x001D, 0x0017, 0x0018, 0x0019, 0x0100)
    exts += _ext(0x000A, struct.pack("!H", len(groups)) + groups)  # supported_groups
    exts += _ext(0x000B, b"\x01\x00")  # ec_point_formats: uncompressed
    sigalgs = struct.pack("!9H", 0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401,
                          0x0501, 0x0201)  # fmt: skip
    exts += _ext(0x000D, struct.pack("!H", len(sigalgs)) + sigalgs)  # signature_algorithms
    exts += _ext(0x002B, b"\x08\x03\x04\x03\x03\x03\x02\x03\x01")  # supported_versions
    share = struct.pack("!HH", 0x001D, 32) + os.urandom(32)
    exts += _ext(0x0033, struct.pack("!H", len(share)) + share)  # key_share: x25519
    suites = b"".join(struct.pack("!H", s) for s in _SNIFF_SUITES)
    body = (
        b"\x03\x03"
        + os.urandom(32)
        + b"\x20"
        + os.urandom(32)
        + struct.pack("!H", len(suites))
        + suites
        + b"\x01\x00"
        + struct.pack("!H", len(exts))
        + exts
    )
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def build_x224_connection_request() -> bytes:
    """TPKT + X.224 Connection Request + RDP_NEG_REQ asking for TLS or CredSSP
    ([MS-RDPBCGR] 2.2.1.1)."""
    neg_req = struct.pack("<BBHI", 0x01, 0x00, 8, 0x00000003)  # PROTOCOL_SSL | PROTOCOL_HYBRID
    x224 = bytes([6 + len(neg_req), 0xE0, 0, 0, 0, 0, 0]) + neg_req
    return struct.pack("!BBH", 3, 0, 4 + len(x224)) + x224


def build_http_request(host: str) -> bytes:
    return (
        f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: chanscan\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii", "replace")


@dataclass(frozen=True)
class Sniff:
    channel: Channel | None  # None: not recognised (yet)
    detail: str = ""


def reply_needs(data: bytes) -> int:
    """How many more bytes the first TLS record header of ``data`` needs (RFC 8446
    5.1: type, version, length); 0 when complete or when ``data`` is not TLS. A lone
    0x16 is the start of a handshake record, not an unknown protocol."""
    if not data or data[0] not in (0x15, 0x16) or len(data) >= _TLS_HEADER:
        return 0
    if len(data) >= 2 and data[1] != 0x03:
        return 0  # not a TLS 1.x record layer (SSL 2.0 style or something else)
    return _TLS_HEADER - len(data)


def _text_lines(data: bytes) -> list[bytes] | None:
    lines = data.split(b"\n")
    if lines[-1]:
        lines = lines[:-1]  # an unfinished line says nothing yet
    else:
        lines.pop()
    for line in lines:
        text = line.rstrip(b"\r")
        if any(b < 0x20 and b != 0x09 for b in text) or b"\x7f" in text:
            return None
    return lines


def ssh_line_follows(data: bytes, capped: bool = False) -> bool:
    """``data`` is text lines with no SSH identification yet, as a server may send
    before one (RFC 4253 4.2). ``capped``: and they already exceed the SSH probe's
    caps (so the probe, not discovery, reports it)."""
    lines = _text_lines(data)
    if lines is None or not lines or any(line.startswith(b"SSH-") for line in lines):
        return False
    over = len(lines) > _PRE_BANNER_LINES or len(data) > _PRE_BANNER_BYTES
    return over if capped else not over


def classify_banner(data: bytes) -> Sniff:
    """Classify what a server sent before we said anything."""
    if data.startswith(b"SSH-") or (
        b"\nSSH-" in data and _text_lines(data.split(b"\nSSH-", 1)[0] + b"\n") is not None
    ):
        return Sniff(Channel.SSH)
    if data.startswith(b"220") and AUTHD_MARKER in data:
        return Sniff(Channel.AUTHD)
    return Sniff(None, f"unrecognised banner {data[:60]!r}")


def classify_reply(data: bytes) -> Sniff:
    """Classify the answer to one of our sniff requests."""
    if len(data) >= 3 and data[0] in (0x15, 0x16) and data[1] == 0x03:
        return Sniff(Channel.TLS)
    if len(data) >= 2 and data[0] == 0x16 and data[1] in (0x00, 0x02):
        return Sniff(Channel.TLS, "SSL 2.0 style record")
    if data[:2] == b"\x03\x00" and len(data) >= 11 and data[5] == 0xD0:
        return Sniff(Channel.RDP)  # TPKT + X.224 Connection Confirm
    if data.startswith(b"HTTP/"):
        return Sniff(Channel.HTTP)
    if data.startswith(b"SSH-"):
        return Sniff(Channel.SSH)
    return Sniff(None, f"unrecognised answer {data[:60]!r}")


def parse_http_head(data: bytes) -> HttpObservation | None:
    """Status line and the few headers discovery cares about; None if not HTTP."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    status = int(parts[1])
    location = headers.get("location")
    return HttpObservation(
        status=status,
        reason=parts[2] if len(parts) > 2 else "",
        location=location,
        server=headers.get("server"),
        redirects_to_https=300 <= status < 400
        and location is not None
        and location.lower().startswith("https://"),
    )


# -- what the server's first flight shows (before any encryption) ---------------------

_VERSION_NAMES = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}


@dataclass(frozen=True)
class ServerFlight:
    """The plaintext part of a server's answer to a ClientHello (RFC 8446 4.1.3,
    RFC 5246 7.4.1.3 / 7.4.2): the version and suite it chose and, up to TLS 1.2, the
    size of its Certificate message (announced in its header)."""

    version: str | None = None
    cipher_suite: int | None = None
    certificate_bytes: int | None = None

    def describe(self) -> str:
        parts = []
        if self.version is not None:
            parts.append(self.version)
        if self.cipher_suite is not None:
            parts.append(f"cipher suite 0x{self.cipher_suite:04X}")
        if self.certificate_bytes is not None:
            parts.append(f"a Certificate message of {self.certificate_bytes} bytes")
        return ", ".join(parts)


def _handshake_bytes(data: bytes) -> bytes:
    """The handshake-record payloads at the start of ``data``, concatenated (a
    message may span records); stops at the first other record or a cut one."""
    out = bytearray()
    pos = 0
    while pos + _TLS_HEADER <= len(data) and data[pos] == 0x16:  # bounded by len(data)
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        out += data[pos + _TLS_HEADER : pos + _TLS_HEADER + length]
        pos += _TLS_HEADER + length
    return bytes(out)


def _server_hello(body: bytes) -> tuple[str | None, int | None]:
    if len(body) < 2 + 32 + 1:
        return None, None
    legacy = int.from_bytes(body[:2], "big")
    pos = 2 + 32
    pos += 1 + body[pos]  # session id
    if pos + 3 > len(body):
        return _VERSION_NAMES.get(legacy), None
    suite = int.from_bytes(body[pos : pos + 2], "big")
    pos += 3  # suite, compression method
    version = legacy
    if pos + 2 <= len(body):
        end = min(len(body), pos + 2 + int.from_bytes(body[pos : pos + 2], "big"))
        pos += 2
        while pos + 4 <= end:  # bounded by the extensions' length
            ext = int.from_bytes(body[pos : pos + 2], "big")
            size = int.from_bytes(body[pos + 2 : pos + 4], "big")
            if ext == 0x002B and size == 2:  # supported_versions (RFC 8446 4.2.1)
                version = int.from_bytes(body[pos + 4 : pos + 6], "big")
            pos += 4 + size
    return _VERSION_NAMES.get(version, f"0x{version:04X}"), suite


def parse_server_flight(data: bytes) -> ServerFlight | None:
    """What the first bytes a TLS server sent show; None when they hold no
    ServerHello. Never raises; trusts no length beyond the bytes given."""
    hs = _handshake_bytes(data)
    if len(hs) < 4 or hs[0] != 0x02:
        return None
    length = int.from_bytes(hs[1:4], "big")
    version, suite = _server_hello(hs[4 : 4 + length])
    cert: int | None = None
    rest = hs[4 + length :]
    if len(rest) >= 4 and rest[0] == 0x0B:  # Certificate, plaintext up to TLS 1.2
        cert = int.from_bytes(rest[1:4], "big")
    return ServerFlight(version, suite, cert)
