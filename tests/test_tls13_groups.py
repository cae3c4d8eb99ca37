"""TLS 1.3 finite-field groups (RFC 7919) are enumerated beside the curves, against a
real ``openssl s_server`` told which groups to take, and a policy that names groups
checks them."""

from __future__ import annotations

import struct

import pytest

from chanscan.lab import Lab
from chanscan.lab.core import free_port
from chanscan.lab.tls_servers import CertSpec, issue, openssl_server
from chanscan.model import Endpoint, EndpointResult, Status
from chanscan.policies.checks import groups_allowed
from chanscan.probes import tls13_groups as g
from chanscan.probes.tls import TlsProbe
from chanscan.scheduler import probe_once

ADDR = "127.33.0.1"  # this file's loopback block: 127.33.0.0/24


def _server_hello(group: int, *, hrr: bool = True, version: int = 0x0304) -> bytes:
    exts = struct.pack(">HHH", 0x002B, 2, version) + struct.pack(">HHH", 0x0033, 2, group)
    body = struct.pack(">H", 0x0303) + (g.HRR_RANDOM if hrr else b"\x11" * 32)
    body += b"\x00" + struct.pack(">H", 0x1301) + b"\x00" + struct.pack(">H", len(exts)) + exts
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return struct.pack(">BHH", 0x16, 0x0303, len(hs)) + hs


@pytest.mark.parametrize(
    ("record", "supported", "detail"),
    [
        (_server_hello(0x0101), True, "HelloRetryRequest selected it"),
        (_server_hello(0x0101, hrr=False), True, "ServerHello selected it"),
        (_server_hello(0x001D), False, "selected group 0x001d"),
        (_server_hello(0x0101, version=0x0303), False, "TLS 1.2 or lower"),
        (bytes.fromhex("15030300020228"), False, "alert 40"),
    ],
)
def test_first_record_verdicts(record: bytes, supported: bool, detail: str) -> None:
    got = g.decode_server_first(record, 0x0101)
    assert got.supported is supported and detail in got.detail


def test_hello_offers_one_group_and_no_share() -> None:
    hello = g.encode_client_hello(0x0102, "vc.example")
    assert hello[0] == 0x16 and struct.unpack(">H", hello[3:5])[0] == len(hello) - 5
    assert struct.pack(">HHHH", 0x000A, 4, 2, 0x0102) in hello  # supported_groups
    assert struct.pack(">HHH", 0x0033, 2, 0) in hello  # key_share with no entries
    assert b"vc.example" in hello


@pytest.mark.parametrize("junk", [b"HTTP/1.1 400 Bad", b"\x17\x03\x03\x00\x05hello"])
def test_not_a_handshake_is_an_error(junk: bytes) -> None:
    with pytest.raises(g.Tls13WireError):
        g.decode_server_first(junk, 0x0100)


@pytest.mark.needs_openssl
async def test_ffdhe_groups_of_a_real_server(lab: Lab) -> None:
    port = free_port(ADDR)
    issued = issue(CertSpec(names=(ADDR,)))
    openssl_server(lab, ADDR, port, issued, ["-groups", "ffdhe3072:ffdhe8192:X25519"])
    res: EndpointResult = await probe_once(Endpoint(ADDR, ADDR, port), TlsProbe())
    assert res.status is Status.OK and res.tls is not None, res.error
    ffdhe = [x for x in res.tls.groups if x.startswith("ffdhe")]
    assert ffdhe == ["ffdhe3072", "ffdhe8192"]
    assert "X25519" in res.tls.groups
    # A policy that allows only curves now sees the finite-field groups too.
    assert groups_allowed(res, ("X25519", "secp256r1")) == [
        "group offered: ffdhe3072",
        "group offered: ffdhe8192",
    ]
