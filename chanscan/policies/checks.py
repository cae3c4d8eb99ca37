"""The checks a policy rule can use. Each returns evidence lines; empty means compliant
or not observed (never a violation on missing data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from chanscan.model import EndpointResult
from chanscan.obs.tls import Certificate, TlsObservation

Run = Callable[[EndpointResult, tuple[str, ...], int | None, tuple[str, ...]], list[str]]


@dataclass(frozen=True)
class CheckSpec:
    run: Run
    takes: str  # "values", "number" or "none"
    topic: str  # remediation topic (chanscan/remediation_data.toml)


def _tls(result: EndpointResult) -> TlsObservation | None:
    if result.tls is not None:
        return result.tls
    return result.rdp.tls if result.rdp is not None else None


def _version(name: str) -> str:
    """'TLSv1.2', 'tls1.2', 'TLS 1.2' -> 'TLS 1.2'."""
    text = name.strip().upper().replace("V", " ").replace("_", ".")
    for prefix in ("TLS", "SSL"):
        if text.startswith(prefix):
            number = text[len(prefix) :].strip()
            if number in ("1", "2", "3") and prefix == "TLS":
                number += ".0"
            if prefix == "SSL" and number in ("2", "3"):
                number += ".0"
            return f"{prefix} {number}"
    return name


def _group(name: str) -> str:
    """Group names as OpenSSL, IANA and sslyze spell them compare equal."""
    text = name.lower().replace("-", "").replace("_", "")
    aliases = {"prime256v1": "secp256r1", "p256": "secp256r1", "p384": "secp384r1"}
    return aliases.get(text, text)


def versions_allowed(r: EndpointResult, values: tuple[str, ...], *_: object) -> list[str]:
    tls = _tls(r)
    if tls is None:
        return []
    allowed = {_version(v) for v in values}
    return [f"accepted: {v}" for v in tls.accepted_versions() if v not in allowed]


def versions_required(r: EndpointResult, values: tuple[str, ...], *_: object) -> list[str]:
    tls = _tls(r)
    if tls is None:
        return []
    refused = {p.version for p in tls.protocols if p.accepted is False}
    return [f"not accepted: {v}" for v in (_version(x) for x in values) if v in refused]


def ciphers_allowed(r: EndpointResult, values: tuple[str, ...], *_: object) -> list[str]:
    tls = _tls(r)
    if tls is None:
        return []
    allowed = set(values)
    out: list[str] = []
    for p in tls.protocols:
        if not p.accepted:
            continue
        out.extend(
            f"{p.version}: {s.name}"
            for s in p.cipher_suites
            if s.name not in allowed and s.openssl_name not in allowed
        )
    return out


def groups_allowed(r: EndpointResult, values: tuple[str, ...], *_: object) -> list[str]:
    tls = _tls(r)
    if tls is None:
        return []
    allowed = {_group(v) for v in values}
    return [f"group offered: {g}" for g in tls.groups if _group(g) not in allowed]


def groups_required(r: EndpointResult, values: tuple[str, ...], *_: object) -> list[str]:
    tls = _tls(r)
    if tls is None or not tls.groups:
        return []
    offered = {_group(g) for g in tls.groups}
    return [f"group not offered: {v}" for v in values if _group(v) not in offered]


def _leaf(r: EndpointResult) -> Certificate | None:
    tls = _tls(r)
    if tls is None or tls.certificate is None or not tls.certificate.chain:
        return None
    return tls.certificate.chain[0]


def cert_key_types(r: EndpointResult, values: tuple[str, ...], *_: object) -> list[str]:
    leaf = _leaf(r)
    if leaf is None or not leaf.key_type:
        return []
    allowed = {v.upper() for v in values}
    key_type = leaf.key_type.upper()
    if key_type in allowed or (key_type == "EC" and "ECDSA" in allowed):
        return []
    return [f"certificate key type: {leaf.key_type}"]


def cert_min_rsa_bits(r: EndpointResult, _v: object, number: int | None, *_: object) -> list[str]:
    leaf = _leaf(r)
    if leaf is None or number is None or leaf.key_type != "RSA" or not leaf.key_bits:
        return []
    return [f"RSA key {leaf.key_bits} bits < {number}"] if leaf.key_bits < number else []


def cert_signature_hashes(r: EndpointResult, values: tuple[str, ...], *_: object) -> list[str]:
    leaf = _leaf(r)
    if leaf is None or leaf.signature_hash is None:
        return []
    allowed = {v.lower() for v in values}
    if leaf.signature_hash.lower() in allowed:
        return []
    return [f"certificate signed with {leaf.signature_hash}"]


def cert_max_lifespan_days(
    r: EndpointResult, _v: object, number: int | None, *_: object
) -> list[str]:
    leaf = _leaf(r)
    if leaf is None or number is None:
        return []
    try:
        start = datetime.fromisoformat(leaf.not_before)
        end = datetime.fromisoformat(leaf.not_after)
    except ValueError:
        return []
    days = (end - start).days
    return [f"certificate valid for {days} days > {number}"] if days > number else []


def cert_ca_issued(r: EndpointResult, *_: object) -> list[str]:
    tls = _tls(r)
    if tls is None or tls.certificate is None or not tls.certificate.chain:
        return []
    cert = tls.certificate
    if cert.chain[0].self_signed:
        return [f"self-signed certificate: {cert.chain[0].subject}"]
    if cert.trusted_custom is True or cert.trusted_system is True:
        return []
    if cert.trusted_system is False:
        return [f"certificate issuer not trusted: {cert.chain[0].issuer}"]
    return []


def dh_min_bits(r: EndpointResult, _v: object, number: int | None, *_: object) -> list[str]:
    tls = _tls(r)
    if tls is None or number is None:
        return []
    return sorted(
        {
            f"{s.name}: DH {s.ephemeral_key_bits} bits < {number}"
            for s in tls.all_suites()
            if s.ephemeral_key_type == "DH"
            and s.ephemeral_key_bits is not None
            and s.ephemeral_key_bits < number
        }
    )


def hsts_min_age(r: EndpointResult, _v: object, number: int | None, *_: object) -> list[str]:
    tls = _tls(r)
    if tls is None or tls.http is None or number is None:
        return []
    header = tls.http.hsts
    if not header:
        return ["no Strict-Transport-Security header"]
    for part in header.split(";"):
        key, _sep, value = part.strip().partition("=")
        if key.lower() == "max-age":
            try:
                age = int(value.strip().strip('"'))
            except ValueError:
                return [f"unparsable HSTS max-age: {value!r}"]
            return [f"HSTS max-age {age} < {number}"] if age < number else []
    return ["HSTS header without max-age"]


# SSH pseudo-algorithms that announce extensions, not algorithms (RFC 8308; OpenSSH
# PROTOCOL for strict kex); a policy list of real algorithms must not flag them.
_SSH_MARKERS = frozenset(
    {"ext-info-s", "ext-info-c", "kex-strict-s-v00@openssh.com", "kex-strict-c-v00@openssh.com"}
)


def _ssh_list(kind: str) -> Run:
    def run(r: EndpointResult, values: tuple[str, ...], *_: object) -> list[str]:
        if r.ssh is None or r.ssh.kexinit is None:
            return []
        k = r.ssh.kexinit
        names = {
            "kex": k.kex,
            "ciphers": k.ciphers(),
            "macs": k.macs(),
            "host_keys": k.host_key,
        }[kind]
        allowed = set(values)
        return [f"{kind}: {n}" for n in names if n not in allowed and n not in _SSH_MARKERS]

    return run


def findings_forbidden(
    _r: EndpointResult, values: tuple[str, ...], _n: object, present: tuple[str, ...]
) -> list[str]:
    return sorted({f"finding: {fid}" for fid in present for p in values if fnmatchcase(fid, p)})


CHECKS: dict[str, CheckSpec] = {
    "tls.versions.allowed": CheckSpec(versions_allowed, "values", "tls_protocols"),
    "tls.versions.required": CheckSpec(versions_required, "values", "tls_protocols"),
    "tls.ciphers.allowed": CheckSpec(ciphers_allowed, "values", "tls_ciphers"),
    "tls.groups.allowed": CheckSpec(groups_allowed, "values", "tls_ciphers"),
    "tls.groups.required": CheckSpec(groups_required, "values", "tls_ciphers"),
    "tls.dh.min_bits": CheckSpec(dh_min_bits, "number", "tls_ciphers"),
    "tls.cert.key_types": CheckSpec(cert_key_types, "values", "tls_cert"),
    "tls.cert.min_rsa_bits": CheckSpec(cert_min_rsa_bits, "number", "tls_cert"),
    "tls.cert.signature_hashes": CheckSpec(cert_signature_hashes, "values", "tls_cert"),
    "tls.cert.max_lifespan_days": CheckSpec(cert_max_lifespan_days, "number", "tls_cert"),
    "tls.cert.ca_issued": CheckSpec(cert_ca_issued, "none", "tls_cert"),
    "tls.hsts.min_age": CheckSpec(hsts_min_age, "number", "hsts"),
    "ssh.kex.allowed": CheckSpec(_ssh_list("kex"), "values", "ssh_algorithms"),
    "ssh.ciphers.allowed": CheckSpec(_ssh_list("ciphers"), "values", "ssh_algorithms"),
    "ssh.macs.allowed": CheckSpec(_ssh_list("macs"), "values", "ssh_algorithms"),
    "ssh.host_keys.allowed": CheckSpec(_ssh_list("host_keys"), "values", "ssh_hostkey"),
    "findings.forbidden": CheckSpec(findings_forbidden, "values", ""),
}
