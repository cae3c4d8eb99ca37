"""Grades of real lab endpoints, end to end: probe -> rules -> grading.

A hardened endpoint (TLS 1.2+1.3, ECDHE + AEAD only, a certificate from the CA the
operator passes with --ca-bundle, HSTS) grades A or better on both axes; a legacy
ESXi-6-like one (TLS 1.0, CBC and static RSA, its default self-signed certificate)
grades no better than C.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from chanscan.assess import assess
from chanscan.grading.scale import grade_rank
from chanscan.lab import Lab
from chanscan.lab.certs import LabCA, new_key, self_signed
from chanscan.lab.ssh_servers import sshd_available, start_sshd
from chanscan.lab.tls_context import context_for
from chanscan.model import SCHEMA_ID, Channel, Endpoint, EndpointResult, ScanOptions, ScanReport
from chanscan.probes.ssh import SshProbe
from chanscan.probes.tls import TlsProbe
from chanscan.scheduler import now_rfc3339, probe_once

NET = "127.10.5"
ESXI_OU = "VMware ESX Server Default Certificate"


async def _web_ui(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    if not await asyncio.wait_for(reader.read(4096), 10):
        return
    writer.write(
        b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=31536000\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()


async def _graded(endpoint: Endpoint, options: ScanOptions) -> EndpointResult:
    raw = await probe_once(endpoint, TlsProbe(Channel.TLS), options)
    report = ScanReport(SCHEMA_ID, "test", True, now_rfc3339(), now_rfc3339(), (raw,))
    return assess(report).endpoints[0]


async def test_hardened_endpoint_grades_a_or_better(lab: Lab, tmp_path: Path) -> None:
    ca = LabCA("CA")
    ctx = context_for(ca.issue("vc.lab.example", days=90), [ca.issued])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    lab.add_stream_server("hardened", f"{NET}.1", 443, _web_ui, ssl=ctx)
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.issued.pem)
    ep = Endpoint("vc.lab.example", f"{NET}.1", 443)
    result = await _graded(ep, ScanOptions(ca_bundle=bundle))
    assert result.grade is not None, result.error
    assert result.tls is not None and result.tls.http is not None
    assert result.tls.http.hsts == "max-age=31536000"
    assert grade_rank(result.grade.eavesdropping) <= grade_rank("A"), result.grade
    assert grade_rank(result.grade.mitm) <= grade_rank("A"), result.grade
    # The same server without the operator's CA is not trusted: MITM drops.
    untrusted = await _graded(ep, ScanOptions())
    assert untrusted.grade is not None
    assert grade_rank(untrusted.grade.mitm) > grade_rank("A")
    assert untrusted.grade.capped_by.mitm in {"tls.cert.untrusted", "tls.cert.incomplete_chain"}


async def test_legacy_esxi_like_endpoint_grades_c_or_worse(lab: Lab) -> None:
    cert = self_signed(
        f"{NET}.2", "esx67.lab.example", key=new_key("rsa", 2048), org_unit=ESXI_OU, days=1825
    )
    lab.add_stream_server("legacy", f"{NET}.2", 443, _web_ui, ssl=context_for(cert, legacy=True))
    result = await _graded(Endpoint(f"{NET}.2", f"{NET}.2", 443), ScanOptions())
    assert result.grade is not None, result.error
    assert grade_rank(result.grade.overall) >= grade_rank("C"), result.grade
    assert grade_rank(result.grade.eavesdropping) >= grade_rank("B")
    ids = {f.id for f in result.findings}
    assert {"tls.protocol.tls1_0", "tls.cert.self_signed", "tls.kex.static_rsa"} <= ids


@pytest.mark.needs_sshd
async def test_real_sshd_modern_grades_a_legacy_c_or_worse(lab: Lab) -> None:
    if not sshd_available():
        pytest.skip("OpenSSH sshd is not installed (CI installs openssh-server)")
    start_sshd(lab, f"{NET}.3", 22)
    start_sshd(lab, f"{NET}.4", 22, legacy=True)
    graded = {}
    for addr in (f"{NET}.3", f"{NET}.4"):
        raw = await probe_once(Endpoint(addr, addr, 22), SshProbe())
        report = ScanReport(SCHEMA_ID, "test", True, now_rfc3339(), now_rfc3339(), (raw,))
        graded[addr] = assess(report).endpoints[0].grade
    modern, legacy = graded[f"{NET}.3"], graded[f"{NET}.4"]
    assert modern is not None and legacy is not None
    assert grade_rank(modern.eavesdropping) <= grade_rank("A"), modern
    assert grade_rank(modern.mitm) <= grade_rank("A"), modern
    assert grade_rank(legacy.overall) >= grade_rank("C"), legacy
