"""Coverage check: does chanscan see what sslyze and ssh-audit see on the same fleet?

Compared per endpoint: accepted cipher suites per TLS version (chanscan JSON vs
sslyze's ``--json_out``) and the SSH algorithm lists (chanscan's KEXINIT vs
ssh-audit's ``-j`` output). A speed ratio only means something if these agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# sslyze 6 result keys -> chanscan's TLS_VERSIONS names (chanscan/obs/tls.py).
_SSLYZE_VERSIONS = {
    "ssl_2_0_cipher_suites": "SSL 2.0",
    "ssl_3_0_cipher_suites": "SSL 3.0",
    "tls_1_0_cipher_suites": "TLS 1.0",
    "tls_1_1_cipher_suites": "TLS 1.1",
    "tls_1_2_cipher_suites": "TLS 1.2",
    "tls_1_3_cipher_suites": "TLS 1.3",
}
_SSH_LISTS = (("kex", "kex"), ("key", "host_key"), ("enc", "ciphers_s2c"), ("mac", "macs_s2c"))


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def chanscan_tls(report: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ep in (report or {}).get("endpoints", []):
        tls = ep.get("tls")
        if not tls:
            continue
        suites = out.setdefault(f"{ep['address']}:{ep['port']}", set())
        for proto in tls.get("protocols", []):
            for cs in proto.get("cipher_suites", []) if proto.get("accepted") else []:
                suites.add(f"{proto['version']} {cs['name']}")
    return out


def sslyze_tls(doc: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for server in (doc or {}).get("server_scan_results", []):
        loc = server.get("server_location", {})
        suites = out.setdefault(f"{loc.get('ip_address')}:{loc.get('port')}", set())
        result = server.get("scan_result") or {}
        for key, version in _SSLYZE_VERSIONS.items():
            attempt = result.get(key) or {}
            for cs in (attempt.get("result") or {}).get("accepted_cipher_suites", []):
                suites.add(f"{version} {cs['cipher_suite']['name']}")
    return out


def chanscan_ssh(report: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ep in (report or {}).get("endpoints", []):
        kex = (ep.get("ssh") or {}).get("kexinit")
        if not kex:
            continue
        algs = out.setdefault(f"{ep['address']}:{ep['port']}", set())
        for label, field in _SSH_LISTS:
            algs.update(f"{label} {a}" for a in kex.get(field, []))
    return out


def ssh_audit_ssh(doc: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for target in doc if isinstance(doc, list) else []:
        algs = out.setdefault(str(target.get("target")), set())
        for label, _ in _SSH_LISTS:
            algs.update(f"{label} {a['algorithm']}" for a in target.get(label, []))
    return out


def _compare(ours: dict[str, set[str]], theirs: dict[str, set[str]]) -> list[dict[str, Any]]:
    rows = []
    for ep in sorted(set(ours) | set(theirs)):
        a, b = ours.get(ep, set()), theirs.get(ep, set())
        rows.append(
            {
                "endpoint": ep,
                "chanscan": len(a),
                "peer": len(b),
                "only_peer": sorted(b - a),
                "only_chanscan": sorted(a - b),
            }
        )
    return rows


def compare(
    chanscan_json: Path, sslyze_json: Path | None, ssh_audit_json: Path | None
) -> dict[str, Any]:
    report = _load(chanscan_json)
    out: dict[str, Any] = {}
    if sslyze_json is not None:
        out["tls_vs_sslyze"] = _compare(chanscan_tls(report), sslyze_tls(_load(sslyze_json)))
    if ssh_audit_json is not None:
        out["ssh_vs_ssh_audit"] = _compare(
            chanscan_ssh(report), ssh_audit_ssh(_load(ssh_audit_json))
        )
    out["equal"] = all(
        not row["only_peer"] for rows in out.values() if isinstance(rows, list) for row in rows
    )
    return out
