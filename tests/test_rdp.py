"""RDP negotiation: the wire codec (with fuzzing) and the probe against lab servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from sslyze.connection_helpers.opportunistic_tls_helpers import (
    ProtocolWithOpportunisticTlsEnum,
    _RdpHelper,
)
from sslyze.server_connectivity import check_connectivity_to_server
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from chanscan.lab.core import Handle, Lab, free_port
from chanscan.lab.rdp_server import add_rdp_server, choose
from chanscan.model import Endpoint, ScanOptions, Status
from chanscan.probes import rdp_wire as w
from chanscan.probes.rdp import RdpProbe
from chanscan.rules import rdp as rdp_rules
from chanscan.scheduler import probe_once

ADDR = "127.30.128.1"  # this helper's loopback block: 127.30.128.0/17
OPTS = ScanOptions(endpoint_deadline=10.0, connect_timeout=2.0)


# -- wire --------------------------------------------------------------------------------


def test_request_matches_sslyze_rdp_starttls_bytes() -> None:
    """sslyze's RDP helper sends SSL|HYBRID: our encoder must produce the same PDU."""
    assert w.encode_connection_request(w.PROTOCOL_SSL | w.PROTOCOL_HYBRID) == (
        _RdpHelper.START_TLS_CMD
    )


def test_confirm_vectors() -> None:
    # [MS-RDPBCGR] 4.1.2 example: Connection Confirm selecting PROTOCOL_SSL (srcref 0x1234).
    rsp = bytes.fromhex("030000130ed000001234000200080001000000")
    assert w.encode_connection_confirm(selected=w.PROTOCOL_SSL) == rsp
    cc = w.decode_connection_confirm(rsp)
    assert cc.selected == 1 and cc.selected_names == ("ssl",) and not cc.legacy
    fail = w.decode_connection_confirm(w.encode_connection_confirm(failure=5))
    assert fail.failure_name == "HYBRID_REQUIRED_BY_SERVER" and fail.selected is None
    legacy = w.decode_connection_confirm(bytes.fromhex("0300000b06d00000123400"))
    assert legacy.legacy and legacy.selected_names == ()
    assert w.decode_connection_confirm(w.encode_connection_confirm(failure=0x42)).failure_name == (
        "UNKNOWN_0x42"
    )


def test_request_with_cookie_roundtrip() -> None:
    data = w.encode_connection_request(8, cookie=b"Cookie: mstshash=probe")
    req = w.decode_connection_request(data)
    assert req == w.ConnectionRequest(requested=8, flags=0, cookie=b"Cookie: mstshash=probe")
    assert w.decode_connection_request(w.encode_connection_request(None)).requested is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("0400000b06d00000123400"), "not a TPKT"),
        (bytes.fromhex("03000005"), "out of range"),
        (bytes.fromhex("030000130ed000001234000200"), "TPKT says"),
        (bytes.fromhex("0300000b07d00000123400"), "length indicator"),
        (bytes.fromhex("0300000b06800000123400"), "Disconnect Request"),
        (bytes.fromhex("0300000b06e00000123400"), "expected X.224 Connection Confirm"),
        (bytes.fromhex("030000130ed000001234000200090001000000"), "length 9"),
        (bytes.fromhex("030000130ed000001234000700080001000000"), "unexpected negotiation"),
        (bytes.fromhex("0300000f0ad0000012340002000800"), "truncated"),
        (b"HTTP/1.1 400 Bad Request\r\n", "not a TPKT"),
    ],
)
def test_confirm_errors(data: bytes, message: str) -> None:
    with pytest.raises(w.RdpWireError, match=message):
        w.decode_connection_confirm(data)


@settings(deadline=None)  # shared 2-core machine: no per-example deadline
@given(st.binary(max_size=64))
def test_fuzz_decoders_raise_only_their_error(data: bytes) -> None:
    for decode in (w.decode_connection_confirm, w.decode_connection_request, w.tpkt_length):
        with contextlib.suppress(w.RdpWireError):
            decode(data)


@settings(deadline=None)  # shared 2-core machine: no per-example deadline
@given(st.binary(min_size=4, max_size=40), st.integers(0, 255))
def test_fuzz_framed_garbage(body: bytes, code: int) -> None:
    """Valid TPKT framing around arbitrary X.224 content: still only RdpWireError."""
    inner = bytes([len(body) + 6, code]) + b"\x00" * 5 + body
    data = bytes([3, 0]) + (len(inner) + 4).to_bytes(2, "big") + inner
    for decode in (w.decode_connection_confirm, w.decode_connection_request):
        with contextlib.suppress(w.RdpWireError):
            decode(data)


def _cookie(raw: bytes) -> bytes:
    return b"Cookie: " + raw.replace(b"\r", b"")


@settings(deadline=None)  # shared 2-core machine: no per-example deadline
@given(
    st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    st.one_of(
        st.none(), st.binary(max_size=40).map(lambda b: b"Cookie: " + b.replace(b"\r\n", b""))
    ),
)
def test_fuzz_request_roundtrip(requested: int | None, cookie: bytes | None) -> None:
    req = w.decode_connection_request(w.encode_connection_request(requested, cookie))
    assert req.requested == requested and req.cookie == cookie


@settings(deadline=None)  # shared 2-core machine: no per-example deadline
@given(st.integers(0, 2**32 - 1), st.integers(0, 255))
def test_fuzz_confirm_roundtrip(selected: int, flags: int) -> None:
    cc = w.decode_connection_confirm(w.encode_connection_confirm(selected=selected, flags=flags))
    assert (cc.selected, cc.flags, cc.failure) == (selected, flags, None)


def test_protocol_names() -> None:
    assert w.protocol_names(0) == ("rdp",)
    assert w.protocol_names(0x0B) == ("ssl", "hybrid", "hybrid_ex")
    assert w.protocol_names(0x101) == ("ssl", "0x100")


@pytest.mark.parametrize(
    ("requested", "accept", "expected"),
    [
        (0, {"ssl", "hybrid"}, (None, 0x05 - 4)),  # SSL_REQUIRED: TLS alone would do
        (0, {"hybrid"}, (None, 0x05)),
        (1, {"hybrid", "hybrid_ex"}, (None, 0x05)),
        (3, {"rdp"}, (0, None)),
        (1, set(), (None, 0x02)),
        (0x0B, {"ssl", "hybrid", "hybrid_ex"}, (8, None)),
        (3, {"ssl", "hybrid", "hybrid_ex"}, (2, None)),
    ],
)
def test_lab_server_selection(
    requested: int, accept: set[str], expected: tuple[int | None, int | None]
) -> None:
    assert choose(requested, frozenset(accept)) == expected


# -- probe against lab servers ---------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


def server(lab: Lab, **kwargs: object) -> Handle:
    return add_rdp_server(lab, ADDR, free_port(ADDR), names=("rdp.lab.example", ADDR), **kwargs)  # type: ignore[arg-type]


async def probe(handle: Handle, host: str = ADDR, **opts: object) -> object:
    ep = Endpoint(host=host, address=handle.address, port=handle.port)
    options = ScanOptions(**{**OPTS.__dict__, **opts})  # type: ignore[arg-type]
    return await probe_once(ep, RdpProbe(), options)


async def test_nla_required_server(lab: Lab) -> None:
    h = server(lab)
    res = await probe(h)
    assert res.status is Status.OK, res.error  # type: ignore[attr-defined]
    rdp = res.rdp  # type: ignore[attr-defined]
    assert rdp.protocols_accepted == ("hybrid", "hybrid_ex")
    assert rdp.protocols_refused == ("rdp", "ssl")
    assert rdp.negotiation_failure == "HYBRID_REQUIRED_BY_SERVER"
    by_req = {n.requested: n for n in rdp.negotiations}
    assert by_req["ssl"].failure == "HYBRID_REQUIRED_BY_SERVER"
    assert by_req["hybrid_ex"].selected == "hybrid_ex"
    assert rdp.tls is not None and rdp.tls.protocols[0].version == "TLS 1.3"
    cert = rdp.tls.certificate
    assert cert.hostname_matches is True and cert.name_checked == ADDR  # IP SAN
    assert cert.trusted_system is False
    ids = {f.id for f in rdp_rules.findings(res, now=datetime.now(UTC))}  # type: ignore[arg-type]
    assert "rdp.standard_security" not in ids and "rdp.no_nla" not in ids
    assert "tls.cert.untrusted" in ids
    assert res.connections == 5  # type: ignore[attr-defined]  # 4 negotiations + 1 TLS


async def test_tls_without_nla(lab: Lab) -> None:
    res = await probe(server(lab, accept={"ssl"}))
    rdp = res.rdp  # type: ignore[attr-defined]
    assert rdp.protocols_accepted == ("ssl",)
    assert {n.requested: n.selected for n in rdp.negotiations}["hybrid"] == "ssl"
    ids = {f.id for f in rdp_rules.findings(res, now=datetime.now(UTC))}  # type: ignore[arg-type]
    assert "rdp.no_nla" in ids and "rdp.standard_security" not in ids


async def test_standard_security_accepted(lab: Lab) -> None:
    res = await probe(server(lab, accept={"rdp", "ssl", "hybrid"}))
    rdp = res.rdp  # type: ignore[attr-defined]
    assert rdp.protocols_accepted == ("rdp", "ssl", "hybrid")
    assert rdp.protocols_refused == ("hybrid_ex",)
    ids = {f.id for f in rdp_rules.findings(res, now=datetime.now(UTC))}  # type: ignore[arg-type]
    assert {"rdp.standard_security", "rdp.no_nla"} <= ids


async def test_legacy_server_without_negotiation(lab: Lab) -> None:
    res = await probe(server(lab, accept={"rdp"}, legacy=True))
    rdp = res.rdp  # type: ignore[attr-defined]
    assert rdp.protocols_accepted == ("rdp",)
    assert all(n.legacy for n in rdp.negotiations)
    assert rdp.tls is None
    f = {f.id: f for f in rdp_rules.findings(res, now=datetime.now(UTC))}  # type: ignore[arg-type]
    assert "pre-RDP 5.2" in f["rdp.standard_security"].evidence[0]


async def test_rdp_only_server_refuses_tls(lab: Lab) -> None:
    res = await probe(server(lab, accept={"rdp"}))
    rdp = res.rdp  # type: ignore[attr-defined]
    assert rdp.protocols_accepted == ("rdp",)
    assert {n.requested: n.selected for n in rdp.negotiations}["ssl"] == "rdp"
    assert rdp.tls is None


async def test_plaintext_server_is_not_rdp(lab: Lab) -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()

    h = lab.add_stream_server("http", ADDR, free_port(ADDR), http)
    res = await probe(h)
    assert res.status is Status.ERROR  # type: ignore[attr-defined]
    assert "not RDP" in res.error  # type: ignore[attr-defined]


async def test_tarpit_costs_only_the_deadline(lab: Lab) -> None:
    h = lab.tarpit(ADDR, free_port(ADDR))
    start = trio.current_time()
    res = await probe(h, endpoint_deadline=1.5)
    assert res.status is Status.TIMEOUT  # type: ignore[attr-defined]
    assert trio.current_time() - start < 5


async def test_closed_port_is_an_error() -> None:
    ep = Endpoint(host=ADDR, address=ADDR, port=free_port(ADDR))
    res = await probe_once(ep, RdpProbe(), OPTS)
    assert res.status is Status.ERROR


async def test_scan_by_name_checks_the_name(lab: Lab) -> None:
    res = await probe(server(lab), host="other.lab.example")
    cert = res.rdp.tls.certificate  # type: ignore[attr-defined]
    assert cert.name_checked == "other.lab.example" and cert.hostname_matches is False


async def test_lab_server_speaks_sslyze_rdp_starttls(lab: Lab) -> None:
    """The lab server must work with sslyze's own RDP opportunistic TLS, which the full
    TLS probe uses for RDP's TLS layer."""
    h = server(lab)
    location = ServerNetworkLocation(hostname=ADDR, port=h.port, ip_address=ADDR)
    config = ServerNetworkConfiguration(
        tls_server_name_indication="rdp.lab.example",
        tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum.RDP,
        network_timeout=5,
        network_max_retries=1,
    )
    probing = await trio.to_thread.run_sync(check_connectivity_to_server, location, config)
    assert probing.highest_tls_version_supported.name == "TLS_1_3"


async def test_tls_layer_failure_keeps_negotiation(lab: Lab) -> None:
    """A server that selects TLS and then hangs up: the negotiation is still recorded."""

    async def select_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        header = await reader.readexactly(4)
        await reader.readexactly(w.tpkt_length(header) - 4)
        writer.write(w.encode_connection_confirm(selected=w.PROTOCOL_SSL))
        await writer.drain()

    h = lab.add_stream_server("rdp-broken-tls", ADDR, free_port(ADDR), select_then_close)
    res = await probe(h)
    assert res.status is Status.OK, res.error  # type: ignore[attr-defined]
    rdp = res.rdp  # type: ignore[attr-defined]
    assert rdp.protocols_accepted == ("ssl",)
    assert rdp.tls is None and "TLS layer" in rdp.tls_not_probed
