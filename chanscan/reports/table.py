"""The human view: a risk summary (worst first), optional findings and per-host tables."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from chanscan.gate import UNPROBED, gate_failures, unprobed
from chanscan.grading import host_grades
from chanscan.grading.scale import grade_rank
from chanscan.model import EndpointResult, ScanReport, Severity, Status
from chanscan.reports.common import (
    platform_label,
    risk_key,
    shorten,
    sorted_findings,
    uri_host,
)
from chanscan.reports.fit import Column, fit_table, wrap
from chanscan.reports.options import RenderOptions

_RESET = "\x1b[0m"
_RED = "\x1b[31m"
_YELLOW = "\x1b[33m"
_GREEN = "\x1b[32m"
_BOLD_RED = "\x1b[1;31m"

_UNPROBED = UNPROBED  # timeout, filtered, error, interrupted


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
    return _keep_count(named + suffix, opts.width)


_MORE = re.compile(r" \(\+\d+ more\)$")


def _keep_count(text: str, width: int) -> str:
    # Shorten the titles, never the "+N more": the count is what tells a reader to look.
    m = _MORE.search(text)
    if m is None:
        return shorten(text, width)
    suffix = m.group(0)
    return shorten(text[: m.start()], max(width - len(suffix), 8)) + suffix


# Declared fitting priority (see reports/fit.py): the platform is shortened first,
# then the finding text, then the host name; platform and channel are the first to
# go (the port tells most channels); the grades and the port are never touched.
_SUMMARY_COLUMNS = (
    Column("host", shrink_to=15, shrink_rank=3),
    Column("port"),
    Column("channel", drop_rank=1),
    Column("platform", shrink_to=12, shrink_rank=0, drop_rank=0),
    Column("eavesdrop"),
    Column("MITM"),
    Column("overall"),
    Column("findings", shrink_to=16, shrink_rank=1, drop_rank=2, shrink=_keep_count),
)


def summary_table(report: ScanReport, opts: RenderOptions) -> str:
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
                str(r.port),
                r.channel.value,
                shorten(platform_label(r), opts.width // 2),
                _grade_cell(grade.eavesdropping if grade else None, opts),
                _grade_cell(grade.mitm if grade else None, opts),
                overall,
                _top_findings(r, opts),
            ]
        )
    return fit_table(_SUMMARY_COLUMNS, rows, opts.table_format, opts.columns)


_FINDINGS_COLUMNS = (
    Column("endpoint", shrink_to=15, shrink_rank=4),
    Column("id"),
    Column("severity"),
    Column("axis", drop_rank=1),
    Column("evidence", shrink_to=12, shrink_rank=1, drop_rank=3),
    Column("remediation", shrink_to=12, shrink_rank=0, drop_rank=0),
    Column("waived", shrink_to=5, shrink_rank=2, drop_rank=2),
)


def findings_table(report: ScanReport, opts: RenderOptions) -> str:
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
    return fit_table(_FINDINGS_COLUMNS, rows, opts.table_format, opts.columns)


def host_table(report: ScanReport, opts: RenderOptions) -> str:
    # The host grade is assess's (worst endpoint, capped when a cleartext management
    # port sits beside a TLS one), read from the report, never computed again here; a
    # report from before hosts were recorded falls back to grading's same function.
    machines = {h.address: h for h in report.hosts}
    graded = (
        {a: h.grade for a, h in machines.items()} if machines else host_grades(report.endpoints)
    )
    by_host: dict[str, list[EndpointResult]] = defaultdict(list)
    for r in report.endpoints:
        by_host[r.address or r.host].append(r)
    raw: list[tuple[str, int, int, str | None, str | None, str | None, str, str]] = []
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
        machine = machines.get(address)
        own = ", ".join(
            f"{f.id} ({f.severity.value})"
            for f in (machine.findings if machine else ())
            if not f.waived
        )
        raw.append((host, len(results), bad, eaves, mitm, overall, own, tally))
    raw.sort(key=lambda t: (-(grade_rank(t[5]) if t[5] else -1), t[0]))
    rows = [
        [
            shorten(host, opts.width),
            str(count),
            str(bad),
            _grade_cell(eaves, opts),
            _grade_cell(mitm, opts),
            _grade_cell(overall, opts),
            shorten(own, opts.width),
            tally,
        ]
        for host, count, bad, eaves, mitm, overall, own, tally in raw
    ]
    return fit_table(_HOST_COLUMNS, rows, opts.table_format, opts.columns)


_HOST_COLUMNS = (
    Column("host", shrink_to=15, shrink_rank=1),
    Column("endpoints"),
    Column("unprobed", drop_rank=0),
    Column("eavesdrop"),
    Column("MITM"),
    Column("overall"),
    Column("host findings", shrink_to=14, shrink_rank=0, drop_rank=2),
    Column("open findings", shrink_to=14, shrink_rank=0, drop_rank=1),
)


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


def legend(report: ScanReport, opts: RenderOptions) -> str:
    """What the columns and the verdict mean, for a first-time reader (``chanscan demo``)."""
    failures = gate_failures(report, opts.fail_on, opts.min_grade)
    findings = sum(1 for f in failures if f.kind == "finding")
    grades = len(failures) - findings
    endpoints = len({(f.address, f.port) for f in failures if f.channel != "host"})
    hosts = len({f.address for f in failures if f.channel == "host"})
    counted = f"{findings} open (not waived) finding{'s' * (findings != 1)} at or above "
    counted += f"--fail-on {opts.fail_on.value}"
    if opts.min_grade:
        counted += f" and {grades} grade{'s' * (grades != 1)} below --min-grade {opts.min_grade}"
    lines = [
        "How to read this",
        "  eavesdrop  can a listener on the path read the channel? (protocol versions, "
        "ciphers, key exchange, cleartext ports)",
        "  MITM       can someone on the path pretend to be the server? (certificate "
        "trust, host keys, RDP NLA)",
        "  overall    the worse of the two; grades run A+ (best), A, A-, B, C, D, E, F",
        f"  gate       {'FAILED' if failures else 'passed'} ({len(failures)}) counts "
        f"{counted}, on {endpoints} endpoint{'s' * (endpoints != 1)}"
        + (f" and {hosts} host{'s' * (hosts != 1)} (patch level, end of support)" if hosts else ""),
        "  more       -v lists every finding with its evidence and remediation; "
        "--by-host rolls the endpoints up per host",
    ]
    return wrap("\n".join(lines), opts.columns)


def render(report: ScanReport, opts: RenderOptions) -> str:
    sections = [wrap(headline(report, opts), opts.columns), summary_table(report, opts)]
    if opts.by_host:
        sections.append("Per host\n\n" + host_table(report, opts))
    if opts.verbose:
        sections.append("Findings\n\n" + findings_table(report, opts))
    if opts.legend:
        sections.append(legend(report, opts))
    return "\n\n".join(sections) + "\n"
