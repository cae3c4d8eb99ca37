"""Certificate trust against real TLS servers: issuers that break their CA constraints
are untrusted and named (tls.cert.issuer_not_ca), chains that keep them stay trusted.

The servers present the chains as a misconfigured or intercepting server would:
``openssl s_server -cert victim.pem -cert_chain leaf1.pem`` (the issue's reproduction
of sslsniff, CVE-2002-0862) and Python ``ssl`` servers that send whatever chain they
are given. The scan goes through the real TLS probe with ``--ca-bundle`` holding the
lab root only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chanscan.lab.certs import Issued, LabCA, leaf_signed_by
from chanscan.lab.core import Handle, Lab, free_port
from chanscan.lab.tls_context import context_for
from chanscan.lab.tls_servers import ServerCert, openssl_server
from chanscan.model import Channel, Endpoint, EndpointResult, Finding, ScanOptions, Status
from chanscan.probes.tls import TlsProbe
from chanscan.rules import tls as rules
from chanscan.scheduler import probe_once

pytestmark = pytest.mark.slow

ADDR = "127.113.2.1"  # this file's loopback block: 127.113.2.0/24
NAME = "vc.trust.example"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@pytest.fixture(scope="module")
def root() -> LabCA:
    return LabCA("trust lab root")


@pytest.fixture(scope="module")
def bundle(root: LabCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return root.write_bundle(tmp_path_factory.mktemp("trust-ca"))


async def _close_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Not a web server: close after the first bytes, so no check waits for an answer.
    await asyncio.wait_for(reader.read(4096), 10)
    writer.close()


def python_server(lab: Lab, label: str, chain: list[Issued]) -> Handle:
    ctx = context_for(chain[0], chain[1:])
    return lab.add_stream_server(
        f"trust-{label}", ADDR, free_port(ADDR), _close_after_request, ssl=ctx
    )


async def scan(h: Handle, bundle: Path) -> tuple[EndpointResult, dict[str, Finding]]:
    ep = Endpoint(host=NAME, address=h.address, port=h.port)
    opts = ScanOptions(endpoint_deadline=45.0, ca_bundle=bundle)
    res = await probe_once(ep, TlsProbe(Channel.TLS), opts)
    assert res.status is Status.OK, res.error
    assert res.tls is not None and res.tls.certificate is not None
    # A live server is observed now: judge it at the wall clock, as a scan would.
    found = {f.id: f for f in rules.findings(res, now=datetime.now(UTC))}
    return res, found


@pytest.mark.needs_openssl
async def test_leaf_signed_by_leaf_from_openssl_s_server(
    lab: Lab, root: LabCA, bundle: Path
) -> None:
    leaf1 = root.issue("leaf1.trust.example")
    victim = leaf_signed_by(leaf1, NAME, ADDR)
    h = openssl_server(lab, ADDR, free_port(ADDR), ServerCert(victim, leaf1), name="sslsniff")
    res, found = await scan(h, bundle)
    assert res.tls is not None and res.tls.certificate is not None
    cert = res.tls.certificate
    assert [c.subject for c in cert.chain] == [
        victim.cert.subject.rfc4514_string(),
        leaf1.cert.subject.rfc4514_string(),
    ]
    assert cert.chain[1].is_ca is False
    assert cert.trusted_custom is False and cert.issuer_fault == "not_ca"
    assert cert.hostname_matches is True and cert.chain_complete is True
    assert {"tls.cert.untrusted", "tls.cert.issuer_not_ca"} <= set(found)
    assert any("basicConstraints" in e for e in found["tls.cert.issuer_not_ca"].evidence)


def _no_cert_sign(root: LabCA) -> list[Issued]:
    inter = root.child("trust lab no keyCertSign", key_cert_sign=False)
    return [inter.issue(NAME, ADDR), inter.issued]


def _too_deep(root: LabCA) -> list[Issued]:
    inter = root.child("trust lab pathlen 0", path_length=0)
    deeper = inter.child("trust lab one CA too many")
    return [deeper.issue(NAME, ADDR), deeper.issued, inter.issued]


def _outside_constraints(root: LabCA) -> list[Issued]:
    inter = root.child("trust lab other.example only", permitted_dns=["other.example"])
    return [inter.issue(NAME), inter.issued]


FAULTS: dict[str, tuple[Callable[[LabCA], list[Issued]], str]] = {
    "no-keycertsign": (_no_cert_sign, "no_key_cert_sign"),
    "pathlen-exceeded": (_too_deep, "path_length"),
    "name-constraints": (_outside_constraints, "name_constraints"),
}


@pytest.mark.parametrize("case", sorted(FAULTS))
async def test_constraint_violating_intermediate(
    lab: Lab, root: LabCA, bundle: Path, case: str
) -> None:
    build, fault = FAULTS[case]
    res, found = await scan(python_server(lab, case, build(root)), bundle)
    assert res.tls is not None and res.tls.certificate is not None
    cert = res.tls.certificate
    assert cert.trusted_custom is False and cert.issuer_fault == fault
    assert cert.chain_complete is True
    assert {"tls.cert.untrusted", "tls.cert.issuer_not_ca"} <= set(found)
    assert rules.ISSUER_FAULT_TEXT[fault] in found["tls.cert.issuer_not_ca"].evidence


def _good_chain(root: LabCA) -> list[Issued]:
    inter = root.child("trust lab intermediate", path_length=0)
    return [inter.issue(NAME, ADDR), inter.issued]


def _inside_constraints(root: LabCA) -> list[Issued]:
    inter = root.child("trust lab trust.example only", permitted_dns=["trust.example"])
    return [inter.issue(NAME), inter.issued]


CONTROLS: dict[str, Callable[[LabCA], list[Issued]]] = {
    "good-chain": _good_chain,
    "inside-constraints": _inside_constraints,
}


@pytest.mark.parametrize("case", sorted(CONTROLS))
async def test_correct_chain_stays_trusted(lab: Lab, root: LabCA, bundle: Path, case: str) -> None:
    res, found = await scan(python_server(lab, case, CONTROLS[case](root)), bundle)
    assert res.tls is not None and res.tls.certificate is not None
    cert = res.tls.certificate
    assert cert.trusted_custom is True and cert.issuer_fault is None
    assert cert.chain_complete is True and cert.hostname_matches is True
    assert not set(found) & {
        "tls.cert.untrusted",
        "tls.cert.issuer_not_ca",
        "tls.cert.incomplete_chain",
        "tls.cert.hostname_mismatch",
    }
