"""CI gates, and reading saved reports back (``chanscan report``, ``chanscan diff``)."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest
from sample_report import sample_report

from chanscan.errors import ReportFormatError, UsageError
from chanscan.gate import gate_failures, parse_grade, unprobed
from chanscan.grading.scale import grade_rank, worse_grade
from chanscan.model import Severity
from chanscan.reports import RenderOptions, render, renderer
from chanscan.reports.json_report import load_report, write_atomic


def test_fail_on_threshold_and_waivers() -> None:
    report = sample_report()
    high = gate_failures(report, Severity.HIGH)
    assert sorted(f.subject for f in high) == [
        "http.plaintext_management",
        "platform.end_of_support",  # the host finding: fails the gate, caps nothing
        "ssh.hostkey.rsa_short",
        "ssh.kex.dh_group1",
        "tls.protocol.tls1_0",
        "tls.protocol.tls1_0",
    ]
    assert "tls.cert.self_signed" not in {f.subject for f in high}  # waived high
    assert [f.subject for f in gate_failures(report, Severity.CRITICAL)] == [
        "ssh.hostkey.rsa_short"
    ]
    # 10 endpoint findings, one waived, and the host's end of support
    assert len(gate_failures(report, Severity.INFO)) == 10
    unwaived = dataclasses.replace(
        report,
        endpoints=tuple(
            dataclasses.replace(
                r, findings=tuple(dataclasses.replace(f, waived=False) for f in r.findings)
            )
            for r in report.endpoints
        ),
    )
    assert len(gate_failures(unwaived, Severity.HIGH)) == 7  # six on endpoints, one host


def test_min_grade() -> None:
    report = sample_report()
    grades = gate_failures(report, Severity.CRITICAL, min_grade="B")
    below = sorted((f.host, f.port) for f in grades if f.kind == "grade")
    assert below == [
        ("esx01.example.com", 22),
        ("esx01.example.com", 443),
        ("esx01.example.com", 902),
        ("hv01.example.com", 5985),
    ]
    # ungraded endpoints (closed, timeout, error) are never judged on a grade
    assert not [
        f
        for f in gate_failures(report, Severity.CRITICAL, "A+")
        if f.port == 902 and f.host == "203.0.113.9"
    ]


def test_grade_helpers() -> None:
    assert grade_rank("A+") < grade_rank("A") < grade_rank("A-") < grade_rank("F")
    assert grade_rank("Z") > grade_rank("F")
    assert worse_grade("B", "E") == "E" and worse_grade(None, "C") == "C"
    assert parse_grade(" a- ") == "A-"
    with pytest.raises(UsageError):
        parse_grade("G")
    assert [(r.host, r.status.value) for r in unprobed(sample_report())] == [
        ("xen01.example.com", "timeout"),
        ("203.0.113.9", "error"),
    ]


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown format"):
        renderer("pdf")


def test_report_round_trip_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "scan.json"
    write_atomic(path, render(sample_report(), "json", RenderOptions()))
    assert load_report(path) == sample_report()
    assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["scan.json"]  # no temp file left


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def test_write_atomic_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "scan.json"
    path.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "\udcff")  # a lone surrogate cannot be encoded
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scan.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a chanscan report"),
        ('{"schema": "sslyze/5"}', "schema 'sslyze/5'"),
        ('{"schema": "chanscan/1", "tool_version": "x"}', "missing field 'complete'"),
    ],
)
def test_bad_reports_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ReportFormatError, match=message) as info:
        load_report(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_wrong_types_and_unreadable_files(tmp_path: Path) -> None:
    data = json.loads(render(sample_report(), "json", RenderOptions()))
    data["endpoints"][0]["port"] = "443"
    data["endpoints"][1]["findings"][0]["severity"] = "catastrophic"
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ReportFormatError, match=r"endpoints\[0\]\.port"):
        load_report(path)
    with pytest.raises(ReportFormatError, match="cannot read"):
        load_report(tmp_path / "missing.json")
    with pytest.raises(ReportFormatError, match="cannot read"):
        load_report(tmp_path)


def test_write_atomic_reports_an_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot write"):
        write_atomic(tmp_path / "no-such-dir" / "scan.json", "{}")
    (tmp_path / "adir").mkdir()
    with pytest.raises(UsageError, match="cannot write"):
        write_atomic(tmp_path / "adir", "{}")  # os.replace onto a directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]
