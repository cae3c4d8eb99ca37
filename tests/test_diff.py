"""Change-window diff: hand-built reports for each kind of change, and a real lab
endpoint weakened and re-keyed between two scans."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sample_report import sample_report

from chanscan import grading, rules
from chanscan.diff import ChangeKind, diff_reports, exit_code, render_diff
from chanscan.errors import UsageError
from chanscan.lab import Lab
from chanscan.lab.core import free_port
from chanscan.lab.ssh_servers import LEGACY_ASYNCSSH, start_asyncssh
from chanscan.model import (
    SCHEMA_ID,
    Endpoint,
    EndpointResult,
    Grade,
    ScanOptions,
    ScanReport,
    Status,
)
from chanscan.obs.ssh import HostKey
from chanscan.pins import SSH_CHANGED, PinStore
from chanscan.probes.ssh import SshProbe
from chanscan.scheduler import probe_once

LAB_ADDR = "127.50.0.7"


def kinds(changes: tuple) -> list[ChangeKind]:  # type: ignore[type-arg]
    return [c.kind for c in changes]


def test_identical_reports_have_no_changes() -> None:
    diff = diff_reports(sample_report(), sample_report())
    assert diff.regressions == () and diff.improvements == ()
    assert not diff.regressed and exit_code(diff) == 0
    assert "No changes." in render_diff(diff)


def _replace_endpoint(report: ScanReport, index: int, **changes: object) -> ScanReport:
    eps = list(report.endpoints)
    eps[index] = dataclasses.replace(eps[index], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(report, endpoints=tuple(eps))


def test_each_kind_of_regression_and_improvement() -> None:
    before = sample_report()
    vc, esxi_https, _authd, esxi_ssh = before.endpoints[:4]
    assert vc.tls is not None and vc.tls.certificate is not None
    leaf = vc.tls.certificate.chain[0]
    rekeyed = dataclasses.replace(
        vc.tls,
        certificate=dataclasses.replace(
            vc.tls.certificate, chain=(dataclasses.replace(leaf, spki_sha256="bmV3a2V5"),)
        ),
    )
    after = _replace_endpoint(
        before,
        0,
        tls=rekeyed,
        findings=(*vc.findings, *esxi_https.findings[:1]),
        grade=Grade(eavesdropping="C", mitm="A+", overall="C"),
    )
    assert esxi_ssh.ssh is not None
    new_key = dataclasses.replace(esxi_ssh.ssh.host_keys[0], fingerprint="SHA256:changed")
    after = _replace_endpoint(
        after,
        3,
        ssh=dataclasses.replace(esxi_ssh.ssh, host_keys=(new_key, *esxi_ssh.ssh.host_keys[1:])),
        findings=esxi_ssh.findings[:1],  # two findings fixed
        grade=Grade(eavesdropping="D", mitm="B", overall="D"),
    )
    after = _replace_endpoint(after, 7, status=Status.OK, error=None)  # timeout -> probed
    after = dataclasses.replace(after, endpoints=after.endpoints[:-1])  # not scanned again
    extra = EndpointResult(
        host="vc01.example.com",
        address="192.0.2.10",
        port=5480,
        channel=vc.channel,
        status=Status.OK,
    )
    after = dataclasses.replace(after, endpoints=(*after.endpoints, extra))

    diff = diff_reports(before, after)
    worse = {(c.kind, c.host, c.port, c.subject) for c in diff.regressions}
    assert (ChangeKind.TLS_KEY_CHANGED, "vc01.example.com", 443, "spki") in worse
    assert (ChangeKind.FINDING_NEW, "vc01.example.com", 443, "tls.protocol.tls1_0") in worse
    assert (ChangeKind.GRADE_WORSE, "vc01.example.com", 443, "overall") in worse
    assert (ChangeKind.SSH_HOST_KEY_CHANGED, "esx01.example.com", 22, "ssh-ed25519") in worse
    # Scanned in only one of the two runs: not compared, neither worse nor better.
    unmatched = {(c.kind, c.host, c.port, c.before, c.after) for c in diff.not_compared}
    assert unmatched == {
        (ChangeKind.NOT_COMPARED, "203.0.113.9", 902, "error", "not scanned"),
        (ChangeKind.NOT_COMPARED, "vc01.example.com", 5480, "not scanned", "ok"),
    }
    better = {(c.kind, c.host, c.port, c.subject) for c in diff.improvements}
    assert (ChangeKind.FINDING_RESOLVED, "esx01.example.com", 22, "ssh.hostkey.rsa_short") in better
    assert (ChangeKind.GRADE_BETTER, "esx01.example.com", 22, "overall") in better
    assert (ChangeKind.ENDPOINT_PROBED, "xen01.example.com", 443, "") in better
    assert len(diff.regressions) == 5  # the above plus the C -> eavesdropping C axis
    assert diff.regressed and exit_code(diff) == 1

    text = render_diff(diff)
    assert "Got worse" in text and "Got better" in text and "tls_key_changed" in text
    assert "Not compared (scanned in only one run)" in text
    data = json.loads(render_diff(diff, "json"))
    assert data["regressed"] is True
    assert len(data["regressions"]) == len(diff.regressions)
    with pytest.raises(UsageError):
        render_diff(diff, "xml")


def test_waived_findings_and_same_key_new_cert() -> None:
    before = sample_report()
    https = before.endpoints[1]
    # waiving an open finding is not an improvement, a new waived one not a regression
    waived = tuple(dataclasses.replace(f, waived=True) for f in https.findings)
    after = _replace_endpoint(before, 1, findings=waived)
    diff = diff_reports(before, after)
    assert kinds(diff.regressions) == []
    assert set(kinds(diff.improvements)) == {ChangeKind.FINDING_RESOLVED}
    # a renewed certificate on the same key is a change worth a look, not a key change
    assert https.tls is not None and https.tls.certificate is not None
    leaf = dataclasses.replace(https.tls.certificate.chain[0], sha256_fingerprint="ee" * 32)
    tls = dataclasses.replace(
        https.tls, certificate=dataclasses.replace(https.tls.certificate, chain=(leaf,))
    )
    diff = diff_reports(before, _replace_endpoint(before, 1, tls=tls))
    assert kinds(diff.regressions) == [] and not diff.regressed
    assert kinds(diff.notes) == [ChangeKind.TLS_CERT_CHANGED]


def test_probed_endpoint_becoming_unreachable_is_a_regression() -> None:
    before = sample_report()
    after = _replace_endpoint(before, 0, status=Status.TIMEOUT, findings=(), grade=None)
    diff = diff_reports(before, after)
    assert kinds(diff.regressions) == [ChangeKind.ENDPOINT_UNPROBED]
    closed = _replace_endpoint(before, 0, status=Status.CLOSED, findings=(), grade=None)
    assert kinds(diff_reports(before, closed).regressions) == [ChangeKind.ENDPOINT_GONE]


# -- a real endpoint, weakened and re-keyed between two scans -------------------------


async def _scan_ssh(port: int) -> ScanReport:
    ep = Endpoint(host=LAB_ADDR, address=LAB_ADDR, port=port)
    result = await probe_once(ep, SshProbe(), ScanOptions(endpoint_deadline=20.0))
    assert result.status is Status.OK, result.error
    findings = tuple(rules.evaluate(result, now=datetime.now(UTC)))
    result = dataclasses.replace(
        result, findings=findings, grade=grading.grade_endpoint(result, findings)
    )
    return ScanReport(
        schema=SCHEMA_ID,
        tool_version="test",
        complete=True,
        started_at="2026-11-29T00:00:00Z",
        finished_at="2026-11-29T00:00:05Z",
        endpoints=(result,),
    )


def _verified(report: ScanReport) -> list[HostKey]:
    ssh = report.endpoints[0].ssh
    assert ssh is not None
    return [k for k in ssh.host_keys if k.verified]


async def test_weakened_and_rekeyed_lab_endpoint_regresses(tmp_path: Path) -> None:
    port = free_port(LAB_ADDR)
    with Lab() as lab:
        handle = start_asyncssh(lab, LAB_ADDR, port, key_types=("ssh-ed25519",))
        before = await _scan_ssh(port)
        handle.stop()
        start_asyncssh(
            lab,
            LAB_ADDR,
            port,
            name="asyncssh-weakened",
            key_types=("ssh-ed25519", "ssh-rsa"),
            algs=LEGACY_ASYNCSSH,
            password=True,
        )
        after = await _scan_ssh(port)

    assert [k.key_type for k in _verified(before)] == ["ssh-ed25519"]
    assert "ssh-ed25519" in [k.key_type for k in _verified(after)]
    diff = diff_reports(before, after)
    found = kinds(diff.regressions)
    assert ChangeKind.SSH_HOST_KEY_CHANGED in found
    assert ChangeKind.FINDING_NEW in found
    assert ChangeKind.GRADE_WORSE in found
    assert exit_code(diff) == 1

    # The pin store sees the same replacement as a MITM signal.
    with PinStore(tmp_path / "pins.db") as store:
        assert store.check_and_record(before) == []
        additions = store.check_and_record(after)
    assert [f.id for a in additions for f in a.findings] == [SSH_CHANGED]
