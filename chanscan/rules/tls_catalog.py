"""The fixed part of every TLS finding: title, severity, axis, remediation, references.

Kept apart from the logic in ``chanscan.rules.tls`` so the ids, their wording and
their sources can be reviewed in one table. Severities follow the SSL Labs rating
guide's caps where it has one (SSLv2/anon/NULL/export fail, RC4/3DES/TLS 1.0/1.1
cap at B/C, Heartbleed/CCS/ROBOT fail) and BCP 195 (RFC 9325) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from chanscan.model import Axis, Finding, Severity

SSL_LABS = "https://github.com/ssllabs/research/wiki/SSL-Server-Rating-Guide"
MOZILLA = "https://wiki.mozilla.org/Security/Server_Side_TLS"
RFC_9325 = "RFC 9325 (BCP 195)"
NIST_131A = "NIST SP 800-131A Rev. 2"
NIST_52 = "NIST SP 800-52 Rev. 2"
CABF_BR = "CA/Browser Forum Baseline Requirements 6.3.2 (398 days)"


@dataclass(frozen=True)
class Entry:
    title: str
    severity: Severity
    axis: Axis
    remediation: str
    references: tuple[str, ...]

    def finding(self, fid: str, evidence: list[str], severity: Severity | None = None) -> Finding:
        return Finding(
            id=fid,
            title=self.title,
            severity=severity or self.severity,
            axis=self.axis,
            evidence=tuple(evidence),
            remediation=self.remediation,
            references=self.references,
        )


_PROTO_FIX = "Disable the protocol version in the service's TLS configuration "
_SUITE_FIX = "Remove these cipher suites from the service's TLS configuration; offer only "
_AEAD = "ECDHE (or TLS 1.3) suites with AES-GCM or ChaCha20-Poly1305."
_CERT_FIX = "Replace the certificate with one issued by a CA the clients trust "

CATALOG: dict[str, Entry] = {
    "tls.protocol.sslv2": Entry(
        "SSL 2.0 is accepted",
        Severity.CRITICAL,
        Axis.EAVESDROPPING,
        _PROTO_FIX + "(SSL 2.0 is broken; DROWN uses it to decrypt TLS sessions).",
        ("RFC 6176", "CVE-2016-0800", SSL_LABS),
    ),
    "tls.protocol.sslv3": Entry(
        "SSL 3.0 is accepted",
        Severity.HIGH,
        Axis.EAVESDROPPING,
        _PROTO_FIX + "(POODLE).",
        ("RFC 7568", "CVE-2014-3566", SSL_LABS),
    ),
    "tls.protocol.tls1_0": Entry(
        "TLS 1.0 is accepted",
        Severity.MEDIUM,
        Axis.EAVESDROPPING,
        _PROTO_FIX + "and keep TLS 1.2 and TLS 1.3.",
        ("RFC 8996", NIST_52, SSL_LABS),
    ),
    "tls.protocol.tls1_1": Entry(
        "TLS 1.1 is accepted",
        Severity.MEDIUM,
        Axis.EAVESDROPPING,
        _PROTO_FIX + "and keep TLS 1.2 and TLS 1.3.",
        ("RFC 8996", NIST_52, SSL_LABS),
    ),
    "tls.protocol.no_tls1_3": Entry(
        "TLS 1.3 is not offered",
        Severity.LOW,
        Axis.EAVESDROPPING,
        "Enable TLS 1.3 (vSphere 8 and Windows Server 2022 support it).",
        ("RFC 8446", NIST_52, MOZILLA),
    ),
    "tls.protocol.no_tls1_2": Entry(
        "Neither TLS 1.2 nor TLS 1.3 is offered",
        Severity.HIGH,
        Axis.EAVESDROPPING,
        "Enable TLS 1.2 and TLS 1.3; every remaining version is deprecated.",
        ("RFC 8996", RFC_9325, SSL_LABS),
    ),
    "tls.protocol.negotiation_mismatch": Entry(
        "Modern and legacy ClientHellos negotiate different versions",
        Severity.MEDIUM,
        Axis.MITM,
        "Update the TLS stack: a server must pick the same highest version whether "
        "it is offered via supported_versions or the legacy version field.",
        ("RFC 8446 4.2.1", "RFC 8446 Appendix D"),
    ),
    "tls.cipher.null": Entry(
        "Cipher suites without encryption (NULL) are accepted",
        Severity.CRITICAL,
        Axis.EAVESDROPPING,
        _SUITE_FIX + _AEAD,
        (RFC_9325 + " 4.1", SSL_LABS),
    ),
    "tls.cipher.anonymous": Entry(
        "Anonymous cipher suites (no server authentication) are accepted",
        Severity.CRITICAL,
        Axis.MITM,
        _SUITE_FIX + _AEAD,
        (RFC_9325 + " 4.1", SSL_LABS),
    ),
    "tls.cipher.export": Entry(
        "Export-grade cipher suites are accepted",
        Severity.HIGH,
        Axis.EAVESDROPPING,
        _SUITE_FIX + _AEAD,
        ("CVE-2015-0204", "CVE-2015-4000", RFC_9325 + " 4.1", SSL_LABS),
    ),
    "tls.cipher.rc4": Entry(
        "RC4 cipher suites are accepted",
        Severity.HIGH,
        Axis.EAVESDROPPING,
        _SUITE_FIX + _AEAD,
        ("RFC 7465", "CVE-2013-2566", "CVE-2015-2808", SSL_LABS),
    ),
    "tls.cipher.3des": Entry(
        "3DES cipher suites are accepted (SWEET32)",
        Severity.HIGH,
        Axis.EAVESDROPPING,
        _SUITE_FIX + _AEAD,
        ("CVE-2016-2183", NIST_131A, SSL_LABS),
    ),
    "tls.cipher.weak": Entry(
        "Cipher suites with under 112-bit keys (DES, RC2) are accepted",
        Severity.HIGH,
        Axis.EAVESDROPPING,
        _SUITE_FIX + _AEAD,
        (NIST_131A, RFC_9325 + " 4.1", SSL_LABS),
    ),
    "tls.cipher.cbc": Entry(
        "CBC-mode cipher suites are accepted",
        Severity.LOW,
        Axis.EAVESDROPPING,
        "Prefer AEAD suites and drop CBC where clients allow: " + _AEAD,
        ("CVE-2013-0169", RFC_9325 + " 4.2", MOZILLA),
    ),
    "tls.kex.static_rsa": Entry(
        "Key exchange without forward secrecy (static RSA/DH) is accepted",
        Severity.LOW,
        Axis.EAVESDROPPING,
        _SUITE_FIX + _AEAD + " A stolen key must not decrypt recorded sessions.",
        (RFC_9325 + " 4.1", "CVE-2017-13099", SSL_LABS),
    ),
    "tls.kex.weak_dh": Entry(
        "Ephemeral Diffie-Hellman with a group under 2048 bits",
        Severity.MEDIUM,
        Axis.EAVESDROPPING,
        "Use a DH group of at least 2048 bits (RFC 7919 ffdhe2048+) or drop DHE for ECDHE.",
        ("CVE-2015-4000", NIST_131A, "RFC 7919", SSL_LABS),
    ),
    "tls.cert.self_signed": Entry(
        "The certificate is self-signed",
        Severity.HIGH,
        Axis.MITM,
        _CERT_FIX + "(for vSphere: the VMCA or an enterprise CA).",
        ("RFC 5280 3.2", SSL_LABS),
    ),
    "tls.cert.untrusted": Entry(
        "The certificate does not chain to a trusted root",
        Severity.HIGH,
        Axis.MITM,
        _CERT_FIX + "or pass the private root with --ca-bundle if it is yours.",
        ("RFC 5280 6", SSL_LABS),
    ),
    "tls.cert.issuer_not_ca": Entry(
        "A certificate in the chain was signed by an issuer its constraints forbid",
        Severity.CRITICAL,
        Axis.MITM,
        "Treat it as interception until shown otherwise: a leaf used as a CA, or a CA "
        "issuing beyond its keyUsage, pathLenConstraint or name constraints, is how "
        "sslsniff-style MITM certificates are made. Find who issued it and replace it with "
        "one issued directly by the CA.",
        ("RFC 5280 4.2.1.9", "RFC 5280 4.2.1.3", "RFC 5280 4.2.1.10", "CVE-2002-0862"),
    ),
    "tls.cert.hostname_mismatch": Entry(
        "The certificate does not match the scanned name",
        Severity.HIGH,
        Axis.MITM,
        "Reissue the certificate with the name (dNSName SAN) or address (iPAddress SAN) "
        "clients use to reach the service.",
        ("RFC 9525 6", SSL_LABS),
    ),
    "tls.cert.expired": Entry(
        "A certificate in the chain has expired",
        Severity.HIGH,
        Axis.MITM,
        "Renew the certificate.",
        ("RFC 5280 4.1.2.5", SSL_LABS),
    ),
    "tls.cert.not_yet_valid": Entry(
        "A certificate in the chain is not yet valid",
        Severity.HIGH,
        Axis.MITM,
        "Check the host's clock and reissue the certificate with a correct notBefore.",
        ("RFC 5280 4.1.2.5", SSL_LABS),
    ),
    "tls.cert.expiring_soon": Entry(
        "The certificate expires within 30 days",
        Severity.LOW,
        Axis.NONE,
        "Renew the certificate before it expires.",
        ("RFC 5280 4.1.2.5",),
    ),
    "tls.cert.weak_key": Entry(
        "A certificate key is too weak (RSA/DSA under 2048 bits, EC under 224)",
        Severity.MEDIUM,
        Axis.MITM,
        "Reissue with an RSA key of at least 2048 bits or an ECDSA P-256/P-384 key.",
        (NIST_131A, "CA/Browser Forum Baseline Requirements 6.1.5", SSL_LABS),
    ),
    "tls.cert.sha1_signature": Entry(
        "A certificate is signed with SHA-1 (or weaker)",
        Severity.HIGH,
        Axis.MITM,
        "Reissue the certificate with a SHA-256 (or stronger) signature.",
        (NIST_131A, "CA/Browser Forum Baseline Requirements 7.1.3", SSL_LABS),
    ),
    "tls.cert.incomplete_chain": Entry(
        "The server does not send the intermediate certificate(s)",
        Severity.LOW,
        Axis.MITM,
        "Configure the service to send the full chain (leaf and intermediates).",
        ("RFC 8446 4.4.2", "RFC 5246 7.4.2", SSL_LABS),
    ),
    "tls.cert.long_lifespan": Entry(
        "The certificate is valid for more than 398 days",
        Severity.LOW,
        Axis.MITM,
        "Issue certificates valid for at most 398 days and automate renewal.",
        (CABF_BR,),
    ),
    "tls.vuln.heartbleed": Entry(
        "Vulnerable to Heartbleed",
        Severity.CRITICAL,
        Axis.BOTH,
        "Patch OpenSSL (1.0.1g or later), then replace the key and certificate.",
        ("CVE-2014-0160", SSL_LABS),
    ),
    "tls.vuln.ccs_injection": Entry(
        "Vulnerable to OpenSSL CCS injection",
        Severity.HIGH,
        Axis.MITM,
        "Patch OpenSSL (0.9.8za/1.0.0m/1.0.1h or later).",
        ("CVE-2014-0224", SSL_LABS),
    ),
    "tls.vuln.robot": Entry(
        "Vulnerable to ROBOT (RSA decryption oracle)",
        Severity.HIGH,
        Axis.BOTH,
        "Patch the TLS stack and disable RSA key exchange suites.",
        ("CVE-2017-13099", "https://robotattack.org/", SSL_LABS),
    ),
    "tls.reneg.insecure": Entry(
        "Secure renegotiation (RFC 5746) is not supported",
        Severity.HIGH,
        Axis.MITM,
        "Update the TLS stack to one that implements RFC 5746.",
        ("RFC 5746", "CVE-2009-3555", SSL_LABS),
    ),
    "tls.reneg.client_initiated": Entry(
        "Client-initiated renegotiation is accepted",
        Severity.LOW,
        Axis.MITM,
        "Disable client-initiated renegotiation.",
        ("CVE-2011-1473", "RFC 5746", SSL_LABS),
    ),
    "tls.compression": Entry(
        "TLS compression is enabled (CRIME)",
        Severity.HIGH,
        Axis.EAVESDROPPING,
        "Disable TLS-level compression.",
        ("CVE-2012-4929", RFC_9325 + " 3.3", SSL_LABS),
    ),
    "tls.no_fallback_scsv": Entry(
        "TLS_FALLBACK_SCSV is not supported (downgrade protection)",
        Severity.LOW,
        Axis.MITM,
        "Update the TLS stack to support TLS_FALLBACK_SCSV, or accept only one version.",
        ("RFC 7507", SSL_LABS),
    ),
    "tls.no_extended_master_secret": Entry(
        "The extended master secret extension is not supported",
        Severity.LOW,
        Axis.MITM,
        "Update the TLS stack to support RFC 7627 (or accept only TLS 1.3).",
        ("RFC 7627", RFC_9325 + " 3.7"),
    ),
    "tls.check.not_determined": Entry(
        "Some TLS checks could not be determined",
        Severity.INFO,
        Axis.NONE,
        "Re-run the scan; a slow or fragile appliance may need a longer deadline.",
        (),
    ),
}
