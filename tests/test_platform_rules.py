"""Platform currency rules: end of support, missing VMware patches, build lookup."""

from __future__ import annotations

from datetime import date

import pytest
from obs_builders import SCAN_TIME

from chanscan.model import Channel, EndpointResult, PlatformInfo, Severity, Status
from chanscan.rules import platform as rules

TODAY = SCAN_TIME.date()


def _result(p: PlatformInfo | None) -> EndpointResult:
    return EndpointResult("192.0.2.20", "192.0.2.20", 443, Channel.TLS, Status.OK, platform=p)


@pytest.mark.parametrize(
    ("product", "build", "version", "expected"),
    [
        ("ESXi", 14320388, "6.7.0", "ESXi 6.7 U3"),
        ("ESXi", 20513097, "8.0.0", "ESXi 8.0 GA"),
        ("ESXi", 22380479, "8.0.2", "ESXi 8.0 U2"),
        ("ESXi", 23305546, "8.0.2", "ESXi 8.0 U2b"),
        ("ESXi", 23305600, "8.0.2", "ESXi 8.0 U2b or a later patch"),
        ("ESXi", 24674464, "8.0.3", "ESXi 8.0 U3e"),
        ("vCenter Server", 23929136, "8.0.2", "vCenter Server 8.0 U2d"),
        ("vCenter Server", 24005165, "8.0.1", "vCenter Server 8.0 U1e"),
        ("vCenter Server", 24322831, "8.0.3", "vCenter Server 8.0 U3d"),
        # U1e's build is above U2d's: the version line keeps the lookup honest.
        ("vCenter Server", 24005200, "8.0.1", "vCenter Server 8.0 U1e or a later patch"),
        ("vCenter Server", 24005200, "8.0.2", "vCenter Server 8.0 U2d or a later patch"),
        ("vCenter Server", 100, None, None),
        ("XCP-ng", 1, None, None),
    ],
)
def test_build_to_release(
    product: str, build: int, version: str | None, expected: str | None
) -> None:
    assert rules.release_for(product, build, version) == expected


def test_data_files_cite_every_line() -> None:
    assert all(r.source and r.reference.startswith("https://") for r in rules.lifecycle_table())
    for adv in rules.advisories():
        assert adv.id.startswith("VMSA-") and adv.cves and adv.references and adv.fixed
        assert all(c.startswith("CVE-") for c in adv.cves)
        assert all(f.fixed_build > 1_000_000 for f in adv.fixed)
    known = {b.build for b in rules.build_table()}
    # Every fixed build named by an advisory is in the build table, so evidence can name it.
    assert {f.fixed_build for a in rules.advisories() for f in a.fixed} <= known


@pytest.mark.parametrize(
    ("platform", "eos_date"),
    [
        (PlatformInfo("ESXi", "6.7.0", "14320388", "high"), "2022-10-15"),
        (PlatformInfo("ESXi", "6.5.0", "4564106", "high"), "2022-10-15"),
        (PlatformInfo("vCenter Server", "6.7.0", "15976728", "high"), "2022-10-15"),
        (PlatformInfo("ESXi", "7.0.3", "21930508", "high"), "2025-10-02"),
        (PlatformInfo("Hyper-V", "Windows Server 2012 R2", "6.3.9600", "medium"), "2023-10-10"),
        (PlatformInfo("XCP-ng", "8.1.0", None, "medium"), "2021-03-31"),
    ],
)
def test_end_of_support_flagged(platform: PlatformInfo, eos_date: str) -> None:
    found = rules.end_of_support(_result(platform), today=TODAY)
    assert [f.id for f in found] == ["platform.end_of_support"]
    f = found[0]
    assert f.severity is Severity.HIGH
    assert f"end of general support: {eos_date}" in f.evidence
    assert any(e.startswith("lifecycle: https://") for e in f.evidence)
    assert f.references and f.references[0].startswith("https://")


@pytest.mark.parametrize(
    "platform",
    [
        PlatformInfo("ESXi", "8.0.2", "22380479", "high"),
        PlatformInfo("vCenter Server", "8.0.3", "24322831", "high"),
        PlatformInfo("Hyper-V", "Windows Server 2022", "10.0.20348", "medium"),
        PlatformInfo("XCP-ng", "8.2.1", None, "medium"),
        # Too weak or self-contradicting identifications are not judged at all.
        PlatformInfo("ESXi", "6.7.0", "14320388", "low"),
        PlatformInfo("ESXi", "6.7.0", "14320388", "low", ("conflict: ESXi vs Hyper-V",)),
        PlatformInfo("ESXi", None, None, "medium"),
        PlatformInfo(None, None, None, "none"),
        None,
    ],
)
def test_end_of_support_not_flagged(platform: PlatformInfo | None) -> None:
    assert rules.end_of_support(_result(platform), today=TODAY) == []


def test_end_of_support_is_date_driven() -> None:
    esxi8 = _result(PlatformInfo("ESXi", "8.0.2", "22380479", "high"))
    assert rules.end_of_support(esxi8, today=date(2027, 10, 10)) == []
    assert len(rules.end_of_support(esxi8, today=date(2027, 10, 11))) == 1


@pytest.mark.parametrize(
    ("platform", "advisories", "severity"),
    [
        (PlatformInfo("ESXi", "7.0.1", "16850804", "high"), ["VMSA-2021-0002"], Severity.HIGH),
        (PlatformInfo("ESXi", "7.0.1", "17325551", "high"), [], None),
        (PlatformInfo("ESXi", "7.0.2", "17630552", "high"), [], None),
        (
            PlatformInfo("vCenter Server", "8.0.2", "22385739", "high"),
            ["VMSA-2024-0012", "VMSA-2024-0019"],
            Severity.CRITICAL,
        ),
        (
            PlatformInfo("vCenter Server", "8.0.2", "23929136", "high"),
            ["VMSA-2024-0019"],
            Severity.HIGH,
        ),
        (
            PlatformInfo("vCenter Server", "8.0.1", "23319993", "high"),
            ["VMSA-2024-0012", "VMSA-2024-0019"],
            Severity.CRITICAL,
        ),
        (PlatformInfo("vCenter Server", "8.0.3", "24322831", "high"), [], None),
        # A build from a banner-only or conflicting identification is not trusted.
        (PlatformInfo("vCenter Server", "8.0.2", "22385739", "low"), [], None),
        (PlatformInfo("ESXi", "7.0.1", "16850804", "high", ("conflict: x",)), [], None),
        (PlatformInfo("Linux", "9.2", "9.2p1", "medium"), [], None),
    ],
)
def test_missing_security_patch(
    platform: PlatformInfo, advisories: list[str], severity: Severity | None
) -> None:
    found = rules.missing_patches(_result(platform))
    if not advisories:
        assert found == []
        return
    assert len(found) == 1  # one finding per endpoint listing every advisory
    f = found[0]
    assert f.id == "platform.missing_security_patch"
    assert f.severity is severity
    for adv in advisories:
        assert adv in f.title and adv in f.references
        assert any(e.startswith(adv) and "fixed in" in e for e in f.evidence)
    assert any(r.startswith("CVE-") for r in f.references)


def test_findings_entry_point_combines_both() -> None:
    old_vc = _result(PlatformInfo("vCenter Server", "6.7.0", "15976728", "high"))
    ids = {f.id for f in rules.findings(old_vc, now=SCAN_TIME)}
    assert ids == {"platform.end_of_support"}
    vc8 = _result(PlatformInfo("vCenter Server", "8.0.2", "23929136", "high"))
    assert {f.id for f in rules.findings(vc8, now=SCAN_TIME)} == {"platform.missing_security_patch"}
