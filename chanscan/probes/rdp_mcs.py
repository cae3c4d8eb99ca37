"""Standard RDP security's encryption settings on the wire: bytes in, values out.

After an X.224 negotiation that selected standard RDP security (PROTOCOL_RDP), the
client sends the MCS Connect Initial PDU carrying a GCC Conference Create Request with
its client data blocks ([MS-RDPBCGR] 2.2.1.3), and the server answers with the MCS
Connect Response carrying its data blocks (2.2.1.4), among them the Server Security
Data (TS_UD_SC_SEC1, 2.2.1.4.3): the encryption method it chose among those the client
offered (40, 56, 128-bit RC4 or FIPS 3DES) and its encryption level (none, low, client
compatible, high, FIPS). Offering one method at a time tells which the server accepts,
as nmap's rdp-enum-encryption does. No credential is ever sent: the exchange stops
before the security exchange and the logon.

The PDU is BER (T.125) around PER (T.124); the constants below are the fields of the
annotated example in [MS-RDPBCGR] 4.1.3. Decoders raise only :class:`RdpMcsError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "ENCRYPTION_LEVELS",
    "ENCRYPTION_METHODS",
    "MAX_RESPONSE",
    "RdpMcsError",
    "ServerSecurity",
    "decode_connect_response",
    "encode_connect_initial",
    "method_names",
]

# [MS-RDPBCGR] 2.2.1.3.3 encryptionMethods / 2.2.1.4.3 encryptionMethod.
ENCRYPTION_METHODS = {"40bit": 0x01, "128bit": 0x02, "56bit": 0x08, "fips": 0x10}
# [MS-RDPBCGR] 2.2.1.4.3 encryptionLevel.
ENCRYPTION_LEVELS = {0: "none", 1: "low", 2: "client_compatible", 3: "high", 4: "fips"}

_CS_CORE, _CS_SECURITY, _CS_NET = 0xC001, 0xC002, 0xC003
_SC_SECURITY = 0x0C02
_X224_DATA = b"\x02\xf0\x80"  # X.224 Data TPDU header (X.224 13.7), EOT set
# T.124 ConnectData: the t124 object id, then ConnectGCCPDU conferenceCreateRequest
# with the H.221 client key "Duca" ([MS-RDPBCGR] 4.1.3).
_GCC_KEY = bytes.fromhex("000500147c0001")
_GCC_CCR = bytes.fromhex("000800100001c000") + b"Duca"
_SERVER_KEY = b"McDn"  # the H.221 server key before the server data blocks
_INT = "0201"  # BER INTEGER of one byte
# DomainParameters target/minimum/maximum, as in the example of [MS-RDPBCGR] 4.1.3.
_DOMAIN = bytes.fromhex(
    "3019" + _INT + "22" + _INT + "02" + _INT + "00" + _INT + "01" + _INT + "00" + _INT + "01"
    "0202ffff" + _INT + "02"
    "3019" + _INT + "01" + _INT + "01" + _INT + "01" + _INT + "01" + _INT + "00" + _INT + "01"
    "02020420" + _INT + "02"
    "301c" + "0202ffff" + "0202fc17" + "0202ffff" + _INT + "01" + _INT + "00" + _INT + "01"
    "0202ffff" + _INT + "02"
)
# An MCS Connect Response with a few server blocks is a few hundred bytes; a server
# certificate (proprietary or X.509 chain) can add some kilobytes.
MAX_RESPONSE = 16384


class RdpMcsError(Exception):
    """The bytes are not the MCS Connect Response expected."""


@dataclass(frozen=True)
class ServerSecurity:
    method: str | None  # the method chosen: 40bit, 56bit, 128bit, fips; None for "none"
    level: str  # ENCRYPTION_LEVELS value, or "unknown(N)"


def method_names(mask: int) -> tuple[str, ...]:
    return tuple(n for n, bit in ENCRYPTION_METHODS.items() if mask & bit)


def _ber_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82]) + struct.pack(">H", n)


def _per_len(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else struct.pack(">H", 0x8000 | n)


def _client_blocks(methods: int) -> bytes:
    # TS_UD_CS_CORE up to imeFileName (the optional tail may be omitted, 2.2.1.3.2):
    # RDP 5.0+ (0x00080004), 1024x768, 8 bpp, SAS, en-US keyboard, build 2600.
    core = struct.pack("<IHHHHII", 0x00080004, 1024, 768, 0xCA01, 0xAA03, 0x409, 2600)
    core += "chanscan".encode("utf-16-le").ljust(32, b"\0")  # clientName, 16 UTF-16 units
    core += struct.pack("<III", 4, 0, 12) + b"\0" * 64  # IBM 101/102 keys, no IME
    blocks = struct.pack("<HH", _CS_CORE, len(core) + 4) + core
    blocks += struct.pack("<HHII", _CS_SECURITY, 12, methods, 0)
    blocks += struct.pack("<HHI", _CS_NET, 8, 0)  # no static virtual channels
    return blocks


def encode_connect_initial(methods: int) -> bytes:
    """TPKT + X.224 Data + MCS Connect Initial offering ``methods`` (a mask)."""
    blocks = _client_blocks(methods)
    ccr = _GCC_CCR + _per_len(len(blocks)) + blocks
    user_data = _GCC_KEY + _per_len(len(ccr)) + ccr
    body = bytes.fromhex("0401010401010101ff") + _DOMAIN
    body += b"\x04" + _ber_len(len(user_data)) + user_data
    mcs = b"\x7f\x65" + _ber_len(len(body)) + body
    payload = _X224_DATA + mcs
    return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload


def _ber_header(data: bytes, pos: int, tag: bytes) -> tuple[int, int]:
    """Check ``tag`` at ``pos``; return (start of the value, its length)."""
    if data[pos : pos + len(tag)] != tag:
        got = data[pos : pos + len(tag)].hex() or "end of data"
        raise RdpMcsError(f"expected BER tag {tag.hex()} at {pos}, got {got}")
    pos += len(tag)
    if pos >= len(data):
        raise RdpMcsError("truncated BER length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 2 or pos + count > len(data):
            raise RdpMcsError(f"unsupported BER length form {first:#x}")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise RdpMcsError(f"BER value of {length} bytes runs past the PDU ({len(data)})")
    return pos, length


def decode_connect_response(tpkt: bytes) -> ServerSecurity:
    """The Server Security Data of an MCS Connect Response (one whole TPKT)."""
    if len(tpkt) < 7 or tpkt[0] != 3:
        raise RdpMcsError("not a TPKT packet")
    if tpkt[4:7] != _X224_DATA:
        raise RdpMcsError(f"not an X.224 Data TPDU ({tpkt[4:7].hex()})")
    data = tpkt[7:]
    pos, length = _ber_header(data, 0, b"\x7f\x66")  # Connect-Response
    end = pos + length
    pos, n = _ber_header(data, pos, b"\x0a")  # result ENUMERATED
    if n != 1:
        raise RdpMcsError("malformed MCS result")
    if data[pos] != 0:
        raise RdpMcsError(f"MCS Connect Response result {data[pos]} (not rt-successful)")
    pos += n
    pos, n = _ber_header(data, pos, b"\x02")  # calledConnectId
    pos += n
    pos, n = _ber_header(data, pos, b"\x30")  # domainParameters
    pos += n
    pos, n = _ber_header(data, pos, b"\x04")  # userData: the GCC Conference Create Response
    if pos + n > end:
        raise RdpMcsError("userData runs past the Connect-Response")
    return _server_security(data[pos : pos + n])


def _server_security(user_data: bytes) -> ServerSecurity:
    at = user_data.find(_SERVER_KEY)
    if at < 0:
        raise RdpMcsError("no H.221 server key (McDn) in the GCC Conference Create Response")
    pos = at + len(_SERVER_KEY)
    if pos >= len(user_data):
        raise RdpMcsError("truncated server data")
    pos += 2 if user_data[pos] & 0x80 else 1  # PER length of the blocks; the blocks say theirs
    for _ in range(64):  # bounded: a server sends a handful of blocks
        if pos + 4 > len(user_data):
            break
        kind, size = struct.unpack_from("<HH", user_data, pos)
        if size < 4 or pos + size > len(user_data):
            raise RdpMcsError(f"server data block {kind:#06x} has a bad length {size}")
        if kind == _SC_SECURITY:
            if size < 12:
                raise RdpMcsError(f"Server Security Data of {size} bytes")
            method, level = struct.unpack_from("<II", user_data, pos + 4)
            chosen = method_names(method)
            return ServerSecurity(
                method=chosen[0] if chosen else None,
                level=ENCRYPTION_LEVELS.get(level, f"unknown({level})"),
            )
        pos += size
    raise RdpMcsError("no Server Security Data block in the MCS Connect Response")
