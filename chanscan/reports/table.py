"""The human view: a risk summary (worst first), optional findings and per-host tables."""

from __future__ import annotations

from collections import Counter, defaultdict

from tabulate import tabulate

from chanscan.gate import gate_failures, grade_rank, unprobed
from chanscan.grading import host_grades
from chanscan.model import EndpointResult, ScanReport, Severity, Status
from chanscan.reports.common import (
    platform_label,
    risk_key,
    shorten,
    sorted_findings,
    uri_host,
)
from chanscan.reports.options import RenderOptions

_RESET = "\x1b[0m"
_RED = "\x1b[31m"
_YELLOW = "\x1b[33m"
_GREEN = "\x1b[32m"
_BOLD_RED = "\x1b[1;31m"

_UNPROBED = (Status.TIMEOUT, Status.FILTERED, Status.ERROR)


def _grade_colour(grade: str) -> str:
    if grade.startswith("A"):
        return _GREEN
    if grade in ("B", "C"):
        return _YELLOW
    return _RED


_SEVERITY_COLOUR = {
    Severity.CRITICAL: _BOLD_RED,
    Severity.HIGH: _RED,
    Severity.MEDIUM: _YELLOW,
}


def _paint(text: str, colour: str | None, opts: RenderOptions) -> str:
    if not opts.color or not colour or not text:
        return text
    return f"{colour}{text}{_RESET}"


def _grade_cell(grade: str | None, opts: RenderOptions) -> str:
    if grade is None:
        return ""
    return _paint(grade, _grade_colour(grade), opts)


def _severity_cell(severity: Severity, opts: RenderOptions) -> str:
    return _paint(severity.value, _SEVERITY_COLOUR.get(severity), opts)


def _top_findings(result: EndpointResult, opts: RenderOptions) -> str:
    if result.status is not Status.OK:
        return shorten(result.error or "", opts.width)
    open_findings = [f for f in sorted_findings(result.findings) if not f.waived]
    if not open_findings:
        return ""
    named = "; ".join(f.title for f in open_findings[: opts.top_findings])
    more = len(open_findings) - opts.top_findings
    suffix = f" (+{more} more)" if more > 0 else ""
    # Shorten the titles, never the "+N more": the count is what tells a reader to look.
    return shorten(named, max(opts.width - len(suffix), 8)) + suffix


def summary_table(report: ScanReport, opts: RenderOptions) -> str:
    headers = ["host", "port", "channel", "platform", "eavesdrop", "MITM", "overall", "findings"]
    rows = []
    for r in sorted(report.endpoints, key=risk_key):
        if r.status is Status.CLOSED and not opts.verbose:
            continue  # a sweep is mostly closed ports: counted in the headline instead
        grade = r.grade
        overall = _grade_cell(grade.overall, opts) if grade else r.status.value
        if grade is None and r.status is Status.OK:
            overall = "-"
        rows.append(
            [
                shorten(r.host, opts.width),
                r.port,
                r.channel.value,
                shorten(platform_label(r), opts.width // 2),
                _grade_cell(grade.eavesdropping if grade else None, opts),
                _grade_cell(grade.mitm if grade else None, opts),
                overall,
                _top_findings(r, opts),
            ]
        )
    return tabulate(rows, headers=headers, tablefmt=opts.table_format, disable_numparse=True)


def findings_table(report: ScanReport, opts: RenderOptions) -> str:
    headers = ["endpoint", "id", "severity", "axis", "evidence", "remediation", "waived"]
    rows = []
    for r in sorted(report.endpoints, key=risk_key):
        for f in sorted_findings(r.findings):
            waived = ""
            if f.waived:
                waived = f"yes: {f.waiver_reason}" if f.waiver_reason else "yes"
            rows.append(
                [
                    f"{uri_host(r.host)}:{r.port}",
                    f.id,
                    _severity_cell(f.severity, opts),
                    f.axis.value,
                    shorten("; ".join(f.evidence), opts.width),
                    shorten(f.remediation, opts.width),
                    shorten(waived, opts.width // 2),
                ]
            )
    if not rows:
        return "No findings."
    return tabulate(rows, headers=headers, tablefmt=opts.table_format, disable_numparse=True)


def host_table(report: ScanReport, opts: RenderOptions) -> str:
    # The host grade is grading's (worst endpoint, capped when a cleartext management
    # port sits beside a TLS one), not a second computation here.
    graded = host_grades(report.endpoints)
    by_host: dict[str, list[EndpointResult]] = defaultdict(list)
    for r in report.endpoints:
        by_host[r.address or r.host].append(r)
    headers = ["host", "endpoints", "unprobed", "eavesdrop", "MITM", "overall", "open findings"]
    raw: list[tuple[str, int, int, str | None, str | None, str | None, str]] = []
    for address, results in by_host.items():
        if not opts.verbose and all(r.status is Status.CLOSED for r in results):
            continue  # nothing listens there: no host to speak of
        host = results[0].host if results[0].host == address else f"{results[0].host} ({address})"
        g = graded.get(address)
        eaves, mitm, overall = (g.eavesdropping, g.mitm, g.overall) if g else (None, None, None)
        counts: Counter[Severity] = Counter()
        for r in results:
            counts.update(f.severity for f in r.findings if not f.waived)
        bad = sum(1 for r in results if r.status in _UNPROBED)
        tally = ", ".join(f"{counts[s]} {s.value}" for s in reversed(Severity) if counts[s])
        raw.append((host, len(results), bad, eaves, mitm, overall, tally))
    raw.sort(key=lambda t: (-(grade_rank(t[5]) if t[5] else -1), t[0]))
    rows = [
        [
            shorten(host, opts.width),
            count,
            bad,
            _grade_cell(eaves, opts),
            _grade_cell(mitm, opts),
            _grade_cell(overall, opts),
            tally,
        ]
        for host, count, bad, eaves, mitm, overall, tally in raw
    ]
    return tabulate(rows, headers=headers, tablefmt=opts.table_format, disable_numparse=True)


def headline(report: ScanReport, opts: RenderOptions) -> str:
    n = len(report.endpoints)
    missing = len(unprobed(report))
    failures = gate_failures(report, opts.fail_on, opts.min_grade)
    parts = [f"{opts.tool_name} {report.tool_version}", f"{n} endpoint{'s' * (n != 1)}"]
    if missing:
        parts.append(f"{missing} not probed")
    down = sum(d.hosts for d in report.down_hosts)
    if down:
        parts.append(f"{down} address{'es' * (down != 1)} down (no answer; counted, not listed)")
    closed = sum(1 for r in report.endpoints if r.status is Status.CLOSED)
    if closed:
        parts.append(f"{closed} closed" + ("" if opts.verbose else " (hidden; -v shows them)"))
    if not report.complete:
        parts.append("scan incomplete")
    gate = f"--fail-on {opts.fail_on.value}"
    if opts.min_grade:
        gate += f" --min-grade {opts.min_grade}"
    verdict = (
        _paint(f"gate FAILED ({len(failures)})", _RED, opts)
        if failures
        else _paint("gate passed", _GREEN, opts)
    )
    parts.append(f"{verdict} [{gate}]")
    return " · ".join(parts)


def render(report: ScanReport, opts: RenderOptions) -> str:
    sections = [headline(report, opts), summary_table(report, opts)]
    if opts.by_host:
        sections.append("Per host\n\n" + host_table(report, opts))
    if opts.verbose:
        sections.append("Findings\n\n" + findings_table(report, opts))
    return "\n\n".join(sections) + "\n"
