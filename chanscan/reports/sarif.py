"""SARIF 2.1.0 (OASIS) output for code-scanning dashboards.

One rule per finding id, one result per finding. Levels follow SARIF 3.27.10
(error/warning/note); ``security-severity`` is the GitHub code-scanning property that
sorts alerts (critical >= 9.0, high >= 7.0, medium >= 4.0, low > 0).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from chanscan.gate import UNPROBED
from chanscan.model import EndpointResult, Finding, HostResult, ScanReport, Severity
from chanscan.reports.common import endpoint_uri, host_port, uri_host
from chanscan.reports.options import RenderOptions

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT_KEY = "chanscanFinding/v1"

LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}

SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def fingerprint(result: EndpointResult, finding: Finding, disambiguate: bool) -> str:
    """Stable across runs: the finding id and the endpoint as the user named it. Evidence
    text often carries volatile detail (days to expiry), so it joins the key only when one
    endpoint has the same id twice, and then sorted so order changes do not matter."""
    parts = [finding.id, result.host.lower(), str(result.port)]
    if result.address and result.address != result.host:
        parts.append(result.address)  # identity is the address: one row per machine
    if disambiguate:
        parts.extend(sorted(finding.evidence))
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _urls(refs: tuple[str, ...]) -> list[str]:
    return [r for r in refs if r.startswith(("https://", "http://"))]


def _rule(finding: Finding, channel: str) -> dict[str, Any]:
    help_lines = [finding.remediation or finding.title]
    if finding.references:
        help_lines.append("References: " + ", ".join(finding.references))
    rule: dict[str, Any] = {
        "id": finding.id,
        "name": "".join(p.capitalize() for p in finding.id.replace("_", ".").split(".")),
        "shortDescription": {"text": finding.title},
        "fullDescription": {"text": f"{finding.title} ({finding.axis.value} exposure)"},
        "help": {
            "text": "\n".join(help_lines),
            "markdown": "\n\n".join(help_lines),
        },
        "defaultConfiguration": {"level": LEVELS[finding.severity]},
        "properties": {
            "tags": list(dict.fromkeys(["security", channel, finding.axis.value])),
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "precision": "high",
            "references": list(finding.references),
        },
    }
    urls = _urls(finding.references)
    if urls:
        rule["helpUri"] = urls[0]
    return rule


def _result(
    result: EndpointResult, finding: Finding, rule_index: int, disambiguate: bool
) -> dict[str, Any]:
    message = finding.title
    if finding.evidence:
        message += ": " + "; ".join(finding.evidence)
    out: dict[str, Any] = {
        "ruleId": finding.id,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": endpoint_uri(result)}},
                "logicalLocations": [
                    {
                        "name": host_port(result),
                        "kind": "resource",
                        "fullyQualifiedName": result.address,
                    }
                ],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(result, finding, disambiguate)},
        "properties": {
            "severity": finding.severity.value,
            "axis": finding.axis.value,
            "channel": result.channel.value,
            "evidence": list(finding.evidence),
            "policy": finding.policy or result.policy,
        },
    }
    if result.grade is not None:
        out["properties"]["grade"] = result.grade.overall
    if finding.waived:
        out["suppressions"] = _suppressions(finding)
    return out


def _suppressions(finding: Finding) -> list[dict[str, Any]]:
    """A waived finding is an accepted risk: SARIF's external, accepted suppression."""
    suppression: dict[str, Any] = {"kind": "external", "status": "accepted"}
    if finding.waiver_reason:
        suppression["justification"] = finding.waiver_reason
    return [suppression]


def _host_result(host: HostResult, finding: Finding, rule_index: int) -> dict[str, Any]:
    """A finding about the machine itself (patch level, end of support)."""
    name = host.names[0] if host.names else host.address
    message = finding.title + (": " + "; ".join(finding.evidence) if finding.evidence else "")
    key = "\x1f".join([finding.id, "host", host.address])
    out: dict[str, Any] = {
        "ruleId": finding.id,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": f"host://{uri_host(name)}"}},
                "logicalLocations": [
                    {"name": name, "kind": "resource", "fullyQualifiedName": host.address}
                ],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: hashlib.sha256(key.encode()).hexdigest()},
        "properties": {
            "severity": finding.severity.value,
            "axis": finding.axis.value,
            "channel": "host",
            "evidence": list(finding.evidence),
        },
    }
    if finding.waived:
        out["suppressions"] = _suppressions(finding)
    return out


def build(report: ScanReport, opts: RenderOptions) -> dict[str, Any]:
    first: dict[str, tuple[Finding, str]] = {}
    for r in report.endpoints:
        for f in r.findings:
            first.setdefault(f.id, (f, r.channel.value))
    for h in report.hosts:
        for f in h.findings:
            first.setdefault(f.id, (f, "host"))
    rule_ids = sorted(first)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    rules = [_rule(*first[rid]) for rid in rule_ids]

    results = []
    notifications = []
    for r in report.endpoints:
        dupes = Counter(f.id for f in r.findings)
        for f in r.findings:
            results.append(_result(r, f, index[f.id], dupes[f.id] > 1))
        if r.status in UNPROBED:
            notifications.append(
                {
                    "level": "error",
                    "message": {
                        "text": f"{endpoint_uri(r)} not probed: {r.status.value}"
                        + (f" ({r.error})" if r.error else "")
                    },
                    "locations": [
                        {"physicalLocation": {"artifactLocation": {"uri": endpoint_uri(r)}}}
                    ],
                }
            )

    for h in report.hosts:
        for f in h.findings:
            results.append(_host_result(h, f, index[f.id]))

    driver: dict[str, Any] = {
        "name": opts.tool_name,
        "version": report.tool_version,
        "semanticVersion": report.tool_version,
        "rules": rules,
    }
    if opts.information_uri:
        driver["informationUri"] = opts.information_uri
    invocation: dict[str, Any] = {
        "executionSuccessful": report.complete,
        "startTimeUtc": report.started_at,
        "endTimeUtc": report.finished_at,
    }
    if report.command:
        invocation["arguments"] = list(report.command)
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "invocations": [invocation],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render(report: ScanReport, opts: RenderOptions) -> str:
    return json.dumps(build(report, opts), indent=2, ensure_ascii=False) + "\n"
