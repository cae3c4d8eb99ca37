"""Pure helpers discovery and the TLS probe use on odd answers: an unfinished TLS
record header, text lines before an SSH identification, and what a server's
plaintext first flight shows (RFC 8446 4.1.3, RFC 5246 7.4.1.3 / 7.4.2)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chanscan.discovery_wire import (
    ServerFlight,
    classify_banner,
    parse_server_flight,
    reply_needs,
    ssh_line_follows,
)
from chanscan.model import Channel


@pytest.mark.parametrize(
    ("data", "need"),
    [
        (b"", 0),
        (b"\x16", 4),
        (b"\x16\x03", 3),
        (b"\x15\x03\x03\x00", 1),
        (b"\x16\x03\x03\x00\x02", 0),
        (b"\x16\x00", 0),  # SSL 2.0 style: not a TLS 1.x header
        (b"HTTP/1.1", 0),
    ],
)
def test_reply_needs(data: bytes, need: int) -> None:
    assert reply_needs(data) == need


def test_ssh_line_follows_and_its_cap() -> None:
    assert ssh_line_follows(b"Notice: authorised use only\r\n")
    assert not ssh_line_follows(b"Notice\r\nSSH-2.0-OpenSSH_9.2\r\n")
    assert not ssh_line_follows(b"\x00\x01binary\n")
    many = b"line\r\n" * 1025
    assert not ssh_line_follows(many) and ssh_line_follows(many, capped=True)
    assert not ssh_line_follows(b"line\r\n" * 10, capped=True)


def test_classify_banner_after_lines() -> None:
    assert classify_banner(b"Welcome\r\nSSH-2.0-OpenSSH_9.2\r\n").channel is Channel.SSH
    assert classify_banner(b"\x00\x01\nSSH-2.0-x\r\n").channel is None


def _record(body: bytes) -> bytes:
    return b"\x16\x03\x03" + struct.pack("!H", len(body)) + body


def _hs(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def _server_hello(suite: int, version_ext: int | None = None) -> bytes:
    exts = b""
    if version_ext is not None:
        exts = struct.pack("!HHH", 0x002B, 2, version_ext)
    body = b"\x03\x03" + b"\x11" * 32 + b"\x20" + b"\x22" * 32 + struct.pack("!HB", suite, 0)
    return _hs(2, body + struct.pack("!H", len(exts)) + exts)


def test_flight_tls12_with_certificate_header() -> None:
    cert = _hs(11, b"\x00" * 10)[:4]  # only the header has arrived
    data = _record(_server_hello(0xC02F) + cert[:2]) + _record(cert[2:])
    assert parse_server_flight(data) == ServerFlight("TLS 1.2", 0xC02F, 10)


def test_flight_tls13_from_supported_versions() -> None:
    flight = parse_server_flight(_record(_server_hello(0x1302, 0x0304)) + b"\x14\x03\x03")
    assert flight == ServerFlight("TLS 1.3", 0x1302, None)
    assert flight.describe() == "TLS 1.3, cipher suite 0x1302"


def test_flight_of_an_alert_or_garbage_is_none() -> None:
    assert parse_server_flight(b"\x15\x03\x03\x00\x02\x02\x28") is None
    assert parse_server_flight(b"") is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_flight_parser_never_raises(data: bytes) -> None:
    parse_server_flight(data)
    parse_server_flight(_record(data))
