"""Assessment: raw probe results in, findings and grades out. Pure.

Order is fixed: host platforms are folded first (remediation, policies and the
platform rules depend on them), then channel rules, policy violations and pin
findings, then the platform's remediation text, then waivers (they mark, never drop),
and grading last, so that every finding, a changed pin included, can cap a grade.

Time is the scan's own: every rule, expiry and waiver is judged at the report's
``started_at``, never at the clock of the machine rendering it, so assessing a saved
report again gives the same verdicts on any later day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from chanscan import grading, rules
from chanscan.fingerprint.fold import fold_host
from chanscan.model import EndpointResult, Finding, ScanReport, Status
from chanscan.pin_findings import inconsistent_tls_keys
from chanscan.policies import Policy, evaluate_policy, load_policy
from chanscan.remediation import with_remediation
from chanscan.waivers import Waiver, apply_waivers


@dataclass(frozen=True)
class AssessOptions:
    policy_override: str | None = None
    policy_file: Path | None = None
    waivers: tuple[Waiver, ...] = ()
    # The clock to judge against; None means the report's own started_at.
    now: datetime | None = None
    # Findings from the pin store, by (address, port): identity is the address.
    pin_findings: Mapping[tuple[str, int], Sequence[Finding]] = field(default_factory=dict)


def scan_time(report: ScanReport) -> datetime:
    """The report's ``started_at`` as an aware UTC datetime: the clock every verdict
    is judged against."""
    when = datetime.fromisoformat(report.started_at.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def fold_platforms(report: ScanReport) -> ScanReport:
    """Give every probed endpoint of an address the platform folded over all of them,
    so one host has one platform (conflicts stay visible in its evidence)."""
    hosts = fold_host(report.endpoints)
    out = []
    for r in report.endpoints:
        folded = hosts.get(r.address)
        out.append(replace(r, platform=folded) if folded is not None and r.reachable else r)
    return replace(report, endpoints=tuple(out))


def assess_endpoint(
    result: EndpointResult,
    policy: Policy,
    pins: Sequence[Finding],
    waivers: Sequence[Waiver],
    now: datetime,
) -> EndpointResult:
    if result.status != Status.OK:
        return replace(result, findings=(), grade=None)
    found = rules.evaluate(result, now=now)
    found += evaluate_policy(policy, result, findings=found)
    found += pins
    found = with_remediation(found, result)
    final = apply_waivers(found, result.endpoint, waivers, now.date())
    return replace(result, findings=tuple(final), grade=grading.grade_endpoint(result, final))


def _host_findings(report: ScanReport) -> dict[tuple[str, int], list[Finding]]:
    """Findings that need several endpoints of a host at once (they need no pin store):
    TLS ports of one ESXi host presenting different keys."""
    out: dict[tuple[str, int], list[Finding]] = {}
    for add in inconsistent_tls_keys(report):
        out.setdefault((add.address, add.port), []).extend(add.findings)
    return out


def assess(report: ScanReport, opts: AssessOptions | None = None) -> ScanReport:
    opts = opts or AssessOptions()
    now = opts.now or scan_time(report)
    report = fold_platforms(report)
    host_level = _host_findings(report)
    policies: dict[str, Policy] = {}

    def policy_for(name: str) -> Policy:
        chosen = opts.policy_override or name
        if chosen not in policies:
            policies[chosen] = load_policy(chosen, opts.policy_file)
        return policies[chosen]

    out = [
        assess_endpoint(
            r,
            policy_for(r.policy),
            (
                *opts.pin_findings.get((r.address, r.port), ()),
                *host_level.get((r.address, r.port), ()),
            ),
            opts.waivers,
            now,
        )
        for r in report.endpoints
    ]
    return replace(report, endpoints=tuple(out))
