"""The estate page: one self-contained HTML file (``--html FILE``).

It opens from a change ticket or an air-gapped share, so nothing is fetched: the CSS
and the few lines of filter script are inline, and no element refers to another
file or host. A host x channel grid coloured by grade (the letter is always printed,
and the colours step down in lightness, so a greyscale print still reads), then the
open findings worst first with their evidence and remediation, then the endpoints
that could not be probed. Filters: worst severity, platform, site (also from the URL fragment,
``page.html#sev=high``, so a ticket can link to a filtered view).

Pure: the report in, text out; the page is dated by the scan, never by the renderer.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape

from chanscan.gate import UNPROBED, gate_failures, worst_severity
from chanscan.grading import host_grades
from chanscan.grading.scale import grade_rank
from chanscan.model import Channel, EndpointResult, Finding, ScanReport, Severity, Status
from chanscan.reports.common import host_port, platform_label, risk_key, sorted_findings
from chanscan.reports.options import RenderOptions

_CHANNELS = (Channel.TLS, Channel.SSH, Channel.RDP, Channel.AUTHD, Channel.HTTP, Channel.UNKNOWN)

# Lighter to darker as grades fall, so the order survives greyscale; the letter is
# always written in the cell as well.
_CSS = """
:root { font-family: system-ui, sans-serif; font-size: 14px; color: #111; }
body { margin: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
.meta { color: #444; margin: 0 0 1rem; }
.verdict { font-weight: 700; }
.failed { color: #a00; } .passed { color: #060; }
.filters { display: flex; gap: 1rem; flex-wrap: wrap; align-items: end;
  padding: .5rem; border: 1px solid #bbb; margin-bottom: 1rem; }
.filters label { display: flex; flex-direction: column; font-size: .85rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: .25rem .4rem; text-align: left; vertical-align: top; }
th { background: #eee; }
.ep { display: inline-block; margin: .1rem; padding: .1rem .35rem; border: 1px solid #555;
  border-radius: 3px; text-decoration: none; color: #111; white-space: nowrap; }
.ep b { font-size: 1.05em; }
.g-Ap, .g-A { background: #e3f4e1; } .g-Am { background: #d2ebc6; }
.g-B { background: #f5eeb0; } .g-C { background: #f2d27e; }
.g-D { background: #e79a63; } .g-E { background: #c75a4a; color: #fff; }
.g-F { background: #7a1f1f; color: #fff; }
.g-none { background: #fff; border-style: dashed; color: #333; }
.ep.g-E, .ep.g-F { color: #fff; }
.sev-critical, .sev-high { font-weight: 700; }
.evidence { margin: 0; padding-left: 1.1rem; }
.muted { color: #555; }
.g-E .muted, .g-F .muted { color: #eee; }
#grid { width: auto; min-width: 70%; }
[hidden] { display: none !important; }
@media print {
  .filters { display: none; }
  body { margin: 0; font-size: 11px; }
  tr, .ep { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

# Filter by worst open severity (at or above), platform and site; counts what shows.
_JS = """
(function () {
  var rank = {info: 0, low: 1, medium: 2, high: 3, critical: 4};
  function val(id) { return document.getElementById(id).value; }
  function keep(el) {
    var sev = val('f-sev'), plat = val('f-platform'), site = val('f-site');
    if (sev !== 'all' && (el.dataset.sev === '' || rank[el.dataset.sev] < rank[sev])) {
      return false;
    }
    if (plat !== 'all' && el.dataset.platform !== plat) { return false; }
    if (site !== 'all' && el.dataset.site !== site) { return false; }
    return true;
  }
  function apply() {
    var shown = 0, total = 0;
    document.querySelectorAll('.ep').forEach(function (el) {
      var ok = keep(el); el.hidden = !ok; total += 1; if (ok) { shown += 1; }
    });
    document.querySelectorAll('tr.host').forEach(function (row) {
      row.hidden = row.querySelectorAll('.ep:not([hidden])').length === 0;
    });
    document.querySelectorAll('tr.finding, tr.unprobed').forEach(function (row) {
      row.hidden = !keep(row);
    });
    document.getElementById('shown').textContent = shown + ' of ' + total + ' endpoints shown';
  }
  // A link can carry the filters: page.html#sev=high&platform=VMware%20ESXi%206.7.0
  var wanted = new URLSearchParams(location.hash.slice(1));
  [['f-sev', 'sev'], ['f-platform', 'platform'], ['f-site', 'site']].forEach(function (p) {
    var select = document.getElementById(p[0]), value = wanted.get(p[1]);
    if (value !== null && select.querySelector('option[value="' + CSS.escape(value) + '"]')) {
      select.value = value;
    }
    select.addEventListener('change', apply);
  });
  apply();
  document.body.dataset.ready = 'yes';
})();
"""


def site_of(result: EndpointResult) -> str:
    """The endpoint's site (or scanning vantage) once the model has one; "" before."""
    for name in ("site", "vantage"):
        value = getattr(result, name, None)
        if value:
            return str(value)
    return ""


def _grade_class(grade: str | None) -> str:
    if grade is None:
        return "g-none"
    return "g-" + grade.replace("+", "p").replace("-", "m")


def _data(result: EndpointResult, severity: str | None = None) -> str:
    """The filter attributes of a row; ``severity`` overrides the endpoint's worst (a
    host finding's row carries its own)."""
    worst = worst_severity(result.findings)
    sev = severity if severity is not None else (worst.value if worst else "")
    return (
        f' data-sev="{sev}"'
        f' data-platform="{escape(platform_label(result) or "unknown")}"'
        f' data-site="{escape(site_of(result) or "none")}"'
    )


def _anchor(result: EndpointResult) -> str:
    return "ep-" + "".join(c if c.isalnum() else "-" for c in f"{result.address}-{result.port}")


def _chip(result: EndpointResult) -> str:
    g = result.grade
    label = g.overall if g else result.status.value
    title = f"{host_port(result)} {result.channel.value}"
    if g:
        title += f": eavesdropping {g.eavesdropping}, MITM {g.mitm}"
    elif result.error:
        title += f": {result.error}"
    target = f"#{_anchor(result)}" if result.findings or result.status in UNPROBED else "#"
    return (
        f'<a class="ep {_grade_class(g.overall if g else None)}" href="{target}"'
        f' title="{escape(title)}"{_data(result)}>{result.port} <b>{escape(label)}</b></a>'
    )


def _options(select_id: str, label: str, values: list[str]) -> str:
    opts = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)
    disabled = "" if values else " disabled"
    return (
        f'<label>{label}<select id="{select_id}"{disabled}>'
        f'<option value="all">all</option>{opts}</select></label>'
    )


def _grid(report: ScanReport) -> str:
    hosts: dict[str, list[EndpointResult]] = defaultdict(list)
    for r in report.endpoints:
        hosts[r.address or r.host].append(r)
    # Host grades are assess's, from the report; older reports fall back to grading's.
    graded = (
        {h.address: h.grade for h in report.hosts}
        if report.hosts
        else host_grades(report.endpoints)
    )

    def order(item: tuple[str, list[EndpointResult]]) -> tuple[int, str]:
        g = graded.get(item[0])
        return (-grade_rank(g.overall) if g else 1, item[0])

    head = "".join(f"<th>{c.value}</th>" for c in _CHANNELS)
    rows = []
    for address, results in sorted(hosts.items(), key=order):
        name = results[0].host
        label = escape(name if name == address or not address else f"{name} ({address})")
        g = graded.get(address)
        host_cell = f'<td class="{_grade_class(g.overall if g else None)}"><b>{label}</b>'
        host_cell += f" {escape(g.overall)}" if g else ""
        host_cell += f'<br><span class="muted">{escape(platform_label(results[0]))}</span></td>'
        cells = []
        for channel in _CHANNELS:
            here = sorted((r for r in results if r.channel is channel), key=lambda r: r.port)
            cells.append("<td>" + "".join(_chip(r) for r in here) + "</td>")
        rows.append(f'<tr class="host">{host_cell}{"".join(cells)}</tr>')
    return (
        '<table id="grid"><thead><tr><th>host (grade)</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _finding_row(r: EndpointResult, f: Finding, first: bool) -> str:
    anchor = f' id="{_anchor(r)}"' if first else ""
    evidence = "".join(f"<li>{escape(e)}</li>" for e in f.evidence)
    waived = f"<br><i>waived: {escape(f.waiver_reason or 'yes')}</i>" if f.waived else ""
    return (
        f'<tr class="finding"{anchor}{_data(r)}>'
        f'<td class="sev-{f.severity.value}">{f.severity.value}</td>'
        f"<td>{escape(host_port(r))}<br><span class='muted'>{r.channel.value}</span></td>"
        f"<td><b>{escape(f.title)}</b><br><code>{escape(f.id)}</code> · {f.axis.value}"
        f"{waived}</td>"
        f'<td><ul class="evidence">{evidence}</ul></td>'
        f"<td>{escape(f.remediation)}</td></tr>"
    )


def _host_rows(report: ScanReport) -> list[tuple[Finding, str]]:
    """Findings about a machine itself (patch level, end of support), carrying the data
    attributes of one of its endpoints so the filters treat them alike."""
    first = {r.address: r for r in reversed(report.endpoints) if r.address}
    out = []
    for h in report.hosts:
        r = first.get(h.address)
        name = h.names[0] if h.names else h.address
        for f in h.findings:
            sev = f.severity.value
            data = _data(r, sev) if r is not None else f' data-sev="{sev}"'
            waived = f"<br><i>waived: {escape(f.waiver_reason or 'yes')}</i>" if f.waived else ""
            evidence = "".join(f"<li>{escape(e)}</li>" for e in f.evidence)
            out.append(
                (
                    f,
                    f'<tr class="finding host-finding"{data}>'
                    f'<td class="sev-{f.severity.value}">{f.severity.value}</td>'
                    f"<td>{escape(name)}<br><span class='muted'>host</span></td>"
                    f"<td><b>{escape(f.title)}</b><br><code>{escape(f.id)}</code> · "
                    f"{f.axis.value}{waived}</td>"
                    f'<td><ul class="evidence">{evidence}</ul></td>'
                    f"<td>{escape(f.remediation)}</td></tr>",
                )
            )
    return out


def _findings(report: ScanReport) -> str:
    pairs = [
        (r, f) for r in sorted(report.endpoints, key=risk_key) for f in sorted_findings(r.findings)
    ]
    # Worst first across the estate: open before waived, then severity; the stable
    # sort keeps the riskiest endpoint first within a severity.
    pairs.sort(key=lambda p: (p[1].waived, -p[1].severity.rank))
    seen: set[str] = set()
    rows = []
    ranked: list[tuple[Finding, str]] = []
    for r, f in pairs:
        key = _anchor(r)
        ranked.append((f, _finding_row(r, f, key not in seen)))
        seen.add(key)
    ranked += _host_rows(report)
    ranked.sort(key=lambda p: (p[0].waived, -p[0].severity.rank))
    rows = [row for _, row in ranked]
    if not rows:
        return "<p>No findings.</p>"
    return (
        '<table id="findings"><thead><tr><th>severity</th><th>endpoint</th><th>finding</th>'
        "<th>evidence</th><th>remediation</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _unprobed(report: ScanReport) -> str:
    rows = [
        f'<tr class="unprobed" id="{_anchor(r)}"{_data(r)}><td>{escape(host_port(r))}</td>'
        f"<td>{r.status.value}</td><td>{escape(r.error or '')}</td></tr>"
        for r in report.endpoints
        if r.status in UNPROBED
    ]
    if not rows:
        return ""
    return (
        "<h2>Not probed</h2><table><thead><tr><th>endpoint</th><th>status</th>"
        f"<th>why</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render(report: ScanReport, opts: RenderOptions) -> str:
    failures = gate_failures(report, opts.fail_on, opts.min_grade)
    gate = f"--fail-on {opts.fail_on.value}" + (
        f" --min-grade {opts.min_grade}" if opts.min_grade else ""
    )
    verdict = (
        f'<span class="verdict failed">gate FAILED ({len(failures)})</span>'
        if failures
        else '<span class="verdict passed">gate passed</span>'
    )
    closed = sum(1 for r in report.endpoints if r.status is Status.CLOSED)
    missing = sum(1 for r in report.endpoints if r.status in UNPROBED)
    platforms = sorted({platform_label(r) or "unknown" for r in report.endpoints})
    sites = sorted({s for s in map(site_of, report.endpoints) if s})
    severities = [s.value for s in reversed(Severity)]
    meta = (
        f"{escape(opts.tool_name)} {escape(report.tool_version)} · scan of "
        f"{escape(report.started_at)} · {len(report.endpoints)} endpoints"
        + (f" · {missing} not probed" if missing else "")
        + (f" · {closed} closed" if closed else "")
        + ("" if report.complete else " · <b>scan incomplete</b>")
        + f" · {verdict} [{escape(gate)}]"
    )
    filters = (
        '<div class="filters">'
        + _options("f-sev", "worst finding at least", severities)
        + _options("f-platform", "platform", platforms)
        + _options("f-site", "site", sites)
        + '<span id="shown"></span></div>'
    )
    legend = (
        "<p class='muted'>Each cell is one endpoint: its port and overall grade (A+ best, "
        "F worst; the worse of eavesdropping, can a listener read it, and MITM, can "
        "someone impersonate the server). Hover for both axes; click for its findings."
        "</p>"
    )
    body = (
        f"<h1>Management channels of the estate</h1><p class='meta'>{meta}</p>{filters}"
        f"<h2>Grades by host and channel</h2>{legend}{_grid(report)}"
        f"<h2>Findings, worst first</h2>{_findings(report)}{_unprobed(report)}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>chanscan estate page · {escape(report.started_at)}</title>"
        f"<style>{_CSS}</style></head>\n<body>{body}\n<script>{_JS}</script></body></html>\n"
    )
