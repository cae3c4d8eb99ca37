"""Policies: built-ins, custom files, each check, and loading errors. No network."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from grading_fixtures import (
    RSA_3DES,
    TLS12_MODERN,
    TLS13_SUITES,
    cert,
    checks,
    finding,
    legacy_esxi6_tls,
    modern_ssh,
    modern_tls,
    result,
    tls_obs,
)

from chanscan.errors import ConfigError
from chanscan.model import Axis, Channel, PlatformHint, Severity
from chanscan.obs.ssh import KexInit
from chanscan.obs.tls import HttpInfo
from chanscan.policies import BUILTIN, Policy, evaluate_policy, load_policy, parse_policy
from chanscan.policies.checks import CHECKS


def _ids(findings: list[object]) -> set[str]:
    return {f.id for f in findings}  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_policies_load_with_version_and_references(name: str) -> None:
    p = load_policy(name)
    assert p.name == name and p.version and p.references
    for rule in p.rules:
        assert rule.check in CHECKS
        assert rule.references or p.references


def test_default_policy_adds_nothing() -> None:
    assert load_policy("default").rules == ()
    assert evaluate_policy(load_policy("default"), result(tls=legacy_esxi6_tls())) == []


@pytest.mark.parametrize("name", ["mozilla-modern", "mozilla-intermediate"])
def test_mozilla_groups_include_x25519mlkem768(name: str) -> None:
    groups = next(r for r in load_policy(name).rules if r.check == "tls.groups.allowed")
    assert groups.values[0] == "X25519MLKEM768"
    assert {"X25519", "prime256v1", "secp384r1"} <= set(groups.values)


def test_modern_endpoint_meets_mozilla_intermediate() -> None:
    assert evaluate_policy(load_policy("mozilla-intermediate"), result(tls=modern_tls())) == []


def test_modern_endpoint_against_mozilla_modern() -> None:
    out = evaluate_policy(load_policy("mozilla-modern"), result(tls=modern_tls()))
    assert _ids(out) == {
        "policy.mozilla-modern.tls_versions",
        "policy.mozilla-modern.ciphersuites",
        "policy.mozilla-modern.certificate_type",
        "policy.mozilla-modern.certificate_lifespan",
    }
    versions = next(f for f in out if f.id.endswith("tls_versions"))
    assert versions.evidence == ("accepted: TLS 1.2",)
    assert versions.policy == "mozilla-modern"
    assert versions.severity is Severity.MEDIUM and versions.axis is Axis.EAVESDROPPING
    lifespan = next(f for f in out if f.id.endswith("certificate_lifespan"))
    assert lifespan.evidence == ("certificate valid for 334 days > 90",)


def test_legacy_endpoint_against_mozilla_intermediate_names_offending_items() -> None:
    out = evaluate_policy(
        load_policy("mozilla-intermediate"), result(tls=legacy_esxi6_tls(), hint=PlatformHint.ESXI)
    )
    by_id = {f.id: f for f in out}
    assert set(by_id["policy.mozilla-intermediate.tls_versions"].evidence) == {
        "accepted: TLS 1.0",
        "accepted: TLS 1.1",
    }
    assert f"TLS 1.2: {RSA_3DES.name}" in by_id["policy.mozilla-intermediate.ciphers"].evidence
    # Remediation is filled for the platform of the endpoint.
    assert "esxcli" in by_id["policy.mozilla-intermediate.tls_versions"].remediation


def test_groups_allowed_treats_aliases_alike_and_flags_others() -> None:
    policy = load_policy("mozilla-intermediate")
    ok = modern_tls(groups=("x25519_mlkem768", "X25519", "secp256r1", "P-384"))
    assert evaluate_policy(policy, result(tls=ok)) == []
    extra = modern_tls(groups=("X25519", "secp521r1", "ffdhe2048"))
    out = evaluate_policy(policy, result(tls=extra))
    assert out[0].id == "policy.mozilla-intermediate.groups"
    assert out[0].evidence == ("group offered: secp521r1", "group offered: ffdhe2048")


def test_hsts_min_age() -> None:
    policy = load_policy("mozilla-intermediate")
    short = modern_tls(http=HttpInfo(hsts="max-age=31536000; includeSubDomains"))
    out = evaluate_policy(policy, result(tls=short))
    assert [f.evidence for f in out] == [("HSTS max-age 31536000 < 63072000",)]
    missing = evaluate_policy(policy, result(tls=modern_tls(http=HttpInfo())))
    assert [f.evidence for f in missing] == [("no Strict-Transport-Security header",)]
    good = modern_tls(http=HttpInfo(hsts='max-age="63072000"'))
    assert evaluate_policy(policy, result(tls=good)) == []


def test_rsa_size_and_signature_and_dh() -> None:
    policy = load_policy("mozilla-intermediate")
    weak = modern_tls(certificate=checks(cert(key_bits=1024, signature_hash="sha1")))
    out = {f.id: f.evidence for f in evaluate_policy(policy, result(tls=weak))}
    assert out["policy.mozilla-intermediate.rsa_key_size"] == ("RSA key 1024 bits < 2048",)
    assert out["policy.mozilla-intermediate.certificate_signature"] == (
        "certificate signed with sha1",
    )


def _stig_tls() -> object:
    """What the STIG asks of ESXi: TLS 1.2 only, NIST_2024 suites and groups."""
    return tls_obs({"TLS 1.2": TLS12_MODERN}, groups=("secp256r1", "secp384r1"))


def test_vsphere_stig_on_esxi() -> None:
    policy = load_policy("vsphere8-stig")
    legacy = result(tls=legacy_esxi6_tls(), hint=PlatformHint.ESXI)
    out = {f.id: f.evidence for f in evaluate_policy(policy, legacy)}
    assert set(out) == {
        "policy.vsphere8-stig.tls12_only",
        "policy.vsphere8-stig.tls_ciphers",
        "policy.vsphere8-stig.tls_groups",
        "policy.vsphere8-stig.approved_certificate",
    }
    assert "TLS 1.2: TLS_RSA_WITH_AES_128_CBC_SHA" in out["policy.vsphere8-stig.tls_ciphers"]
    assert out["policy.vsphere8-stig.tls_groups"] == ("group offered: X25519",)
    modern = result(tls=modern_tls(), hint=PlatformHint.ESXI)
    # V1R1 asks for TLS 1.2 exclusively, and NIST_2024 has no ChaCha20 and no X25519.
    assert _ids(evaluate_policy(policy, modern)) == {
        "policy.vsphere8-stig.tls12_only",
        "policy.vsphere8-stig.tls_ciphers",
        "policy.vsphere8-stig.tls_groups",
    }
    only12 = result(tls=_stig_tls(), hint=PlatformHint.ESXI)  # type: ignore[arg-type]
    assert evaluate_policy(policy, only12) == []


def test_platform_scoped_rules_skip_other_platforms() -> None:
    policy = load_policy("vsphere8-stig")
    hyperv = result(tls=legacy_esxi6_tls(), hint=PlatformHint.HYPERV)
    assert evaluate_policy(policy, hyperv) == []
    unknown = result(tls=tls_obs({"TLS 1.3": TLS13_SUITES[:2]}, groups=("secp256r1",)))
    assert _ids(evaluate_policy(policy, unknown)) == {
        "policy.vsphere8-stig.tls12_only",
        "policy.vsphere8-stig.tls12_required",
    }


def test_vsphere_stig_ssh_fips_lists_ignore_extension_markers() -> None:
    policy = load_policy("vsphere8-stig")
    r = result(channel=Channel.SSH, port=22, ssh=modern_ssh(), hint=PlatformHint.ESXI)
    out = {f.id: f.evidence for f in evaluate_policy(policy, r)}
    assert out["policy.vsphere8-stig.ssh_fips_ciphers"] == (
        "ciphers: chacha20-poly1305@openssh.com",
    )
    assert out["policy.vsphere8-stig.ssh_fips_kex"] == (
        "kex: mlkem768x25519-sha256",
        "kex: curve25519-sha256",
    )
    assert "policy.vsphere8-stig.ssh_fips_macs" not in out
    fips = modern_ssh(
        kexinit=KexInit(
            kex=("ecdh-sha2-nistp256", "kex-strict-s-v00@openssh.com", "ext-info-s"),
            ciphers_c2s=("aes256-gcm@openssh.com",),
            ciphers_s2c=("aes256-ctr",),
            macs_c2s=("hmac-sha2-512-etm@openssh.com",),
            macs_s2c=("hmac-sha2-512",),
        )
    )
    fips_result = result(channel=Channel.SSH, port=22, ssh=fips, hint=PlatformHint.ESXI)
    assert evaluate_policy(policy, fips_result) == []


def test_findings_forbidden_uses_given_findings() -> None:
    policy = load_policy("vsphere8-stig")
    r = result(tls=_stig_tls(), hint=PlatformHint.ESXI)  # type: ignore[arg-type]
    out = evaluate_policy(policy, r, [finding("platform.missing_security_patch")])
    assert [(f.id, f.evidence) for f in out] == [
        ("policy.vsphere8-stig.security_patches", ("finding: platform.missing_security_patch",))
    ]
    with_own = replace(r, findings=(finding("platform.end_of_support"),))
    assert _ids(evaluate_policy(policy, with_own)) == {"policy.vsphere8-stig.security_patches"}


def test_nothing_observed_is_no_violation() -> None:
    for name in BUILTIN:
        assert evaluate_policy(load_policy(name), result(channel=Channel.UNKNOWN)) == []
    undetermined = replace(
        modern_tls(),
        protocols=tuple(replace(p, accepted=None) for p in modern_tls().protocols),
    )
    required = parse_policy(
        'name = "x"\n[[rule]]\nid = "need12"\ncheck = "tls.versions.required"\n'
        'values = ["TLSv1.2"]\n'
    )
    assert evaluate_policy(required, result(tls=undetermined)) == []
    refused = tls_obs({"TLS 1.3": TLS13_SUITES})
    assert [f.evidence for f in evaluate_policy(required, result(tls=refused))] == [
        ("not accepted: TLS 1.2",)
    ]


CUSTOM = """
name = "corp-baseline"
version = "2026-01"
title = "Corporate baseline"

[[rule]]
id = "pq_group"
check = "tls.groups.required"
values = ["X25519MLKEM768"]
severity = "low"
axis = "eavesdropping"
title = "Hybrid post-quantum group offered"
references = ["Corporate standard CS-12"]

[[rule]]
id = "no_cbc"
check = "findings.forbidden"
values = ["tls.cipher.cbc", "ssh.cipher.*"]
severity = "high"
"""


def test_custom_policy_from_file(tmp_path: Path) -> None:
    path = tmp_path / "corp.toml"
    path.write_text(CUSTOM, encoding="utf-8")
    p = load_policy(path)
    assert isinstance(p, Policy) and p.name == "corp-baseline" and len(p.rules) == 2
    r = result(tls=modern_tls(), findings=(finding("ssh.cipher.cbc"), finding("tls.cipher.rc4")))
    out = {f.id: f for f in evaluate_policy(p, r)}
    assert out["policy.corp-baseline.pq_group"].evidence == ("group not offered: X25519MLKEM768",)
    assert out["policy.corp-baseline.pq_group"].references == ("Corporate standard CS-12",)
    assert out["policy.corp-baseline.no_cbc"].evidence == ("finding: ssh.cipher.cbc",)
    assert out["policy.corp-baseline.no_cbc"].axis is Axis.BOTH  # the default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\n[[rule]\n', "line 2"),
        ('name = "x"\n[[rule]]\nid = "a"\ncheck = "tls.nope"\n', "rule[1]: key 'check'"),
        ('name = "x"\n[[rule]]\nid = "a"\ncheck = "tls.versions.allowed"\n', "needs 'values'"),
        ('name = "x"\n[[rule]]\nid = "a"\ncheck = "tls.dh.min_bits"\nnumber = "2"\n', "integer"),
        (
            'name = "x"\n[[rule]]\nid = "a"\ncheck = "tls.cert.ca_issued"\nseverity = "huge"\n',
            "rule[1]",
        ),
        ('name = "x"\n[[rule]]\nid = "a"\ncheck = "tls.cert.ca_issued"\nvalue = 1\n', "'value'"),
        ('name = "x"\nrules = []\n', "unknown key 'rules'"),
        ('version = "1"\n', "key 'name'"),
        ('name = "a b"\n', "key 'name'"),
        (
            'name = "x"\n[[rule]]\nid = "a"\ncheck = "tls.cert.ca_issued"\n'
            '[[rule]]\nid = "a"\ncheck = "tls.cert.ca_issued"\n',
            "duplicate rule id 'a'",
        ),
    ],
)
def test_policy_errors_name_file_and_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_policy(path)
    line = str(exc.value)
    assert line.startswith(str(path)) and message in line and "\n" not in line


def test_unknown_policy_name_lists_builtins(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mozilla-modern"):
        load_policy(tmp_path / "nope.toml")


def test_policy_file_option_selects_by_declared_name_or_path(tmp_path: Path) -> None:
    path = tmp_path / "corp.toml"
    path.write_text(CUSTOM, encoding="utf-8")
    assert load_policy("corp-baseline", path).name == "corp-baseline"
    assert load_policy(str(path), path).name == "corp-baseline"
    # Built-in names still mean the built-ins, so groups can mix both.
    assert load_policy("mozilla-modern", path).name == "mozilla-modern"
    with pytest.raises(ConfigError, match="'corp-baseline' from"):
        load_policy("corp-typo", path)
    with pytest.raises(ConfigError, match="no such policy file"):
        load_policy("default", tmp_path / "missing.toml")
