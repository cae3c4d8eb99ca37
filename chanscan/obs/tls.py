"""What the TLS probe records per endpoint (the JSON ``tls`` object).

``None`` in a boolean check means *not determined* (the check failed twice or did
not apply), never "absent": rules must not raise or clear a finding on ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Versions in the order rules and reports use them.
TLS_VERSIONS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")

# ``CertificateChecks.issuer_fault`` values: the CA constraint broken by a certificate
# that signed the next one on the path, anchored or not (RFC 5280 4.2.1.9 basicConstraints
# cA and pathLenConstraint, 4.2.1.3 keyCertSign, 4.2.1.10 name constraints, 4.2.1.12 an
# issuer's extendedKeyUsage without serverAuth).
ISSUER_FAULTS = ("not_ca", "no_key_cert_sign", "path_length", "name_constraints", "eku")


@dataclass(frozen=True)
class CipherSuite:
    name: str  # IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    openssl_name: str
    key_exchange: str  # ECDHE, DHE, RSA, ECDH, DH, anon, PSK, TLS13 (any (EC)DHE in 1.3)
    authentication: str  # RSA, ECDSA, DSS, anon, NULL
    encryption: str  # AES_128_GCM, CHACHA20_POLY1305, 3DES_EDE_CBC, RC4_128, NULL, ...
    forward_secrecy: bool
    aead: bool
    cbc: bool
    key_bits: int  # effective symmetric strength (3DES = 112, NULL = 0)
    export: bool = False
    ephemeral_key_type: str | None = None  # ECDH, DH, X25519, X448
    ephemeral_key_bits: int | None = None  # DH group size or curve size
    ephemeral_curve: str | None = None  # secp256r1, X25519, ...


@dataclass(frozen=True)
class ProtocolSupport:
    version: str  # one of TLS_VERSIONS
    accepted: bool | None
    cipher_suites: tuple[CipherSuite, ...] = ()
    server_preference: bool | None = None  # server enforces its own suite order


@dataclass(frozen=True)
class Certificate:
    subject: str  # RFC 4514 string
    issuer: str
    serial: str  # hex
    not_before: str  # RFC 3339 UTC
    not_after: str
    san_dns: tuple[str, ...] = ()
    san_ip: tuple[str, ...] = ()
    key_type: str = ""  # RSA, EC, Ed25519, Ed448, DSA
    key_bits: int = 0
    curve: str | None = None
    signature_hash: str | None = None  # sha256, sha1, md5; None for Ed25519
    self_signed: bool = False
    is_ca: bool = False
    sha256_fingerprint: str = ""  # hex of the DER
    spki_sha256: str = ""  # base64 of SHA-256(SubjectPublicKeyInfo), as in HPKP/pins


@dataclass(frozen=True)
class CertificateChecks:
    chain: tuple[Certificate, ...]  # as the server sent it, leaf first
    name_checked: str  # the host name or IP address the leaf was matched against
    hostname_matches: bool | None = None
    # Trust: a path from the leaf to an anchor that the X.509 path validator accepts
    # (signatures, basicConstraints, keyUsage, pathLen, name constraints, EKU), judged
    # at a time inside the leaf's validity and without the name (both judged apart).
    trusted_system: bool | None = None  # verified against the system trust store
    trusted_custom: bool | None = None  # against --ca-bundle; None when not given
    # True: the sent certificates reach an anchor or a self-signed root; False: an
    # issuer is known (a store, the bundle, an AIA pointer) but was not sent; None: the
    # issuer is unknown everywhere.
    chain_complete: bool | None = None
    verify_errors: tuple[str, ...] = ()  # what the validator said, for evidence only
    trust_errors: tuple[str, ...] = ()  # why a store refused the path, "<store>: <why>"
    issuer_fault: str | None = None  # one of ISSUER_FAULTS; None when none was seen


@dataclass(frozen=True)
class VulnChecks:
    heartbleed: bool | None = None
    ccs_injection: bool | None = None
    robot: str | None = None  # sslyze's ROBOT result name, e.g. NOT_VULNERABLE_NO_ORACLE
    secure_renegotiation: bool | None = None
    client_renegotiation: bool | None = None  # client-initiated renegotiation accepted
    compression: bool | None = None
    fallback_scsv: bool | None = None  # server supports TLS_FALLBACK_SCSV
    early_data: bool | None = None
    extended_master_secret: bool | None = None


@dataclass(frozen=True)
class NegotiationCheck:
    """The same server asked with a modern ClientHello (supported_versions) and with
    per-version legacy hellos; a disagreement is its own finding."""

    modern_version: str | None
    legacy_versions: tuple[str, ...]
    agree: bool | None  # None: a version that decides it was not determined


@dataclass(frozen=True)
class HttpInfo:
    """Present when the endpoint answered an HTTP request over TLS (a web UI or API),
    so HSTS (RFC 6797) applies to it."""

    hsts: str | None = None  # Strict-Transport-Security header value
    redirected_to: str | None = None  # where the server redirected ``GET /``


@dataclass(frozen=True)
class TlsObservation:
    protocols: tuple[ProtocolSupport, ...] = ()
    groups: tuple[str, ...] = ()  # supported key-exchange groups, e.g. X25519, secp256r1
    certificate: CertificateChecks | None = None
    vulns: VulnChecks = field(default_factory=VulnChecks)
    negotiation: NegotiationCheck | None = None
    http: HttpInfo | None = None
    preface: str | None = None  # plaintext line before TLS (ESXi authd 902)
    enumeration: str = "elimination"  # or "per-suite" (fallback for fragile servers)
    not_determined: tuple[str, ...] = ()  # checks that failed even after a retry

    def accepted_versions(self) -> tuple[str, ...]:
        return tuple(p.version for p in self.protocols if p.accepted)

    def all_suites(self) -> tuple[CipherSuite, ...]:
        return tuple(s for p in self.protocols if p.accepted for s in p.cipher_suites)
