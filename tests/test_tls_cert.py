"""Certificate analysis from DER chains: each fault from the certificate itself."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from chanscan.errors import ProtocolError
from chanscan.lab.certs import Issued, LabCA, leaf_signed_by, new_key, self_signed
from chanscan.obs.tls import ISSUER_FAULTS, TlsObservation
from chanscan.probes.tls_cert import certificate_checks, system_anchors
from chanscan.rules import tls as rules

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def root() -> LabCA:
    return LabCA("test root", not_before=NOW - timedelta(days=365))


@pytest.fixture(scope="module")
def bundle(root: LabCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return root.write_bundle(tmp_path_factory.mktemp("bundle"))


def test_self_signed_rsa1024_sha1_expired() -> None:
    """The classic old ESXi certificate: every fault recorded at once."""
    cert = self_signed(
        "esx01.example",
        key=new_key("rsa", 1024),
        hash_name="sha1",
        not_before=NOW - timedelta(days=800),
        not_after=NOW - timedelta(days=35),
    )
    checks = certificate_checks([cert.der], "esx01.example", now=NOW)
    leaf = checks.chain[0]
    assert leaf.self_signed is True
    assert (leaf.key_type, leaf.key_bits, leaf.curve) == ("RSA", 1024, None)
    assert leaf.signature_hash == "sha1"
    assert leaf.not_after == (NOW - timedelta(days=35)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert checks.trusted_system is False
    assert checks.trusted_custom is None  # no --ca-bundle given
    assert checks.trust_errors == (
        "system store: self-signed and not an anchor: CN=esx01.example,O=chanscan lab",
    )
    assert checks.chain_complete is True  # a self-signed certificate needs nothing more
    assert checks.hostname_matches is True
    assert any(e.startswith("system store:") for e in checks.verify_errors)


def test_ec_leaf_fields_and_fingerprints(root: LabCA) -> None:
    issued = root.issue("vc.example", "192.0.2.10", days=90)
    leaf = certificate_checks([issued.der], "vc.example", now=NOW).chain[0]
    assert (leaf.key_type, leaf.key_bits, leaf.curve) == ("EC", 256, "secp256r1")
    assert leaf.signature_hash == "sha256"
    assert leaf.san_dns == ("vc.example",)
    assert leaf.san_ip == ("192.0.2.10",)
    assert leaf.self_signed is False and leaf.is_ca is False
    assert leaf.subject == "CN=vc.example,O=chanscan lab"
    assert leaf.issuer == "CN=test root,O=chanscan lab"
    assert int(leaf.serial, 16) == issued.cert.serial_number
    assert leaf.sha256_fingerprint == hashlib.sha256(issued.der).hexdigest()
    spki = issued.cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert base64.b64decode(leaf.spki_sha256) == hashlib.sha256(spki).digest()


@pytest.mark.needs_openssl
def test_fingerprint_agrees_with_openssl(root: LabCA, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    issued = root.issue("vc.example")
    pem = tmp_path / "leaf.pem"
    pem.write_bytes(issued.pem)
    out = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    expected = out.strip().split("=", 1)[1].replace(":", "").lower()
    assert certificate_checks([issued.der], "vc.example").chain[0].sha256_fingerprint == expected


def test_private_ca_without_and_with_bundle(root: LabCA, bundle: Path) -> None:
    issued = root.issue("vc.example")
    without = certificate_checks([issued.der], "vc.example", now=NOW)
    assert without.trusted_system is False
    assert without.trusted_custom is None
    # Root omitted (as servers should) or intermediate missing: cannot be told apart.
    assert without.chain_complete is None
    assert without.trust_errors == ("system store: issuer not found: CN=test root,O=chanscan lab",)
    with_bundle = certificate_checks([issued.der], "vc.example", ca_bundle=bundle, now=NOW)
    assert with_bundle.trusted_system is False
    assert with_bundle.trusted_custom is True
    assert with_bundle.chain_complete is True
    assert with_bundle.chain[0].self_signed is False


def test_bundle_trust_ignores_dates_which_rules_judge(root: LabCA, bundle: Path) -> None:
    issued = root.issue("vc.example", not_before=NOW - timedelta(days=100), days=30)
    checks = certificate_checks([issued.der], "vc.example", ca_bundle=bundle, now=NOW)
    assert checks.trusted_custom is True
    assert any(e.startswith("--ca-bundle:") for e in checks.verify_errors)


def test_missing_intermediate(root: LabCA, bundle: Path, tmp_path: Path) -> None:
    inter = root.child("test intermediate")
    issued = inter.issue("vc.example")
    alone = certificate_checks([issued.der], "vc.example", ca_bundle=bundle, now=NOW)
    assert alone.trusted_custom is False
    # The bundle holds only the root: the leaf's issuer is unknown everywhere, and a
    # missing intermediate cannot be told from a leaf of some other private CA.
    assert alone.chain_complete is None
    both = tmp_path / "root-and-intermediate.pem"
    both.write_bytes(root.issued.pem + inter.issued.pem)
    known = certificate_checks([issued.der], "vc.example", ca_bundle=both, now=NOW)
    assert known.chain_complete is False  # the issuer is known (bundle) but not sent
    full = certificate_checks(
        [issued.der, inter.issued.der], "vc.example", ca_bundle=bundle, now=NOW
    )
    assert full.chain_complete is True
    assert full.trusted_custom is True
    assert len(full.trust_errors) == 1 and full.trust_errors[0].startswith("system store: ")
    assert full.issuer_fault is None
    assert len(full.chain) == 2 and full.chain[1].is_ca is True


def test_shuffled_chain_still_builds(root: LabCA, bundle: Path) -> None:
    inter = root.child("test intermediate")
    issued = inter.issue("vc.example")
    chain = [issued.der, root.issued.der, inter.issued.der]
    checks = certificate_checks(chain, "vc.example", ca_bundle=bundle, now=NOW)
    assert checks.trusted_custom is True and checks.chain_complete is True
    # The sent root is not an anchor of the system store, nor a way around it.
    assert checks.trust_errors == (
        "system store: self-signed and not an anchor: CN=test root,O=chanscan lab",
    )
    assert checks.chain[1].self_signed is True  # recorded as sent: the root came second


def test_aia_pointer_marks_missing_intermediate_without_bundle(root: LabCA) -> None:
    inter = root.child("test intermediate")
    issued = inter.issue("vc.example", aia_url="http://ca.example/inter.crt")
    assert certificate_checks([issued.der], "vc.example").chain_complete is False


def test_pinned_self_signed_leaf_in_bundle_is_trusted(tmp_path: Path) -> None:
    cert = self_signed("esx01.example")
    pem = tmp_path / "pinned.pem"
    pem.write_bytes(cert.pem)
    checks = certificate_checks([cert.der], "esx01.example", ca_bundle=pem, now=NOW)
    assert checks.trusted_custom is True
    assert checks.chain[0].self_signed is True


def test_forged_issuer_name_is_not_trusted(root: LabCA, bundle: Path) -> None:
    """Same issuer name, different key: names alone never make a path."""
    impostor = LabCA("test root")
    issued = impostor.issue("vc.example")
    checks = certificate_checks([issued.der], "vc.example", ca_bundle=bundle, now=NOW)
    assert checks.trusted_custom is False
    assert checks.issuer_fault is None
    # The name is known, the key is not: the real issuer is unknown everywhere.
    assert checks.chain_complete is None


@pytest.mark.parametrize(
    ("names", "checked", "expected"),
    [
        (("vc.example",), "vc.example", True),
        (("vc.example",), "VC.Example.", True),
        (("vc.example",), "other.example", False),
        (("*.lab.example",), "esx1.lab.example", True),
        (("*.lab.example",), "a.b.lab.example", False),
        (("*.lab.example",), "lab.example", False),
        (("*.example",), "vc.example", False),  # no wildcard over a single label
        (("vc.example", "192.0.2.10"), "192.0.2.10", True),
        (("vc.example",), "192.0.2.10", False),
        (("192.0.2.10",), "192.0.2.11", False),
        (("2001:db8::1",), "2001:db8:0::1", True),
    ],
)
def test_hostname_match(root: LabCA, names: tuple[str, ...], checked: str, expected: bool) -> None:
    issued = root.issue(*names)
    assert certificate_checks([issued.der], checked).hostname_matches is expected


def test_ip_literal_does_not_match_dns_san_spelled_like_it(root: LabCA) -> None:
    """A dNSName "192.0.2.10" is not an iPAddress SAN (RFC 9525 6.3)."""
    cert = root.issue("vc.example").cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(root.cert.subject)
        .public_key(cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("192.0.2.10")]), False)
    )
    der = builder.sign(root.key, hashes.SHA256()).public_bytes(Encoding.DER)
    assert certificate_checks([der], "192.0.2.10").hostname_matches is False


def test_cn_only_match_is_mismatch_with_note() -> None:
    cert = self_signed()  # no SAN at all; CN "chanscan lab server"
    checks = certificate_checks([cert.der], "chanscan lab server")
    assert checks.hostname_matches is False
    assert any("subject CN" in e for e in checks.verify_errors)


def test_trustme_chain_with_intermediate(tmp_path: Path) -> None:
    ca = trustme.CA()
    child = ca.create_child_ca()
    leaf = child.issue_cert("vc.example", key_type=trustme.KeyType.RSA)
    ders = [
        x509.load_pem_x509_certificate(b.bytes()).public_bytes(Encoding.DER)
        for b in leaf.cert_chain_pems
    ]
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    checks = certificate_checks(ders, "vc.example", ca_bundle=bundle)
    assert checks.trusted_custom is True and checks.chain_complete is True
    assert checks.chain[0].key_type == "RSA" and checks.chain[0].key_bits == 2048
    assert checks.hostname_matches is True
    assert certificate_checks(ders[:1], "vc.example", ca_bundle=bundle).chain_complete is None
    child.cert_pem.write_to_path(str(bundle), append=True)
    assert certificate_checks(ders[:1], "vc.example", ca_bundle=bundle).chain_complete is False


def test_system_store_root_is_trusted() -> None:
    """The bundled Mozilla store loads and a root in it counts as trusted."""
    anchors = system_anchors()
    some_root = next(iter(anchors.by_subject.values()))[0]
    checks = certificate_checks([some_root.public_bytes(Encoding.DER)], "example.org")
    assert checks.trusted_system is True
    assert checks.chain_complete is True
    assert len(anchors.by_subject) > 100


def test_empty_or_garbage_chain_is_protocol_error(root: LabCA) -> None:
    with pytest.raises(ProtocolError):
        certificate_checks([], "vc.example")
    with pytest.raises(ProtocolError):
        certificate_checks([b"\x30\x03\x02\x01\x00"], "vc.example")
    issued = root.issue("vc.example")
    checks = certificate_checks([issued.der, b"garbage"], "vc.example")
    assert len(checks.chain) == 1
    assert any("#1" in e for e in checks.verify_errors)


# -- CA constraints: the path validator, not signatures alone --------------------------


def _leaf_by_leaf(root: LabCA) -> list[Issued]:
    """sslsniff (CVE-2002-0862): a valid leaf's key signs a certificate for a victim."""
    leaf1 = root.issue("leaf1.example")
    return [leaf_signed_by(leaf1, "vc.example"), leaf1]


def _under(inter: LabCA, name: str = "vc.example") -> list[Issued]:
    return [inter.issue(name), inter.issued]


def _too_deep(root: LabCA) -> list[Issued]:
    inter = root.child("pathlen 0", path_length=0)
    deeper = inter.child("one CA too many")
    return [deeper.issue("vc.example"), deeper.issued, inter.issued]


CONSTRAINT_CASES = {
    "leaf signed by leaf": (_leaf_by_leaf, "not_ca"),
    "intermediate without keyCertSign": (
        lambda r: _under(r.child("no keyCertSign", key_cert_sign=False)),
        "no_key_cert_sign",
    ),
    "pathLenConstraint exceeded": (_too_deep, "path_length"),
    "name constraints violated": (
        lambda r: _under(r.child("lab only", permitted_dns=["lab.example"])),
        "name_constraints",
    ),
    "issuer EKU without serverAuth": (
        lambda r: _under(
            r.child("clients only", extended_key_usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
        ),
        "eku",
    ),
}

CONTROLS = {
    "intermediate": lambda r: _under(r.child()),
    "pathLen 0 issuing a leaf": lambda r: _under(r.child("pathlen 0", path_length=0)),
    "inside name constraints": lambda r: _under(r.child("ex", permitted_dns=["example"])),
    "issuer EKU serverAuth": lambda r: _under(
        r.child("servers", extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    ),
}


@pytest.mark.parametrize("case", sorted(CONSTRAINT_CASES))
def test_constraint_violating_issuer_is_untrusted_and_named(
    root: LabCA, bundle: Path, case: str
) -> None:
    build, fault = CONSTRAINT_CASES[case]
    chain = build(root)
    checks = certificate_checks([c.der for c in chain], "vc.example", ca_bundle=bundle, now=NOW)
    assert checks.trusted_custom is False
    assert checks.issuer_fault == fault
    assert checks.chain_complete is True  # every issuer was sent, up to the anchor
    assert checks.hostname_matches is True
    assert any(e.startswith("--ca-bundle: ") for e in checks.trust_errors)
    found = {
        f.id: f for f in rules.observation_findings(TlsObservation(certificate=checks), now=NOW)
    }
    assert {"tls.cert.untrusted", "tls.cert.issuer_not_ca"} <= set(found)
    assert found["tls.cert.issuer_not_ca"].severity.value == "critical"
    evidence = " ".join(found["tls.cert.issuer_not_ca"].evidence)
    assert rules.ISSUER_FAULT_TEXT[fault] in evidence and "--ca-bundle: " in evidence


@pytest.mark.parametrize("case", sorted(CONTROLS))
def test_constraint_abiding_chain_stays_trusted(root: LabCA, bundle: Path, case: str) -> None:
    chain = CONTROLS[case](root)
    checks = certificate_checks([c.der for c in chain], "vc.example", ca_bundle=bundle, now=NOW)
    assert checks.trusted_custom is True
    assert checks.issuer_fault is None
    assert checks.chain_complete is True
    found = {f.id for f in rules.observation_findings(TlsObservation(certificate=checks), now=NOW)}
    assert not found & {"tls.cert.untrusted", "tls.cert.issuer_not_ca"}


def test_issuer_fault_texts_cover_every_fault() -> None:
    assert set(rules.ISSUER_FAULT_TEXT) == set(ISSUER_FAULTS)


def test_private_root_without_key_usage_is_a_ca(tmp_path: Path) -> None:
    """A root made with a plain `openssl req -x509` has no keyUsage; RFC 5280 6.1.4 (n)
    checks keyCertSign only when the extension is present."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "homelab root")])
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=365))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    homelab = LabCA("homelab root")
    homelab.key, homelab.cert = key, root_cert
    pem = tmp_path / "homelab.pem"
    pem.write_bytes(homelab.issued.pem)
    checks = certificate_checks(
        [homelab.issue("vc.example").der], "vc.example", ca_bundle=pem, now=NOW
    )
    assert checks.trusted_custom is True and checks.issuer_fault is None


def test_expired_misnamed_leaf_under_unknown_root_shows_every_fault() -> None:
    stranger = LabCA("stranger root", not_before=NOW - timedelta(days=365))
    leaf = stranger.issue(
        "vc.example", not_before=NOW - timedelta(days=100), not_after=NOW - timedelta(days=10)
    )
    checks = certificate_checks([leaf.der, stranger.issued.der], "other.example", now=NOW)
    assert checks.trusted_system is False and checks.issuer_fault is None
    assert checks.chain_complete is True  # the server sent its (untrusted) root
    found = {f.id for f in rules.observation_findings(TlsObservation(certificate=checks), now=NOW)}
    assert {"tls.cert.expired", "tls.cert.hostname_mismatch", "tls.cert.untrusted"} <= found
    assert "tls.cert.issuer_not_ca" not in found


def test_expired_misnamed_leaf_under_bundle_root_is_trusted_path(root: LabCA, bundle: Path) -> None:
    """Time and name are judged apart: the path itself is sound."""
    leaf = root.issue(
        "vc.example", not_before=NOW - timedelta(days=100), not_after=NOW - timedelta(days=10)
    )
    checks = certificate_checks([leaf.der], "other.example", ca_bundle=bundle, now=NOW)
    assert checks.trusted_custom is True and checks.hostname_matches is False
    found = {f.id for f in rules.observation_findings(TlsObservation(certificate=checks), now=NOW)}
    assert {"tls.cert.expired", "tls.cert.hostname_mismatch"} <= found
    assert not found & {"tls.cert.untrusted", "tls.cert.issuer_not_ca"}


def test_sha1_signed_chain_is_untrusted_with_the_reason(tmp_path: Path) -> None:
    """The validator's algorithms are the Web PKI's, as OpenSSL 3 clients' are."""
    rsa_root = LabCA("rsa root", key=new_key("rsa", 2048), not_before=NOW - timedelta(days=9))
    pem = rsa_root.write_bundle(tmp_path)
    leaf = rsa_root.issue("vc.example", hash_name="sha1")
    checks = certificate_checks([leaf.der], "vc.example", ca_bundle=pem, now=NOW)
    assert checks.trusted_custom is False and checks.issuer_fault is None
    assert any("signature algorithm" in e.lower() for e in checks.trust_errors)


def test_trust_errors_are_capped(root: LabCA, bundle: Path) -> None:
    chain = _too_deep(root)
    checks = certificate_checks([c.der for c in chain], "vc.example", ca_bundle=bundle, now=NOW)
    assert checks.trust_errors and all(len(e) <= 240 for e in checks.trust_errors)


def test_leaf_signed_by_leaf_is_named_without_any_anchor(root: LabCA) -> None:
    """The constraint is broken by what the server sent, anchored or not."""
    chain = _leaf_by_leaf(root)
    checks = certificate_checks([c.der for c in chain], "vc.example", now=NOW)
    assert checks.trusted_system is False and checks.issuer_fault == "not_ca"


def test_namesake_that_signed_nothing_is_not_blamed(root: LabCA) -> None:
    """A non-CA certificate sent beside the leaf, named like its issuer but whose key did
    not sign it, is no constraint fault: the issuer is simply missing."""
    stranger = LabCA("stranger", not_before=NOW - timedelta(days=365))
    leaf = root.issue("vc.example")
    key = new_key()
    namesake = (
        x509.CertificateBuilder()
        .subject_name(root.cert.subject)
        .issuer_name(stranger.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(leaf.cert.not_valid_before_utc)
        .not_valid_after(leaf.cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(stranger.key, hashes.SHA256())
    )
    checks = certificate_checks(
        [leaf.der, namesake.public_bytes(Encoding.DER)], "vc.example", now=NOW
    )
    assert checks.trusted_system is False and checks.issuer_fault is None
    assert checks.trust_errors == ("system store: issuer not found: CN=test root,O=chanscan lab",)


def _signed(
    issuer: LabCA, subject: str, *, ca: bool, bc_critical: bool, eku: list[x509.ObjectIdentifier]
) -> Issued:
    key = new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=bc_critical)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def test_leaf_without_server_auth_eku_is_untrusted_but_no_issuer_fault(
    root: LabCA, bundle: Path
) -> None:
    leaf = _signed(
        root, "vc.example", ca=False, bc_critical=True, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    checks = certificate_checks([leaf.der], "vc.example", ca_bundle=bundle, now=NOW)
    assert checks.trusted_custom is False and checks.issuer_fault is None
    assert any("serverAuth" in e for e in checks.trust_errors)


def test_rfc5280_intermediate_outside_the_cab_profile_stays_trusted(
    root: LabCA, bundle: Path
) -> None:
    """Non-critical basicConstraints, no keyUsage, no key identifiers, a leaf with
    anyExtendedKeyUsage: RFC 5280 accepts it, so chanscan does too."""
    inter_issued = _signed(root, "old intermediate", ca=True, bc_critical=False, eku=[])
    inter = LabCA("old intermediate")
    inter.key, inter.cert = inter_issued.key, inter_issued.cert
    leaf = _signed(
        inter,
        "vc.example",
        ca=False,
        bc_critical=False,
        eku=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
    )
    checks = certificate_checks(
        [leaf.der, inter_issued.der], "vc.example", ca_bundle=bundle, now=NOW
    )
    assert checks.trusted_custom is True, checks.trust_errors
    assert checks.chain_complete is True
