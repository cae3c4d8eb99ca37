"""The grading rules as data: which finding caps which axis at which letter, and why.

Each row names a finding id (as the rule modules emit it), the axis it weighs on, the
best letter an endpoint with that finding can still get, and the public source the
letter comes from. Letters marked "chanscan" in ``docs/grading.md`` are our choice where
no published rating exists; the reference then names the weakness, not a grade.

``docs/grading.md`` lists every row; ``tests/test_grading.py`` checks both directions.
"""

from __future__ import annotations

from dataclasses import dataclass

from chanscan.grading.scale import GRADES, grade_rank
from chanscan.model import Axis

# Published sources the table cites more than once.
SSLLABS_GUIDE = "https://github.com/ssllabs/research/wiki/SSL-Server-Rating-Guide"
SSLLABS_2015 = (
    "https://blog.qualys.com/product-tech/2015/05/22/"
    "ssl-labs-increased-penalty-when-tls-12-is-not-supported"
)
SSLLABS_2017 = (
    "https://blog.qualys.com/product-tech/2016/11/16/announcing-ssl-labs-grading-changes-for-2017"
)
SSLLABS_2018 = (
    "https://blog.qualys.com/product-tech/2018/02/02/"
    "forward-secrecy-authenticated-encryption-and-robot-grading-update"
)
SSLLABS_2020 = (
    "https://blog.qualys.com/ssllabs/2018/11/19/grade-change-for-tls-1-0-and-tls-1-1-protocols"
)
NIST_800_131A = "NIST SP 800-131A Rev. 2"
NIST_800_52 = "NIST SP 800-52 Rev. 2"
MOZILLA_TLS = "https://wiki.mozilla.org/Security/Server_Side_TLS"


@dataclass(frozen=True)
class CapRule:
    rule: str  # the finding id, or a "grade.*" id for a rule computed from the observation
    axis: Axis  # MITM or EAVESDROPPING; a finding weighing on both has two rows
    cap: str  # best letter still possible, one of chanscan.grading.scale.GRADES
    reference: str
    source: str = "ssllabs"  # "ssllabs" when the letter is SSL Labs', "chanscan" otherwise


E = Axis.EAVESDROPPING
M = Axis.MITM

# TLS rules from findings (chanscan/rules/tls.py).
TLS_CAPS: tuple[CapRule, ...] = (
    CapRule("tls.protocol.sslv2", E, "F", f"{SSLLABS_GUIDE} (2009c); RFC 6176"),
    CapRule("tls.protocol.sslv3", E, "C", "RFC 7568; CVE-2014-3566 (POODLE)", "chanscan"),
    CapRule("tls.protocol.tls1_0", E, "B", f"{SSLLABS_2020}; RFC 8996"),
    CapRule("tls.protocol.tls1_1", E, "B", f"{SSLLABS_2020}; RFC 8996"),
    CapRule("tls.protocol.no_tls1_2", E, "C", SSLLABS_2015),
    CapRule("tls.protocol.no_tls1_3", E, "A-", f"RFC 8446; {NIST_800_52} 3.1", "chanscan"),
    CapRule("tls.protocol.negotiation_mismatch", M, "B", "RFC 8446 4.1.3; RFC 7507", "chanscan"),
    CapRule("tls.cipher.null", E, "F", f"{SSLLABS_GUIDE} (cipher strength 0 bits)"),
    CapRule("tls.cipher.anonymous", M, "F", f"{SSLLABS_GUIDE} (anonymous key exchange 0%)"),
    CapRule("tls.cipher.export", E, "F", f"{SSLLABS_GUIDE} (2009f); CVE-2015-0204 (FREAK)"),
    CapRule("tls.cipher.weak", E, "F", f"{SSLLABS_GUIDE}; {NIST_800_131A}"),
    CapRule("tls.cipher.rc4", E, "C", f"{SSLLABS_2015}; RFC 7465"),
    CapRule("tls.cipher.3des", E, "C", f"{SSLLABS_2017}; CVE-2016-2183 (SWEET32)"),
    CapRule("tls.cipher.cbc", E, "A-", f"{SSLLABS_2018}; CVE-2013-0169 (Lucky 13)", "chanscan"),
    CapRule("tls.kex.static_rsa", E, "A-", f"{SSLLABS_2018}; RFC 8446 1.2", "chanscan"),
    CapRule("tls.kex.weak_dh", E, "B", f"{SSLLABS_GUIDE}; CVE-2015-4000 (Logjam)"),
    CapRule("tls.cert.self_signed", M, "D", f"{SSLLABS_GUIDE} (grade T)", "chanscan"),
    CapRule("tls.cert.untrusted", M, "D", f"{SSLLABS_GUIDE} (grade T)", "chanscan"),
    CapRule(
        "tls.cert.issuer_not_ca",
        M,
        "F",
        "RFC 5280 4.2.1.9, 4.2.1.3, 4.2.1.10; CVE-2002-0862 (sslsniff)",
        "chanscan",
    ),
    CapRule("tls.cert.hostname_mismatch", M, "D", f"{SSLLABS_GUIDE} (grade M)", "chanscan"),
    CapRule("tls.cert.expired", M, "D", f"{SSLLABS_GUIDE} (grade T); RFC 5280 6.1.3", "chanscan"),
    CapRule(
        "tls.cert.not_yet_valid", M, "D", f"{SSLLABS_GUIDE} (grade T); RFC 5280 6.1.3", "chanscan"
    ),
    CapRule("tls.cert.weak_key", M, "B", f"{SSLLABS_GUIDE}; {NIST_800_131A}"),
    CapRule(
        "tls.cert.sha1_signature",
        M,
        "C",
        "https://sha-mbles.github.io/ (SHA-1 chosen-prefix)",
        "chanscan",
    ),
    CapRule("tls.cert.incomplete_chain", M, "A-", "RFC 8446 4.4.2", "chanscan"),
    CapRule("tls.cert.long_lifespan", M, "A-", f"{MOZILLA_TLS}; CA/B Forum BR 6.3.2", "chanscan"),
    CapRule("tls.vuln.heartbleed", E, "F", f"{SSLLABS_GUIDE}; CVE-2014-0160"),
    CapRule("tls.vuln.heartbleed", M, "F", f"{SSLLABS_GUIDE}; CVE-2014-0160"),
    CapRule("tls.vuln.ccs_injection", M, "F", f"{SSLLABS_GUIDE}; CVE-2014-0224"),
    CapRule("tls.vuln.robot", E, "F", f"{SSLLABS_2018}; CVE-2017-13099"),
    CapRule("tls.vuln.robot", M, "F", f"{SSLLABS_2018}; CVE-2017-13099"),
    CapRule("tls.reneg.insecure", M, "F", f"{SSLLABS_GUIDE} (2009c); RFC 5746; CVE-2009-3555"),
    CapRule("tls.reneg.client_initiated", M, "A-", "CVE-2011-1473", "chanscan"),
    CapRule("tls.compression", E, "C", f"{SSLLABS_GUIDE}; CVE-2012-4929 (CRIME); RFC 7457 2.6"),
    CapRule("tls.no_fallback_scsv", M, "A-", "RFC 7507", "chanscan"),
    CapRule("tls.no_extended_master_secret", M, "A-", "RFC 7627", "chanscan"),
)

# Rules computed from the TLS observation itself (chanscan/grading/tls_score.py), for
# what SSL Labs grades but no finding id carries.
DERIVED_TLS_CAPS: tuple[CapRule, ...] = (
    CapRule("grade.tls.cipher_under_112", E, "F", f"{SSLLABS_GUIDE}; {NIST_800_131A}"),
    CapRule("grade.tls.no_forward_secrecy", E, "B", SSLLABS_2018),
    CapRule("grade.tls.no_aead", E, "B", SSLLABS_2018),
    CapRule("grade.tls.dh_under_2048", E, "B", f"{SSLLABS_GUIDE}; CVE-2015-4000 (Logjam)"),
    CapRule("grade.tls.key_under_2048", M, "B", f"{SSLLABS_GUIDE}; {NIST_800_131A}"),
    CapRule(
        "grade.tls.md5_signature", M, "F", f"{SSLLABS_GUIDE} (2009e: MD2/MD5 signatures insecure)"
    ),
    CapRule("grade.tls.no_hsts", M, "A-", f"{SSLLABS_GUIDE} (2009e); RFC 6797"),
)

# RDP, cleartext, pins and platform findings.
OTHER_CAPS: tuple[CapRule, ...] = (
    CapRule("rdp.standard_security", E, "F", "[MS-RDPBCGR] 5.3; CVE-2005-1794", "chanscan"),
    CapRule("rdp.standard_security", M, "F", "[MS-RDPBCGR] 5.3.3; CVE-2005-1794", "chanscan"),
    CapRule("rdp.no_nla", M, "B", "[MS-RDPBCGR] 5.4; [MS-CSSP]", "chanscan"),
    CapRule(
        "rdp.encryption.low", E, "F", "[MS-RDPBCGR] 5.3.1 (Low: client to server only)", "chanscan"
    ),
    CapRule(
        "rdp.encryption.weak_method",
        E,
        "F",
        "[MS-RDPBCGR] 5.3.2; NIST SP 800-131A Rev. 2",
        "chanscan",
    ),
    CapRule(
        "cleartext.management_port", E, "C", "RFC 9110 4.2.1 (http is not secured)", "chanscan"
    ),
    CapRule("cleartext.management_port", M, "F", "RFC 9110 4.2.1; RFC 6797 2.3.1", "chanscan"),
    CapRule("pin.ssh_host_key_changed", M, "F", "RFC 4251 4.1", "chanscan"),
    CapRule("pin.tls_key_changed", M, "F", "RFC 7469 (pinning)", "chanscan"),
)

# Findings that are reported but never cap a grade, with the reason.
UNGRADED: dict[str, str] = {
    "tls.cert.expiring_soon": "a reminder; the certificate is still valid today",
    "tls.check.not_determined": "says what could not be measured; nothing to grade",
    "pin.tls_key_inconsistent": "a hint to investigate; key changes per port are graded",
    "platform.end_of_support": "a host finding: fails the gate and shows per host; a "
    "channel's grade describes the channel, whichever other ports were scanned",
    "platform.missing_security_patch": "a host finding, as platform.end_of_support",
    "waiver.expired": "about the waiver file, not the endpoint",
    "policy.*": "policy violations count toward the gate; grades follow the default rules",
}

# The host-level rule: a cleartext management port beside a TLS one.
HOST_CLEARTEXT_RULE = "host.cleartext_beside_tls"
HOST_CLEARTEXT_CAP = "C"


def check_letter(letter: str) -> str:
    if letter not in GRADES:
        raise ValueError(f"not a grade: {letter!r}")
    return letter


def worse(a: str, b: str) -> str:
    """The worse of two letters (F is worst)."""
    return a if grade_rank(a) >= grade_rank(b) else b


def strictly_worse(a: str, b: str) -> bool:
    return grade_rank(a) > grade_rank(b)
