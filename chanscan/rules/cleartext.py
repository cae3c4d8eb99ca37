"""Cleartext management channels: HTTP on 80 without a redirect to HTTPS, WinRM on 5985.

Both axes: nothing authenticates the server (anyone on the path can answer in its
place: MITM F), and what is sent can be read (eavesdropping C rather than F, because
WinRM seals its messages with SPNEGO by default and a web UI may post its login to
HTTPS; docs/grading.md)."""

from __future__ import annotations

from datetime import datetime

from chanscan.model import Axis, EndpointResult, Finding, Severity

WINRM_HTTP_PORT = 5985


def findings(result: EndpointResult, *, now: datetime) -> list[Finding]:
    del now  # nothing here depends on time
    http = result.http
    if http is None:
        return []
    if result.port == WINRM_HTTP_PORT:
        return [
            Finding(
                id="cleartext.management_port",
                title="WinRM over plain HTTP (5985) is open",
                severity=Severity.HIGH,
                axis=Axis.BOTH,
                evidence=(
                    f"HTTP {http.status} {http.reason}".strip(),
                    f"server: {http.server or '-'}",
                ),
                remediation="Remove the WinRM HTTP listener and use HTTPS on 5986 only "
                "(winrm delete winrm/config/Listener?Address=*+Transport=HTTP).",
                references=(
                    "https://learn.microsoft.com/en-us/windows/win32/winrm/installation-and-configuration-for-windows-remote-management",
                ),
            )
        ]
    if http.redirects_to_https:
        return []
    return [
        Finding(
            id="cleartext.management_port",
            title="Management web interface answers in cleartext HTTP",
            severity=Severity.HIGH,
            axis=Axis.BOTH,
            evidence=(
                f"HTTP {http.status} {http.reason}".strip(),
                f"location: {http.location}" if http.location else "no redirect to https://",
            ),
            remediation="Redirect HTTP to HTTPS (or close the port) and send "
            "Strict-Transport-Security on the HTTPS interface.",
            references=("https://www.rfc-editor.org/rfc/rfc6797",),
        )
    ]
