"""An unknown is not a finding: for every input a rule reads, "not determined" (None)
neither raises a finding on a clean endpoint nor passes for "fine" on a bad one; it is
named in the not-determined list instead.

Table-driven: each row names an observation field, the value that makes the finding
true, and the finding it drives. Three observations per row: clean, bad (the finding
must be there, so the row is live), and unknown (the field set to None on the clean
one, and on the bad one): no finding from the field either way, every other finding
unchanged, and the check listed as not determined.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from grading_fixtures import cert, checks, modern_ssh, modern_tls
from obs_builders import SCAN_TIME

from chanscan import rules
from chanscan.model import Channel, EndpointResult, Status
from chanscan.obs.tls import NegotiationCheck, TlsObservation

NOT_DETERMINED = "tls.check.not_determined"


def _vulns(**kw: Any) -> Any:
    return lambda o: replace(o, vulns=replace(o.vulns, **kw))


def _cert(**kw: Any) -> Any:
    return lambda o: replace(o, certificate=replace(o.certificate, **kw))


def _protocol(version: str, accepted: bool | None) -> Any:
    def change(o: TlsObservation) -> TlsObservation:
        return replace(
            o,
            protocols=tuple(
                replace(p, accepted=accepted, cipher_suites=p.cipher_suites if accepted else ())
                if p.version == version
                else p
                for p in o.protocols
            ),
        )

    return change


def _negotiation(agree: bool | None) -> Any:
    return lambda o: replace(o, negotiation=NegotiationCheck("TLS 1.2", ("TLS 1.2",), agree))


# (name, make it bad, make it unknown, the finding the input drives)
TLS_ROWS = [
    ("heartbleed", _vulns(heartbleed=True), _vulns(heartbleed=None), "tls.vuln.heartbleed"),
    ("ccs", _vulns(ccs_injection=True), _vulns(ccs_injection=None), "tls.vuln.ccs_injection"),
    (
        "robot",
        _vulns(robot="VULNERABLE_STRONG_ORACLE"),
        _vulns(robot=None),
        "tls.vuln.robot",
    ),
    (
        "secure_reneg",
        _vulns(secure_renegotiation=False),
        _vulns(secure_renegotiation=None),
        "tls.reneg.insecure",
    ),
    (
        "client_reneg",
        _vulns(client_renegotiation=True),
        _vulns(client_renegotiation=None),
        "tls.reneg.client_initiated",
    ),
    ("compression", _vulns(compression=True), _vulns(compression=None), "tls.compression"),
    (
        "fallback_scsv",
        _vulns(fallback_scsv=False),
        _vulns(fallback_scsv=None),
        "tls.no_fallback_scsv",
    ),
    (
        "ems",
        _vulns(extended_master_secret=False),
        _vulns(extended_master_secret=None),
        "tls.no_extended_master_secret",
    ),
    (
        "hostname",
        _cert(hostname_matches=False),
        _cert(hostname_matches=None),
        "tls.cert.hostname_mismatch",
    ),
    ("trust", _cert(trusted_system=False), _cert(trusted_system=None), "tls.cert.untrusted"),
    ("tls1_0", _protocol("TLS 1.0", True), _protocol("TLS 1.0", None), "tls.protocol.tls1_0"),
    ("sslv3", _protocol("SSL 3.0", True), _protocol("SSL 3.0", None), "tls.protocol.sslv3"),
    ("tls1_3", _protocol("TLS 1.3", False), _protocol("TLS 1.3", None), "tls.protocol.no_tls1_3"),
    (
        "negotiation",
        _negotiation(False),
        _negotiation(None),
        "tls.protocol.negotiation_mismatch",
    ),
]


def _ids(obs: TlsObservation) -> set[str]:
    res = EndpointResult("h", "192.0.2.10", 443, Channel.TLS, Status.OK, tls=obs)
    return {f.id for f in rules.evaluate(res, now=SCAN_TIME)}


def _clean() -> TlsObservation:
    return modern_tls(certificate=checks(cert()))


@pytest.mark.parametrize(("name", "bad", "unknown", "fid"), TLS_ROWS, ids=[r[0] for r in TLS_ROWS])
def test_tls_unknown_neither_raises_nor_clears(name: str, bad: Any, unknown: Any, fid: str) -> None:
    clean = _clean()
    base = _ids(clean)
    assert fid not in base and NOT_DETERMINED not in base
    assert fid in _ids(bad(clean)), "the row must drive its finding"
    # Unknown on a clean endpoint: nothing raised, the check is named as not determined.
    assert _ids(unknown(clean)) == base | {NOT_DETERMINED}
    # Unknown on top of the bad value: the finding is not asserted, nothing else moves.
    assert _ids(unknown(bad(clean))) == base | {NOT_DETERMINED}


def test_negotiation_with_tls13_not_determined_is_not_a_mismatch() -> None:
    """The issue's case: TLS 1.3 support undetermined, the modern hello picked TLS 1.3,
    the legacy probes confirmed only TLS 1.2: no mismatch finding, no MITM cap."""
    clean = _clean()
    obs = _protocol("TLS 1.3", None)(clean)
    obs = replace(obs, negotiation=NegotiationCheck("TLS 1.3", ("TLS 1.2",), None))
    ids = _ids(obs)
    assert "tls.protocol.negotiation_mismatch" not in ids and NOT_DETERMINED in ids


def test_ssh_without_kexinit_raises_no_algorithm_finding() -> None:
    seen = modern_ssh()
    blind = replace(seen, kexinit=None, not_determined=("kexinit",))
    res = EndpointResult("h", "192.0.2.10", 22, Channel.SSH, Status.OK, ssh=blind)
    found = {f.id for f in rules.evaluate(res, now=SCAN_TIME)}
    # Terrapin and every algorithm finding need the KEXINIT: unknown raises none of them.
    assert not {f for f in found if f.startswith(("ssh.kex", "ssh.cipher", "ssh.mac"))}
    assert "ssh.terrapin" not in found
