"""A Markdown report a change ticket can carry: verdict first, then the evidence."""

from __future__ import annotations

from tabulate import tabulate

from chanscan.gate import gate_failures, unprobed
from chanscan.model import EndpointResult, ScanReport, Status
from chanscan.reports.common import endpoint_uri, platform_label, risk_key, shorten, sorted_findings
from chanscan.reports.options import RenderOptions

# A sweep of a subnet is mostly closed ports; a ticket needs them named, not detailed.
_CLOSED_LISTED = 50


def _cell(text: str, width: int) -> str:
    # A "|" inside a cell would end it in GitHub-flavoured Markdown tables.
    return shorten(text, width).replace("|", "\\|")


def _inline(text: str) -> str:
    return " ".join(text.split()).replace("`", "'")


def _summary(report: ScanReport, opts: RenderOptions) -> str:
    rows = []
    for r in sorted(report.endpoints, key=risk_key):
        if r.status is Status.CLOSED:
            continue  # listed once, compactly, under "Closed ports"
        g = r.grade
        open_count = sum(1 for f in r.findings if not f.waived)
        waived = sum(1 for f in r.findings if f.waived)
        rows.append(
            [
                f"`{endpoint_uri(r)}`",
                _cell(platform_label(r), opts.width // 2),
                g.eavesdropping if g else "",
                g.mitm if g else "",
                f"**{g.overall}**" if g else r.status.value,
                f"{open_count}" + (f" (+{waived} waived)" if waived else ""),
            ]
        )
    headers = ["endpoint", "platform", "eavesdropping", "MITM", "overall", "findings"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _endpoint_section(r: EndpointResult) -> list[str]:
    title = f"### `{endpoint_uri(r)}`"
    if r.grade is not None:
        title += f" — {r.grade.overall}"
    lines = [title, ""]
    if r.status is not Status.OK:
        reason = f" ({_inline(r.error)})" if r.error else ""
        lines += [f"Not assessed: **{r.status.value}**{reason}", ""]
        return lines
    meta = [f"channel {r.channel.value}", f"policy {r.policy}"]
    if platform_label(r):
        meta.insert(1, platform_label(r))
    if r.grade is not None:
        meta.append(f"eavesdropping {r.grade.eavesdropping}, MITM {r.grade.mitm}")
    lines.append("; ".join(meta))
    lines.append("")
    if not r.findings:
        lines += ["No findings.", ""]
        return lines
    for f in sorted_findings(r.findings):
        head = f"- **{f.severity.value}** `{f.id}` {_inline(f.title)} ({f.axis.value})"
        if f.waived:
            head = f"- ~~{f.severity.value}~~ `{f.id}` {_inline(f.title)} — waived"
            if f.waiver_reason:
                head += f": {_inline(f.waiver_reason)}"
        lines.append(head)
        for e in f.evidence:
            lines.append(f"  - evidence: {_inline(e)}")
        if f.remediation and not f.waived:
            lines.append(f"  - fix: {_inline(f.remediation)}")
        if f.references:
            lines.append("  - refs: " + ", ".join(_inline(x) for x in f.references))
    lines.append("")
    return lines


def render(report: ScanReport, opts: RenderOptions) -> str:
    failures = gate_failures(report, opts.fail_on, opts.min_grade)
    missing = unprobed(report)
    gate = f"`--fail-on {opts.fail_on.value}`" + (
        f" `--min-grade {opts.min_grade}`" if opts.min_grade else ""
    )
    verdict = f"**FAILED** ({len(failures)} reason(s))" if failures else "**passed**"
    out = [
        "# Management channel audit",
        "",
        f"- Tool: {opts.tool_name} {report.tool_version}",
        f"- Scan: {report.started_at} – {report.finished_at}"
        + ("" if report.complete else " (incomplete)"),
        f"- Endpoints: {len(report.endpoints)}, not probed: {len(missing)}",
        f"- Gate {gate}: {verdict}",
    ]
    if report.command:
        out.append(f"- Command: `{_inline(' '.join(report.command))}`")
    out += ["", "## Summary", "", _summary(report, opts), ""]
    if failures:
        out += ["## Gate failures", ""]
        for gf in failures:
            out.append(
                f"- `{gf.host}"
                + (f":{gf.port}`" if gf.port else "`")
                + f" {gf.channel}: `{gf.subject}` {_inline(gf.message)}"
            )
        out.append("")
    machines = [h for h in report.hosts if h.findings]
    if machines:
        out += ["## Host findings", ""]
        for h in machines:
            name = h.names[0] if h.names else h.address
            where = name if name == h.address else f"{name} ({h.address})"
            for f in h.findings:
                waived = " (waived)" if f.waived else ""
                out.append(f"- `{where}` **{f.severity.value}**{waived}: {_inline(f.title)}")
                out += [f"  - {_inline(e)}" for e in f.evidence]
        out.append("")
    out += ["## Endpoints", ""]
    for r in sorted(report.endpoints, key=risk_key):
        if r.status is not Status.CLOSED:
            out += _endpoint_section(r)
    closed = [f"`{r.host}:{r.port}`" for r in report.endpoints if r.status is Status.CLOSED]
    if closed:
        shown = ", ".join(closed[:_CLOSED_LISTED])
        more = len(closed) - _CLOSED_LISTED
        out += [
            f"## Closed ports ({len(closed)})",
            "",
            shown + (f" and {more} more (the JSON report lists them all)" if more > 0 else ""),
            "",
        ]
    return "\n".join(out).rstrip("\n") + "\n"
