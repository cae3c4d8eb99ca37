"""Waivers: a valid, an expired and a non-matching waiver, host patterns, file errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from grading_fixtures import finding, modern_tls, result

from chanscan.errors import ConfigError
from chanscan.gate import over_gate
from chanscan.grading import grade_endpoint
from chanscan.model import Endpoint, Severity
from chanscan.waivers import EXPIRED_ID, apply_waivers, load_waivers, parse_waivers

TODAY = date(2026, 11, 29)

WAIVERS = """
[[waiver]]
finding = "tls.cert.self_signed"
host = "esx-*.example.test"
reason = "reached only through vCenter; CHG-1234"
expires = 2026-12-31

[[waiver]]
finding = "tls.protocol.tls1_0"
host = "192.0.2.0/28"
reason = "legacy backup agent until migration"
expires = 2026-10-31

[[waiver]]
finding = "ssh.*"
host = "hv-*.example.test"
reason = "Hyper-V hosts, tracked in RISK-7"
expires = 2027-01-31
"""

ESX = Endpoint(host="esx-01.example.test", address="192.0.2.5", port=443)
HV = Endpoint(host="hv-01.example.test", address="198.51.100.7", port=22)


@pytest.fixture
def waivers_file(tmp_path: Path) -> Path:
    path = tmp_path / "waivers.toml"
    path.write_text(WAIVERS, encoding="utf-8")
    return path


def test_valid_expired_and_non_matching_waivers(waivers_file: Path) -> None:
    waivers = load_waivers(waivers_file)
    assert len(waivers) == 3
    findings = [
        finding("tls.cert.self_signed", Severity.HIGH),  # valid waiver (host pattern)
        finding("tls.protocol.tls1_0", Severity.MEDIUM),  # waiver expired 2026-10-31
        finding("tls.cipher.3des", Severity.MEDIUM),  # no waiver names it
    ]
    out = apply_waivers(findings, ESX, waivers, TODAY)
    by_id = {f.id: f for f in out}

    waived = by_id["tls.cert.self_signed"]
    assert waived.waived and waived.waiver_reason == "reached only through vCenter; CHG-1234"
    assert not over_gate(waived, Severity.LOW)

    reopened = by_id["tls.protocol.tls1_0"]
    assert not reopened.waived and reopened.waiver_reason is None
    assert over_gate(reopened, Severity.MEDIUM)

    assert not by_id["tls.cipher.3des"].waived

    expired = [f for f in out if f.id == EXPIRED_ID]
    assert len(expired) == 1
    ev = expired[0].evidence
    assert f"waiver: {waivers_file} waiver[2]" in ev
    assert "expired: 2026-10-31" in ev and "no longer waived: tls.protocol.tls1_0" in ev
    assert not expired[0].waived and expired[0].remediation


def test_waiver_for_another_host_does_not_apply(waivers_file: Path) -> None:
    other = Endpoint(host="vc.example.test", address="203.0.113.9", port=443)
    findings = [finding("tls.cert.self_signed"), finding("tls.protocol.tls1_0")]
    out = apply_waivers(findings, other, load_waivers(waivers_file), TODAY)
    assert out == findings  # untouched, and no expiry reported for a host it never covered


def test_expiry_day_still_holds_and_next_day_does_not(waivers_file: Path) -> None:
    waivers = load_waivers(waivers_file)
    f = [finding("tls.protocol.tls1_0")]
    assert apply_waivers(f, ESX, waivers, date(2026, 10, 31))[0].waived
    assert not apply_waivers(f, ESX, waivers, date(2026, 11, 1))[0].waived


def test_cidr_and_fnmatch_patterns(waivers_file: Path) -> None:
    waivers = load_waivers(waivers_file)
    outside = Endpoint(host="esx-99", address="192.0.2.16", port=443)  # not in /28
    inside = Endpoint(host="whatever", address="192.0.2.15", port=443)
    f = [finding("tls.protocol.tls1_0")]
    early = date(2026, 1, 1)
    assert not apply_waivers(f, outside, waivers, early)[0].waived
    assert apply_waivers(f, inside, waivers, early)[0].waived
    ssh = [finding("ssh.auth.password"), finding("tls.cipher.rc4")]
    out = apply_waivers(ssh, HV, waivers, TODAY)
    assert [x.waived for x in out] == [True, False]


def test_waived_findings_still_shape_grades(waivers_file: Path) -> None:
    findings = apply_waivers(
        [finding("tls.cert.self_signed")], ESX, load_waivers(waivers_file), TODAY
    )
    g = grade_endpoint(result(tls=modern_tls()), findings)
    assert findings[0].waived and g is not None and g.mitm == "D"


def test_existing_expiry_findings_are_never_waived(waivers_file: Path) -> None:
    everything = parse_waivers(
        '[[waiver]]\nfinding = "*"\nhost = "*"\nreason = "r"\nexpires = 2030-01-01\n'
    )
    out = apply_waivers([finding(EXPIRED_ID)], ESX, everything, TODAY)
    assert not out[0].waived


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[waiver]\n", "line 1"),
        ('[[waiver]]\nfinding = "a"\nhost = "h"\nreason = "r"\nexpires = "2026-01-01"\n', "date"),
        (
            '[[waiver]]\nfinding = "a"\nhost = "h"\nreason = "r"\nexpires = 2026-01-01T10:00:00Z\n',
            "date",
        ),
        ('[[waiver]]\nfinding = "a"\nhost = "h"\nexpires = 2026-01-01\n', "'reason'"),
        (
            '[[waiver]]\nfinding = "a"\nhost = "192.0.2.0/33"\nreason = "r"\n'
            "expires = 2026-01-01\n",
            "CIDR",
        ),
        (
            '[[waiver]]\nfinding = "a"\nhost = "h"\nreason = "r"\nexpires = 2026-01-01\n'
            'owner = "me"\n',
            "unknown key 'owner'",
        ),
        ('[[waivers]]\nfinding = "a"\n', "unknown top-level key 'waivers'"),
    ],
)
def test_bad_waiver_files_raise_one_line_config_errors(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "w.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_waivers(path)
    line = str(exc.value)
    assert line.startswith(str(path)) and message in line and "\n" not in line


def test_missing_waiver_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such waivers file"):
        load_waivers(tmp_path / "absent.toml")
