"""CI gates over a scan report: which findings or grades make a pipeline fail.

Pure functions, shared by the JUnit report and the exit-code logic so the two can
never disagree. Waived findings never fail a gate.
"""

from __future__ import annotations

from dataclasses import dataclass

from chanscan.errors import UsageError
from chanscan.grading.scale import GRADES, grade_rank
from chanscan.model import EndpointResult, Finding, HostResult, ScanReport, Severity, Status


def parse_grade(text: str) -> str:
    """Validate a --min-grade value."""
    grade = text.strip().upper()
    if grade not in GRADES:
        raise UsageError(f"unknown grade {text!r}; expected one of {', '.join(GRADES)}")
    return grade


def over_gate(finding: Finding, fail_on: Severity) -> bool:
    return not finding.waived and finding.severity.rank >= fail_on.rank


@dataclass(frozen=True)
class GateFailure:
    host: str
    address: str
    port: int
    channel: str
    kind: str  # "finding" or "grade"
    subject: str  # the finding id, or the grade axis "overall"
    severity: Severity | None  # the finding's; None for a grade failure
    message: str


def endpoint_gate_failures(
    result: EndpointResult, fail_on: Severity, min_grade: str | None = None
) -> list[GateFailure]:
    out: list[GateFailure] = []
    for f in result.findings:
        if over_gate(f, fail_on):
            out.append(
                GateFailure(
                    host=result.host,
                    address=result.address,
                    port=result.port,
                    channel=result.channel.value,
                    kind="finding",
                    subject=f.id,
                    severity=f.severity,
                    message=f"{f.severity.value}: {f.title}",
                )
            )
    grade = result.grade
    if (
        min_grade is not None
        and grade is not None
        and grade_rank(grade.overall) > grade_rank(min_grade)
    ):
        out.append(
            GateFailure(
                host=result.host,
                address=result.address,
                port=result.port,
                channel=result.channel.value,
                kind="grade",
                subject="overall",
                severity=None,
                message=f"grade {grade.overall} is below the minimum {min_grade}",
            )
        )
    return out


def host_gate_failures(
    host: HostResult, fail_on: Severity, min_grade: str | None = None, graded: bool = False
) -> list[GateFailure]:
    """A host's own findings (patch level, end of support) over the gate, and its grade
    below ``min_grade`` unless one of its endpoints already failed on grade
    (``graded``): the host grade adds only what no channel shows (cleartext beside TLS)."""
    name = host.names[0] if host.names else host.address
    out = [
        GateFailure(
            host=name,
            address=host.address,
            port=0,
            channel="host",
            kind="finding",
            subject=f.id,
            severity=f.severity,
            message=f"{f.severity.value}: {f.title}",
        )
        for f in host.findings
        if over_gate(f, fail_on)
    ]
    g = host.grade
    if (
        min_grade is not None
        and not graded
        and g is not None
        and grade_rank(g.overall) > grade_rank(min_grade)
    ):
        out.append(
            GateFailure(
                host=name,
                address=host.address,
                port=0,
                channel="host",
                kind="grade",
                subject="overall",
                severity=None,
                message=f"host grade {g.overall} is below the minimum {min_grade}",
            )
        )
    return out


def gate_failures(
    report: ScanReport, fail_on: Severity, min_grade: str | None = None
) -> list[GateFailure]:
    """Every reason the report fails the gate: endpoints in report order, then hosts."""
    out: list[GateFailure] = []
    for result in report.endpoints:
        out.extend(endpoint_gate_failures(result, fail_on, min_grade))
    graded = {f.address for f in out if f.kind == "grade"}
    for host in report.hosts:
        out.extend(host_gate_failures(host, fail_on, min_grade, host.address in graded))
    return out


def unprobed(report: ScanReport) -> list[EndpointResult]:
    """Endpoints chanscan could not assess (timeout, filtered, error, interrupted):
    exit 3 material."""
    return [r for r in report.endpoints if r.status in UNPROBED]


UNPROBED = (Status.TIMEOUT, Status.FILTERED, Status.ERROR, Status.INTERRUPTED)


def worst_severity(findings: tuple[Finding, ...], include_waived: bool = False) -> Severity | None:
    ranked = [f.severity for f in findings if include_waived or not f.waived]
    return max(ranked, key=lambda s: s.rank) if ranked else None
