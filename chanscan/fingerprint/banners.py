"""Signals that need no request: the authd 902 greeting, SSH identification strings,
certificate subjects and issuers.

SSH banner versions are recorded as evidence only: distributions backport fixes
without changing the upstream version, so chanscan never derives CVEs from them.
"""

from __future__ import annotations

import re

from chanscan.model import PlatformInfo

# ESXi's authd (vmware-authd) greets on 902 with e.g.
# "220 VMware Authentication Daemon Version 1.10: SSL Required, ServerDaemonProtocol:SOAP,
# MKSDisplayProtocol:VNC , VMXARGS supported, NFCSSL supported/t" (nmap service probes).
_AUTHD_RE = re.compile(r"^220 VMware Authentication Daemon Version (\d+(?:\.\d+)*)")

_OPENSSH_WIN_RE = re.compile(r"OpenSSH_for_Windows_([\d.]+\w*)")
_DROPBEAR_RE = re.compile(r"dropbear(?:_([\w.]+))?", re.IGNORECASE)

# ESXi's self-signed default certificate (vSphere Security guide, "Certificate
# Requirements for ESXi hosts": OU "VMware ESX Server Default Certificate").
ESXI_DEFAULT_OU = "VMware ESX Server Default Certificate"
# VMCA, the vCenter certificate authority, signs as CN=CA,DC=vsphere,DC=local
# (vSphere Authentication guide, "VMware Certificate Authority").
VMCA_ISSUER = frozenset({"CN=CA", "DC=vsphere", "DC=local"})


def parse_authd(line: str) -> PlatformInfo | None:
    m = _AUTHD_RE.match(line.strip())
    if m is None:
        return None
    return PlatformInfo(
        product="ESXi",
        confidence="medium",
        evidence=(f"authd 902 banner: {line.strip()[:120]}",),
    )


def parse_ssh_banner(identification: str) -> PlatformInfo | None:
    ident = identification.strip()
    if not ident.startswith("SSH-"):
        return None
    software = ident.split("-", 2)[2] if ident.count("-") >= 2 else ident
    if m := _OPENSSH_WIN_RE.search(software):
        return PlatformInfo(
            product="Hyper-V",
            confidence="low",
            evidence=(
                f"SSH banner {ident!r}: OpenSSH for Windows {m.group(1)};"
                " Windows host, Hyper-V role not confirmed",
            ),
        )
    if "mpSSH" in software:
        # HPE iLO's SSH server identifies itself as mpSSH.
        return PlatformInfo(
            product="BMC", confidence="medium", evidence=(f"SSH banner {ident!r} (HPE iLO)",)
        )
    if _DROPBEAR_RE.search(software):
        return PlatformInfo(
            product="Linux",
            confidence="low",
            evidence=(f"SSH banner {ident!r}: dropbear (embedded Linux)",),
        )
    if re.search(r"Debian|Ubuntu|Raspbian|FreeBSD", software):
        return PlatformInfo(
            product="Linux",
            confidence="low",
            evidence=(f"SSH banner {ident!r} (distribution build; version not used for CVEs)",),
        )
    # A bare OpenSSH_x.y is what ESXi, XCP-ng dom0 and vCenter's Photon all send.
    return PlatformInfo(
        product=None,
        confidence="none",
        evidence=(f"SSH banner {ident!r} (version not used for CVEs)",),
    )


def _rdn_set(dn: str) -> frozenset[str]:
    """RFC 4514 string -> set of 'TYPE=value' with the type upper-cased; escaped commas
    stay inside their value."""
    parts = re.split(r"(?<!\\),\s*|(?<!\\)\+", dn)
    out = set()
    for p in parts:
        if "=" in p:
            k, v = p.split("=", 1)
            out.add(f"{k.strip().upper()}={v.strip().replace(chr(92) + ',', ',')}")
    return frozenset(out)


def cert_hints(subject: str, issuer: str) -> PlatformInfo | None:
    subj = _rdn_set(subject)
    iss = _rdn_set(issuer)
    if f"OU={ESXI_DEFAULT_OU}" in subj:
        return PlatformInfo(
            product="ESXi",
            confidence="medium",
            evidence=(f"certificate: ESXi default self-signed (OU={ESXI_DEFAULT_OU})",),
        )
    iss_lower_dc = {"DC=" + x[3:].lower() if x.startswith("DC=") else x for x in iss}
    if iss_lower_dc >= VMCA_ISSUER:
        return PlatformInfo(
            product=None,
            confidence="low",
            evidence=(
                "certificate issued by VMCA (CN=CA,DC=vsphere,DC=local):"
                " vCenter or a host it manages",
            ),
        )
    if "OU=Remote Access Group" in subj and any(x.startswith("O=Dell") for x in subj):
        return PlatformInfo(
            product="BMC", confidence="medium", evidence=("certificate: Dell iDRAC default",)
        )
    if any("iLO" in x for x in subj) and any("Hewlett" in x for x in subj):
        return PlatformInfo(
            product="BMC", confidence="medium", evidence=("certificate: HPE iLO default",)
        )
    return None


_TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)

# Web UI titles of management endpoints that are not one of the four platforms' own
# APIs: vCenter's appliance management (VAMI, 5480) and the common BMCs.
_TITLE_HINTS: tuple[tuple[str, str, str, str], ...] = (
    ("VMware Appliance Management", "vCenter Server", "low", "VMware appliance management (VAMI)"),
    ("iDRAC", "BMC", "medium", "Dell iDRAC web interface"),
    ("iLO", "BMC", "medium", "HPE iLO web interface"),
    ("Integrated Lights-Out", "BMC", "medium", "HPE iLO web interface"),
    ("Supermicro", "BMC", "low", "Supermicro BMC web interface"),
)


def page_title(body: bytes) -> str | None:
    m = _TITLE_RE.search(body[:65536])
    if m is None:
        return None
    return m.group(1).decode("utf-8", errors="replace").strip()[:120] or None


def web_hints(body: bytes, server_header: str | None) -> PlatformInfo | None:
    """Hints from a front page's title and the Server header; never more than medium."""
    title = page_title(body) or ""
    for needle, product, confidence, what in _TITLE_HINTS:
        if needle in title:
            return PlatformInfo(
                product=product, confidence=confidence, evidence=(f"{what}: title={title!r}",)
            )
    if server_header and server_header.startswith("Microsoft-HTTPAPI"):
        # http.sys answers for WinRM and other Windows services alike.
        return PlatformInfo(
            product="Hyper-V",
            confidence="low",
            evidence=(f"Server: {server_header} (Windows http.sys; Hyper-V role not confirmed)",),
        )
    return None
