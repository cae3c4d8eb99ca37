"""Assessment: raw probe results in, findings and grades out. Pure.

Order is fixed: host platforms are folded first (remediation, policies and the
platform rules depend on them), then channel rules, policy violations and pin
findings, then the platform's remediation text, then waivers (they mark, never drop),
and grading last, so that every finding, a changed pin included, can cap a grade.
Last, once per address, the host: its own findings (patch level, end of support: they
fail the gate but cap no channel, so a channel's grade never depends on which other
ports were scanned) and its grade (the worst channel, with the cleartext-beside-TLS cap).

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
from chanscan.model import Endpoint, EndpointResult, Finding, HostResult, ScanReport, Status
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

    endpoints = [
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
    return replace(
        report, endpoints=tuple(endpoints), hosts=assess_hosts(endpoints, opts.waivers, now)
    )


def assess_hosts(
    endpoints: Sequence[EndpointResult], waivers: Sequence[Waiver], now: datetime
) -> tuple[HostResult, ...]:
    """One row per address that was scanned (a name that did not resolve has none)."""
    by_address: dict[str, list[EndpointResult]] = {}
    for r in endpoints:
        if r.address:
            by_address.setdefault(r.address, []).append(r)
    graded = grading.host_grades(endpoints)
    hosts = []
    for address, rows in by_address.items():
        names = tuple(dict.fromkeys(r.host for r in rows if r.host != address))
        probed = [r for r in rows if r.status is Status.OK]
        platform = probed[0].platform if probed else None
        found = rules.evaluate_host(platform, now=now) if probed else []
        label = Endpoint(host=names[0] if names else address, address=address, port=0)
        final = apply_waivers(found, label, waivers, now.date())
        hosts.append(
            HostResult(
                address=address,
                names=names,
                platform=platform,
                findings=tuple(final),
                grade=graded.get(address),
            )
        )
    return tuple(hosts)
