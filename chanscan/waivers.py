"""Accepted risks (``--waivers FILE``): which finding, on which hosts, why, until when.

File format (TOML)::

    [[waiver]]
    finding = "tls.cert.self_signed"   # a finding id, or an fnmatch pattern: "tls.cipher.*"
    host = "esx-*.example.com"         # fnmatch on the host name or address, or a CIDR
    reason = "hosts are managed through vCenter only; ticket CHG-1234"
    expires = 2026-06-30               # a TOML date; the waiver holds through that day

A waived finding stays in the report with ``waived`` and the reason set; it does not
count toward the gate and still weighs on grades. A waiver past its date no longer
applies, and each endpoint where it would have applied gets a ``waiver.expired``
finding, so an expired exception is seen instead of silently reopening.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

from chanscan.errors import ConfigError
from chanscan.model import Axis, Endpoint, Finding, Severity
from chanscan.userfiles import parse_toml, read_text

EXPIRED_ID = "waiver.expired"
_KEYS = frozenset({"finding", "host", "reason", "expires"})


@dataclass(frozen=True)
class Waiver:
    finding: str
    host: str
    reason: str
    expires: date
    source: str = ""  # "file.toml waiver[3]", for messages and evidence

    def matches_host(self, endpoint: Endpoint) -> bool:
        try:
            network = ipaddress.ip_network(self.host, strict=False)
        except ValueError:
            pattern = self.host.lower()
            return fnmatchcase(endpoint.host.lower(), pattern) or fnmatchcase(
                endpoint.address.lower(), pattern
            )
        try:
            return ipaddress.ip_address(endpoint.address) in network
        except ValueError:
            return False

    def matches_finding(self, finding_id: str) -> bool:
        return fnmatchcase(finding_id, self.finding)

    def expired(self, today: date) -> bool:
        return today > self.expires


@cache
def known_finding_ids() -> frozenset[str]:
    """Every finding id chanscan can emit: the graded rules, the ungraded ones, the
    built-in policies' checks and the waiver expiry (tests/test_grading.py keeps the
    first two complete against the rule sources)."""
    from chanscan.grading import caps, rule_ids
    from chanscan.policies import BUILTIN, load_policy

    policy_ids = {f"policy.{p.name}.{r.id}" for p in map(load_policy, BUILTIN) for r in p.rules}
    return frozenset({*rule_ids(), *caps.UNGRADED, *policy_ids, EXPIRED_ID})


def _custom_policy_id(finding: str) -> bool:
    """``policy.NAME.*`` of a policy that is not built in: its ids live in the user's
    policy file, which waivers are read without, so they are taken on trust."""
    from chanscan.policies import BUILTIN

    parts = finding.split(".")
    return len(parts) >= 3 and parts[0] == "policy" and parts[1] not in BUILTIN


def _check_finding(finding: str, where: str) -> None:
    known = known_finding_ids()
    if any(c in finding for c in "*?["):
        if _custom_policy_id(finding) or any(fnmatchcase(k, finding) for k in known):
            return
        raise ConfigError(f"{where}: pattern {finding!r} matches no finding id chanscan knows")
    if finding in known or _custom_policy_id(finding):
        return
    near = difflib.get_close_matches(finding, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]!r}?" if near else " (docs/grading.md lists them)"
    raise ConfigError(f"{where}: unknown finding id {finding!r}{hint}")


def _entry_lines(text: str) -> list[int]:
    """The line of each ``finding =`` key, one per ``[[waiver]]`` table in order (the
    table's own line when its finding key is not written plainly)."""
    out: list[int] = []
    headers = list(re.finditer(r"^[ \t]*\[\[[ \t]*waiver[ \t]*\]\]", text, re.MULTILINE))
    for n, m in enumerate(headers):
        end = headers[n + 1].start() if n + 1 < len(headers) else len(text)
        key = re.search(r"^[ \t]*finding[ \t]*=", text[m.end() : end], re.MULTILINE)
        at = m.end() + key.start() if key else m.start()
        out.append(text.count("\n", 0, at) + 1)
    return out


def parse_waivers(text: str, source: str = "<waivers>") -> tuple[Waiver, ...]:
    raw = parse_toml(text, source)
    unknown = set(raw) - {"waiver"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key {sorted(unknown)[0]!r}; use [[waiver]]")
    entries = raw.get("waiver", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: 'waiver' must be an array of tables ([[waiver]])")
    lines = _entry_lines(text)
    out = []
    for i, entry in enumerate(entries, 1):
        waiver = _one(entry, f"{source} waiver[{i}]")
        line = lines[i - 1] if len(lines) == len(entries) else None
        _check_finding(waiver.finding, f"{source}:{line}" if line else waiver.source)
        out.append(waiver)
    return tuple(out)


def _one(entry: object, where: str) -> Waiver:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    extra = set(entry) - _KEYS
    if extra:
        raise ConfigError(f"{where}: unknown key {sorted(extra)[0]!r}")
    for key in ("finding", "host", "reason"):
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: key {key!r} must be a non-empty string")
    expires = entry.get("expires")
    # tomllib gives datetime for date-times; a waiver expires on a day, not an instant.
    if not isinstance(expires, date) or hasattr(expires, "hour"):
        raise ConfigError(f"{where}: key 'expires' must be a TOML date such as 2026-06-30")
    host = str(entry["host"]).strip()
    if "/" in host:
        try:
            ipaddress.ip_network(host, strict=False)
        except ValueError:
            raise ConfigError(f"{where}: key 'host' is not a valid CIDR: {host!r}") from None
    return Waiver(
        finding=str(entry["finding"]).strip(),
        host=host,
        reason=str(entry["reason"]).strip(),
        expires=expires,
        source=where,
    )


def load_waivers(path: str | Path) -> tuple[Waiver, ...]:
    return parse_waivers(read_text(path, "waivers file"), str(path))


def apply_waivers(
    findings: Iterable[Finding], endpoint: Endpoint, waivers: Sequence[Waiver], today: date
) -> list[Finding]:
    """Mark findings covered by a current waiver; report expired ones that would apply."""
    out: list[Finding] = []
    expired_hits: dict[Waiver, list[str]] = {}
    host_waivers = [w for w in waivers if w.matches_host(endpoint)]
    for f in findings:
        if f.id == EXPIRED_ID:
            out.append(f)  # a waiver cannot hide its own expiry
            continue
        current = next(
            (w for w in host_waivers if w.matches_finding(f.id) and not w.expired(today)), None
        )
        if current is not None:
            out.append(replace(f, waived=True, waiver_reason=current.reason))
            continue
        for w in host_waivers:
            if w.matches_finding(f.id) and w.expired(today):
                expired_hits.setdefault(w, []).append(f.id)
        out.append(f)
    for w, ids in expired_hits.items():
        out.append(_expired_finding(w, ids))
    return out


def _expired_finding(w: Waiver, finding_ids: list[str]) -> Finding:
    return Finding(
        id=EXPIRED_ID,
        title=f"Waiver for {w.finding} expired on {w.expires.isoformat()}",
        severity=Severity.LOW,
        axis=Axis.NONE,  # about the waiver file; caps nothing
        evidence=(
            f"waiver: {w.source}" if w.source else f"waiver for {w.finding}",
            f"host pattern: {w.host}",
            f"expired: {w.expires.isoformat()}",
            f"reason given: {w.reason}",
            *(f"no longer waived: {i}" for i in finding_ids),
        ),
        remediation=(
            "Review the accepted risk: renew the waiver with a new expiry date, "
            "or fix the finding and remove the waiver."
        ),
    )
