"""End to end: the TLS probe against real lab TLS servers, then the TLS rules. Each
certificate fault shows where it is true and not where it is false."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chanscan.lab.authd_server import AUTHD_BANNER, add_authd_server
from chanscan.lab.certs import LabCA, new_key, self_signed
from chanscan.lab.core import Handle, Lab, free_port
from chanscan.lab.tls_context import context_for
from chanscan.model import Channel, Endpoint, EndpointResult, ScanOptions, Status
from chanscan.probes.tls import TlsProbe
from chanscan.rules import tls as rules
from chanscan.scheduler import probe_once

pytestmark = pytest.mark.slow

ADDR = "127.30.129.1"  # this helper's loopback block: 127.30.128.0/17
OPTS = ScanOptions(endpoint_deadline=45.0)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@pytest.fixture(scope="module")
def ca() -> LabCA:
    return LabCA("lab VMCA")


@pytest.fixture(scope="module")
def bundle(ca: LabCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ca.write_bundle(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def authd(lab: Lab, ca: LabCA) -> Handle:
    ctx = context_for(ca.issue("esx.lab.example", ADDR))
    return add_authd_server(lab, ADDR, free_port(ADDR), context=ctx)


async def scan(
    h: Handle, channel: Channel = Channel.TLS, host: str = ADDR, bundle: Path | None = None
) -> EndpointResult:
    ep = Endpoint(host=host, address=h.address, port=h.port)
    opts = ScanOptions(endpoint_deadline=OPTS.endpoint_deadline, ca_bundle=bundle)
    res = await probe_once(ep, TlsProbe(channel), opts)
    assert res.status is Status.OK, res.error
    assert res.tls is not None
    return res


def ids(res: EndpointResult) -> set[str]:
    # A live server is observed now: judge it at the wall clock, as a scan would.
    return {f.id for f in rules.findings(res, now=datetime.now(UTC))}


async def test_authd_private_ca_with_bundle(authd: Handle, bundle: Path) -> None:
    res = await scan(authd, Channel.AUTHD, bundle=bundle)
    assert res.tls is not None and res.tls.preface == AUTHD_BANNER.decode().rstrip("\r\n")
    cert = res.tls.certificate
    assert cert is not None and cert.trusted_custom is True and cert.hostname_matches is True
    found = ids(res)
    assert not found & {
        "tls.cert.untrusted",
        "tls.cert.self_signed",
        "tls.cert.hostname_mismatch",
        "tls.cert.expired",
        "tls.cert.weak_key",
        "tls.cert.sha1_signature",
        "tls.cert.incomplete_chain",
        "tls.protocol.tls1_0",
        "tls.protocol.no_tls1_3",
    }


async def test_authd_private_ca_without_bundle_is_untrusted(authd: Handle) -> None:
    found = ids(await scan(authd, Channel.AUTHD))
    assert "tls.cert.untrusted" in found
    assert "tls.cert.self_signed" not in found


async def test_hostname_mismatch_only_when_scanned_by_other_name(lab: Lab, ca: LabCA) -> None:
    h = lab.add_stream_server(
        "tls-mismatch",
        ADDR,
        free_port(ADDR),
        _hold,
        ssl=context_for(ca.issue("vc.lab.example")),
    )
    found = ids(await scan(h, host="other.lab.example"))
    assert "tls.cert.hostname_mismatch" in found
    assert "tls.cert.hostname_mismatch" not in ids(await scan(h, host="vc.lab.example"))


async def test_legacy_expired_self_signed_rsa1024_sha1(lab: Lab) -> None:
    now = datetime.now(UTC)
    cert = self_signed(
        "old-esx.lab.example",
        ADDR,
        key=new_key("rsa", 1024),
        hash_name="sha1",
        not_before=now - timedelta(days=800),
        not_after=now - timedelta(days=35),
    )
    h = lab.add_stream_server(
        "tls-legacy", ADDR, free_port(ADDR), _hold, ssl=context_for(cert, legacy=True)
    )
    res = await scan(h)
    found = ids(res)
    assert {
        "tls.cert.self_signed",
        "tls.cert.untrusted",
        "tls.cert.expired",
        "tls.cert.weak_key",
        "tls.cert.sha1_signature",
        "tls.cert.long_lifespan",
        "tls.protocol.tls1_0",
        "tls.protocol.tls1_1",
    } <= found
    assert not found & {"tls.cert.hostname_mismatch", "tls.cert.not_yet_valid"}


async def _hold(reader: object, writer: object) -> None:
    import asyncio

    assert isinstance(reader, asyncio.StreamReader)
    while await asyncio.wait_for(reader.read(4096), 10):
        pass
