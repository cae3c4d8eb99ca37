"""Every finding agrees with the grading table: its axis is exactly the axes it caps, and
its severity follows its worst cap (docs/grading.md, "A finding's axis is exactly the
axes it caps"), so ``--fail-on`` and the grades never disagree.

The findings are the real ones the rule modules emit: the TLS catalogue and the SSH
algorithm database are tables, and the rest (RDP, cleartext, pins, platform, waivers)
are produced by calling their rules on observations that trigger them.
"""

from __future__ import annotations

from datetime import date

import pytest
from obs_builders import SCAN_TIME

from chanscan.grading import ALL_CAPS
from chanscan.grading.scale import grade_rank
from chanscan.model import (
    Axis,
    Channel,
    Endpoint,
    EndpointResult,
    Finding,
    PlatformInfo,
    Severity,
    Status,
)
from chanscan.obs.http import HttpObservation
from chanscan.obs.rdp import RdpNegotiation, RdpObservation
from chanscan.pin_findings import ssh_changed, tls_changed
from chanscan.rules import cleartext as cleartext_rules
from chanscan.rules import platform as platform_rules
from chanscan.rules import rdp as rdp_rules
from chanscan.rules.ssh import load_db
from chanscan.rules.tls_catalog import CATALOG
from chanscan.waivers import Waiver, apply_waivers

_CAPS: dict[str, dict[Axis, str]] = {}
for _r in ALL_CAPS:
    _CAPS.setdefault(_r.rule, {})[_r.axis] = _r.cap

_AXES_OF = {
    Axis.BOTH: {Axis.EAVESDROPPING, Axis.MITM},
    Axis.EAVESDROPPING: {Axis.EAVESDROPPING},
    Axis.MITM: {Axis.MITM},
    Axis.HOST: set(),
    Axis.NONE: set(),
}

# The severities a worst cap allows (docs/grading.md). Monotonic by construction: each
# row's lowest severity is at least the previous row's highest.
_ALLOWED: dict[str, set[Severity]] = {
    "F": {Severity.HIGH, Severity.CRITICAL},
    "E": {Severity.HIGH},
    "D": {Severity.HIGH},
    "C": {Severity.HIGH},
    "B": {Severity.MEDIUM},
    "A-": {Severity.LOW, Severity.INFO},
}


def _result(**kw: object) -> EndpointResult:
    base: dict[str, object] = {
        "host": "esx01.example",
        "address": "192.0.2.21",
        "port": 443,
        "channel": Channel.TLS,
        "status": Status.OK,
    }
    base.update(kw)
    return EndpointResult(**base)  # type: ignore[arg-type]


def _emitted() -> list[Finding]:
    out: list[Finding] = [e.finding(fid, ["x"]) for fid, e in CATALOG.items()]
    out += [spec.make(("x",)) for spec in load_db().findings]
    std = RdpObservation(
        protocols_accepted=("rdp", "ssl"),
        negotiations=(RdpNegotiation(requested="rdp", requested_mask=0, selected="rdp"),),
    )
    out += rdp_rules.observation_findings(std, now=SCAN_TIME)
    for port in (80, 5985):
        http = HttpObservation(status=200, reason="OK")
        out += cleartext_rules.findings(
            _result(port=port, channel=Channel.HTTP, http=http), now=SCAN_TIME
        )
    ssh_ep = _result(port=22, channel=Channel.SSH)
    out.append(ssh_changed(ssh_ep, ["ssh-ed25519: pinned a, now b"]))
    out.append(tls_changed(_result(), "old", "2026-01-01T00:00:00Z", "scan", "new"))
    old = PlatformInfo("ESXi", "6.7.0", "14320388", "high")
    out += platform_rules.host_findings(old, now=SCAN_TIME)
    unpatched = PlatformInfo("vCenter Server", "8.0.2", "23929136", "high")
    out += platform_rules.host_findings(unpatched, now=SCAN_TIME)
    waiver = Waiver("tls.*", "192.0.2.0/24", "r", date(2026, 1, 1))
    ep = Endpoint("esx01.example", "192.0.2.21", 443)
    out += apply_waivers(
        [CATALOG["tls.cipher.rc4"].finding("tls.cipher.rc4", [])], ep, [waiver], SCAN_TIME.date()
    )
    return out


EMITTED = {f.id: f for f in _emitted()}


def test_the_sources_cover_every_family() -> None:
    families = {fid.split(".")[0] for fid in EMITTED}
    assert {"tls", "ssh", "rdp", "cleartext", "pin", "platform", "waiver"} <= families
    assert {"rdp.standard_security", "rdp.no_nla", "cleartext.management_port"} <= set(EMITTED)
    assert {"platform.end_of_support", "platform.missing_security_patch"} <= set(EMITTED)
    assert "waiver.expired" in EMITTED


@pytest.mark.parametrize("fid", sorted(EMITTED))
def test_axis_is_exactly_the_axes_it_caps(fid: str) -> None:
    f = EMITTED[fid]
    assert _AXES_OF[f.axis] == set(_CAPS.get(fid, {})), (fid, f.axis, _CAPS.get(fid))


@pytest.mark.parametrize("fid", sorted(fid for fid in EMITTED if fid in _CAPS))
def test_severity_follows_the_worst_cap(fid: str) -> None:
    worst = max(_CAPS[fid].values(), key=grade_rank)
    assert EMITTED[fid].severity in _ALLOWED[worst], (fid, worst, EMITTED[fid].severity)


def test_severity_is_monotonic_with_the_cap() -> None:
    """Pairwise: a finding that caps lower is at least as severe as one that caps higher."""
    capped = [(max(_CAPS[i].values(), key=grade_rank), EMITTED[i]) for i in EMITTED if i in _CAPS]
    for cap_a, a in capped:
        for cap_b, b in capped:
            if grade_rank(cap_a) > grade_rank(cap_b):
                assert a.severity.rank >= b.severity.rank, (a.id, cap_a, b.id, cap_b)


def test_the_issue_examples_hold() -> None:
    # 3DES caps C, DH-1024 caps B: --fail-on high now fails the first, not the second.
    assert EMITTED["tls.cipher.3des"].severity is Severity.HIGH
    assert EMITTED["tls.kex.weak_dh"].severity is Severity.MEDIUM
    assert EMITTED["ssh.kex.sha1"].axis is Axis.EAVESDROPPING
    # No server authentication at all is MITM F.
    for fid in ("rdp.standard_security", "cleartext.management_port"):
        assert _CAPS[fid][Axis.MITM] == "F"
    # Host findings cap no channel.
    assert "platform.end_of_support" not in _CAPS
    assert EMITTED["platform.end_of_support"].axis is Axis.HOST
