"""Certificates for lab servers and certificate tests, including the bad ones trustme
refuses to make (RSA-1024, SHA-1 signatures, expired, not yet valid, long-lived) and
CA certificates that break their own constraints (no keyCertSign, a pathLenConstraint,
name constraints, a leaf used as an issuer: ``leaf_signed_by``).

Everything is generated fresh in memory with ``cryptography``; nothing here is a
real CA. Lab TLS servers that must present a weak key or a SHA-1 signature have to
lower OpenSSL's security level (``ctx.set_ciphers("DEFAULT:@SECLEVEL=0")``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

__all__ = ["Issued", "LabCA", "leaf_signed_by", "new_key", "self_signed"]


def new_key(kind: str = "ec", bits: int = 256) -> PrivateKey:
    """``kind`` is "rsa" (bits = modulus size) or "ec" (bits 256/384 -> P-256/P-384)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    curve: ec.EllipticCurve = ec.SECP384R1() if bits == 384 else ec.SECP256R1()
    return ec.generate_private_key(curve)


@dataclass(frozen=True)
class Issued:
    """A certificate with its key, in the forms servers and tests want."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, directory: Path, stem: str, chain: Sequence[Issued] = ()) -> tuple[Path, Path]:
        """Write ``stem.crt`` (this certificate then ``chain``) and ``stem.key``."""
        crt = directory / f"{stem}.crt"
        key = directory / f"{stem}.key"
        crt.write_bytes(self.pem + b"".join(c.pem for c in chain))
        key.write_bytes(self.key_pem)
        return crt, key


def _name(cn: str, org_unit: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chanscan lab")]
    if org_unit is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, org_unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for n in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            general.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(general)


def _window(
    not_before: datetime | None, not_after: datetime | None, days: int
) -> tuple[datetime, datetime]:
    start = not_before or datetime.now(UTC) - timedelta(hours=1)
    return start, not_after or start + timedelta(days=days)


def _sign(builder: x509.CertificateBuilder, key: PrivateKey, hash_name: str) -> x509.Certificate:
    if hash_name == "sha1":
        return _sign_sha1(builder, key)
    if hash_name == "sha384":
        return builder.sign(key, hashes.SHA384())
    return builder.sign(key, hashes.SHA256())


# DER of the AlgorithmIdentifier OIDs (RFC 4055 / RFC 3279): same length, so one can be
# swapped for the other inside an encoded tbsCertificate.
_OID_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
_OID_SHA1_RSA = bytes.fromhex("06092a864886f70d010105")


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _sign_sha1(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    """cryptography refuses to sign certificates with SHA-1 since 41; the lab needs
    such certificates (old ESXi and iDRAC ones), so sign with SHA-256, swap the
    algorithm OID in the tbsCertificate and sign those bytes with SHA-1 (RSA only)."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("SHA-1 lab certificates need an RSA key")
    tbs = builder.sign(key, hashes.SHA256()).tbs_certificate_bytes
    if tbs.count(_OID_SHA256_RSA) != 1:
        raise ValueError("unexpected tbsCertificate layout")
    tbs = tbs.replace(_OID_SHA256_RSA, _OID_SHA1_RSA)
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der(0x30, _OID_SHA1_RSA + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


class LabCA:
    """A private CA (root or intermediate) that issues leaves and child CAs.

    ``key_cert_sign=False`` leaves keyCertSign out of keyUsage, ``path_length`` sets
    basicConstraints pathLenConstraint, ``permitted_dns`` adds a critical
    nameConstraints extension with those dNSName subtrees and ``extended_key_usage`` an
    EKU extension (RFC 5280 4.2.1.3, 4.2.1.9, 4.2.1.10, 4.2.1.12): the lab's
    constraint-breaking issuers."""

    def __init__(
        self,
        cn: str = "chanscan lab root",
        *,
        parent: LabCA | None = None,
        key: PrivateKey | None = None,
        hash_name: str = "sha256",
        days: int = 3650,
        not_before: datetime | None = None,
        key_cert_sign: bool = True,
        path_length: int | None = None,
        permitted_dns: Sequence[str] = (),
        extended_key_usage: Sequence[x509.ObjectIdentifier] = (),
    ) -> None:
        self.key = key or new_key()
        self.parent = parent
        start, end = _window(not_before, None, days)
        signer_key = parent.key if parent else self.key
        issuer = parent.cert.subject if parent else _name(cn)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(issuer)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=key_cert_sign,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
        )
        if permitted_dns:
            builder = builder.add_extension(
                x509.NameConstraints(
                    permitted_subtrees=[x509.DNSName(d) for d in permitted_dns],
                    excluded_subtrees=None,
                ),
                critical=True,
            )
        if extended_key_usage:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
            )
        if parent is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()),
                critical=False,
            )
        self.cert: x509.Certificate = _sign(builder, signer_key, hash_name)

    @property
    def issued(self) -> Issued:
        return Issued(self.cert, self.key)

    def child(
        self,
        cn: str = "chanscan lab intermediate",
        *,
        key_cert_sign: bool = True,
        path_length: int | None = None,
        permitted_dns: Sequence[str] = (),
        extended_key_usage: Sequence[x509.ObjectIdentifier] = (),
    ) -> LabCA:
        """An intermediate valid from this CA's own notBefore."""
        return LabCA(
            cn,
            parent=self,
            not_before=self.cert.not_valid_before_utc,
            key_cert_sign=key_cert_sign,
            path_length=path_length,
            permitted_dns=permitted_dns,
            extended_key_usage=extended_key_usage,
        )

    def issue(
        self,
        *names: str,
        key: PrivateKey | None = None,
        hash_name: str = "sha256",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        days: int = 90,
        aia_url: str | None = None,
    ) -> Issued:
        """A server certificate for ``names`` (DNS names or IP literals, as SANs)."""
        leaf_key = key or new_key()
        start, end = _window(not_before, not_after, days)
        builder = _leaf_builder(names, leaf_key, start, end).issuer_name(self.cert.subject)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
            critical=False,
        )
        if aia_url is not None:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(aia_url),
                        )
                    ]
                ),
                critical=False,
            )
        return Issued(_sign(builder, self.key, hash_name), leaf_key)

    def write_bundle(self, directory: Path) -> Path:
        """The CA certificate as a PEM file, for ``--ca-bundle``."""
        path = directory / "ca.pem"
        path.write_bytes(self.issued.pem)
        return path


def _leaf_builder(
    names: Sequence[str],
    key: PrivateKey,
    start: datetime,
    end: datetime,
    org_unit: str | None = None,
) -> x509.CertificateBuilder:
    cn = names[0] if names else "chanscan lab server"
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, org_unit))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return builder


def self_signed(
    *names: str,
    key: PrivateKey | None = None,
    hash_name: str = "sha256",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    days: int = 90,
    org_unit: str | None = None,
) -> Issued:
    """A self-signed server certificate, as ESXi and XenServer ship out of the box
    (ESXi's carries ``OU=VMware ESX Server Default Certificate``)."""
    k = key or new_key()
    start, end = _window(not_before, not_after, days)
    cn = names[0] if names else "chanscan lab server"
    builder = _leaf_builder(names, k, start, end, org_unit).issuer_name(_name(cn, org_unit))
    return Issued(_sign(builder, k, hash_name), k)


def leaf_signed_by(issuer: Issued, *names: str, days: int = 90) -> Issued:
    """A server certificate for ``names`` signed with another *leaf's* key: the
    sslsniff interception (CVE-2002-0862). ``issuer`` says basicConstraints cA=FALSE,
    so no conforming client may accept what it signs (RFC 5280 4.2.1.9)."""
    leaf_key = new_key()
    start, end = _window(None, None, days)
    builder = (
        _leaf_builder(names, leaf_key, start, end)
        .issuer_name(issuer.cert.subject)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    return Issued(_sign(builder, issuer.key, "sha256"), leaf_key)
