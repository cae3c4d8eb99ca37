"""The estate page (issue 15 item 8): one self-contained HTML file, checked as text
and in a real headless Chromium (Debian's ``chromium``): it renders, its script ran,
the grid holds every endpoint, and the filters work. The screenshot is kept as a test
artefact (pytest's tmp path, and ``$CHANSCAN_ARTEFACTS`` when set)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path

import pytest
from sample_report import sample_report

from chanscan.cli import main
from chanscan.model import EndpointResult, ScanReport, Severity
from chanscan.reports import RenderOptions, render, write_atomic
from chanscan.reports.html import site_of

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_SECONDS = 60


def _page(report: ScanReport | None = None) -> str:
    return render(report or sample_report(), "html", RenderOptions())


def test_page_is_self_contained() -> None:
    page = _page()
    assert page.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no external script, style sheet, image, font or frame.
    for pattern in (r"<script[^>]+src", r"<link\b", r"<img\b", r"<iframe\b", r"@import", r"url\("):
        assert re.search(pattern, page, re.IGNORECASE) is None, pattern
    assert re.search(r"\s(src|href)=\"(https?:)?//", page) is None
    assert "@media print" in page


def test_grid_holds_every_endpoint_with_its_grade_letter() -> None:
    report = sample_report()
    page = _page(report)
    chips = re.findall(r'<a class="ep [^"]*"[^>]*>(\d+) <b>([^<]+)</b></a>', page)
    assert len(chips) == len(report.endpoints)
    expected = sorted(
        (str(r.port), r.grade.overall if r.grade else r.status.value) for r in report.endpoints
    )
    assert sorted(chips) == expected


def test_findings_are_worst_first_with_evidence_and_remediation() -> None:
    report = sample_report()
    page = _page(report)
    severities = re.findall(r'<tr class="finding"[^>]*><td class="sev-(\w+)"', page)
    open_count = sum(1 for r in report.endpoints for f in r.findings if not f.waived)
    ranks = [Severity(s).rank for s in severities[:open_count]]
    assert ranks == sorted(ranks, reverse=True) and len(severities) > 1
    some = next(f for r in report.endpoints for f in r.findings if f.evidence and f.remediation)
    assert f"<li>{escape(some.evidence[0])}</li>" in page
    assert f"<td>{escape(some.remediation)}</td>" in page
    assert "waived: CHG-1234" in page  # a waived finding says why


@dataclass(frozen=True)
class _SitedResult(EndpointResult):
    """Stands in for the ``site`` field another change adds to the model."""

    site: str = ""


def test_site_filter_reads_a_site_once_the_model_has_one() -> None:
    report = sample_report()
    assert {site_of(r) for r in report.endpoints} == {""}
    assert '<select id="f-site" disabled>' in _page(report)
    sited = tuple(
        _SitedResult(**{f: getattr(r, f) for f in r.__dataclass_fields__}, site=f"dc{i % 2}")
        for i, r in enumerate(report.endpoints)
    )
    page = _page(replace(report, endpoints=sited))
    assert '<option value="dc0">' in page and '<option value="dc1">' in page
    assert 'data-site="dc1"' in page


def test_cli_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "scan.json"
    write_atomic(saved, render(sample_report(), "json"))
    page = tmp_path / "estate.html"
    code = main(["report", str(saved), "--html", str(page), "--no-color"])
    out, _ = capsys.readouterr()
    assert code == 1 and "eavesdrop" in out  # the table still goes to stdout
    assert page.read_text(encoding="utf-8") == _page()
    code = main(["report", str(saved), "-o", str(tmp_path / "p.html")])
    assert (tmp_path / "p.html").read_text(encoding="utf-8") == _page()


# -- in a real browser ------------------------------------------------------------------
def _chromium(tmp_path: Path, url: str, *mode: str) -> str:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-proxy-server",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1400,1000",
            *mode,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_SECONDS,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.needs_chromium
@pytest.mark.slow
def test_page_in_headless_chromium(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/test installs it)")
    report = sample_report()
    page = tmp_path / "estate.html"
    page.write_text(_page(report), encoding="utf-8")
    url = page.as_uri()

    dom = _chromium(tmp_path, url, "--dump-dom")
    assert 'data-ready="yes"' in dom  # the inline script ran to its end
    n = len(report.endpoints)
    assert f"{n} of {n} endpoints shown" in dom
    assert len(re.findall(r'<a class="ep ', dom)) == n
    assert len(re.findall(r'<tr class="host"', dom)) == len({r.address for r in report.endpoints})

    # A filter from the URL: only endpoints whose worst open finding is critical.
    critical = sum(
        1
        for r in report.endpoints
        if any(f.severity is Severity.CRITICAL for f in r.findings if not f.waived)
    )
    assert 0 < critical < n
    filtered = _chromium(tmp_path, url + "#sev=critical", "--dump-dom")
    assert f"{critical} of {n} endpoints shown" in filtered

    shot = tmp_path / "estate-page.png"
    _chromium(tmp_path, url, f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    artefacts = os.environ.get("CHANSCAN_ARTEFACTS")
    if artefacts:
        Path(artefacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artefacts) / shot.name)
