"""Helpers the report formats share: labels, URIs, ordering, shortening."""

from __future__ import annotations

import ipaddress

from chanscan.gate import worst_severity
from chanscan.grading.scale import grade_rank
from chanscan.model import Channel, EndpointResult, Finding, PlatformHint, Status

# URI scheme per channel for locations (SARIF) and labels; "vmware-authd" is ours:
# RFC 3986 3.1 allows letters, digits, "+", "-", "." in a scheme.
SCHEMES = {
    Channel.TLS: "https",
    Channel.SSH: "ssh",
    Channel.RDP: "rdp",
    Channel.AUTHD: "vmware-authd",
    Channel.HTTP: "http",
    Channel.UNKNOWN: "tcp",
}


def uri_host(host: str) -> str:
    """RFC 3986 3.2.2: an IPv6 literal goes in brackets."""
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


def endpoint_uri(result: EndpointResult) -> str:
    return f"{SCHEMES[result.channel]}://{uri_host(result.host)}:{result.port}"


def host_port(result: EndpointResult) -> str:
    return f"{uri_host(result.host)}:{result.port}"


def platform_label(result: EndpointResult) -> str:
    info = result.platform
    if info is not None and info.product:
        return " ".join(x for x in (info.product, info.version) if x)
    if result.platform_hint is not PlatformHint.AUTO:
        return result.platform_hint.value
    return ""


def shorten(text: str, width: int) -> str:
    """One line, at most ``width`` characters, an ellipsis marking a cut."""
    flat = " ".join(text.split())
    if width <= 0 or len(flat) <= width:
        return flat
    return flat[: max(width - 1, 0)].rstrip(" ;,") + "…"


def sorted_findings(findings: tuple[Finding, ...]) -> list[Finding]:
    """Worst first; waived last; then by id for a stable order."""
    return sorted(findings, key=lambda f: (f.waived, -f.severity.rank, f.id))


def risk_key(result: EndpointResult) -> tuple[int, int, int, str, int]:
    """Sort key putting the riskiest endpoint first. Graded endpoints by overall grade,
    then worst open finding; then unprobed ones (unknown risk); closed ports last."""
    if result.grade is not None:
        tier, rank = 0, -grade_rank(result.grade.overall)
    elif result.status is Status.OK:
        tier, rank = 1, 0
    elif result.status is Status.CLOSED:
        tier, rank = 3, 0
    else:
        tier, rank = 2, 0
    worst = worst_severity(result.findings)
    sev = -(worst.rank + 1) if worst is not None else 0
    return (tier, rank, sev, result.host, result.port)


def status_label(result: EndpointResult) -> str:
    if result.status is Status.OK:
        return ""
    return result.status.value
