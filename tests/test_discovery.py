"""Discovery against real loopback servers: every port state and channel."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time

import pytest
import trustme

from chanscan.config import PLATFORM_PORTS, inventory_from_args, plan
from chanscan.discovery_wire import (
    build_client_hello,
    build_x224_connection_request,
    classify_banner,
    classify_reply,
    parse_http_head,
)
from chanscan.lab import Lab
from chanscan.lab.core import free_port
from chanscan.model import Channel, PlatformHint, ScanOptions, Status
from chanscan.scheduler import ResultCollector, resolve_targets, scan

NET = "127.10.1"  # this module's loopback block

FAST = ScanOptions(connect_timeout=1.0, sniff_timeout=0.5, network_timeout=1.5, endpoint_deadline=5)


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nServer: lab\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def _redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 301 Moved\r\nLocation: https://esx.example/\r\nContent-Length: 0\r\n\r\n"
    )
    await writer.drain()


async def _ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    await writer.drain()
    await reader.read(64)


async def _authd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 VMware Authentication Daemon Version 1.10: SSL Required\r\n")
    await writer.drain()
    await reader.read(64)


async def _rdp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readexactly(4)
    # TPKT + X.224 CC + RDP_NEG_RSP selecting PROTOCOL_SSL
    writer.write(bytes.fromhex("030000130ed000001234000200080001000000"))
    await writer.drain()


async def _ftp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 ProFTPD Server ready\r\n")
    await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(64)


@pytest.fixture
def estate(lab: Lab) -> dict[str, int]:
    ca = trustme.CA()
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(f"{NET}.4").configure_cert(sctx)
    lab.tarpit(f"{NET}.1", 443)
    lab.filtered(f"{NET}.2", 443)
    lab.add_stream_server("http", f"{NET}.3", 80, _http)
    lab.add_stream_server("redirect", f"{NET}.3", 8080, _redirect)
    lab.add_stream_server("tls", f"{NET}.4", 443, _silent, ssl=sctx)
    lab.add_stream_server("ssh", f"{NET}.5", 22, _ssh)
    lab.add_stream_server("authd", f"{NET}.6", 902, _authd)
    lab.add_stream_server("rdp", f"{NET}.7", 3389, _rdp)
    lab.add_stream_server("ftp", f"{NET}.8", 2121, _ftp)
    lab.add_stream_server("tls-on-22", f"{NET}.9", 22, _silent, ssl=sctx)
    return {"closed": free_port(f"{NET}.10")}


async def test_every_port_state_and_channel(estate: dict[str, int]) -> None:
    targets = [f"{NET}.1:443", f"{NET}.2:443", f"{NET}.3:80", f"{NET}.3:8080", f"{NET}.4:443",
               f"{NET}.5:22", f"{NET}.6:902", f"{NET}.7:3389", f"{NET}.8:2121", f"{NET}.9:22",
               f"{NET}.10:{estate['closed']}"]  # fmt: skip
    inv = inventory_from_args(targets, None, PlatformHint.AUTO, "default")
    collector = ResultCollector()
    t0 = time.monotonic()
    report = await scan(plan(inv), FAST, {}, collector)
    elapsed = time.monotonic() - t0
    got = {(r.address, r.port): (r.status, r.channel) for r in report.endpoints}
    assert got == {
        (f"{NET}.1", 443): (Status.TIMEOUT, Channel.UNKNOWN),
        (f"{NET}.2", 443): (Status.FILTERED, Channel.UNKNOWN),
        (f"{NET}.3", 80): (Status.OK, Channel.HTTP),
        (f"{NET}.3", 8080): (Status.OK, Channel.HTTP),
        (f"{NET}.4", 443): (Status.OK, Channel.TLS),
        (f"{NET}.5", 22): (Status.OK, Channel.SSH),
        (f"{NET}.6", 902): (Status.OK, Channel.AUTHD),
        (f"{NET}.7", 3389): (Status.OK, Channel.RDP),
        (f"{NET}.8", 2121): (Status.OK, Channel.UNKNOWN),
        (f"{NET}.9", 22): (Status.OK, Channel.TLS),
        (f"{NET}.10", estate["closed"]): (Status.CLOSED, Channel.UNKNOWN),
    }
    by = {(r.address, r.port): r for r in report.endpoints}
    assert by[(f"{NET}.5", 22)].banner == "SSH-2.0-OpenSSH_9.2p1 Debian-2"
    assert by[(f"{NET}.3", 80)].http is not None and by[(f"{NET}.3", 80)].http.status == 200
    assert by[(f"{NET}.3", 8080)].http is not None
    assert by[(f"{NET}.3", 8080)].http.redirects_to_https
    assert "ProFTPD" in (by[(f"{NET}.8", 2121)].banner or "")
    assert all(r.connections <= 1 for r in report.endpoints)
    assert report.complete
    # The tarpit costs one connect deadline, not more; everything runs concurrently.
    assert elapsed < 2 * FAST.connect_timeout + 2.0


def test_client_hello_sni_only_for_names() -> None:
    assert b"esx01.example" in build_client_hello("esx01.example")
    hello = build_client_hello(None)
    assert hello[:3] == b"\x16\x03\x01"
    assert int.from_bytes(hello[3:5], "big") == len(hello) - 5
    assert b"\x00\x00" not in hello[hello.find(b"\x00\x0a") - 2 : hello.find(b"\x00\x0a")]


@pytest.mark.parametrize(
    ("data", "channel"),
    [
        (b"\x16\x03\x03\x00\x10", Channel.TLS),
        (b"\x15\x03\x01\x00\x02\x02\x28", Channel.TLS),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", Channel.HTTP),
        (bytes.fromhex("030000130ed000001234000200080001000000"), Channel.RDP),
        (b"SSH-2.0-dropbear\r\n", Channel.SSH),
        (b"\x00\x01garbage", None),
        (b"", None),
    ],
)
def test_classify_reply(data: bytes, channel: Channel | None) -> None:
    assert classify_reply(data).channel == channel


def test_classify_banner() -> None:
    assert classify_banner(b"SSH-1.99-Cisco-1.25\r\n").channel == Channel.SSH
    assert classify_banner(b"220 VMware Authentication Daemon Version 1.10\r\n").channel == (
        Channel.AUTHD
    )
    assert classify_banner(b"220 FTP ready\r\n").channel is None


def test_x224_request_shape() -> None:
    req = build_x224_connection_request()
    assert req[:2] == b"\x03\x00" and int.from_bytes(req[2:4], "big") == len(req)
    assert req[5] == 0xE0


def test_parse_http_head() -> None:
    h = parse_http_head(b"HTTP/1.1 302 Found\r\nLocation: http://x/\r\nServer: s\r\n\r\nbody")
    assert h is not None and h.status == 302 and not h.redirects_to_https and h.server == "s"
    assert parse_http_head(b"SSH-2.0-x\r\n") is None
    assert parse_http_head(b"HTTP/1.1 abc\r\n\r\n") is None


async def test_names_resolve_once_and_are_kept_for_certificate_checks() -> None:
    # "localhost" comes from /etc/hosts: no DNS traffic leaves the machine.
    inv = inventory_from_args(["localhost:443", "127.10.1.50"], None, PlatformHint.ESXI, "p")
    endpoints, failed = await resolve_targets(plan(inv))
    assert failed == []
    by_name = [e for e in endpoints if e.host == "localhost"]
    assert by_name and all(ipaddress.ip_address(e.address).is_loopback for e in by_name)
    assert all(e.port == 443 and e.server_name == "localhost" for e in by_name)
    literal = [e for e in endpoints if e.host == "127.10.1.50"]
    assert {e.port for e in literal} == set(PLATFORM_PORTS[PlatformHint.ESXI])
    assert all(e.server_name is None and e.policy == "p" for e in literal)


async def test_ipv6_loopback_target(lab: Lab) -> None:
    port = free_port("::1")
    lab.add_stream_server("ssh6", "::1", port, _ssh)
    inv = inventory_from_args([f"[::1]:{port}"], None, PlatformHint.AUTO, "default")
    report = await scan(plan(inv), FAST, {})
    (r,) = report.endpoints
    assert (r.address, r.port, r.status, r.channel) == ("::1", port, Status.OK, Channel.SSH)
    assert r.banner == "SSH-2.0-OpenSSH_9.2p1 Debian-2"
