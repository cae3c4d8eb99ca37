"""RDP findings: which security protocols the server accepts, and its TLS layer.

``rdp.standard_security``: the server agrees to standard RDP security, whose RC4 keys
come from an exchange with a server key that is not authenticated ([MS-RDPBCGR]
5.3, 5.3.4): anyone on path can read and alter the session (eavesdropping; MITM too,
but the eavesdropping exposure is what makes it worse than no-NLA).
``rdp.no_nla``: TLS is accepted without CredSSP, so the client sees the logon screen
(and credentials are typed) before the server is authenticated to it (MITM).
"""

from __future__ import annotations

from datetime import datetime

from chanscan.model import Axis, EndpointResult, Finding, Severity
from chanscan.obs.rdp import RdpObservation
from chanscan.rules import tls as tls_rules

__all__ = ["findings", "observation_findings"]

_MS_RDPBCGR = "[MS-RDPBCGR] 2.2.1.1.1, 5.3"
_NLA_DOC = (
    "https://learn.microsoft.com/en-us/windows-server/remote/remote-desktop-services/"
    "clients/remote-desktop-allow-access"
)
# The Group Policy settings by name (Remote Desktop Session Host > Security); the CCE id
# is the one the CIS Windows benchmarks give for the NLA setting.
_GPO_SECURITY_LAYER = (
    "GPO: Require use of specific security layer for remote (RDP) connections = SSL"
)
_GPO_NLA = (
    "CCE-35724-4 (GPO: Require user authentication ... by using Network Level Authentication)"
)


def findings(result: EndpointResult, *, now: datetime) -> list[Finding]:
    if result.rdp is None:
        return []
    return observation_findings(result.rdp, now=now)


def observation_findings(rdp: RdpObservation, *, now: datetime) -> list[Finding]:
    out: list[Finding] = []
    accepted = set(rdp.protocols_accepted)
    if "rdp" in accepted:
        legacy = any(n.legacy for n in rdp.negotiations)
        ev = ["server selected standard RDP security when asked for it alone"]
        if legacy:
            ev = [
                "Connection Confirm without negotiation data: pre-RDP 5.2 server, "
                "standard RDP security only"
            ]
        out.append(
            Finding(
                id="rdp.standard_security",
                title="RDP accepts standard RDP security (no TLS, no server authentication)",
                severity=Severity.HIGH,
                # RC4 under a key the client cannot tie to the server (CVE-2005-1794):
                # readable and impersonable alike.
                axis=Axis.BOTH,
                evidence=tuple(ev),
                remediation="Set the RDP security layer to SSL (TLS) and require Network "
                "Level Authentication (Group Policy: Remote Desktop Session Host > Security).",
                references=(_MS_RDPBCGR, _GPO_SECURITY_LAYER, _NLA_DOC),
            )
        )
    no_nla = sorted(accepted & {"rdp", "ssl"})
    if no_nla:
        out.append(
            Finding(
                id="rdp.no_nla",
                title="RDP does not require Network Level Authentication (CredSSP)",
                severity=Severity.MEDIUM,
                axis=Axis.MITM,
                evidence=tuple(f"accepted without CredSSP: {p}" for p in no_nla),
                remediation="Require Network Level Authentication (CredSSP) for RDP.",
                references=("[MS-RDPBCGR] 5.4.5.2", "[MS-CSSP]", _GPO_NLA, _NLA_DOC),
            )
        )
    out += _encryption(rdp)
    if rdp.tls is not None:
        out += tls_rules.observation_findings(rdp.tls, now=now)
    return out


_WEAK_METHODS = ("40bit", "56bit")  # RC4 under 112 bits (NIST SP 800-131A Rev. 2)


def _encryption(rdp: RdpObservation) -> list[Finding]:
    """Standard RDP security's level and methods; an undetermined one raises nothing."""
    enc = rdp.encryption
    if enc is None:
        return []
    out: list[Finding] = []
    if enc.level in ("none", "low"):
        what = (
            "no encryption at all"
            if enc.level == "none"
            else "only client-to-server traffic is encrypted; the server's screen output "
            "and clipboard travel in cleartext"
        )
        out.append(
            Finding(
                id="rdp.encryption.low",
                title=f"RDP encryption level {enc.level}: {what}",
                severity=Severity.HIGH,
                axis=Axis.EAVESDROPPING,
                evidence=(
                    f"Server Security Data: encryptionLevel {enc.level}, method "
                    f"{enc.method or 'none'}",
                ),
                remediation="Set the encryption level to High (Group Policy: Remote Desktop "
                "Session Host > Security > Set client connection encryption level) and, "
                "better, the security layer to SSL (TLS) with NLA.",
                references=("[MS-RDPBCGR] 5.3.1", "[MS-RDPBCGR] 2.2.1.4.3", _GPO_SECURITY_LAYER),
            )
        )
    weak = [m for m in enc.methods if m in _WEAK_METHODS]
    if weak:
        out.append(
            Finding(
                id="rdp.encryption.weak_method",
                title="RDP standard security settles on RC4 keys under 112 bits",
                severity=Severity.HIGH,
                axis=Axis.EAVESDROPPING,
                evidence=tuple(f"offered {m} alone: the server accepted it" for m in weak),
                remediation="Set the encryption level to High or FIPS compliant, or the "
                "security layer to SSL (TLS) with NLA.",
                references=("[MS-RDPBCGR] 5.3.2", "NIST SP 800-131A Rev. 2"),
            )
        )
    return out
