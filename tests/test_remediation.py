"""Remediation: the platform's own fix, a generic fallback, and full coverage of ids."""

from __future__ import annotations

from dataclasses import replace

import pytest
from grading_fixtures import finding, result

from chanscan.grading import ALL_CAPS
from chanscan.model import PlatformHint
from chanscan.remediation import (
    PLATFORMS,
    data,
    normalize_platform,
    platform_of,
    references_for,
    remediation_for,
    with_remediation,
)


@pytest.mark.parametrize(
    ("finding_id", "platform", "expected"),
    [
        ("tls.protocol.tls1_0", "esxi", "esxcli system tls server set -p NIST_2024"),
        ("tls.protocol.tls1_1", "esxi", "/UserVars/ESXiVPsDisabledProtocols"),
        ("tls.protocol.tls1_0", "vcenter", "reconfigureVc update -p TLS1.2"),
        ("tls.protocol.sslv3", "xenserver", "xe pool-disable-ssl-legacy"),
        ("tls.protocol.tls1_1", "xenserver", "ssl-legacy=false"),
        ("tls.protocol.tls1_0", "hyperv", r"SCHANNEL\Protocols\TLS 1.0\Server"),
        ("tls.protocol.tls1_0", "generic", "ssl_protocols TLSv1.2 TLSv1.3"),
        ("tls.cipher.3des", "hyperv", "Disable-TlsCipherSuite"),
        ("tls.cert.self_signed", "xenserver", "xe host-server-certificate-install"),
        ("tls.cert.untrusted", "vcenter", "/usr/lib/vmware-vmca/bin/certificate-manager"),
        ("tls.cert.self_signed", "esxi", "vCenter"),
        ("rdp.no_nla", "hyperv", "UserAuthentication -Value 1"),
        ("rdp.standard_security", "hyperv", "SecurityLayer -Value 2"),
        ("ssh.cipher.cbc", "esxi", "esxcli system ssh server config set -k ciphers"),
        ("ssh.mac.sha1", "esxi", "esxcli system security fips140 ssh set -e true"),
        ("ssh.mac.md5", "hyperv", r"%ProgramData%\ssh\sshd_config"),
        ("ssh.kex.sha1", "vcenter", "/etc/ssh/sshd_config"),
        ("ssh.auth.password", "generic", "PasswordAuthentication no"),
        ("cleartext.management_port", "hyperv", "Transport=HTTP"),
        ("platform.missing_security_patch", "xenserver", "xe update-apply"),
    ],
)
def test_platform_specific_fix(finding_id: str, platform: str, expected: str) -> None:
    assert expected in remediation_for(finding_id, platform)


def test_platforms_differ_for_the_same_finding() -> None:
    texts = {p: remediation_for("tls.protocol.tls1_0", p) for p in PLATFORMS}
    assert len(set(texts.values())) == len(PLATFORMS)


def test_missing_platform_text_falls_back_to_generic() -> None:
    generic = remediation_for("grade.tls.no_hsts", "generic")
    assert "Strict-Transport-Security" in generic
    assert remediation_for("grade.tls.no_hsts", "esxi") == generic
    assert remediation_for("tls.protocol.tls1_0", None) == generic_tls()
    assert remediation_for("tls.protocol.tls1_0", "solaris") == generic_tls()


def generic_tls() -> str:
    return remediation_for("tls.protocol.tls1_0", "generic")


def test_unknown_finding_has_no_text() -> None:
    assert remediation_for("no.such.rule", "esxi") == ""


def test_every_graded_finding_has_a_fix_and_sources_on_every_platform() -> None:
    ids = {r.rule for r in ALL_CAPS if not r.rule.startswith("grade.")}
    ids |= {"tls.cert.expiring_soon", "tls.protocol.negotiation_mismatch", "waiver.expired"}
    for fid in sorted(ids):
        for platform in PLATFORMS:
            assert remediation_for(fid, platform), (fid, platform)
        if fid != "waiver.expired":
            assert references_for(fid), fid


def test_every_topic_has_generic_text_and_mapped_prefix() -> None:
    d = data()
    mapped = {name for _prefix, name in d.prefixes}
    for topic in d.topics:
        assert topic.text("generic"), topic.name
        assert topic.name in mapped, topic.name
    assert mapped <= {t.name for t in d.topics}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (PlatformHint.ESXI, "esxi"),
        (PlatformHint.AUTO, "generic"),
        ("VMware ESXi", "esxi"),
        ("VMware vCenter Server", "vcenter"),
        ("XCP-ng", "xenserver"),
        ("Citrix Hypervisor", "xenserver"),
        ("Microsoft Windows Server 2022 (Hyper-V)", "hyperv"),
        ("OpenBSD", "generic"),
        (None, "generic"),
    ],
)
def test_normalize_platform(value: object, expected: str) -> None:
    assert normalize_platform(value) == expected  # type: ignore[arg-type]


def test_detected_product_wins_over_hint() -> None:
    assert platform_of(result(hint=PlatformHint.HYPERV, product="VMware ESXi")) == "esxi"
    assert platform_of(result(hint=PlatformHint.XENSERVER, product="nginx")) == "xenserver"
    assert platform_of(result()) == "generic"


def test_with_remediation_fills_only_empty_texts() -> None:
    r = result(hint=PlatformHint.XENSERVER)
    own = replace(finding("tls.protocol.tls1_0"), remediation="already said")
    out = with_remediation([own, finding("tls.cert.self_signed"), finding("x.unknown")], r)
    assert out[0].remediation == "already said"
    assert "xe host-server-certificate-install" in out[1].remediation
    assert out[2].remediation == ""
