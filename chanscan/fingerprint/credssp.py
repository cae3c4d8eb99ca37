"""The RDP path to an NTLM challenge: X.224 negotiation, TLS, one CredSSP TSRequest.

[MS-RDPBCGR] 2.2.1.1/2.2.1.2: the client's X.224 Connection Request carries an
RDP_NEG_REQ; the Connection Confirm's RDP_NEG_RSP names the selected protocol.
With PROTOCOL_HYBRID (CredSSP/NLA) the client starts TLS and then sends a TSRequest
([MS-CSSP] 2.2.1, DER) whose negoTokens hold an NTLM NEGOTIATE; the server answers
with a TSRequest holding the NTLM CHALLENGE. We stop there: no AUTHENTICATE message,
no credentials.
"""

from __future__ import annotations

from chanscan.errors import ProtocolError
from chanscan.probes import rdp_wire as w

# The X.224 negotiation is rdp_wire's; these names stay for the fingerprint's callers.
PROTOCOL_RDP = w.PROTOCOL_RDP
PROTOCOL_SSL = w.PROTOCOL_SSL
PROTOCOL_HYBRID = w.PROTOCOL_HYBRID
PROTOCOL_HYBRID_EX = w.PROTOCOL_HYBRID_EX

TYPE_RDP_NEG_REQ = w.TYPE_RDP_NEG_REQ
TYPE_RDP_NEG_RSP = w.TYPE_RDP_NEG_RSP
TYPE_RDP_NEG_FAILURE = w.TYPE_RDP_NEG_FAILURE

TS_REQUEST_VERSION = 6  # [MS-CSSP] 2.2.1: the highest version the client supports


def connection_request(requested: int = PROTOCOL_SSL | PROTOCOL_HYBRID) -> bytes:
    return w.encode_connection_request(requested)


def tpkt_length(header: bytes) -> int:
    try:
        return w.tpkt_length(header)
    except w.RdpWireError as exc:
        raise ProtocolError(f"not a TPKT header (RDP expected): {exc}") from exc


def parse_confirm(tpkt: bytes) -> int:
    """The selected protocol of an X.224 Connection Confirm; ProtocolError otherwise."""
    try:
        confirm = w.decode_connection_confirm(tpkt)
    except w.RdpWireError as exc:
        raise ProtocolError(f"no X.224 Connection Confirm: {exc}") from exc
    if confirm.failure is not None:
        raise ProtocolError(f"RDP negotiation failure code {confirm.failure}")
    # No RDP_NEG_RSP: a legacy server speaking standard RDP only.
    return PROTOCOL_RDP if confirm.selected is None else confirm.selected


# -- minimal DER (only what TSRequest needs) -----------------------------------------
def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len(len(value)) + value


def _integer(n: int) -> bytes:
    raw = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)
    return _tlv(0x02, raw)


def encode_ts_request(nego_token: bytes, version: int = TS_REQUEST_VERSION) -> bytes:
    nego_data = _tlv(0x30, _tlv(0x30, _tlv(0xA0, _tlv(0x04, nego_token))))
    body = _tlv(0xA0, _integer(version)) + _tlv(0xA1, nego_data)
    return _tlv(0x30, body)


def _read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    if pos + 2 > len(data):
        raise ProtocolError("truncated DER")
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ProtocolError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ProtocolError("truncated DER value")
    return tag, data[pos : pos + length], pos + length


def der_total_length(head: bytes) -> int | None:
    """Total size of the DER element starting ``head``, or None if more bytes are needed."""
    if len(head) < 2:
        return None
    first = head[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 4:
        raise ProtocolError("bad DER length")
    if len(head) < 2 + n:
        return None
    return 2 + n + int.from_bytes(head[2 : 2 + n], "big")


def decode_ts_request(data: bytes) -> tuple[int | None, bytes | None, int | None]:
    """(version, first negoToken, errorCode) of a TSRequest."""
    tag, body, _ = _read_tlv(data, 0)
    if tag != 0x30:
        raise ProtocolError("TSRequest is not a SEQUENCE")
    version = token = error = None
    pos = 0
    while pos < len(body):  # bounded: every step consumes at least two bytes
        tag, value, pos = _read_tlv(body, pos)
        if tag == 0xA0:
            _, raw, _ = _read_tlv(value, 0)
            version = int.from_bytes(raw, "big", signed=True)
        elif tag == 0xA1:
            _, seq_of, _ = _read_tlv(value, 0)
            if seq_of:
                _, item, _ = _read_tlv(seq_of, 0)
                _, inner, _ = _read_tlv(item, 0)
                _, token, _ = _read_tlv(inner, 0)
        elif tag == 0xA4:
            _, raw, _ = _read_tlv(value, 0)
            error = int.from_bytes(raw, "big", signed=False)
    return version, token, error
