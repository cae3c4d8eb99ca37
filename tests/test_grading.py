"""Grading: one case per rule, the SSL Labs score, boundaries, and whole endpoints."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from grading_fixtures import (
    LEGACY_ESXI6_FINDINGS,
    TLS12_MODERN,
    TLS13_SUITES,
    base_for,
    cert,
    checks,
    finding,
    legacy_esxi6_ssh,
    legacy_esxi6_tls,
    modern_ssh,
    modern_tls,
    result,
    suite,
    tls_obs,
)
from obs_builders import SCAN_TIME

from chanscan import rules
from chanscan.grading import ALL_CAPS, grade_endpoint, host_grades, rule_ids, worst
from chanscan.grading import caps as caps_mod
from chanscan.grading.scale import GRADES, grade_rank
from chanscan.grading.tls_score import letter_for, score
from chanscan.model import Axis, Channel, Grade, GradeCaps, Status
from chanscan.obs.tls import HttpInfo

DOC = Path(__file__).resolve().parents[1] / "docs" / "grading.md"

FINDING_RULES = sorted({r.rule for r in ALL_CAPS if not r.rule.startswith("grade.")})


def _axis_letter(g: Grade, axis: Axis) -> str:
    return g.eavesdropping if axis is Axis.EAVESDROPPING else g.mitm


def _axis_cause(g: Grade, axis: Axis) -> str | None:
    return g.capped_by.eavesdropping if axis is Axis.EAVESDROPPING else g.capped_by.mitm


def test_caps_table_uses_known_letters_and_axes() -> None:
    for rule in ALL_CAPS:
        assert rule.cap in GRADES and rule.cap != "A+", rule
        assert rule.axis in (Axis.MITM, Axis.EAVESDROPPING), rule
        assert rule.reference, rule
        assert rule.source in ("ssllabs", "chanscan"), rule


@pytest.mark.parametrize("rule_id", FINDING_RULES)
def test_each_finding_rule_caps_its_axes(rule_id: str) -> None:
    base = base_for(rule_id)
    clean = grade_endpoint(base, ())
    assert clean is not None and clean.eavesdropping == "A+" and clean.mitm == "A+"

    g = grade_endpoint(base, (finding(rule_id),))
    assert g is not None
    rows = {r.axis: r for r in ALL_CAPS if r.rule == rule_id}
    for axis in (Axis.EAVESDROPPING, Axis.MITM):
        if axis in rows:
            assert _axis_letter(g, axis) == rows[axis].cap
            assert _axis_cause(g, axis) == rule_id
        else:
            assert _axis_letter(g, axis) == "A+"
            assert _axis_cause(g, axis) is None
    assert g.overall == max(g.eavesdropping, g.mitm, key=grade_rank)


def test_cleartext_rule_on_a_cleartext_endpoint() -> None:
    r = result(channel=Channel.HTTP, port=5985)
    assert grade_endpoint(r, ()) == Grade("A", "A", "A")
    g = grade_endpoint(r, (finding("cleartext.management_port"),))
    assert g is not None and g.eavesdropping == "C"
    assert g.capped_by.eavesdropping == "cleartext.management_port"


# (name, observation, axis, expected letter, expected capped_by)
DERIVED_CASES = [
    (
        "cipher_under_112",
        tls_obs({"TLS 1.2": (*TLS12_MODERN, suite("TLS_RSA_WITH_DES_CBC_SHA", bits=56))}),
        Axis.EAVESDROPPING,
        "F",
        "grade.tls.cipher_under_112",
    ),
    (
        "no_forward_secrecy",
        tls_obs({"TLS 1.2": (suite("TLS_RSA_WITH_AES_128_GCM_SHA256", kx="RSA", fs=False),)}),
        Axis.EAVESDROPPING,
        "B",
        "grade.tls.no_forward_secrecy",
    ),
    (
        "no_aead",
        tls_obs({"TLS 1.2": (suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", aead=False),)}),
        Axis.EAVESDROPPING,
        "B",
        "grade.tls.no_aead",
    ),
    (
        "dh_under_2048",
        tls_obs(
            {
                "TLS 1.2": (
                    *TLS12_MODERN,
                    suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", eph_type="DH", eph_bits=1024),
                ),
                "TLS 1.3": TLS13_SUITES,
            }
        ),
        Axis.EAVESDROPPING,
        "B",
        "grade.tls.dh_under_2048",
    ),
    (
        "key_under_2048",
        modern_tls(certificate=checks(cert(key_bits=2047))),
        Axis.MITM,
        "B",
        "grade.tls.key_under_2048",
    ),
    (
        "md5_signature",
        modern_tls(certificate=checks(cert(signature_hash="md5"))),
        Axis.MITM,
        "F",
        "grade.tls.md5_signature",
    ),
    (
        "no_hsts",
        modern_tls(http=HttpInfo()),
        Axis.MITM,
        "A-",
        "grade.tls.no_hsts",
    ),
]


@pytest.mark.parametrize(
    ("obs", "axis", "letter", "cause"),
    [c[1:] for c in DERIVED_CASES],
    ids=[c[0] for c in DERIVED_CASES],
)
def test_each_derived_rule(obs: object, axis: Axis, letter: str, cause: str) -> None:
    g = grade_endpoint(result(tls=obs), ())  # type: ignore[arg-type]
    assert g is not None
    assert _axis_letter(g, axis) == letter
    assert _axis_cause(g, axis) == cause


def test_every_derived_rule_has_a_case() -> None:
    tested = {c[4] for c in DERIVED_CASES}
    assert tested == {r.rule for r in caps_mod.DERIVED_TLS_CAPS}


@pytest.mark.parametrize(("bits", "capped"), [(111, True), (112, False)])
def test_cipher_boundary_exactly_112_bits_passes(bits: int, capped: bool) -> None:
    weakest = suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA", kx="RSA", bits=bits, fs=False, aead=False)
    obs = tls_obs({"TLS 1.2": (*TLS12_MODERN, weakest), "TLS 1.3": TLS13_SUITES})
    g = grade_endpoint(result(tls=obs), ())
    assert g is not None
    assert (g.eavesdropping == "F") is capped
    assert (g.capped_by.eavesdropping == "grade.tls.cipher_under_112") is capped


@pytest.mark.parametrize(("bits", "mitm"), [(2047, "B"), (2048, "A+")])
def test_key_boundary_exactly_2048_bits_passes(bits: int, mitm: str) -> None:
    g = grade_endpoint(result(tls=modern_tls(certificate=checks(cert(key_bits=bits)))), ())
    assert g is not None and g.mitm == mitm


@pytest.mark.parametrize(("bits", "eav"), [(2047, "B"), (2048, "A")])
def test_dh_boundary_exactly_2048_bits_passes(bits: int, eav: str) -> None:
    dhe = suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", eph_type="DH", eph_bits=bits)
    obs = tls_obs({"TLS 1.2": (*TLS12_MODERN, dhe), "TLS 1.3": TLS13_SUITES})
    g = grade_endpoint(result(tls=obs), ())
    # A DHE suite with 2048-bit parameters scores key exchange 90 like the certificate,
    # so the letter is A (all suites forward secret and AEAD, TLS 1.3 on: even A+).
    assert g is not None
    assert g.eavesdropping == ("A+" if eav == "A" else eav)


def test_score_of_a_modern_server_matches_the_guide_tables() -> None:
    s = score(modern_tls())
    # protocol (100+100)/2, key exchange RSA 2048 -> 90, cipher (256 -> 100 + 128 -> 80)/2
    assert s is not None
    assert (s.protocol, s.key_exchange, s.cipher) == (100, 90, 90)
    assert s.total == 93 and s.letter == "A"  # 0.3*100 + 0.3*90 + 0.4*90


def test_score_protocol_is_best_plus_worst_over_two() -> None:
    s = score(tls_obs({"TLS 1.0": TLS12_MODERN, "TLS 1.2": TLS12_MODERN}))
    assert s is not None and s.protocol == 95  # (100 + 90) / 2


def test_score_zero_category_forces_zero() -> None:
    null = suite("TLS_RSA_WITH_NULL_SHA", kx="RSA", bits=0, fs=False, aead=False)
    s = score(tls_obs({"TLS 1.2": (*TLS12_MODERN, null)}))
    assert s is not None and s.cipher == 50 and s.total > 0  # best 100 + worst 0
    anon = suite("TLS_DH_anon_WITH_AES_128_GCM_SHA256", kx="anon", auth="anon")
    s = score(tls_obs({"TLS 1.2": (*TLS12_MODERN, anon)}))
    assert s is not None and s.key_exchange == 0 and s.total == 0 and s.letter == "F"


@pytest.mark.parametrize(
    ("total", "letter"),
    [
        (80, "A"),
        (79, "B"),
        (65, "B"),
        (64, "C"),
        (50, "C"),
        (49, "D"),
        (35, "D"),
        (34, "E"),
        (20, "E"),
        (19, "F"),
        (0, "F"),
    ],
)
def test_letter_translation_boundaries(total: int, letter: str) -> None:
    assert letter_for(total) == letter


def test_hardened_modern_tls_endpoint_gets_a_plus_on_both_axes() -> None:
    obs = modern_tls(http=HttpInfo(hsts="max-age=63072000"))
    assert grade_endpoint(result(tls=obs), ()) == Grade("A+", "A+", "A+")


def test_hardened_modern_ssh_endpoint_gets_a_plus_on_both_axes() -> None:
    r = result(channel=Channel.SSH, port=22, ssh=modern_ssh())
    assert grade_endpoint(r, ()) == Grade("A+", "A+", "A+")


def test_ssh_without_strict_kex_stays_at_a_on_mitm() -> None:
    ssh = modern_ssh()
    assert ssh.kexinit is not None
    kex = tuple(k for k in ssh.kexinit.kex if not k.startswith("kex-strict"))
    ssh = replace(ssh, kexinit=replace(ssh.kexinit, kex=kex))
    g = grade_endpoint(result(channel=Channel.SSH, port=22, ssh=ssh), ())
    assert g is not None and g.mitm == "A" and g.capped_by.mitm is None


def test_legacy_esxi6_endpoint_is_no_better_than_c() -> None:
    r = result(tls=legacy_esxi6_tls())
    g = grade_endpoint(r, tuple(finding(f) for f in LEGACY_ESXI6_FINDINGS))
    assert g is not None
    assert grade_rank(g.overall) >= grade_rank("C")
    assert g.eavesdropping == "C" and g.capped_by.eavesdropping == "tls.cipher.3des"
    assert g.mitm == "D" and g.capped_by.mitm == "tls.cert.self_signed"


def test_legacy_esxi6_observation_alone_is_already_capped() -> None:
    # Without any findings the score and derived rules still see 3DES and static RSA.
    s = score(legacy_esxi6_tls())
    assert s is not None and s.letter in ("A", "B")
    g = grade_endpoint(result(tls=legacy_esxi6_tls()), ())
    assert g is not None and g.eavesdropping != "A+" and g.mitm == "A"


def test_real_rules_then_grading_on_the_reference_endpoints() -> None:
    # The channel rules of chanscan/rules feed grading exactly as the pipeline does.
    legacy = result(tls=legacy_esxi6_tls())
    g = grade_endpoint(legacy, rules.evaluate(legacy, now=SCAN_TIME))
    assert g is not None and grade_rank(g.overall) >= grade_rank("C")
    assert g.eavesdropping == "C" and g.capped_by.eavesdropping == "tls.cipher.3des"
    modern = result(tls=modern_tls(http=HttpInfo(hsts="max-age=63072000")))
    assert grade_endpoint(modern, rules.evaluate(modern, now=SCAN_TIME)) == Grade("A+", "A+", "A+")
    ssh_ep = result(channel=Channel.SSH, port=22, ssh=modern_ssh())
    assert grade_endpoint(ssh_ep, rules.evaluate(ssh_ep, now=SCAN_TIME)) == Grade("A+", "A+", "A+")
    old_ssh = result(channel=Channel.SSH, port=22, ssh=legacy_esxi6_ssh())
    g = grade_endpoint(old_ssh, rules.evaluate(old_ssh, now=SCAN_TIME))
    assert g is not None and grade_rank(g.eavesdropping) >= grade_rank("C")
    assert grade_rank(g.mitm) >= grade_rank("C") and g.capped_by.mitm == "ssh.hostkey.dsa"


def test_waived_findings_still_cap() -> None:
    f = replace(finding("tls.protocol.tls1_0"), waived=True, waiver_reason="accepted")
    g = grade_endpoint(result(tls=modern_tls()), (f,))
    assert g is not None and g.eavesdropping == "B"


def test_certificate_trusted_through_ca_bundle_is_trusted() -> None:
    leaf = cert(self_signed=True)
    obs = modern_tls(certificate=checks(leaf, trusted=False, custom=True))
    fs = (finding("tls.cert.self_signed"), finding("tls.cert.untrusted"))
    g = grade_endpoint(result(tls=obs), fs)
    assert g is not None and g.mitm == "A+"
    untrusted = modern_tls(certificate=checks(leaf, trusted=False, custom=False))
    g = grade_endpoint(result(tls=untrusted), fs)
    assert g is not None and g.mitm == "D"


@pytest.mark.parametrize("status", [Status.CLOSED, Status.FILTERED, Status.TIMEOUT, Status.ERROR])
def test_endpoints_not_probed_get_no_grade(status: Status) -> None:
    r = result(status=status, tls=None)
    assert grade_endpoint(r, (finding("tls.protocol.tls1_0"),)) is None


def test_nothing_observed_gets_no_grade() -> None:
    assert grade_endpoint(result(channel=Channel.UNKNOWN), ()) is None


def test_worst_takes_each_axis_separately() -> None:
    a = Grade("B", "A+", "B", GradeCaps(eavesdropping="tls.protocol.tls1_0"))
    b = Grade("A", "D", "D", GradeCaps(mitm="tls.cert.self_signed"))
    w = worst([a, None, b])
    assert w == Grade("B", "D", "D", GradeCaps("tls.protocol.tls1_0", "tls.cert.self_signed"))
    assert worst([]) is None and worst([None]) is None


def test_host_grade_is_worst_of_endpoints_and_cleartext_caps_eavesdropping() -> None:
    tls_ep = result(tls=modern_tls())
    ssh_ep = result(
        channel=Channel.SSH,
        port=22,
        ssh=modern_ssh(),
        findings=(finding("ssh.auth.password"),),
    )
    other = result(tls=modern_tls(), address="192.0.2.20")
    grades = host_grades([tls_ep, ssh_ep, other])
    assert grades["192.0.2.10"] == Grade("A+", "B", "B", GradeCaps(mitm="ssh.auth.password"))
    assert grades["192.0.2.20"] == Grade("A+", "A+", "A+")

    cleartext = result(
        channel=Channel.HTTP, port=80, findings=(finding("cleartext.management_port"),)
    )
    g = host_grades([tls_ep, cleartext])["192.0.2.10"]
    assert g is not None and g.eavesdropping == "C"
    # The host rule holds even when the cleartext endpoint carries a precomputed grade.
    graded = replace(cleartext, grade=Grade("A", "A", "A"))
    g = host_grades([tls_ep, graded])["192.0.2.10"]
    assert g is not None and g.eavesdropping == "C"
    assert g.capped_by.eavesdropping == caps_mod.HOST_CLEARTEXT_RULE


def test_unprobed_host_has_no_grade() -> None:
    assert host_grades([result(status=Status.TIMEOUT)]) == {"192.0.2.10": None}


def _doc_rule_ids() -> set[str]:
    ids: set[str] = set()
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([a-z0-9_]+\.[a-z0-9_.*]+)` \|", line)
        if m:
            ids.add(m.group(1))
    return ids


def test_every_rule_in_code_is_documented_and_back() -> None:
    in_code = set(rule_ids()) | set(caps_mod.UNGRADED)
    assert _doc_rule_ids() == in_code


def test_documented_caps_match_the_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    for rule in ALL_CAPS:
        row = f"| `{rule.rule}` | {rule.axis.value} | {rule.cap} |"
        assert row in text, row


def test_every_finding_id_the_rules_emit_is_graded_or_listed_as_ungraded() -> None:
    # Scan the rule modules' sources for finding ids, so that a new rule elsewhere
    # forces a decision here (a cap row or an entry in UNGRADED).
    root = Path(__file__).resolve().parents[1] / "chanscan"
    sources = [*sorted((root / "rules").glob("*.py")), root / "pin_findings.py", root / "pins.py"]
    pattern = re.compile(r'"((?:tls|ssh|rdp|cleartext|pin|platform)\.[a-z0-9_]+(?:\.[a-z0-9_]+)*)"')
    emitted = {m for p in sources if p.exists() for m in pattern.findall(p.read_text("utf-8"))}
    assert "tls.protocol.tls1_0" in emitted  # the scan works
    known = {r.rule for r in ALL_CAPS} | set(caps_mod.UNGRADED)
    assert sorted(emitted - known) == []
