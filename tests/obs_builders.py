"""Builders for hand-made observations, shared by the grading fixtures and the sample
report: each fills in what a test does not care about so the fixture says only what
it is about. Nothing here connects anywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chanscan.model import Axis, Finding, Severity
from chanscan.obs.ssh import HostKey, KexInit, SshObservation
from chanscan.obs.tls import Certificate, CertificateChecks

ISSUING_CA = "CN=Example Issuing CA"

# The one clock every hand-made fixture is built around and every pure rule is judged
# at: fixtures never carry a date that the wall clock can overtake.
SCAN_TIME = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(days: float) -> str:
    """SCAN_TIME moved by ``days``, as the certificate fields record it."""
    return (SCAN_TIME + timedelta(days=days)).isoformat()


def certificate(
    cn: str,
    *,
    issuer: str = ISSUING_CA,
    serial: str = "01",
    not_before: str = at(-151),
    not_after: str = at(183),
    key_type: str = "RSA",
    key_bits: int = 2048,
    signature_hash: str | None = "sha256",
    self_signed: bool = False,
    sha256_fingerprint: str = "",
    spki_sha256: str = "",
) -> Certificate:
    """A leaf for ``cn`` (its only SAN); self-signed leaves are their own issuer."""
    return Certificate(
        subject=f"CN={cn}",
        issuer=f"CN={cn}" if self_signed else issuer,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        san_dns=(cn,),
        key_type=key_type,
        key_bits=key_bits,
        signature_hash=signature_hash,
        self_signed=self_signed,
        sha256_fingerprint=sha256_fingerprint,
        spki_sha256=spki_sha256,
    )


def checks_for(
    leaf: Certificate,
    name: str,
    *,
    trusted: bool | None = True,
    custom: bool | None = None,
    matches: bool | None = True,
) -> CertificateChecks:
    """The verdicts on a one-certificate chain whose path to a root is complete."""
    return CertificateChecks(
        chain=(leaf,),
        name_checked=name,
        hostname_matches=matches,
        trusted_system=trusted,
        trusted_custom=custom,
        chain_complete=True,
    )


def kexinit(
    kex: tuple[str, ...],
    host_key: tuple[str, ...],
    ciphers: tuple[str, ...],
    macs: tuple[str, ...],
    compression: tuple[str, ...] = ("none",),
) -> KexInit:
    """A KEXINIT offering the same ciphers, MACs and compression in both directions."""
    return KexInit(
        kex=kex,
        host_key=host_key,
        ciphers_c2s=ciphers,
        ciphers_s2c=ciphers,
        macs_c2s=macs,
        macs_s2c=macs,
        compression_c2s=compression,
        compression_s2c=compression,
    )


def openssh(
    version: str,
    kex: KexInit,
    host_keys: tuple[HostKey, ...],
    auth_methods: tuple[str, ...],
    *,
    auth_user: str = "",
) -> SshObservation:
    """What an OpenSSH ``version`` server is seen as: its identification parsed."""
    return SshObservation(
        identification=f"SSH-2.0-OpenSSH_{version}",
        protocol_version="2.0",
        software=f"OpenSSH_{version}",
        product="OpenSSH",
        product_version=version,
        kexinit=kex,
        host_keys=host_keys,
        auth_methods=auth_methods,
        auth_user=auth_user,
    )


def make_finding(
    fid: str,
    title: str | None = None,
    severity: Severity = Severity.MEDIUM,
    axis: Axis = Axis.BOTH,
    evidence: tuple[str, ...] = (),
    **kw: object,
) -> Finding:
    """A finding titled after its id unless told; ``kw`` passes the other fields."""
    return Finding(
        id=fid,
        title=title or fid,
        severity=severity,
        axis=axis,
        evidence=evidence,
        **kw,  # type: ignore[arg-type]
    )
