"""The assess step: host-level findings without a pin store, and folding that is safe
to repeat."""

from __future__ import annotations

from dataclasses import replace

from sample_report import sample_report, tls_obs

from chanscan.assess import assess, fold_platforms
from chanscan.model import Channel, EndpointResult, ScanReport, Status


def _esxi_ports(report: ScanReport) -> list[EndpointResult]:
    return [
        r
        for r in report.endpoints
        if r.host == "esx01.example.com" and r.channel in (Channel.TLS, Channel.AUTHD)
    ]


def test_esxi_ports_with_different_keys_are_flagged_without_a_pin_store() -> None:
    report = sample_report()
    same = assess(report)
    assert all(
        "pin.tls_key_inconsistent" not in {f.id for f in r.findings} for r in _esxi_ports(same)
    )
    # Give the authd port (902) a certificate key of its own.
    swapped = tuple(
        replace(r, tls=tls_obs("esx01.example.com", "b3RoZXIta2V5", "cc" * 32, legacy=True))
        if r.host == "esx01.example.com" and r.port == 902
        else r
        for r in report.endpoints
    )
    flagged = assess(replace(report, endpoints=swapped))
    ports = _esxi_ports(flagged)
    assert {r.port for r in ports} == {443, 902}
    for r in ports:
        assert r.status is Status.OK
        assert "pin.tls_key_inconsistent" in {f.id for f in r.findings}, r.port


def test_folding_twice_changes_nothing() -> None:
    report = sample_report()
    with_evidence = tuple(
        replace(r, platform=replace(r.platform, evidence=("NTLM challenge: build 20348",)))
        if r.platform is not None and r.port == 3389
        else r
        for r in report.endpoints
    )
    once = fold_platforms(replace(report, endpoints=with_evidence))
    assert fold_platforms(once) == once
    rdp = next(r for r in once.endpoints if r.port == 3389)
    assert rdp.platform is not None
    assert rdp.platform.evidence == ("3389/rdp: NTLM challenge: build 20348",)
