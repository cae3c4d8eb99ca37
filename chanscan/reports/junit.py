"""JUnit XML for CI test views: a suite per host, a case per endpoint and policy.

Follows the de-facto schema CI servers read (Jenkins/GitLab "JUnit XML"): <failure>
for each finding over the gate (and a grade under --min-grade), <error> for an endpoint
that could not be probed, <skipped> for a closed port.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from chanscan.gate import UNPROBED, GateFailure, endpoint_gate_failures, host_gate_failures
from chanscan.model import EndpointResult, Finding, HostResult, ScanReport, Status
from chanscan.reports.common import SCHEMES, uri_host
from chanscan.reports.options import RenderOptions

_UNPROBED = UNPROBED  # timeout, filtered, error, interrupted


def _case(result: EndpointResult, opts: RenderOptions) -> tuple[ET.Element, int, int, int]:
    case = ET.Element(
        "testcase",
        {
            # CI views split classname at dots into packages; a host name is one unit.
            "classname": f"{opts.tool_name}.{result.host.replace('.', '_')}",
            "name": f"{SCHEMES[result.channel]}://{uri_host(result.host)}:{result.port}"
            f" [{result.policy}]",
            "time": f"{result.elapsed_ms / 1000:.3f}",
        },
    )
    if result.status in _UNPROBED:
        err = ET.SubElement(
            case,
            "error",
            {"message": f"not probed: {result.status.value}", "type": result.status.value},
        )
        err.text = result.error or result.status.value
        return case, 0, 1, 0
    if result.status is Status.CLOSED:
        ET.SubElement(case, "skipped", {"message": "port closed"})
        return case, 0, 0, 1
    failures = endpoint_gate_failures(result, opts.fail_on, opts.min_grade)
    _failures(case, failures, result.findings)
    return case, 1 if failures else 0, 0, 0


def _failures(case: ET.Element, failures: list[GateFailure], findings: tuple[Finding, ...]) -> None:
    """One ``failure`` element per gate failure, with the finding's evidence and fix."""
    by_id = {f.id: f for f in findings}
    for gf in failures:
        fail = ET.SubElement(
            case,
            "failure",
            {
                "message": f"{gf.subject}: {gf.message}",
                "type": gf.severity.value if gf.severity else "grade",
            },
        )
        finding = by_id.get(gf.subject) if gf.kind == "finding" else None
        if finding is not None:
            lines = [f"{finding.title} ({finding.severity.value}, {finding.axis.value})"]
            lines += [f"evidence: {e}" for e in finding.evidence]
            if finding.remediation:
                lines.append(f"remediation: {finding.remediation}")
            fail.text = "\n".join(lines)
        else:
            fail.text = gf.message


def _host_case(host: HostResult, opts: RenderOptions, graded: bool) -> tuple[ET.Element, int]:
    """The machine itself: its patch level and end of support, and its grade where no
    endpoint already failed on grade (the same rule as the exit code's gate)."""
    name = host.names[0] if host.names else host.address
    case = ET.Element(
        "testcase",
        {
            "classname": f"{opts.tool_name}.{name.replace('.', '_')}",
            "name": f"host://{uri_host(name)} [platform]",
            "time": "0.000",
        },
    )
    failures = host_gate_failures(host, opts.fail_on, opts.min_grade, graded)
    _failures(case, failures, host.findings)
    return case, 1 if failures else 0


def build(report: ScanReport, opts: RenderOptions) -> ET.Element:
    hosts: dict[str, list[EndpointResult]] = defaultdict(list)
    for r in report.endpoints:
        hosts[r.host].append(r)
    root = ET.Element("testsuites", {"name": opts.tool_name})
    totals = [0, 0, 0, 0]
    total_time = 0.0
    machines = {h.address: h for h in report.hosts}
    for host, results in hosts.items():
        suite = ET.SubElement(root, "testsuite", {"name": host})
        counts = [0, 0, 0, 0]  # tests, failures, errors, skipped
        elapsed = 0.0
        graded: set[str] = set()
        for r in sorted(results, key=lambda r: (r.port, r.policy)):
            case, failed, errored, skipped = _case(r, opts)
            suite.append(case)
            counts[0] += 1
            counts[1] += failed
            counts[2] += errored
            counts[3] += skipped
            elapsed += r.elapsed_ms / 1000
            if any(
                f.kind == "grade" for f in endpoint_gate_failures(r, opts.fail_on, opts.min_grade)
            ):
                graded.add(r.address)
        for address in dict.fromkeys(r.address for r in results):
            machine = machines.pop(address, None)
            if machine is not None and (machine.findings or opts.min_grade):
                case, failed = _host_case(machine, opts, address in graded)
                suite.append(case)
                counts[0] += 1
                counts[1] += failed
        suite.set("tests", str(counts[0]))
        suite.set("failures", str(counts[1]))
        suite.set("errors", str(counts[2]))
        suite.set("skipped", str(counts[3]))
        suite.set("time", f"{elapsed:.3f}")
        suite.set("timestamp", report.started_at)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        total_time += elapsed
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", str(totals[2]))
    root.set("skipped", str(totals[3]))
    root.set("time", f"{total_time:.3f}")
    return root


def render(report: ScanReport, opts: RenderOptions) -> str:
    root = build(report, opts)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
