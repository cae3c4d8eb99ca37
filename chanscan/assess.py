"""Assessment: raw probe results in, findings and grades out. Pure.

Order is fixed: host platforms are folded first (remediation, policies and the
platform rules depend on them), then channel rules, policy violations and pin
findings, then the platform's remediation text, then waivers (they mark, never drop),
and grading last, so that every finding, a changed pin included, can cap a grade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
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
    today: date | None = None
    # Findings from the pin store, by (host as scanned, port).
    pin_findings: Mapping[tuple[str, int], Sequence[Finding]] = field(default_factory=dict)


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
    today: date,
) -> EndpointResult:
    if result.status != Status.OK:
        return replace(result, findings=(), grade=None)
    found = rules.evaluate(result)
    found += evaluate_policy(policy, result, findings=found)
    found += pins
    found = with_remediation(found, result)
    final = apply_waivers(found, result.endpoint, waivers, today)
    return replace(result, findings=tuple(final), grade=grading.grade_endpoint(result, final))


def _host_findings(report: ScanReport) -> dict[tuple[str, int], list[Finding]]:
    """Findings that need several endpoints of a host at once (they need no pin store):
    TLS ports of one ESXi host presenting different keys."""
    out: dict[tuple[str, int], list[Finding]] = {}
    for add in inconsistent_tls_keys(report):
        out.setdefault((add.host, add.port), []).extend(add.findings)
    return out


def assess(report: ScanReport, opts: AssessOptions | None = None) -> ScanReport:
    opts = opts or AssessOptions()
    today = opts.today or date.today()
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
            (*opts.pin_findings.get((r.host, r.port), ()), *host_level.get((r.host, r.port), ())),
            opts.waivers,
            today,
        )
        for r in report.endpoints
    ]
    return replace(report, endpoints=tuple(out))
