"""Observations and results for the grading, policy and waiver tests (no network).

Addresses are from RFC 5737 documentation ranges; nothing here connects anywhere.
"""

from __future__ import annotations

from dataclasses import replace

from obs_builders import at, certificate, checks_for, kexinit, make_finding, openssh

from chanscan.model import (
    Channel,
    EndpointResult,
    Finding,
    PlatformHint,
    PlatformInfo,
    Severity,
    Status,
)
from chanscan.obs.rdp import RdpObservation
from chanscan.obs.ssh import HostKey, SshObservation
from chanscan.obs.tls import (
    Certificate,
    CertificateChecks,
    CipherSuite,
    HttpInfo,
    ProtocolSupport,
    TlsObservation,
    VulnChecks,
)

HOST = "esx1.example.test"
ADDRESS = "192.0.2.10"


def suite(
    name: str,
    *,
    kx: str = "ECDHE",
    bits: int = 128,
    fs: bool = True,
    aead: bool = True,
    export: bool = False,
    eph_type: str | None = "ECDH",
    eph_bits: int | None = 256,
    auth: str = "RSA",
    enc: str | None = None,
) -> CipherSuite:
    return CipherSuite(
        name=name,
        openssl_name=name,
        key_exchange=kx,
        authentication=auth,
        encryption=enc or ("AES_128_GCM" if aead else "AES_128_CBC"),
        forward_secrecy=fs,
        aead=aead,
        cbc=not aead,
        key_bits=bits,
        export=export,
        ephemeral_key_type=eph_type if fs else None,
        ephemeral_key_bits=eph_bits if fs else None,
    )


TLS13_SUITES = (
    suite("TLS_AES_128_GCM_SHA256", kx="TLS13", eph_type="X25519", eph_bits=253),
    suite("TLS_AES_256_GCM_SHA384", kx="TLS13", bits=256, eph_type="X25519", eph_bits=253),
    suite("TLS_CHACHA20_POLY1305_SHA256", kx="TLS13", bits=256, eph_type="X25519", eph_bits=253),
)
TLS12_MODERN = (
    suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    suite("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", bits=256),
)
RSA_CBC = suite("TLS_RSA_WITH_AES_128_CBC_SHA", kx="RSA", fs=False, aead=False)
RSA_3DES = suite(
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA", kx="RSA", bits=112, fs=False, aead=False, enc="3DES_EDE_CBC"
)


def cert(
    *,
    key_type: str = "RSA",
    key_bits: int = 2048,
    self_signed: bool = False,
    signature_hash: str | None = "sha256",
    not_before: str = at(-151),
    not_after: str = at(183),
) -> Certificate:
    return certificate(
        HOST,
        key_type=key_type,
        key_bits=key_bits,
        self_signed=self_signed,
        signature_hash=signature_hash,
        not_before=not_before,
        not_after=not_after,
    )


def checks(
    leaf: Certificate | None = None,
    *,
    trusted: bool | None = True,
    custom: bool | None = None,
    matches: bool | None = True,
) -> CertificateChecks:
    return checks_for(leaf or cert(), HOST, trusted=trusted, custom=custom, matches=matches)


def tls_obs(
    protocols: dict[str, tuple[CipherSuite, ...]],
    *,
    certificate: CertificateChecks | None = None,
    http: HttpInfo | None = None,
    groups: tuple[str, ...] = ("X25519", "secp256r1"),
    secure_renegotiation: bool | None = True,
) -> TlsObservation:
    versions = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
    return TlsObservation(
        protocols=tuple(
            ProtocolSupport(v, v in protocols, protocols.get(v, ()), True) for v in versions
        ),
        groups=groups,
        certificate=certificate or checks(),
        vulns=VulnChecks(
            heartbleed=False,
            ccs_injection=False,
            robot="NOT_VULNERABLE_NO_ORACLE",
            secure_renegotiation=secure_renegotiation,
            client_renegotiation=False,
            compression=False,
            fallback_scsv=True,
            extended_master_secret=True,
        ),
        http=http,
    )


def modern_tls(**kw: object) -> TlsObservation:
    return tls_obs({"TLS 1.2": TLS12_MODERN, "TLS 1.3": TLS13_SUITES}, **kw)  # type: ignore[arg-type]


def legacy_esxi6_tls() -> TlsObservation:
    """What an ESXi 6.x host on defaults looks like: TLS 1.0-1.2, static RSA, CBC, 3DES,
    and the self-signed certificate the host generated at install."""
    legacy = (RSA_CBC, RSA_3DES, suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", aead=False))
    return tls_obs(
        {"TLS 1.0": legacy, "TLS 1.1": legacy, "TLS 1.2": (*legacy, *TLS12_MODERN)},
        certificate=checks(cert(self_signed=True), trusted=False, matches=False),
    )


LEGACY_ESXI6_FINDINGS = (
    "tls.protocol.tls1_0",
    "tls.protocol.tls1_1",
    "tls.protocol.no_tls1_3",
    "tls.cipher.3des",
    "tls.cipher.cbc",
    "tls.kex.static_rsa",
    "tls.cert.self_signed",
    "tls.cert.untrusted",
    "tls.cert.hostname_mismatch",
)


def modern_ssh(**kw: object) -> SshObservation:
    base = openssh(
        "10.0",
        kexinit(
            kex=("mlkem768x25519-sha256", "curve25519-sha256", "kex-strict-s-v00@openssh.com"),
            host_key=("ssh-ed25519", "rsa-sha2-512"),
            ciphers=("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"),
            macs=("hmac-sha2-256-etm@openssh.com",),
        ),
        (HostKey("ssh-ed25519", "ssh-ed25519", 256, "SHA256:x", verified=True),),
        ("publickey",),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def legacy_esxi6_ssh() -> SshObservation:
    """An ESXi 6.x-era OpenSSH: SHA-1 and 1024-bit group kex, CBC and 3DES, MD5 and SHA-1
    MACs, a DSA host key, zlib before authentication and password logins."""
    return openssh(
        "7.7",
        kexinit(
            kex=("diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1"),
            host_key=("ssh-rsa", "ssh-dss"),
            ciphers=("aes128-ctr", "aes128-cbc", "3des-cbc"),
            macs=("hmac-sha1", "hmac-md5"),
            compression=("none", "zlib"),
        ),
        (
            HostKey("ssh-rsa", "ssh-rsa", 2048, "SHA256:a", verified=True),
            HostKey("ssh-dss", "ssh-dss", 1024, "SHA256:b", verified=True),
        ),
        ("publickey", "password", "keyboard-interactive"),
    )


def finding(fid: str, severity: Severity = Severity.MEDIUM, **kw: object) -> Finding:
    return make_finding(fid, severity=severity, **kw)


def result(
    *,
    channel: Channel = Channel.TLS,
    port: int = 443,
    status: Status = Status.OK,
    tls: TlsObservation | None = None,
    ssh: SshObservation | None = None,
    rdp: RdpObservation | None = None,
    findings: tuple[Finding, ...] = (),
    address: str = ADDRESS,
    host: str = HOST,
    hint: PlatformHint = PlatformHint.AUTO,
    product: str | None = None,
) -> EndpointResult:
    return EndpointResult(
        host=host,
        address=address,
        port=port,
        channel=channel,
        status=status,
        tls=tls,
        ssh=ssh,
        rdp=rdp,
        findings=findings,
        platform_hint=hint,
        platform=PlatformInfo(product=product) if product else None,
    )


def base_for(rule_id: str) -> EndpointResult:
    """An endpoint that earns A+ on both axes on its own, of the channel the rule is
    about, so that the single finding under test is the only thing that can cap it."""
    if rule_id.startswith(("ssh.", "pin.ssh")):
        return result(channel=Channel.SSH, port=22, ssh=modern_ssh())
    if rule_id.startswith("rdp."):
        return result(
            channel=Channel.RDP,
            port=3389,
            rdp=RdpObservation(protocols_accepted=("ssl", "hybrid"), tls=modern_tls()),
        )
    return result(tls=modern_tls())
