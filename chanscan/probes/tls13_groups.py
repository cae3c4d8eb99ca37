"""TLS 1.3 finite-field groups (RFC 7919 ffdhe2048 ... ffdhe8192) on the wire: bytes in,
verdicts out.

nassl's OpenSSL 1.1.1 cannot offer the ffdhe groups in TLS 1.3, so the group
elimination sees only the curves. For each ffdhe group chanscan sends one TLS 1.3
ClientHello whose supported_groups names that group alone and whose key_share is empty
(RFC 8446 4.2.8: a client may send no shares and let the server ask). A server that
supports the group answers with a HelloRetryRequest selecting it (4.1.4); one that does
not answers with an alert, or with a TLS 1.2 ServerHello when it can fall back. The
exchange stops there: no key is ever computed, nothing else is sent.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

__all__ = [
    "FFDHE_GROUPS",
    "MAX_RECORD",
    "GroupAnswer",
    "Tls13WireError",
    "decode_server_first",
    "encode_client_hello",
    "record_length",
]

# RFC 7919 / RFC 8446 4.2.7 NamedGroup values.
FFDHE_GROUPS = {
    "ffdhe2048": 0x0100,
    "ffdhe3072": 0x0101,
    "ffdhe4096": 0x0102,
    "ffdhe6144": 0x0103,
    "ffdhe8192": 0x0104,
}
# RFC 8446 4.1.3: the ServerHello.random of a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
_TLS13 = 0x0304
_SUITES = (0x1301, 0x1302, 0x1303)  # the three TLS 1.3 AEAD suites every server offers
# rsa_pss_rsae_sha256/384/512, ecdsa_secp256r1/384r1_sha256/384, ed25519, rsa_pkcs1_*
_SIGALGS = (0x0804, 0x0805, 0x0806, 0x0403, 0x0503, 0x0807, 0x0401, 0x0501, 0x0601)
_EXT_SERVER_NAME, _EXT_GROUPS, _EXT_SIGALGS = 0x0000, 0x000A, 0x000D
_EXT_VERSIONS, _EXT_KEY_SHARE = 0x002B, 0x0033
MAX_RECORD = 5 + 16384 + 256  # a record header plus the largest TLSCiphertext


class Tls13WireError(Exception):
    """The bytes are not the server's first TLS message expected."""


@dataclass(frozen=True)
class GroupAnswer:
    supported: bool
    detail: str  # what the server did, for evidence


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack(">HH", kind, len(body)) + body


def encode_client_hello(group: int, server_name: str | None = None) -> bytes:
    """One TLS record with a ClientHello offering TLS 1.3 and ``group`` alone."""
    exts = _ext(_EXT_VERSIONS, bytes([2]) + struct.pack(">H", _TLS13))
    exts += _ext(_EXT_GROUPS, struct.pack(">HH", 2, group))
    exts += _ext(_EXT_KEY_SHARE, struct.pack(">H", 0))  # no shares: let the server ask
    sig = b"".join(struct.pack(">H", s) for s in _SIGALGS)
    exts += _ext(_EXT_SIGALGS, struct.pack(">H", len(sig)) + sig)
    if server_name:
        name = server_name.encode("idna")
        entry = b"\x00" + struct.pack(">H", len(name)) + name
        exts += _ext(_EXT_SERVER_NAME, struct.pack(">H", len(entry)) + entry)
    suites = b"".join(struct.pack(">H", s) for s in _SUITES)
    body = struct.pack(">H", 0x0303) + os.urandom(32)
    body += bytes([32]) + os.urandom(32)  # legacy_session_id (middlebox compatibility)
    body += struct.pack(">H", len(suites)) + suites + b"\x01\x00"
    body += struct.pack(">H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack(">BHH", 0x16, 0x0301, len(hs)) + hs


def record_length(header: bytes) -> int:
    """The whole record's length from its 5-byte header (0x16 handshake or 0x15 alert)."""
    if len(header) < 5:
        raise Tls13WireError(f"a TLS record header needs 5 bytes, got {len(header)}")
    kind, version, length = struct.unpack(">BHH", header[:5])
    if kind not in (0x15, 0x16) or version >> 8 != 3:
        raise Tls13WireError(f"not a TLS handshake or alert record ({header[:5].hex()})")
    if 5 + length > MAX_RECORD:
        raise Tls13WireError(f"TLS record of {length} bytes")
    return 5 + int(length)


def decode_server_first(record: bytes, group: int) -> GroupAnswer:
    """Judge the server's first record: did it take ``group`` for TLS 1.3?"""
    total = record_length(record)
    if len(record) < total:
        raise Tls13WireError("truncated TLS record")
    body = record[5:total]
    if record[0] == 0x15:
        desc = body[1] if len(body) >= 2 else -1
        return GroupAnswer(False, f"alert {desc} (handshake refused)")
    if len(body) < 4 or body[0] != 0x02:
        raise Tls13WireError(f"first handshake message is type {body[:1].hex()}, not ServerHello")
    hello = body[4 : 4 + int.from_bytes(body[1:4], "big")]
    try:
        pos = 2
        random = hello[pos : pos + 32]
        pos += 32
        pos += 1 + hello[pos]  # legacy_session_id_echo
        pos += 3  # cipher_suite, legacy_compression_method
        (ext_len,) = struct.unpack_from(">H", hello, pos)
        pos += 2
        exts: dict[int, bytes] = {}
        end = pos + ext_len
        while pos + 4 <= end:  # bounded by the message length
            kind, size = struct.unpack_from(">HH", hello, pos)
            exts[kind] = hello[pos + 4 : pos + 4 + size]
            pos += 4 + size
    except (struct.error, IndexError):
        raise Tls13WireError("malformed ServerHello") from None
    version = exts.get(_EXT_VERSIONS)
    if version is None or version[:2] != struct.pack(">H", _TLS13):
        return GroupAnswer(False, "answered with TLS 1.2 or lower (no TLS 1.3 with this group)")
    share = exts.get(_EXT_KEY_SHARE, b"")
    if len(share) < 2:
        raise Tls13WireError("TLS 1.3 ServerHello without key_share")
    selected = int.from_bytes(share[:2], "big")
    kind = "HelloRetryRequest" if random == HRR_RANDOM else "ServerHello"
    if selected != group:
        return GroupAnswer(False, f"{kind} selected group {selected:#06x}, not the one offered")
    return GroupAnswer(True, f"{kind} selected it")
