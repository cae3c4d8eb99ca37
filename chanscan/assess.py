"""Assessment: raw probe results in, findings and grades out. Pure but for the pin
store, which is read and written here so that the scheduler and the reports stay
free of it.

Order matters and is fixed: host platforms are folded first (remediation and the
platform rules depend on them), then the channel rules and the policy, then pins,
then waivers (they mark, never drop), and grading last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from chanscan import grading, rules
from chanscan.fingerprint.fold import fold_host
from chanscan.model import EndpointResult, Finding, ScanReport, Status
from chanscan.policies import Policy, evaluate_policy, load_policy
from chanscan.remediation import remediation_for
from chanscan.waivers import Waiver, apply_waivers


@dataclass(frozen=True)
class AssessOptions:
    policy_override: str | None = None
    policy_file: Path | None = None
    waivers: tuple[Waiver, ...] = ()
    today: date | None = None
    pin_findings: Mapping[tuple[str, int], Sequence[Finding]] = field(default_factory=dict)


def _platform_key(result: EndpointResult) -> str:
    product = (result.platform.product if result.platform else None) or ""
    low = product.lower()
    for key in ("vcenter", "esxi", "xenserver", "xcp-ng", "hyper-v"):
        if key in low:
            return {"xcp-ng": "xenserver", "hyper-v": "hyperv"}.get(key, key)
    hint = result.platform_hint.value
    return hint if hint != "auto" else "generic"


def assess_endpoint(
    result: EndpointResult,
    policy: Policy,
    opts: AssessOptions,
    today: date,
) -> EndpointResult:
    if result.status != Status.OK:
        return replace(result, findings=(), grade=None)
    found = [*rules.evaluate(result), *evaluate_policy(policy, result)]
    found.extend(opts.pin_findings.get((result.address, result.port), ()))
    platform = _platform_key(result)
    found = [
        f if f.remediation and platform == "generic" else replace(
            f, remediation=remediation_for(f.id, platform) or f.remediation
        )
        for f in found
    ]
    final = apply_waivers(found, result.endpoint, opts.waivers, today)
    return replace(result, findings=tuple(final), grade=grading.grade_endpoint(result, final))


def assess(report: ScanReport, opts: AssessOptions | None = None) -> ScanReport:
    opts = opts or AssessOptions()
    today = opts.today or date.today()
    hosts = fold_host(report.endpoints)
    policies: dict[str, Policy] = {}

    def policy_for(name: str) -> Policy:
        chosen = opts.policy_override or name
        if chosen not in policies:
            policies[chosen] = load_policy(chosen, opts.policy_file)
        return policies[chosen]

    out = []
    for r in report.endpoints:
        folded = hosts.get(r.address)
        if folded is not None and r.status == Status.OK:
            r = replace(r, platform=folded)
        out.append(assess_endpoint(r, policy_for(r.policy), opts, today))
    return replace(report, endpoints=tuple(out))
