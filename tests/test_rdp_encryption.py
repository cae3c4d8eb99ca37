"""Standard RDP security's encryption level and methods, read from a real xrdp's MCS
Connect Response, and what they grade: no server authentication is MITM F whatever
the level, Low is its own eavesdropping finding, High and FIPS are not.

The wire module is pure and tested on its own first (bytes in, values out).
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from obs_builders import SCAN_TIME

from chanscan import grading, rules
from chanscan.lab import Lab
from chanscan.lab.core import free_port
from chanscan.lab.rdp_server import add_rdp_server, encode_connect_response
from chanscan.lab.xrdp_server import start_xrdp, xrdp_available
from chanscan.model import Channel, Endpoint, EndpointResult, ScanOptions, Status
from chanscan.obs.rdp import RdpEncryption, RdpObservation
from chanscan.probes import rdp_mcs as mcs
from chanscan.probes.rdp import RdpProbe
from chanscan.scheduler import probe_once

ADDR = "127.32.0.1"  # this file's loopback block: 127.32.0.0/24


def needs_xrdp(fn: Any) -> Any:
    """Skipped without xrdp, and in CI a skip is a failure (tests/conftest.py)."""
    skip = pytest.mark.skipif(not xrdp_available(), reason="xrdp not installed (scripts/test)")
    return pytest.mark.needs_xrdp(skip(fn))


def _response(level: int, method: int, *, result: int = 0) -> bytes:
    """An MCS Connect Response as a server lays it out (the lab's encoder)."""
    data = encode_connect_response(level, method)
    if result:  # the result byte follows TPKT, X.224 and the BER header: 7 + 3 + 2
        data = data[:12] + bytes([result]) + data[13:]
    return data


@pytest.mark.parametrize(
    ("level", "method", "expected"),
    [
        (1, 0x01, mcs.ServerSecurity("40bit", "low")),
        (2, 0x02, mcs.ServerSecurity("128bit", "client_compatible")),
        (3, 0x02, mcs.ServerSecurity("128bit", "high")),
        (4, 0x10, mcs.ServerSecurity("fips", "fips")),
        (0, 0x00, mcs.ServerSecurity(None, "none")),
        (9, 0x08, mcs.ServerSecurity("56bit", "unknown(9)")),
    ],
)
def test_server_security_is_decoded(level: int, method: int, expected: object) -> None:
    assert mcs.decode_connect_response(_response(level, method)) == expected


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not a TPKT"),
        (b"\x03\x00\x00\x0b\x02\xf0\x80\x7f\x66\x05\x0a", "truncated|runs past|tag"),
        (_response(3, 2, result=14), "result 14"),
        (_response(3, 2).replace(b"McDn", b"XXXX"), "server key"),
        (_response(3, 2).replace(b"\x02\x0c\x0c\x00", b"\x07\x0c\x0c\x00"), "no Server Security"),
    ],
)
def test_garbage_is_one_clear_error(data: bytes, why: str) -> None:
    with pytest.raises(mcs.RdpMcsError, match=why):
        mcs.decode_connect_response(data)


def test_connect_initial_offers_what_it_says() -> None:
    pdu = mcs.encode_connect_initial(mcs.ENCRYPTION_METHODS["56bit"])
    assert pdu[:2] == b"\x03\x00" and struct.unpack(">H", pdu[2:4])[0] == len(pdu)
    assert pdu[4:9] == b"\x02\xf0\x80\x7f\x65"
    sec = pdu.index(struct.pack("<HH", 0xC002, 12))
    assert struct.unpack_from("<I", pdu, sec + 4)[0] == 0x08
    assert b"Duca" in pdu


async def _scan(port: int) -> EndpointResult:
    ep = Endpoint(host=ADDR, address=ADDR, port=port)
    res = await probe_once(ep, RdpProbe(), ScanOptions(endpoint_deadline=15.0))
    assert res.status is Status.OK, res.error
    return res


@needs_xrdp
@pytest.mark.parametrize(
    ("crypt_level", "level", "method", "ids"),
    [
        ("low", "low", "40bit", {"rdp.encryption.low", "rdp.encryption.weak_method"}),
        ("high", "high", "128bit", set()),
        ("fips", "fips", "fips", set()),
    ],
)
async def test_real_xrdp_standard_security(
    lab: Lab, crypt_level: str, level: str, method: str, ids: set[str]
) -> None:
    port = free_port(ADDR)
    start_xrdp(lab, ADDR, port, security_layer="rdp", crypt_level=crypt_level)
    res = await _scan(port)
    assert res.rdp is not None and res.rdp.protocols_accepted == ("rdp",)
    enc = res.rdp.encryption
    assert enc is not None and enc.error is None
    assert (enc.level, enc.method) == (level, method)
    found = rules.evaluate(res, now=SCAN_TIME)
    got = {f.id for f in found}
    assert ids <= got and not ({"rdp.encryption.low", "rdp.encryption.weak_method"} - ids) & got
    grade = grading.grade_endpoint(res, found)
    # No TLS, no server authentication: MITM F at every level (the xrdp case).
    assert grade is not None and grade.mitm == "F" and grade.eavesdropping == "F"
    assert grade.capped_by.mitm == "rdp.standard_security"


@needs_xrdp
async def test_tls_only_xrdp_reads_no_standard_security(lab: Lab) -> None:
    port = free_port(ADDR)
    start_xrdp(lab, ADDR, port, security_layer="tls", crypt_level="high")
    res = await _scan(port)
    assert res.rdp is not None and "rdp" not in res.rdp.protocols_accepted
    assert res.rdp.encryption is None


def test_an_undetermined_level_raises_nothing() -> None:
    obs = RdpObservation(
        protocols_accepted=("rdp",), encryption=RdpEncryption(error="closed after our MCS")
    )
    res = EndpointResult("h", "192.0.2.40", 3389, Channel.RDP, Status.OK, rdp=obs)
    assert {f.id for f in rules.evaluate(res, now=SCAN_TIME)} == {
        "rdp.standard_security",
        "rdp.no_nla",
    }


async def test_client_compatible_server_lists_every_method_a_client_can_get(lab: Lab) -> None:
    """The lab's Windows-like imitation picks the strongest method offered: offered one
    at a time, it settles on 40 and 56-bit too, which is the weak-method finding."""
    h = add_rdp_server(lab, ADDR, free_port(ADDR), accept={"rdp"})
    res = await _scan(h.port)
    assert res.rdp is not None
    enc = res.rdp.encryption
    assert enc == RdpEncryption(
        level="client_compatible", method="128bit", methods=("40bit", "128bit", "56bit", "fips")
    )
    found = {f.id: f for f in rules.evaluate(res, now=SCAN_TIME)}
    assert "rdp.encryption.low" not in found
    weak = found["rdp.encryption.weak_method"]
    assert weak.evidence == (
        "offered 40bit alone: the server accepted it",
        "offered 56bit alone: the server accepted it",
    )
