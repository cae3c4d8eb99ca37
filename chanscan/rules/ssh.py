"""SSH findings from an :class:`SshObservation`, driven by ``data/ssh_algorithms.toml``.

Tag findings select the offered algorithms of one category that carry one tag (the
data decides which algorithms are SHA-1, CBC, ...); the special findings below need
more than one list (Terrapin), the host keys seen (DSA, RSA size) or the auth answer.
Evidence lists algorithm names exactly as the server sent them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from chanscan.model import Axis, EndpointResult, Finding, Severity
from chanscan.obs.ssh import STRICT_KEX_SERVER, KexInit, SshObservation

CATEGORIES = ("kex", "host_key", "cipher", "mac", "compression")
STATUSES = ("ok", "weak", "broken")
RSA_MIN_BITS = 2048  # NIST SP 800-131A Rev. 2, table 2
ETM_SUFFIX = "-etm@openssh.com"


@dataclass(frozen=True)
class AlgorithmRecord:
    name: str
    category: str
    status: str
    axis: Axis
    reason: str
    reference: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FindingSpec:
    id: str
    kind: str  # "tag" or "special"
    title: str
    severity: Severity
    axis: Axis
    remediation: str
    references: tuple[str, ...]
    category: str | None = None
    tag: str | None = None

    def make(self, evidence: tuple[str, ...]) -> Finding:
        return Finding(
            id=self.id,
            title=self.title,
            severity=self.severity,
            axis=self.axis,
            evidence=evidence,
            remediation=self.remediation,
            references=self.references,
        )


@dataclass(frozen=True)
class AlgorithmDb:
    algorithms: tuple[AlgorithmRecord, ...]
    findings: tuple[FindingSpec, ...]

    def lookup(self, category: str, name: str) -> AlgorithmRecord | None:
        for rec in self.algorithms:
            if rec.category == category and rec.name == name:
                return rec
        return None

    def tagged(self, category: str, tag: str) -> frozenset[str]:
        return frozenset(
            r.name for r in self.algorithms if r.category == category and tag in r.tags
        )

    def spec(self, finding_id: str) -> FindingSpec:
        for s in self.findings:
            if s.id == finding_id:
                return s
        raise KeyError(finding_id)


class AlgorithmDbError(ValueError):
    """The algorithm database file is malformed (a packaging bug, not user input)."""


def _str(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise AlgorithmDbError(f"{where}: '{key}' must be a non-empty string")
    return value


def _strs(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AlgorithmDbError(f"{where}: '{key}' must be a list of strings")
    return tuple(value)


def _enum(cls: type[Axis] | type[Severity], entry: dict[str, Any], key: str, where: str) -> Any:
    raw = _str(entry, key, where)
    try:
        return cls(raw)
    except ValueError:
        raise AlgorithmDbError(f"{where}: bad {key} {raw!r}") from None


def parse_db(text: str) -> AlgorithmDb:
    """Typed records from the TOML text; every field checked, unknown keys rejected."""
    data = tomllib.loads(text)
    algs: list[AlgorithmRecord] = []
    seen: set[tuple[str, str]] = set()
    alg_keys = {"name", "category", "status", "axis", "reason", "reference", "tags"}
    for i, entry in enumerate(data.get("algorithm", [])):
        where = f"algorithm[{i}]"
        if set(entry) - alg_keys:
            raise AlgorithmDbError(f"{where}: unknown keys {sorted(set(entry) - alg_keys)}")
        rec = AlgorithmRecord(
            name=_str(entry, "name", where),
            category=_str(entry, "category", where),
            status=_str(entry, "status", where),
            axis=_enum(Axis, entry, "axis", where),
            reason=_str(entry, "reason", where),
            reference=_str(entry, "reference", where),
            tags=_strs(entry, "tags", where),
        )
        if rec.category not in CATEGORIES or rec.status not in STATUSES:
            raise AlgorithmDbError(f"{where}: bad category or status in {rec.name}")
        if (rec.category, rec.name) in seen:
            raise AlgorithmDbError(f"{where}: duplicate {rec.category} {rec.name}")
        seen.add((rec.category, rec.name))
        algs.append(rec)
    specs: list[FindingSpec] = []
    spec_keys = {"id", "kind", "title", "severity", "axis", "remediation", "references"}
    for i, entry in enumerate(data.get("finding", [])):
        where = f"finding[{i}]"
        if set(entry) - spec_keys - {"category", "tag"}:
            raise AlgorithmDbError(f"{where}: unknown keys")
        kind = _str(entry, "kind", where)
        spec = FindingSpec(
            id=_str(entry, "id", where),
            kind=kind,
            title=_str(entry, "title", where),
            severity=_enum(Severity, entry, "severity", where),
            axis=_enum(Axis, entry, "axis", where),
            remediation=_str(entry, "remediation", where),
            references=_strs(entry, "references", where),
            category=_str(entry, "category", where) if kind == "tag" else None,
            tag=_str(entry, "tag", where) if kind == "tag" else None,
        )
        if kind not in ("tag", "special") or (kind == "tag" and spec.category not in CATEGORIES):
            raise AlgorithmDbError(f"{where}: bad kind/category for {spec.id}")
        if not spec.references:
            raise AlgorithmDbError(f"{where}: {spec.id} has no reference")
        specs.append(spec)
    return AlgorithmDb(tuple(algs), tuple(specs))


@cache
def load_db() -> AlgorithmDb:
    text = resources.files("chanscan.rules").joinpath("data/ssh_algorithms.toml").read_text()
    return parse_db(text)


def offered(kex: KexInit, category: str) -> tuple[str, ...]:
    if category == "kex":
        return kex.kex
    if category == "host_key":
        return kex.host_key
    if category == "cipher":
        return kex.ciphers()
    if category == "mac":
        return kex.macs()
    return kex.compression()


def findings(result: EndpointResult, *, now: datetime) -> list[Finding]:
    del now  # nothing here depends on time
    obs = result.ssh
    if obs is None:
        return []
    return evaluate(obs)


def evaluate(obs: SshObservation, db: AlgorithmDb | None = None) -> list[Finding]:
    db = db or load_db()
    out: list[Finding] = []
    kex = obs.kexinit
    for spec in db.findings:
        evidence: tuple[str, ...] = ()
        if spec.kind == "tag" and kex is not None:
            assert spec.category is not None and spec.tag is not None
            bad = db.tagged(spec.category, spec.tag)
            evidence = tuple(a for a in offered(kex, spec.category) if a in bad)
        elif spec.kind == "special":
            evidence = _special(spec.id, obs, db)
        if evidence:
            out.append(spec.make(evidence))
    return out


def _special(fid: str, obs: SshObservation, db: AlgorithmDb) -> tuple[str, ...]:
    kex = obs.kexinit
    if fid == "ssh.protocol.v1":
        # 1.99 means "SSH-2 and SSH-1" (RFC 4253 5.1): still SSH-1.
        return (f"protocol {obs.protocol_version}",) if obs.ssh1 else ()
    if fid == "ssh.hostkey.dsa":
        names = db.tagged("host_key", "dsa")
        found = [a for a in (kex.host_key if kex else ()) if a in names]
        found += [
            f"{k.key_type} {k.bits} bits {k.fingerprint}"
            for k in obs.host_keys
            if k.key_type == "ssh-dss"
        ]
        return tuple(found)
    if fid == "ssh.hostkey.weak_rsa":
        return tuple(
            f"{k.key_type} {k.bits} bits {k.fingerprint}"
            for k in obs.host_keys
            if k.key_type == "ssh-rsa" and 0 < k.bits < RSA_MIN_BITS
        )
    if fid == "ssh.auth.password":
        return ("password",) if "password" in obs.auth_methods else ()
    if fid == "ssh.auth.keyboard_interactive":
        return ("keyboard-interactive",) if "keyboard-interactive" in obs.auth_methods else ()
    if kex is None:
        return ()
    if fid == "ssh.terrapin":
        return _terrapin(kex, db)
    if fid == "ssh.mac.encrypt_and_mac":
        return _encrypt_and_mac(kex, db)
    if fid == "ssh.kex.no_pq":
        pq = db.tagged("kex", "pq")
        if any(a in pq for a in kex.kex):
            return ()
        real = [a for a in kex.kex if a not in (STRICT_KEX_SERVER, "ext-info-s")]
        return (f"kex offered: {', '.join(real)}",)
    raise KeyError(fid)  # a "special" finding in the data without code


def _terrapin(kex: KexInit, db: AlgorithmDb) -> tuple[str, ...]:
    """CVE-2023-48795: without strict kex, an attacker can drop packets after NEWKEYS
    when the cipher is chacha20-poly1305 or a CBC cipher with an EtM MAC."""
    if kex.strict_kex:
        return ()
    ciphers = kex.ciphers()
    chacha = [c for c in ciphers if c in db.tagged("cipher", "terrapin")]
    cbc = [c for c in ciphers if c in db.tagged("cipher", "cbc")]
    etm = [m for m in kex.macs() if m.endswith(ETM_SUFFIX)]
    evidence = list(chacha)
    if cbc and etm:
        evidence += cbc + etm
    if not evidence:
        return ()
    return (*evidence, f"no {STRICT_KEX_SERVER}")


def _encrypt_and_mac(kex: KexInit, db: AlgorithmDb) -> tuple[str, ...]:
    """Non-EtM MACs matter only when a non-AEAD cipher can be negotiated (AEAD ciphers
    ignore the MAC, RFC 5647 5.1)."""
    aead = db.tagged("cipher", "aead")
    if all(c in aead for c in kex.ciphers()):
        return ()
    return tuple(m for m in kex.macs() if not m.endswith(ETM_SUFFIX))
