"""The findings pinning raises, and how they change an endpoint's result.

Kept apart from the store so that the consistency check, which needs no store, and the
report plumbing can be used (and read) without SQLite in view.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass

from chanscan.model import (
    Axis,
    EndpointResult,
    Finding,
    Grade,
    GradeCaps,
    PlatformHint,
    ScanReport,
    Severity,
    Status,
)

SSH_CHANGED = "pin.ssh_host_key_changed"
TLS_CHANGED = "pin.tls_key_changed"
TLS_INCONSISTENT = "pin.tls_key_inconsistent"

# ESXi serves one machine certificate (/etc/vmware/ssl/rui.crt) on hostd 443, authd 902
# and CIM 5989 (VMware vSphere Security guide, "Certificate Management for ESXi Hosts").
ONE_KEY_PORTS = {PlatformHint.ESXI: frozenset({443, 902, 5989})}


@dataclass(frozen=True)
class PinFindings:
    """Findings to add to one endpoint's result."""

    host: str
    address: str
    port: int
    findings: tuple[Finding, ...]


def tls_spki(result: EndpointResult) -> str | None:
    tls = result.tls if result.tls is not None else (result.rdp.tls if result.rdp else None)
    if tls is None or tls.certificate is None or not tls.certificate.chain:
        return None
    return tls.certificate.chain[0].spki_sha256 or None


def ssh_changed(result: EndpointResult, evidence: list[str]) -> Finding:
    target = f"{result.host}:{result.port}"
    return Finding(
        id=SSH_CHANGED,
        title="SSH host key differs from the pinned key",
        severity=Severity.CRITICAL,
        axis=Axis.MITM,
        evidence=tuple(evidence),
        remediation=(
            "Confirm out of band (console, configuration management) whether the host key "
            "was replaced on purpose (reinstall, rotation). If it was, accept it with "
            f"`chanscan pins accept {target}`; if not, treat the path to the host as "
            "intercepted and do not log in."
        ),
        references=("RFC 4251 4.1", "https://doi.org/10.6028/NIST.IR.7966"),
    )


def tls_changed(
    result: EndpointResult, pinned: str, first_seen: str, source: str, seen: str
) -> Finding:
    target = f"{result.host}:{result.port}"
    return Finding(
        id=TLS_CHANGED,
        title="TLS certificate key differs from the pinned key",
        severity=Severity.CRITICAL,
        axis=Axis.MITM,
        evidence=(
            f"pinned SPKI sha256 {pinned} (first seen {first_seen}, source {source})",
            f"now SPKI sha256 {seen}",
        ),
        remediation=(
            "Confirm out of band whether the certificate was re-keyed on purpose (renewal "
            "with a new key, VMCA or machine certificate replacement). If it was, accept "
            f"it with `chanscan pins accept {target}`; if not, treat the path as intercepted."
        ),
        references=(
            "RFC 7469 2.4",
            "https://owasp.org/www-community/controls/Certificate_and_Public_Key_Pinning",
        ),
    )


def inconsistent_tls_keys(report: ScanReport) -> list[PinFindings]:
    """Flag hosts whose TLS ports present different keys where the platform uses one.

    Needs no store; a pure function of one report."""
    hosts: dict[str, list[tuple[EndpointResult, str]]] = defaultdict(list)
    platform: dict[str, PlatformHint] = {}
    for r in report.endpoints:
        hint = r.platform_hint
        product = (r.platform.product or "").lower() if r.platform else ""
        if "esxi" in product:
            hint = PlatformHint.ESXI
        # One machine is one address: two addresses behind a name are two hosts.
        if hint in ONE_KEY_PORTS:
            platform[r.address] = hint
        spki = tls_spki(r) if r.status is Status.OK else None
        if spki is not None:
            hosts[r.address].append((r, spki))
    out: list[PinFindings] = []
    for host, seen in hosts.items():
        kind = platform.get(host)
        if kind is None:
            continue
        ports = ONE_KEY_PORTS[kind]
        relevant = [(r, s) for r, s in seen if r.port in ports]
        if len({s for _, s in relevant}) < 2:
            continue
        evidence = tuple(
            f"port {r.port}: SPKI sha256 {s}" for r, s in sorted(relevant, key=lambda t: t[0].port)
        )
        for r, _ in relevant:
            finding = Finding(
                id=TLS_INCONSISTENT,
                title=f"TLS ports of one {kind.value} host present different keys",
                severity=Severity.MEDIUM,
                axis=Axis.NONE,  # a hint to investigate; caps nothing
                evidence=evidence,
                remediation=(
                    "Install the host's machine certificate on every service, or find out "
                    "what answers on the port with a different key."
                ),
                references=("VMware vSphere Security: Certificate Management for ESXi Hosts",),
            )
            out.append(PinFindings(r.host, r.address, r.port, (finding,)))
    return out


def apply_pin_findings(report: ScanReport, additions: list[PinFindings]) -> ScanReport:
    """Return ``report`` with the pin findings added to their endpoints. A critical pin
    finding caps the MITM axis, and so the overall grade, at F: a key that changed
    without explanation voids every other MITM protection."""
    extra: dict[tuple[str, int], list[Finding]] = defaultdict(list)
    for add in additions:
        extra[(add.address, add.port)].extend(add.findings)
    results = []
    for r in report.endpoints:
        new = extra.get((r.address, r.port))
        if not new:
            results.append(r)
            continue
        grade = r.grade
        capping = next((f for f in new if f.severity is Severity.CRITICAL and not f.waived), None)
        if grade is not None and capping is not None:
            grade = Grade(
                eavesdropping=grade.eavesdropping,
                mitm="F",
                overall="F",
                capped_by=GradeCaps(eavesdropping=grade.capped_by.eavesdropping, mitm=capping.id),
            )
        results.append(dataclasses.replace(r, findings=(*r.findings, *new), grade=grade))
    return dataclasses.replace(report, endpoints=tuple(results))
