"""Golden files for every report format of one fixed report.

The expected outputs live in tests/golden/. They are rewritten only when
CHANSCAN_UPDATE_GOLDEN=1 is set, and such a run still fails so an update is never
silently taken as a pass.
"""

from __future__ import annotations

import dataclasses
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sample_report import sample_report

from chanscan.errors import UsageError
from chanscan.model import Severity
from chanscan.reports import FORMATS, RenderOptions, render, write_outputs
from chanscan.reports.common import shorten
from chanscan.reports.json_report import loads_report

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CHANSCAN_UPDATE_GOLDEN") == "1"

CASES: dict[str, tuple[str, RenderOptions]] = {
    "table.txt": ("table", RenderOptions()),
    "table_verbose_by_host.txt": ("table", RenderOptions(verbose=True, by_host=True)),
    "table_grid_color.txt": (
        "table",
        RenderOptions(table_format="grid", color=True, width=24, min_grade="B"),
    ),
    "report.json": ("json", RenderOptions()),
    "report.sarif": ("sarif", RenderOptions()),
    "junit.xml": ("junit", RenderOptions()),
    "junit_fail_on_medium.xml": ("junit", RenderOptions(fail_on=Severity.MEDIUM, min_grade="A")),
    "report.md": ("markdown", RenderOptions()),
    "report.html": ("html", RenderOptions()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    fmt, opts = CASES[name]
    actual = render(sample_report(), fmt, opts)
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
        pytest.fail(f"golden file {name} rewritten; rerun without CHANSCAN_UPDATE_GOLDEN")
    assert path.exists(), f"missing golden file {path}; create it with CHANSCAN_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


def test_every_format_has_a_golden_file() -> None:
    assert {fmt for fmt, _ in CASES.values()} == set(FORMATS)


def test_json_golden_reads_back_to_the_same_report() -> None:
    text = (GOLDEN / "report.json").read_text(encoding="utf-8")
    assert loads_report(text) == sample_report()


def test_table_is_worst_first_and_shortens_not_wraps() -> None:
    text = render(sample_report(), "table", RenderOptions(width=20, verbose=True))
    lines = text.split("\n\nFindings")[0].splitlines()
    rows = [ln for ln in lines[4:] if ln.strip()]
    assert rows[0].startswith("esx01.example.com  22")  # overall F with a critical finding
    assert rows[-1].startswith("xen01.example.com  22")  # closed port last
    assert "…" in text
    # shortened cells keep one physical line per endpoint
    assert len(rows) == len(sample_report().endpoints)
    # Without -v, closed ports are counted in the headline, not listed.
    brief = render(sample_report(), "table", RenderOptions(width=20))
    assert "1 closed (hidden; -v shows them)" in brief
    assert "connection refused" not in brief


def test_colour_only_when_asked() -> None:
    plain = render(sample_report(), "table", RenderOptions(verbose=True, by_host=True))
    assert "\x1b[" not in plain
    coloured = render(sample_report(), "table", RenderOptions(color=True, verbose=True))
    assert "\x1b[31mF\x1b[0m" in coloured
    # tabulate measures visible width, so colour does not shift the columns
    strip = coloured
    for code in ("\x1b[0m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[1;31m"):
        strip = strip.replace(code, "")
    summary = plain.split("\n\nPer host")[0]
    assert strip.split("\n\nFindings")[0].splitlines()[1:] == summary.splitlines()[1:]


def test_junit_counts_and_waivers() -> None:
    root = ET.fromstring(render(sample_report(), "junit", RenderOptions()))
    assert root.get("tests") == "10"  # 9 endpoints and the one host with a host finding
    assert root.get("errors") == "2"  # timeout + error endpoints
    assert root.get("skipped") == "1"  # the closed port
    messages = [f.get("message", "") for f in root.iter("failure")]
    # the findings at high or above that are not waived, the host's end of support too
    assert len(messages) == 6
    assert any(m.startswith("platform.end_of_support") for m in messages)
    assert not any("self_signed" in m for m in messages)  # waived never fails


def test_sarif_levels_and_suppressions() -> None:
    log = json.loads(render(sample_report(), "sarif", RenderOptions()))
    run = log["runs"][0]
    results = run["results"]
    report = sample_report()
    assert len(results) == sum(len(r.findings) for r in report.endpoints) + sum(
        len(h.findings) for h in report.hosts
    )
    (host_result,) = [r for r in results if r["properties"]["channel"] == "host"]
    assert host_result["ruleId"] == "platform.end_of_support"
    assert host_result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "host://esx01.example.com"
    )
    levels = {r["ruleId"]: r["level"] for r in results}
    assert levels["ssh.hostkey.rsa_short"] == "error"
    assert levels["tls.cipher.no_forward_secrecy"] == "warning"
    assert levels["ssh.cipher.cbc"] == "note"
    waived = [r for r in results if "suppressions" in r]
    assert [r["ruleId"] for r in waived] == ["tls.cert.self_signed"]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rule_ids == sorted(set(levels))
    for r in results:
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert "ssh://esx01.example.com:22" in uris
    assert "rdp://hv01.example.com:3389" in uris
    assert "https://vc01.example.com:443" in uris
    fps = [r["partialFingerprints"]["chanscanFinding/v1"] for r in results]
    assert len(set(fps)) == len(fps)


def test_ipv6_hosts_are_bracketed_in_uris() -> None:
    base = sample_report()
    ssh = dataclasses.replace(base.endpoints[3], host="2001:db8::21", address="2001:db8::21")
    report = dataclasses.replace(base, endpoints=(ssh,), hosts=())
    log = json.loads(render(report, "sarif", RenderOptions()))
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert uris == {"ssh://[2001:db8::21]:22"}
    assert "ssh://[2001:db8::21]:22" in render(report, "markdown", RenderOptions())


def test_write_outputs_writes_every_format(tmp_path: Path) -> None:
    outputs = {fmt: tmp_path / f"out.{fmt}" for fmt in ("json", "sarif", "junit", "markdown")}
    write_outputs(sample_report(), outputs, RenderOptions())
    for fmt, path in outputs.items():
        assert path.read_text(encoding="utf-8") == render(sample_report(), fmt, RenderOptions())
    with pytest.raises(UsageError):
        write_outputs(sample_report(), {"pdf": tmp_path / "x.pdf"}, RenderOptions())
    assert not (tmp_path / "x.pdf").exists()


@given(st.text(), st.integers(min_value=2, max_value=80))
def test_shorten_is_one_bounded_line(text: str, width: int) -> None:
    out = shorten(text, width)
    assert len(out) <= width
    assert "\n" not in out and "\r" not in out
    if len(" ".join(text.split())) <= width:
        assert out == " ".join(text.split())
    else:
        assert out.endswith("…")
