"""RDP rules, table-driven: rdp.standard_security / rdp.no_nla where true only, and
the TLS findings of the RDP TLS layer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from chanscan.model import Axis, Channel, EndpointResult, Status
from chanscan.obs.rdp import RdpNegotiation, RdpObservation
from chanscan.obs.tls import ProtocolSupport, TlsObservation, VulnChecks
from chanscan.rules import rdp as rules

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def obs(*accepted: str, legacy: bool = False, tls: TlsObservation | None = None) -> RdpObservation:
    names = ("rdp", "ssl", "hybrid", "hybrid_ex")
    negs = tuple(
        RdpNegotiation(n, 0, selected=n if n in accepted else None, legacy=legacy) for n in names
    )
    return RdpObservation(
        protocols_accepted=tuple(n for n in names if n in accepted),
        protocols_refused=tuple(n for n in names if n not in accepted),
        negotiations=negs,
        tls=tls,
    )


CASES = [
    ("nla_required", obs("hybrid", "hybrid_ex"), set()),
    ("nla_only_hybrid", obs("hybrid"), set()),
    ("tls_without_nla", obs("ssl", "hybrid"), {"rdp.no_nla"}),
    ("tls_only", obs("ssl"), {"rdp.no_nla"}),
    ("standard_and_tls", obs("rdp", "ssl", "hybrid"), {"rdp.standard_security", "rdp.no_nla"}),
    ("legacy", obs("rdp", legacy=True), {"rdp.standard_security", "rdp.no_nla"}),
    ("nothing_accepted", obs(), set()),
]


@pytest.mark.parametrize(("o", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rdp_table(o: RdpObservation, expected: set[str]) -> None:
    found = rules.observation_findings(o, now=NOW)
    assert {f.id for f in found} == expected
    for f in found:
        assert f.evidence and f.references and f.remediation


def test_axes_and_evidence() -> None:
    f = {x.id: x for x in rules.observation_findings(obs("rdp", "ssl"), now=NOW)}
    # No TLS and no server authentication: both axes.
    assert f["rdp.standard_security"].axis is Axis.BOTH
    assert f["rdp.no_nla"].axis is Axis.MITM
    assert f["rdp.no_nla"].evidence == (
        "accepted without CredSSP: rdp",
        "accepted without CredSSP: ssl",
    )
    legacy = rules.observation_findings(obs("rdp", legacy=True), now=NOW)[0]
    assert "pre-RDP 5.2" in legacy.evidence[0]


def test_tls_layer_findings_are_included() -> None:
    tls = TlsObservation(
        protocols=(ProtocolSupport("TLS 1.0", True), ProtocolSupport("TLS 1.2", True)),
        vulns=VulnChecks(heartbleed=False),
    )
    ids = {f.id for f in rules.observation_findings(obs("hybrid", tls=tls), now=NOW)}
    assert "tls.protocol.tls1_0" in ids
    assert "rdp.no_nla" not in ids


def test_entry_point() -> None:
    base = EndpointResult(
        host="hv.example", address="192.0.2.20", port=3389, channel=Channel.RDP, status=Status.OK
    )
    assert rules.findings(base, now=NOW) == []
    res = EndpointResult(**{**base.__dict__, "rdp": obs("ssl")})
    assert [f.id for f in rules.findings(res, now=NOW)] == ["rdp.no_nla"]


def test_observation_survives_json_roundtrip_and_schema() -> None:
    import json

    import jsonschema

    from chanscan.serde import from_jsonable, to_jsonable

    res = EndpointResult(
        host="hv.example",
        address="192.0.2.20",
        port=2179,
        channel=Channel.RDP,
        status=Status.OK,
        rdp=obs("rdp", "ssl", legacy=False),
    )
    data = json.loads(json.dumps(to_jsonable(res)))
    assert from_jsonable(EndpointResult, data) == res
    schema = json.loads(
        (Path(__file__).parents[1] / "chanscan/schema/chanscan-1.schema.json").read_text()
    )
    rdp_schema = schema["$defs"]["RdpObservation"]
    jsonschema.validate(data["rdp"], {**rdp_schema, "$defs": schema["$defs"]})
