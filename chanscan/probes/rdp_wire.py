"""RDP connection negotiation on the wire: bytes in, frozen dataclasses out.

Covers the first exchange of [MS-RDPBCGR] 1.3.1.1: the client's X.224 Connection
Request carrying an RDP Negotiation Request (2.2.1.1 / 2.2.1.1.1) and the server's
X.224 Connection Confirm carrying an RDP Negotiation Response or Failure
(2.2.1.2 / 2.2.1.2.1 / 2.2.1.2.2), each inside a TPKT header (RFC 1006 / T.123 8).
Decoders never raise anything but :class:`RdpWireError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "FAILURE_CODES",
    "MAX_TPKT",
    "PROTOCOL_FLAGS",
    "ConnectionConfirm",
    "ConnectionRequest",
    "RdpWireError",
    "decode_connection_confirm",
    "decode_connection_request",
    "encode_connection_confirm",
    "encode_connection_request",
    "protocol_names",
    "tpkt_length",
]

# [MS-RDPBCGR] 2.2.1.1.1 requestedProtocols / 2.2.1.2.1 selectedProtocol.
PROTOCOL_RDP = 0x00  # standard RDP security: RC4 keyed by an unauthenticated exchange
PROTOCOL_SSL = 0x01
PROTOCOL_HYBRID = 0x02  # CredSSP (NLA)
PROTOCOL_RDSTLS = 0x04
PROTOCOL_HYBRID_EX = 0x08  # CredSSP + Early User Authorization Result PDU
PROTOCOL_RDSAAD = 0x10
PROTOCOL_FLAGS = {
    "ssl": PROTOCOL_SSL,
    "hybrid": PROTOCOL_HYBRID,
    "rdstls": PROTOCOL_RDSTLS,
    "hybrid_ex": PROTOCOL_HYBRID_EX,
    "rdsaad": PROTOCOL_RDSAAD,
}

# [MS-RDPBCGR] 2.2.1.2.2 failureCode.
FAILURE_CODES = {
    0x01: "SSL_REQUIRED_BY_SERVER",
    0x02: "SSL_NOT_ALLOWED_BY_SERVER",
    0x03: "SSL_CERT_NOT_ON_SERVER",
    0x04: "INCONSISTENT_FLAGS",
    0x05: "HYBRID_REQUIRED_BY_SERVER",
    0x06: "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER",
}

TYPE_RDP_NEG_REQ = 0x01
TYPE_RDP_NEG_RSP = 0x02
TYPE_RDP_NEG_FAILURE = 0x03
_NEG_LEN = 8
TPDU_CR = 0xE0  # X.224 Connection Request (X.224 13.3), credit nibble 0
TPDU_CC = 0xD0  # Connection Confirm (13.4)
TPDU_DR = 0x80  # Disconnect Request (13.5)
_TPKT_VERSION = 3
_TPKT_HEADER = 4
_X224_FIXED = 6  # code, DST-REF, SRC-REF, class option (after the length indicator)
# A Connection Confirm is 19 bytes; a request with cookie and correlation info is < 300.
MAX_TPKT = 1024


class RdpWireError(Exception):
    """The bytes are not the RDP negotiation PDU expected."""


@dataclass(frozen=True)
class ConnectionRequest:
    requested: int | None  # None: no RDP_NEG_REQ (a pre-RDP 5.2 client)
    flags: int = 0
    cookie: bytes | None = None  # "Cookie: mstshash=..." or routing token line


@dataclass(frozen=True)
class ConnectionConfirm:
    """``selected`` and ``failure`` are both None for a legacy server whose
    Connection Confirm has no negotiation data: it speaks standard RDP security only."""

    selected: int | None = None
    failure: int | None = None
    flags: int = 0  # RDP_NEG_RSP flags (EXTENDED_CLIENT_DATA_SUPPORTED, ...)

    @property
    def legacy(self) -> bool:
        return self.selected is None and self.failure is None

    @property
    def failure_name(self) -> str | None:
        if self.failure is None:
            return None
        return FAILURE_CODES.get(self.failure, f"UNKNOWN_0x{self.failure:02x}")

    @property
    def selected_names(self) -> tuple[str, ...]:
        return () if self.selected is None else protocol_names(self.selected)


def protocol_names(mask: int) -> tuple[str, ...]:
    """``0`` is ``("rdp",)``; otherwise the names of the set bits (unknown as hex)."""
    if mask == PROTOCOL_RDP:
        return ("rdp",)
    names = [n for n, bit in PROTOCOL_FLAGS.items() if mask & bit]
    unknown = mask & ~sum(PROTOCOL_FLAGS.values())
    if unknown:
        names.append(f"0x{unknown:x}")
    return tuple(names)


# -- TPKT --------------------------------------------------------------------------------


def _tpkt(payload: bytes) -> bytes:
    return struct.pack(">BBH", _TPKT_VERSION, 0, _TPKT_HEADER + len(payload)) + payload


def tpkt_length(header: bytes) -> int:
    """Total length (header included) from the 4-byte TPKT header."""
    if len(header) < _TPKT_HEADER:
        raise RdpWireError(f"TPKT header needs 4 bytes, got {len(header)}")
    version, _reserved, length = struct.unpack(">BBH", header[:_TPKT_HEADER])
    if version != _TPKT_VERSION:
        raise RdpWireError(f"not a TPKT packet (version byte 0x{version:02x})")
    if not _TPKT_HEADER + 1 + _X224_FIXED <= length <= MAX_TPKT:
        raise RdpWireError(f"TPKT length {length} out of range")
    return int(length)


def _x224(data: bytes) -> tuple[int, bytes]:
    """(TPDU code, variable part) of a TPKT-framed X.224 connection TPDU."""
    length = tpkt_length(data)
    if len(data) != length:
        raise RdpWireError(f"TPKT says {length} bytes, got {len(data)}")
    body = data[_TPKT_HEADER:]
    li = body[0]
    if li + 1 != len(body) or li < _X224_FIXED:
        raise RdpWireError(f"X.224 length indicator {li} does not match {len(body) - 1} bytes")
    return body[1] & 0xF0, body[1 + _X224_FIXED :]


def _neg(kind: int, flags: int, value: int) -> bytes:
    return struct.pack("<BBHI", kind, flags, _NEG_LEN, value)


def _parse_neg(data: bytes) -> tuple[int, int, int]:
    if len(data) < _NEG_LEN:
        raise RdpWireError(f"negotiation structure truncated ({len(data)} bytes)")
    kind, flags, length, value = struct.unpack("<BBHI", data[:_NEG_LEN])
    if length != _NEG_LEN:
        raise RdpWireError(f"negotiation structure length {length}, expected 8")
    return int(kind), int(flags), int(value)


# -- Connection Request (client -> server) -----------------------------------------------


def encode_connection_request(requested: int | None, cookie: bytes | None = None) -> bytes:
    """``requested=None`` omits RDP_NEG_REQ, as clients before RDP 5.2 did."""
    var = b""
    if cookie is not None:
        if b"\r\n" in cookie:
            raise ValueError("cookie must not contain CRLF")
        var += cookie + b"\r\n"
    if requested is not None:
        var += _neg(TYPE_RDP_NEG_REQ, 0, requested)
    header = struct.pack(">BBHHB", _X224_FIXED + len(var), TPDU_CR, 0, 0, 0)
    return _tpkt(header + var)


def decode_connection_request(data: bytes) -> ConnectionRequest:
    code, var = _x224(data)
    if code != TPDU_CR:
        raise RdpWireError(f"expected X.224 Connection Request, got TPDU 0x{code:02x}")
    cookie = None
    if var.startswith((b"Cookie:", b"tsv:")):
        end = var.find(b"\r\n")
        if end < 0:
            raise RdpWireError("cookie / routing token without CRLF")
        cookie, var = var[:end], var[end + 2 :]
    if not var:
        return ConnectionRequest(requested=None, cookie=cookie)
    kind, flags, value = _parse_neg(var)
    if kind != TYPE_RDP_NEG_REQ:
        raise RdpWireError(f"expected RDP_NEG_REQ, got type 0x{kind:02x}")
    # Trailing bytes are RDP_CORRELATION_INFO (2.2.1.1.2) when flags say so.
    return ConnectionRequest(requested=value, flags=flags, cookie=cookie)


# -- Connection Confirm (server -> client) -----------------------------------------------


def encode_connection_confirm(
    selected: int | None = None, failure: int | None = None, flags: int = 0
) -> bytes:
    if selected is not None and failure is not None:
        raise ValueError("a Connection Confirm carries a response or a failure, not both")
    var = b""
    if selected is not None:
        var = _neg(TYPE_RDP_NEG_RSP, flags, selected)
    elif failure is not None:
        var = _neg(TYPE_RDP_NEG_FAILURE, 0, failure)
    header = struct.pack(">BBHHB", _X224_FIXED + len(var), TPDU_CC, 0, 0x1234, 0)
    return _tpkt(header + var)


def decode_connection_confirm(data: bytes) -> ConnectionConfirm:
    code, var = _x224(data)
    if code == TPDU_DR:
        raise RdpWireError("server sent X.224 Disconnect Request")
    if code != TPDU_CC:
        raise RdpWireError(f"expected X.224 Connection Confirm, got TPDU 0x{code:02x}")
    if not var:
        return ConnectionConfirm()
    kind, flags, value = _parse_neg(var)
    if kind == TYPE_RDP_NEG_RSP:
        return ConnectionConfirm(selected=value, flags=flags)
    if kind == TYPE_RDP_NEG_FAILURE:
        return ConnectionConfirm(failure=value)
    raise RdpWireError(f"unexpected negotiation type 0x{kind:02x} in Connection Confirm")
