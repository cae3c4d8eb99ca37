"""A fixed, hand-built ScanReport covering every shape a report format must handle:
TLS, SSH, RDP, plain HTTP, closed, timeout and error endpoints, waived findings, grades.

Addresses are RFC 5737 documentation ranges and names RFC 2606 ones: nothing here is
ever contacted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from obs_builders import certificate, checks_for, kexinit, make_finding, openssh

from chanscan.assess import assess_hosts, scan_time
from chanscan.model import (
    SCHEMA_ID,
    Axis,
    Channel,
    EndpointResult,
    Finding,
    Grade,
    GradeCaps,
    PlatformHint,
    PlatformInfo,
    ScanReport,
    Severity,
    Status,
)
from chanscan.obs.rdp import RdpObservation
from chanscan.obs.ssh import HostKey
from chanscan.obs.tls import (
    Certificate,
    CipherSuite,
    HttpInfo,
    ProtocolSupport,
    TlsObservation,
)

ECDHE_GCM = CipherSuite(
    name="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    openssl_name="ECDHE-RSA-AES128-GCM-SHA256",
    key_exchange="ECDHE",
    authentication="RSA",
    encryption="AES_128_GCM",
    forward_secrecy=True,
    aead=True,
    cbc=False,
    key_bits=128,
    ephemeral_key_type="ECDH",
    ephemeral_key_bits=256,
    ephemeral_curve="secp256r1",
)
RSA_CBC = CipherSuite(
    name="TLS_RSA_WITH_AES_128_CBC_SHA",
    openssl_name="AES128-SHA",
    key_exchange="RSA",
    authentication="RSA",
    encryption="AES_128_CBC",
    forward_secrecy=False,
    aead=False,
    cbc=True,
    key_bits=128,
)


# The one time the sample scan ran at; every date in it is relative to this.
SCAN = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def _z(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def cert(
    cn: str, spki: str, fp: str, *, bits: int = 2048, self_signed: bool = False
) -> Certificate:
    return certificate(
        cn,
        issuer="CN=Example Issuing CA,O=Example",
        serial="0a1b2c",
        # Valid around the scan, whatever day the suite runs: rules judge the
        # report's own started_at (SCAN below), never today.
        not_before=_z(SCAN - timedelta(days=332, hours=3)),
        not_after=_z(SCAN + timedelta(days=32, hours=21)),
        key_bits=bits,
        self_signed=self_signed,
        sha256_fingerprint=fp,
        spki_sha256=spki,
    )


def tls_obs(
    cn: str,
    spki: str,
    fp: str,
    *,
    legacy: bool = False,
    self_signed: bool = False,
    bits: int = 2048,
) -> TlsObservation:
    protocols = [
        ProtocolSupport("TLS 1.0", accepted=legacy, cipher_suites=(RSA_CBC,) if legacy else ()),
        ProtocolSupport("TLS 1.1", accepted=False),
        ProtocolSupport(
            "TLS 1.2", accepted=True, cipher_suites=(ECDHE_GCM,), server_preference=True
        ),
    ]
    return TlsObservation(
        protocols=tuple(protocols),
        groups=("X25519", "secp256r1"),
        certificate=checks_for(
            cert(cn, spki, fp, bits=bits, self_signed=self_signed), cn, trusted=not self_signed
        ),
        http=HttpInfo(hsts="max-age=31536000"),
    )


def finding(
    fid: str,
    title: str,
    severity: Severity,
    axis: Axis,
    evidence: tuple[str, ...] = (),
    *,
    waived: bool = False,
    reason: str | None = None,
) -> Finding:
    return make_finding(
        fid,
        title,
        severity,
        axis,
        evidence,
        remediation=f"Fix {title.lower()} on the management interface.",
        references=("https://ciphersuite.info/", "RFC 8996"),
        waived=waived,
        waiver_reason=reason,
    )


ED25519 = HostKey(
    algorithm="ssh-ed25519",
    key_type="ssh-ed25519",
    bits=256,
    fingerprint="SHA256:qF7hUu4nSQbv8iAUz2bY3P2VvN0tI1oHqN3bq8Yw3Zk",
    verified=True,
)
RSA1024 = HostKey(
    algorithm="ssh-rsa",
    key_type="ssh-rsa",
    bits=1024,
    fingerprint="SHA256:Zb1oGmJcR2kYqVb3o1qv8s0hL9ZyQm0XhX2Xn4y3cQw",
    verified=True,
)


def sample_report() -> ScanReport:
    vc = EndpointResult(
        host="vc01.example.com",
        address="192.0.2.10",
        port=443,
        channel=Channel.TLS,
        status=Status.OK,
        platform_hint=PlatformHint.VCENTER,
        connections=14,
        elapsed_ms=2140,
        tls=tls_obs("vc01.example.com", "c3BraS12YzAx", "aa" * 32),
        platform=PlatformInfo(product="vCenter Server", version="8.0.2", confidence="high"),
        findings=(
            finding(
                "tls.hsts.short",
                "HSTS max-age shorter than a year",
                Severity.INFO,
                Axis.MITM,
                ("max-age=31536000",),
            ),
        ),
        grade=Grade(eavesdropping="A", mitm="A+", overall="A"),
    )
    esxi_https = EndpointResult(
        host="esx01.example.com",
        address="192.0.2.21",
        port=443,
        channel=Channel.TLS,
        status=Status.OK,
        platform_hint=PlatformHint.ESXI,
        connections=22,
        elapsed_ms=5310,
        tls=tls_obs(
            "esx01.example.com", "c3BraS1lc3gwMQ==", "bb" * 32, legacy=True, self_signed=True
        ),
        platform=PlatformInfo(product="ESXi", version="6.7.0", build="17167734", confidence="high"),
        findings=(
            finding(
                "tls.protocol.tls1_0",
                "TLS 1.0 accepted",
                Severity.HIGH,
                Axis.EAVESDROPPING,
                ("TLS 1.0",),
            ),
            finding(
                "tls.cert.self_signed",
                "Self-signed certificate | not trusted",
                Severity.HIGH,
                Axis.MITM,
                ("CN=esx01.example.com",),
                waived=True,
                reason="CHG-1234: VMCA rollout in Q3",
            ),
            finding(
                "tls.cipher.no_forward_secrecy",
                "Cipher suites without forward secrecy",
                Severity.MEDIUM,
                Axis.EAVESDROPPING,
                ("TLS_RSA_WITH_AES_128_CBC_SHA",),
            ),
        ),
        grade=Grade(
            eavesdropping="C",
            mitm="B",
            overall="C",
            capped_by=GradeCaps(eavesdropping="tls.protocol.tls1_0"),
        ),
    )
    esxi_authd = dataclasses.replace(
        esxi_https,
        port=902,
        channel=Channel.AUTHD,
        connections=9,
        elapsed_ms=3020,
        banner="220 VMware Authentication Daemon Version 1.10: SSL Required",
        tls=dataclasses.replace(
            tls_obs(
                "esx01.example.com", "c3BraS1lc3gwMQ==", "bb" * 32, legacy=True, self_signed=True
            ),
            http=None,
            preface="220 VMware Authentication Daemon Version 1.10",
        ),
        findings=esxi_https.findings[:1],
        grade=Grade(eavesdropping="C", mitm="B", overall="C"),
    )
    esxi_ssh = EndpointResult(
        host="esx01.example.com",
        address="192.0.2.21",
        port=22,
        channel=Channel.SSH,
        status=Status.OK,
        platform_hint=PlatformHint.ESXI,
        banner="SSH-2.0-OpenSSH_7.7",
        connections=6,
        elapsed_ms=1800,
        ssh=openssh(
            "7.7",
            kexinit(
                kex=("diffie-hellman-group1-sha1", "curve25519-sha256"),
                host_key=("ssh-rsa", "ssh-ed25519"),
                ciphers=("aes128-cbc", "aes128-ctr"),
                macs=("hmac-sha1",),
            ),
            (ED25519, RSA1024),
            ("publickey", "keyboard-interactive"),
            auth_user="chanscan-probe",
        ),
        findings=(
            finding(
                "ssh.kex.dh_group1",
                "1024-bit Diffie-Hellman group offered",
                Severity.HIGH,
                Axis.EAVESDROPPING,
                ("diffie-hellman-group1-sha1",),
            ),
            finding(
                "ssh.hostkey.rsa_short",
                "RSA host key shorter than 2048 bits",
                Severity.CRITICAL,
                Axis.MITM,
                ("ssh-rsa 1024 bits", RSA1024.fingerprint),
            ),
            finding(
                "ssh.cipher.cbc",
                "CBC-mode ciphers offered",
                Severity.LOW,
                Axis.EAVESDROPPING,
                ("aes128-cbc",),
            ),
        ),
        grade=Grade(
            eavesdropping="D",
            mitm="F",
            overall="F",
            capped_by=GradeCaps(eavesdropping="ssh.kex.dh_group1", mitm="ssh.hostkey.rsa_short"),
        ),
    )
    hv_rdp = EndpointResult(
        host="hv01.example.com",
        address="198.51.100.5",
        port=3389,
        channel=Channel.RDP,
        status=Status.OK,
        platform_hint=PlatformHint.HYPERV,
        connections=5,
        elapsed_ms=2600,
        rdp=RdpObservation(
            protocols_accepted=("ssl", "hybrid"),
            protocols_refused=("rdp",),
            tls=tls_obs("hv01.example.com", "c3BraS1odjAxLXJkcA==", "cc" * 32, self_signed=True),
        ),
        platform=PlatformInfo(product="Windows Server", version="2022", confidence="medium"),
        findings=(
            finding(
                "rdp.cert.self_signed",
                "RDP presents a self-signed certificate",
                Severity.MEDIUM,
                Axis.MITM,
                ("CN=hv01.example.com",),
            ),
        ),
        grade=Grade(eavesdropping="A-", mitm="B", overall="B"),
    )
    hv_http = EndpointResult(
        host="hv01.example.com",
        address="198.51.100.5",
        port=5985,
        channel=Channel.HTTP,
        status=Status.OK,
        platform_hint=PlatformHint.HYPERV,
        connections=1,
        elapsed_ms=40,
        banner=None,
        findings=(
            finding(
                "http.plaintext_management",
                "Management API over plaintext HTTP (WinRM)",
                Severity.HIGH,
                Axis.BOTH,
                ("HTTP on 5985",),
            ),
        ),
        grade=Grade(eavesdropping="F", mitm="F", overall="F"),
    )
    xen_closed = EndpointResult(
        host="xen01.example.com",
        address="203.0.113.7",
        port=22,
        channel=Channel.UNKNOWN,
        status=Status.CLOSED,
        error="connection refused",
        platform_hint=PlatformHint.XENSERVER,
        connections=1,
    )
    xen_timeout = EndpointResult(
        host="xen01.example.com",
        address="203.0.113.7",
        port=443,
        channel=Channel.TLS,
        status=Status.TIMEOUT,
        error="endpoint deadline of 30 s exceeded",
        platform_hint=PlatformHint.XENSERVER,
        connections=3,
        elapsed_ms=30000,
    )
    err = EndpointResult(
        host="203.0.113.9",
        address="203.0.113.9",
        port=902,
        channel=Channel.AUTHD,
        status=Status.ERROR,
        error="protocol error: expected a 220 greeting, got b'HTTP/1.1 400'",
        connections=2,
        elapsed_ms=120,
    )
    report = ScanReport(
        schema=SCHEMA_ID,
        tool_version="0.1.0",
        complete=True,
        started_at=_z(SCAN),
        finished_at=_z(SCAN + timedelta(seconds=41)),
        endpoints=(
            vc,
            esxi_https,
            esxi_authd,
            esxi_ssh,
            hv_rdp,
            hv_http,
            xen_closed,
            xen_timeout,
            err,
        ),
        command=("chanscan", "scan", "--targets", "estate.txt"),
    )
    # The host rows as assess makes them (platform currency, host grades), judged at
    # the report's own started_at.
    hosts = assess_hosts(report.endpoints, (), scan_time(report))
    return replace(report, hosts=hosts)
