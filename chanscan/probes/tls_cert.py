"""Certificate analysis: turn the DER chain a server sent into ``CertificateChecks``.

Entry point for the TLS probe::

    certificate_checks(chain_der, name_checked, *, ca_bundle=None, now=None)
        -> chanscan.obs.tls.CertificateChecks

``chain_der`` is the chain exactly as received (leaf first, DER bytes each);
``name_checked`` is ``Endpoint.server_name`` or, when scanned by address, the IP
literal (matched against iPAddress SANs only, RFC 9525 6.3 / RFC 5280 4.2.1.6).

Trust is decided by ``cryptography``'s X.509 path validator (``_verifier``), so the CA
constraints (basicConstraints cA and pathLenConstraint, keyUsage keyCertSign, name
constraints, extendedKeyUsage serverAuth) are enforced by the library. One chain can
still carry several faults at once (self-signed *and* expired *and* name mismatch):
the path is judged at a time inside the leaf's validity and without the name, and the
rules judge dates and the name apart from the recorded fields. The strict WebPKI
verifier is also run at the scan's time with the name, for ``verify_errors`` evidence.

Pure apart from reading the trust stores (sslyze's bundled Mozilla NSS store and the
user's ``--ca-bundle``); never touches the network.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import ipaddress
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from chanscan.errors import ProtocolError
from chanscan.obs.tls import Certificate, CertificateChecks

__all__ = ["TrustAnchors", "certificate_checks", "describe", "load_anchors", "system_anchors"]

# RFC 3279 2.2.1 OIDs cryptography no longer maps to a hash object.
_LEGACY_SIGNATURE_HASHES = {
    "1.2.840.113549.1.1.2": "md2",
    "1.2.840.113549.1.1.3": "md4",
    "1.2.840.113549.1.1.4": "md5",
}

# Bounded path building: real chains are 2-4 long; a loop in a hostile chain stops here.
_MAX_PATH = 10


@dataclass(frozen=True)
class TrustAnchors:
    """Root certificates indexed by subject for issuer lookup."""

    by_subject: dict[bytes, tuple[x509.Certificate, ...]]
    store: Store | None

    def issuers_of(self, cert: x509.Certificate) -> tuple[x509.Certificate, ...]:
        return self.by_subject.get(cert.issuer.public_bytes(), ())

    def contains(self, cert: x509.Certificate) -> bool:
        return any(a == cert for a in self.by_subject.get(cert.subject.public_bytes(), ()))


def _index(certs: Iterable[x509.Certificate]) -> TrustAnchors:
    by_subject: dict[bytes, list[x509.Certificate]] = {}
    kept: list[x509.Certificate] = []
    for c in certs:
        by_subject.setdefault(c.subject.public_bytes(), []).append(c)
        kept.append(c)
    return TrustAnchors(
        by_subject={k: tuple(v) for k, v in by_subject.items()},
        store=Store(kept) if kept else None,
    )


def load_anchors(pem_file: Path) -> TrustAnchors:
    """Every certificate in a PEM bundle becomes an anchor (a VMCA root, or an ESXi
    self-signed leaf the user chose to pin)."""
    return _load_anchors_cached(pem_file.resolve(), pem_file.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_anchors_cached(pem_file: Path, _mtime: int) -> TrustAnchors:
    try:
        with warnings.catch_warnings():
            # Mozilla's store still holds a root with a negative serial (see _load_der).
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certs = x509.load_pem_x509_certificates(pem_file.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{pem_file}: no readable PEM certificate ({exc})") from exc
    return _index(certs)


@functools.lru_cache(maxsize=1)
def system_anchors() -> TrustAnchors:
    """sslyze's bundled Mozilla NSS store: the same roots sslyze and browsers use, and
    the same on every machine (the OS store varies)."""
    # The file itself rather than TrustStoresRepository.get_default(), which parses all
    # six bundled stores to hand out one.
    from sslyze.plugins.certificate_info import trust_stores

    return load_anchors(Path(trust_stores.__file__).parent / "pem_files" / "mozilla_nss.pem")


def certificate_checks(
    chain_der: Sequence[bytes],
    name_checked: str,
    *,
    ca_bundle: Path | None = None,
    now: datetime | None = None,
    system: TrustAnchors | None = None,
) -> CertificateChecks:
    """Analyse the chain a server sent.

    ``now`` is the scan's clock: the evidence validator runs at it, the path is judged
    at it moved inside the certificates' validity (time faults are judged by the rules
    from ``not_before``/``not_after``); ``system`` overrides the system store (tests).
    Raises :class:`ProtocolError` when the chain is empty or the leaf is not a
    parseable X.509 certificate; unparseable extra certificates are skipped and
    named in ``verify_errors``.
    """
    with warnings.catch_warnings():
        # Appliances (and one Mozilla root) carry negative serials; cryptography warns
        # on parsing and on reading them, and a warning must not abort a scan (or a
        # test run with warnings as errors).
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _analyse(chain_der, name_checked, ca_bundle, now, system)


def _analyse(
    chain_der: Sequence[bytes],
    name_checked: str,
    ca_bundle: Path | None,
    now: datetime | None,
    system: TrustAnchors | None,
) -> CertificateChecks:
    if not chain_der:
        raise ProtocolError("server sent no certificate")
    try:
        leaf = x509.load_der_x509_certificate(chain_der[0])
    except ValueError as exc:
        raise ProtocolError(f"server certificate is not valid X.509: {exc}") from exc
    errors: list[str] = []
    chain = [leaf]
    for i, der in enumerate(chain_der[1:], start=1):
        try:
            chain.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            errors.append(f"certificate #{i} in the chain is not valid X.509: {exc}")

    sys_anchors = system if system is not None else system_anchors()
    custom = load_anchors(ca_bundle) if ca_bundle is not None else None
    when = now if now is not None else datetime.now(UTC)

    sys_verdict = _judge(chain, sys_anchors, when, "system store")
    custom_verdict = _judge(chain, custom, when, "--ca-bundle") if custom else None
    verdicts = [v for v in (sys_verdict, custom_verdict) if v is not None]
    errors.extend(_evidence(chain, name_checked, sys_anchors, when, "system store"))
    if custom is not None:
        errors.extend(_evidence(chain, name_checked, custom, when, "--ca-bundle"))

    matches, how = hostname_matches(leaf, name_checked)
    if how:
        errors.append(how)
    return CertificateChecks(
        chain=tuple(describe(c) for c in chain),
        name_checked=name_checked,
        hostname_matches=matches,
        trusted_system=sys_verdict.trusted,
        trusted_custom=None if custom_verdict is None else custom_verdict.trusted,
        chain_complete=_chain_complete(
            chain, [sys_anchors] if custom is None else [sys_anchors, custom]
        ),
        verify_errors=tuple(errors),
        trust_errors=tuple(v.error for v in verdicts if v.error is not None),
        issuer_fault=next((v.fault for v in verdicts if v.fault is not None), None),
    )


# -- one certificate -------------------------------------------------------------------


def describe(cert: x509.Certificate) -> Certificate:
    key_type, key_bits, curve = _key_info(cert)
    san_dns: tuple[str, ...] = ()
    san_ip: tuple[str, ...] = ()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san_dns = tuple(san.get_values_for_type(x509.DNSName))
        san_ip = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except (x509.ExtensionNotFound, ValueError):
        pass
    is_ca = False
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return Certificate(
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        serial=format(cert.serial_number, "x"),
        not_before=_rfc3339(cert.not_valid_before_utc),
        not_after=_rfc3339(cert.not_valid_after_utc),
        san_dns=san_dns,
        san_ip=san_ip,
        key_type=key_type,
        key_bits=key_bits,
        curve=curve,
        signature_hash=_signature_hash(cert),
        self_signed=is_self_signed(cert),
        is_ca=is_ca,
        sha256_fingerprint=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        spki_sha256=base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii"),
    )


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except ValueError:  # undecodable attribute values in a hostile certificate
        return repr(name)


def _rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key_info(cert: x509.Certificate) -> tuple[str, int, str | None]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return ("unknown", 0, None)
    if isinstance(key, rsa.RSAPublicKey):
        return ("RSA", key.key_size, None)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("EC", key.curve.key_size, key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("Ed25519", 256, None)
    if isinstance(key, ed448.Ed448PublicKey):
        return ("Ed448", 456, None)
    if isinstance(key, dsa.DSAPublicKey):
        return ("DSA", key.key_size, None)
    return (type(key).__name__, 0, None)


def _signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algo = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        # e.g. md2WithRSAEncryption: name it anyway so the rules still see it.
        oid = cert.signature_algorithm_oid.dotted_string
        return _LEGACY_SIGNATURE_HASHES.get(oid, oid)
    return None if algo is None else algo.name


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer``'s key verifies ``cert``'s signature. Done by hand rather than with
    ``verify_directly_issued_by``, which refuses SHA-1: a SHA-1 chain is still a chain,
    and its weakness is its own finding."""
    if cert.issuer != issuer.subject:
        return False
    try:
        key = issuer.public_key()
        tbs, sig = cert.tbs_certificate_bytes, cert.signature
        params = cert.signature_algorithm_parameters
        algo = cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and isinstance(params, padding.AsymmetricPadding):
            if algo is None:
                return False
            key.verify(sig, tbs, params, algo)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(sig, tbs, params)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(sig, tbs)
        elif isinstance(key, dsa.DSAPublicKey) and algo is not None:
            key.verify(sig, tbs, algo)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject *and* the certificate's own key verifies its signature
    (a matching name alone is only self-issued, RFC 5280 3.2)."""
    return _signed_by(cert, cert)


# -- trust: cryptography's path validator ---------------------------------------------

# Longest text kept per store in ``trust_errors`` (the validator quotes certificates).
_MAX_ERROR = 240

# Texts of this module's own validators, and the library's for the constraints it
# checks itself (cryptography < 47, tested by tests/test_tls_cert.py), by fault.
_KEY_CERT_SIGN = "keyUsage of an issuing certificate does not assert keyCertSign"
_CA_EKU = "extendedKeyUsage of an issuing certificate excludes serverAuth"
_LEAF_EKU = "extendedKeyUsage of the leaf excludes serverAuth"
_FAULT_TEXTS: tuple[tuple[str, str], ...] = (
    ("basicConstraints.cA must be asserted", "not_ca"),
    ("keyUsage.keyCertSign must be asserted", "no_key_cert_sign"),
    (_KEY_CERT_SIGN, "no_key_cert_sign"),
    ("path length constraint", "path_length"),
    ("name constraint", "name_constraints"),
    (_CA_EKU, "eku"),
)
_SERVER_EKUS = frozenset(
    {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
)


def _ca_key_usage(_p: Policy, _c: x509.Certificate, ku: x509.KeyUsage | None) -> None:
    # RFC 5280 6.1.4 (n): checked when present. Private roots made with a plain
    # `openssl req -x509` carry no keyUsage and are still CAs (the library's WebPKI
    # default would require the extension).
    if ku is not None and not ku.key_cert_sign:
        raise ValueError(_KEY_CERT_SIGN)


def _ca_eku(_p: Policy, _c: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    if eku is not None and not _SERVER_EKUS & set(eku):
        raise ValueError(_CA_EKU)


def _leaf_eku(_p: Policy, _c: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    if eku is not None and not _SERVER_EKUS & set(eku):
        raise ValueError(_LEAF_EKU)


def _verifier(store: Store, when: datetime) -> ClientVerifier:
    """RFC 5280 path validation of a TLS server certificate, without the name.

    The client verifier is used because the server one insists on matching a name; its
    clientAuth EKU check is replaced by serverAuth. Relaxed from the CA/B Forum
    profile, so a private PKI that RFC 5280 accepts is not called untrusted: no
    subjectAltName or authorityKeyIdentifier required, basicConstraints of any
    criticality (cA and pathLenConstraint stay enforced by the library), the leaf's
    own basicConstraints and keyUsage not judged. Signature algorithms stay the
    library's (SHA-256 or better; RSA issuers of 2048 bits or more)."""
    agnostic = Criticality.AGNOSTIC
    ca = (
        ExtensionPolicy.webpki_defaults_ca()
        .require_present(x509.BasicConstraints, agnostic, None)
        .may_be_present(x509.KeyUsage, agnostic, _ca_key_usage)
        .may_be_present(x509.ExtendedKeyUsage, agnostic, _ca_eku)
        .may_be_present(x509.AuthorityKeyIdentifier, agnostic, None)
    )
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, agnostic, None)
        .may_be_present(x509.AuthorityKeyIdentifier, agnostic, None)
        .may_be_present(x509.BasicConstraints, agnostic, None)
        .may_be_present(x509.KeyUsage, agnostic, None)
        .may_be_present(x509.ExtendedKeyUsage, agnostic, _leaf_eku)
    )
    return (
        PolicyBuilder()
        .store(store)
        .time(when)
        .extension_policies(ca_policy=ca, ee_policy=ee)
        .build_client_verifier()
    )


@dataclass(frozen=True)
class _Verdict:
    trusted: bool
    error: str | None = None  # "<store>: <why>", capped
    fault: str | None = None  # one of chanscan.obs.tls.ISSUER_FAULTS


def _judge(
    chain: Sequence[x509.Certificate], anchors: TrustAnchors, now: datetime, label: str
) -> _Verdict:
    """Does the validator build a path from the leaf, through the sent certificates, to
    an anchor in ``anchors``? A leaf that is itself in the bundle is pinned: trusted."""
    if anchors.contains(chain[0]):
        return _Verdict(True)
    if anchors.store is None:
        return _Verdict(False, f"{label}: no anchors")
    # A root the server sent is never an anchor (clients use their own copy) and, as
    # an intermediate, only sends the path builder round in circles to its depth limit.
    sent = [c for c in chain[1:] if not is_self_signed(c)]
    try:
        verifier = _verifier(anchors.store, _judging_time(chain, anchors, now))
        text = _refusal(verifier, chain[0], sent)
        if text is None:
            return _Verdict(True)
        fault = _fault(text)
        linked = [c for c in _walk(chain)[1:] if not is_self_signed(c)]
        if fault is not None and len(linked) < len(sent):
            # The validator weighs a candidate issuer's constraints before its
            # signature: blame only certificates that signed something in the chain.
            again = _refusal(verifier, chain[0], linked)
            if again is None:
                return _Verdict(True)
            text, fault = again, _fault(again)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return _Verdict(False, _cap(f"{label}: cannot validate ({exc})"))
    if fault is None and "no interior errors" in text:
        # No candidate issuer at all: say which one is missing.
        top = _walk(chain)[-1]
        text = (
            f"self-signed and not an anchor: {_name(top.subject)}"
            if is_self_signed(top)
            else f"issuer not found: {_name(top.issuer)}"
        )
    return _Verdict(False, _cap(f"{label}: {text}"), fault)


def _refusal(
    verifier: ClientVerifier, leaf: x509.Certificate, pool: list[x509.Certificate]
) -> str | None:
    """The validator's reason for refusing every path, or None when one is accepted."""
    try:
        verifier.verify(leaf, pool)
    except VerificationError as exc:
        return str(exc)
    return None


def _fault(text: str) -> str | None:
    return next((f for needle, f in _FAULT_TEXTS if needle in text), None)


def _cap(text: str) -> str:
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


def _judging_time(
    chain: Sequence[x509.Certificate], anchors: TrustAnchors, now: datetime
) -> datetime:
    """The scan's time moved inside the validity of the leaf, the intermediates sent
    and the anchors that could issue them (the leaf's and the intermediates' when they
    do not overlap; the leaf's alone last), so that an expired or not-yet-valid
    certificate is a date finding, not a trust one."""
    sent = [chain[0], *(c for c in chain[1:] if not is_self_signed(c))]
    roots = [a for c in chain for a in anchors.issuers_of(c)]
    for group in (sent + roots, sent, sent[:1]):
        start = max(c.not_valid_before_utc for c in group)
        end = min(c.not_valid_after_utc for c in group)
        if start <= end:
            return min(max(now, start), end)
    return now


# -- completeness: what the server sent, linked by names and signatures ----------------


def _walk(chain: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Follow issuers from the leaf through what the server sent (in any order, since
    some servers send the chain shuffled), stopping at a self-signed certificate or
    where the next issuer is missing. Linkage only: trust is the validator's."""
    path = [chain[0]]
    pool = list(chain[1:])
    while len(path) < _MAX_PATH and not is_self_signed(path[-1]):
        nxt = next((c for c in pool if _signed_by(path[-1], c)), None)
        if nxt is None:
            break
        pool.remove(nxt)
        path.append(nxt)
    return path


def _chain_complete(
    chain: Sequence[x509.Certificate], stores: Sequence[TrustAnchors]
) -> bool | None:
    """True when the sent certificates reach a self-signed certificate, an anchor, or a
    certificate a self-signed anchor signed, without fetching anything. False when the
    missing issuer is known but was not sent: an intermediate in a store or the
    bundle, or one the top certificate names for download (AIA caIssuers, RFC 5280
    4.2.2.1). None when the issuer is unknown everywhere (a private CA's leaf: the
    missing issuer may be a root the server rightly omits, RFC 8446 4.4.2)."""
    last = _walk(chain)[-1]
    if is_self_signed(last) or any(s.contains(last) for s in stores):
        return True
    issuers = [a for s in stores for a in s.issuers_of(last) if _signed_by(last, a)]
    if any(is_self_signed(a) for a in issuers):
        return True
    if issuers or _has_ca_issuers(last):
        return False
    return None


def _has_ca_issuers(cert: x509.Certificate) -> bool:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return any(d.access_method == AuthorityInformationAccessOID.CA_ISSUERS for d in aia)


def _evidence(
    chain: Sequence[x509.Certificate],
    name: str,
    anchors: TrustAnchors,
    when: datetime,
    label: str,
) -> list[str]:
    """What the strict WebPKI validator says, for the report's evidence only."""
    if anchors.store is None:
        return []
    try:
        ip = ipaddress.ip_address(name)
        subject: x509.DNSName | x509.IPAddress = x509.IPAddress(ip)
    except ValueError:
        subject = x509.DNSName(name)
    try:
        verifier = PolicyBuilder().store(anchors.store).time(when).build_server_verifier(subject)
        verifier.verify(chain[0], list(chain[1:]))
    except VerificationError as exc:
        return [f"{label}: {exc}"]
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return [f"{label}: cannot validate ({exc})"]
    return []


# -- names -----------------------------------------------------------------------------


def hostname_matches(cert: x509.Certificate, name: str) -> tuple[bool, str]:
    """Match ``name`` against the leaf per RFC 9525: DNS names against dNSName SANs
    (wildcard only as the whole left-most label), IP literals against iPAddress SANs.
    The subject CN is not used (RFC 9525 6.3); a match only by CN is reported as a
    mismatch with a note, since current browsers and Python's ssl refuse it too."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        ips = san.get_values_for_type(x509.IPAddress)
    except (x509.ExtensionNotFound, ValueError):
        dns, ips = [], []
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is not None:
        if any(ip == a for a in ips):
            return True, ""
        return False, f"no iPAddress SAN equals {name}"
    if any(_dns_match(p, name) for p in dns):
        return True, ""
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if any(isinstance(cn, str) and _dns_match(cn, name) for cn in cns):
        return False, f"{name} matches only the subject CN, which RFC 9525 6.3 ignores"
    return False, f"no dNSName SAN matches {name}"


def _dns_match(pattern: str, name: str) -> bool:
    p = pattern.strip().rstrip(".").lower()
    n = name.strip().rstrip(".").lower()
    if not p or not n:
        return False
    if p.startswith("*."):
        # RFC 9525 6.3: '*' is the complete left-most label and matches exactly one.
        head, _, rest = n.partition(".")
        return bool(head) and rest == p[2:] and "." in p[2:]
    return p == n
