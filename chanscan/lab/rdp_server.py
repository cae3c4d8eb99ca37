"""An RDP-negotiating lab server: X.224 Connection Confirm per [MS-RDPBCGR] 3.3.5.3.1,
then a real TLS handshake when it selected TLS or CredSSP.

It stops after the handshake (no MCS, no CredSSP): enough for the RDP probe and for
sslyze's RDP opportunistic TLS. Selection mimics Windows: the strongest protocol both
sides allow (HYBRID_EX, HYBRID, SSL, then standard RDP security), else the failure
code Windows sends for that mismatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import Iterable

from chanscan.lab.core import Handle, Lab
from chanscan.lab.tls_context import server_context
from chanscan.probes import rdp_wire as w

_READ_TIMEOUT = 10.0
_PREFERENCE = (
    ("hybrid_ex", w.PROTOCOL_HYBRID_EX),
    ("hybrid", w.PROTOCOL_HYBRID),
    ("ssl", w.PROTOCOL_SSL),
)
# What a Windows host with NLA required accepts; "rdp" is the legacy-security opt-in.
DEFAULT_ACCEPT = frozenset({"hybrid", "hybrid_ex"})


def choose(requested: int | None, accept: frozenset[str]) -> tuple[int | None, int | None]:
    """(selected protocol, failure code) for a request; exactly one is not None."""
    req = requested or 0
    for name, bit in _PREFERENCE:
        if req & bit and name in accept:
            return bit, None
    if "rdp" in accept:
        return w.PROTOCOL_RDP, None
    tls_ok = "ssl" in accept
    if req & (w.PROTOCOL_SSL | w.PROTOCOL_HYBRID | w.PROTOCOL_HYBRID_EX) == 0:
        return None, 0x01 if tls_ok else 0x05  # SSL_ / HYBRID_REQUIRED_BY_SERVER
    if not tls_ok and not accept & {"hybrid", "hybrid_ex"}:
        return None, 0x02  # SSL_NOT_ALLOWED_BY_SERVER
    return None, 0x05  # HYBRID_REQUIRED_BY_SERVER


async def _read_tpkt(reader: asyncio.StreamReader) -> bytes:
    header = await asyncio.wait_for(reader.readexactly(4), _READ_TIMEOUT)
    length = w.tpkt_length(header)
    return header + await asyncio.wait_for(reader.readexactly(length - 4), _READ_TIMEOUT)


def encode_connect_response(level: int, method: int) -> bytes:
    """A minimal MCS Connect Response ([MS-RDPBCGR] 2.2.1.4): SC_CORE, SC_SECURITY with
    ``level`` and ``method``, SC_NET; no server certificate (the probe stops here)."""
    blocks = struct.pack("<HHI", 0x0C01, 8, 0x00080004)
    blocks += struct.pack("<HHII", 0x0C02, 12, method, level)
    blocks += struct.pack("<HHHH", 0x0C03, 8, 0x03EB, 0)
    gcc = bytes.fromhex("000500147c0001") + b"\x2a\x14\x76\x0a\x01\x01\x00\x01\xc0\x00"
    gcc += b"McDn" + bytes([len(blocks)]) + blocks
    body = b"\x0a\x01\x00\x02\x01\x00\x30\x00\x04" + bytes([len(gcc)]) + gcc
    payload = b"\x02\xf0\x80\x7f\x66" + bytes([len(body)]) + body
    return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload


def _offered_methods(initial: bytes) -> int:
    at = initial.find(struct.pack("<HH", 0xC002, 12))
    return struct.unpack_from("<I", initial, at + 4)[0] if at >= 0 else 0


async def _answer_mcs(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Standard security at "client compatible", like Windows: the strongest method the
    client offered (128, 56, 40-bit; FIPS only when nothing else was offered)."""
    header = await asyncio.wait_for(reader.readexactly(4), _READ_TIMEOUT)
    length = struct.unpack(">H", header[2:4])[0]
    if not 7 <= length <= 8192:
        return
    initial = header + await asyncio.wait_for(reader.readexactly(length - 4), _READ_TIMEOUT)
    offered = _offered_methods(initial)
    method = next((m for m in (0x02, 0x08, 0x01, 0x10) if offered & m), 0)
    writer.write(encode_connect_response(2, method))
    await writer.drain()


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    # Bounded by the client: every probe closes its connection, and Lab.stop closes ours.
    while await asyncio.wait_for(reader.read(4096), _READ_TIMEOUT):
        pass


async def answer_connection_request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    accept: frozenset[str],
    *,
    legacy: bool = False,
) -> tuple[w.ConnectionRequest, int | None] | None:
    """Read the client's X.224 Connection Request and send the Connection Confirm.

    Returns the request and the selected protocol (None: a failure code was sent), or
    None when the bytes were not RDP (nothing is sent then). ``legacy`` answers
    without negotiation data, which selects standard RDP security."""
    try:
        request = w.decode_connection_request(await _read_tpkt(reader))
    except w.RdpWireError:
        return None
    if legacy:
        selected: int | None = w.PROTOCOL_RDP
        writer.write(w.encode_connection_confirm())
    else:
        selected, failure = choose(request.requested, accept)
        writer.write(w.encode_connection_confirm(selected=selected, failure=failure))
    await writer.drain()
    return request, selected


def add_rdp_server(
    lab: Lab,
    address: str,
    port: int,
    *,
    accept: Iterable[str] = DEFAULT_ACCEPT,
    legacy: bool = False,
    context: ssl.SSLContext | None = None,
    names: Iterable[str] = ("rdp.lab.example",),
) -> Handle:
    """Start the server. ``accept`` is a subset of rdp/ssl/hybrid/hybrid_ex;
    ``legacy=True`` answers without negotiation data, like a server older than RDP
    5.2 (standard RDP security only, whatever was asked)."""
    allowed = frozenset(accept)
    unknown = allowed - {"rdp", "ssl", "hybrid", "hybrid_ex"}
    if unknown:
        raise ValueError(f"unknown RDP protocols {sorted(unknown)}")
    tls = context or server_context(names)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = await answer_connection_request(reader, writer, allowed, legacy=legacy)
        if answered is None:
            return  # not RDP: dropped, as Windows does
        _request, selected = answered
        if selected in (w.PROTOCOL_SSL, w.PROTOCOL_HYBRID, w.PROTOCOL_HYBRID_EX):
            await asyncio.wait_for(writer.start_tls(tls), _READ_TIMEOUT)
        elif selected == w.PROTOCOL_RDP:
            with contextlib.suppress(asyncio.IncompleteReadError, asyncio.TimeoutError):
                await _answer_mcs(reader, writer)
        if selected is not None:
            await _drain_until_eof(reader)

    return lab.add_stream_server("rdp", address, port, handle)
