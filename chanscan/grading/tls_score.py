"""The SSL Labs numeric score (30% protocol, 30% key exchange, 40% cipher strength) and
the grading rules computed straight from a TLS observation.

Numbers are those of the SSL Server Rating Guide (SSL Labs, version 2009 with the
changes through 2009r): https://github.com/ssllabs/research/wiki/SSL-Server-Rating-Guide
SSL Labs measures what simulated browsers negotiate; chanscan has no browser simulation
for management clients, so every accepted suite counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from chanscan.obs.tls import CertificateChecks, CipherSuite, TlsObservation

# Protocol support rating (guide table 2). SSL 2.0 was 20% in 2009e and is 0% since SSL
# 2.0 became an automatic F (2009c); TLS 1.3 scores like TLS 1.2.
PROTOCOL_SCORES: dict[str, int] = {
    "SSL 2.0": 0,
    "SSL 3.0": 80,
    "TLS 1.0": 90,
    "TLS 1.1": 95,
    "TLS 1.2": 100,
    "TLS 1.3": 100,
}

# Key exchange rating (guide table 3): (upper bound exclusive in bits, score).
KEX_SCORES: tuple[tuple[int, int], ...] = ((512, 20), (1024, 40), (2048, 80), (4096, 90))
KEX_SCORE_MAX = 100
KEX_EXPORT_SCORE = 40
KEX_ANONYMOUS_SCORE = 0

# Cipher strength rating (guide table 4).
CIPHER_NONE_SCORE = 0
CIPHER_SCORES: tuple[tuple[int, int], ...] = ((128, 20), (256, 80))
CIPHER_SCORE_MAX = 100

WEIGHTS = (0.3, 0.3, 0.4)

# Letter translation (guide table 1): (minimum score, letter), best first.
LETTERS: tuple[tuple[int, str], ...] = ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E"))

# Elliptic-curve sizes compared as RSA-equivalent strength, NIST SP 800-57 Part 1 Rev. 5
# table 2 (a 256-bit curve ~ 128-bit security ~ RSA 3072). X25519 counts as a 256-bit
# curve whatever bit count the probe reports for it (253 or 255).
_EC_TO_RSA: tuple[tuple[int, int], ...] = (
    (500, 15360),
    (380, 7680),
    (250, 3072),
    (224, 2048),
    (160, 1024),
)
_EC_TO_RSA_MIN = 512

# Thresholds of the rules below; exactly the threshold passes.
MIN_CIPHER_BITS = 112  # NIST SP 800-131A Rev. 2: 112-bit security strength
MIN_KEY_BITS = 2048  # RSA, DSA and finite-field DH
# Signatures SSL Labs treats as insecure (zero score) since 2009e; SHA-1 has its own id.
_BROKEN_SIGNATURE_HASHES = frozenset({"md2", "md4", "md5"})


@dataclass(frozen=True)
class TlsScore:
    protocol: int
    key_exchange: int
    cipher: int
    total: int
    letter: str


def letter_for(total: int) -> str:
    for minimum, letter in LETTERS:
        if total >= minimum:
            return letter
    return "F"


def _ec_as_rsa(bits: int) -> int:
    for at_least, rsa in _EC_TO_RSA:
        if bits >= at_least:
            return rsa
    return _EC_TO_RSA_MIN


def _cert_strength(cert: CertificateChecks | None) -> int | None:
    if cert is None or not cert.chain:
        return None
    leaf = cert.chain[0]
    if leaf.key_type in ("EC", "Ed25519", "Ed448"):
        # Ed25519 is a 255-bit curve, Ed448 448-bit (RFC 8032).
        size = {"Ed25519": 256, "Ed448": 448}.get(leaf.key_type, leaf.key_bits)
        return _ec_as_rsa(size)
    return leaf.key_bits or None


def _ephemeral_strength(suite: CipherSuite) -> int | None:
    if suite.ephemeral_key_bits is None:
        return None
    if suite.ephemeral_key_type == "DH":
        return suite.ephemeral_key_bits
    return _ec_as_rsa(suite.ephemeral_key_bits)


def _kex_score_for(suite: CipherSuite, cert_bits: int | None) -> int:
    if suite.key_exchange == "anon" or suite.authentication == "anon":
        return KEX_ANONYMOUS_SCORE
    if suite.export:
        return KEX_EXPORT_SCORE
    strengths = [b for b in (cert_bits, _ephemeral_strength(suite)) if b is not None]
    if not strengths:
        return KEX_SCORE_MAX  # nothing measured; other rules judge what is missing
    bits = min(strengths)
    for upto, score in KEX_SCORES:
        if bits < upto:
            return score
    return KEX_SCORE_MAX


def _cipher_score_for(bits: int) -> int:
    if bits <= 0:
        return CIPHER_NONE_SCORE
    for upto, score in CIPHER_SCORES:
        if bits < upto:
            return score
    return CIPHER_SCORE_MAX


def score(tls: TlsObservation) -> TlsScore | None:
    """The guide's numeric score, or None when no protocol was seen accepted."""
    versions = [v for v in tls.accepted_versions() if v in PROTOCOL_SCORES]
    suites = tls.all_suites()
    if not versions or not suites:
        return None
    protocol_scores = [PROTOCOL_SCORES[v] for v in versions]
    protocol = (max(protocol_scores) + min(protocol_scores)) // 2
    cert_bits = _cert_strength(tls.certificate)
    # The guide does not say best or worst for key exchange; the weakest one offered is
    # what an attacker who can steer the handshake gets.
    key_exchange = min(_kex_score_for(s, cert_bits) for s in suites)
    cipher_scores = [_cipher_score_for(s.key_bits) for s in suites]
    cipher = (max(cipher_scores) + min(cipher_scores)) // 2
    if 0 in (protocol, key_exchange, cipher):
        total = 0  # "A zero in any category will push the overall score to zero"
    else:
        wp, wk, wc = WEIGHTS
        total = round(wp * protocol + wk * key_exchange + wc * cipher)
    return TlsScore(protocol, key_exchange, cipher, total, letter_for(total))


def derived_rules(tls: TlsObservation) -> list[tuple[str, tuple[str, ...]]]:
    """The ``grade.tls.*`` rules that fire, each with its evidence."""
    fired: list[tuple[str, tuple[str, ...]]] = []
    suites = tls.all_suites()
    weak = sorted({f"{s.name} ({s.key_bits} bits)" for s in suites if s.key_bits < MIN_CIPHER_BITS})
    if weak:
        fired.append(("grade.tls.cipher_under_112", tuple(weak)))
    if suites and not any(s.forward_secrecy for s in suites):
        fired.append(("grade.tls.no_forward_secrecy", ("no accepted suite is (EC)DHE",)))
    if suites and not any(s.aead for s in suites):
        fired.append(("grade.tls.no_aead", ("no accepted suite is AEAD",)))
    small_dh = sorted(
        {
            f"{s.name} (DH {s.ephemeral_key_bits} bits)"
            for s in suites
            if s.ephemeral_key_type == "DH"
            and s.ephemeral_key_bits is not None
            and s.ephemeral_key_bits < MIN_KEY_BITS
        }
    )
    if small_dh:
        fired.append(("grade.tls.dh_under_2048", tuple(small_dh)))
    cert = tls.certificate
    if cert is not None and cert.chain:
        leaf = cert.chain[0]
        if leaf.key_type in ("RSA", "DSA") and 0 < leaf.key_bits < MIN_KEY_BITS:
            fired.append(("grade.tls.key_under_2048", (f"{leaf.key_type} {leaf.key_bits} bits",)))
        if (leaf.signature_hash or "").lower() in _BROKEN_SIGNATURE_HASHES:
            fired.append(("grade.tls.md5_signature", (f"leaf signed with {leaf.signature_hash}",)))
    if web_ui(tls) and tls.http is not None and not tls.http.hsts:
        fired.append(("grade.tls.no_hsts", ("no Strict-Transport-Security header",)))
    return fired


def web_ui(tls: TlsObservation) -> bool:
    """The endpoint answered HTTP over TLS, so HSTS (RFC 6797) applies to it."""
    return tls.http is not None


def eavesdropping_plus(tls: TlsObservation) -> bool:
    """A+ on eavesdropping: TLS 1.3 offered and every accepted suite has forward secrecy
    and AEAD (SSL Labs reserves A+ for configurations with no warnings)."""
    suites = tls.all_suites()
    return (
        "TLS 1.3" in tls.accepted_versions()
        and bool(suites)
        and all(s.forward_secrecy and s.aead for s in suites)
    )


def mitm_plus(tls: TlsObservation) -> bool:
    """A+ on MITM: the certificate verified and matched, renegotiation is secure, and a
    web UI sends HSTS. Anything not determined keeps the grade at A."""
    cert = tls.certificate
    if cert is None or cert.hostname_matches is not True:
        return False
    if not (cert.trusted_system is True or cert.trusted_custom is True):
        return False
    if tls.vulns.secure_renegotiation is False:
        return False
    return not (web_ui(tls) and tls.http is not None and not tls.http.hsts)
