"""Depth per endpoint: independent TLS work overlaps within the per-host budget. The
secure-renegotiation handshake runs with everything else (only the client-initiated
renegotiation waits for the end), and ROBOT starts at the first RSA key-exchange pick
instead of after its version's whole first phase."""

from __future__ import annotations

import pytest
import trio
from sslyze.server_connectivity import TlsVersionEnum

from chanscan.lab.core import Lab
from chanscan.lab.tls_servers import LEGACY, CertSpec
from chanscan.probes import tls_enum
from chanscan.probes.tls_jobs import RobotGate, split_renegotiation
from tests._tls_lab import NAME, server_info, start_python

ADDR = "127.83.4.1"


def test_renegotiation_splits_into_a_handshake_and_the_renegotiation(lab: Lab) -> None:
    served = start_python(lab, ADDR, "reneg-split", CertSpec(names=(NAME,)))
    early, late = split_renegotiation(server_info(served.endpoint()))
    assert [j.function_to_call.__name__ for j in early] == ["_test_secure_renegotiation"]
    assert [j.function_to_call.__name__ for j in late] == ["_test_client_renegotiation"]


def _tls12_legacy() -> tls_enum.Chain:
    return next(c for c in tls_enum.plan_chains() if c.label == "TLS_1_2/legacy")


async def test_robot_gate_opens_at_the_first_rsa_pick() -> None:
    plan = tls_enum.plan_chains()
    gate = RobotGate(TlsVersionEnum.TLS_1_2, plan)
    chain = _tls12_legacy()
    ecdhe = next(s for s in chain.suites if s.openssl_name == "ECDHE-RSA-AES128-GCM-SHA256")
    rsa = next(s for s in chain.suites if s.openssl_name == "AES128-GCM-SHA256")
    gate.picked(ecdhe)  # forward secret: says nothing about ROBOT yet
    with trio.move_on_after(0.05) as waited:
        await gate.wait()
    assert waited.cancelled_caught
    gate.picked(rsa)
    with trio.fail_after(1):
        assert await gate.wait() is True


@pytest.mark.parametrize("max_picks", [None, 2])
def test_eliminate_reports_each_pick_as_it_is_made(lab: Lab, max_picks: int | None) -> None:
    served = start_python(
        lab, ADDR, f"picks-{max_picks}", CertSpec(names=(NAME,), key="rsa"), LEGACY
    )
    info = server_info(served.endpoint())
    heard: list[str] = []
    result = tls_enum.eliminate(
        info, _tls12_legacy(), max_picks, lambda s: heard.append(s.openssl_name)
    )
    assert heard == [a.cipher_suite.openssl_name for a in result.accepted]
    assert len(heard) >= 2
