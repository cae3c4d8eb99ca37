"""Elimination finds exactly what sslyze's one-suite-per-handshake scan finds, on every
lab server, with a fraction of the connections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.server_connectivity import ServerConnectivityInfo, TlsVersionEnum

from chanscan.lab.core import Lab, free_port
from chanscan.lab.tls_servers import LEGACY, CertSpec, hello_intolerant_proxy
from chanscan.probes import tls_enum
from chanscan.probes.tls import fetch_chain, pem_chain_to_der
from chanscan.probes.tls_enum import Chain, ChainResult
from chanscan.probes.tls_jobs import (
    ChanscanNetworkConfiguration,
    accepts_rsa_kex,
    finish_command,
    robot_jobs,
    robot_key,
    robot_version,
    robot_without_rsa,
    run_command,
    run_jobs,
)
from tests._tls_lab import (
    NAME,
    Served,
    server_info,
    sslyze_accepted,
    standard_servers,
    start_python,
)

ADDR = "127.30.2.1"

pytestmark = pytest.mark.needs_openssl


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@pytest.fixture(scope="module")
def servers(lab: Lab) -> dict[str, Served]:
    return {s.name: s for s in standard_servers(lab, ADDR)}


def eliminate_all(
    info: ServerConnectivityInfo,
) -> tuple[dict[TlsVersionEnum, set[str]], list[ChainResult]]:
    """Both phases, sequentially (the probe runs them in parallel)."""
    found: dict[TlsVersionEnum, set[str]] = {v: set() for v in TlsVersionEnum}
    results: list[ChainResult] = []
    for chain in tls_enum.plan_chains():
        first = tls_enum.eliminate(info, chain, max_picks=tls_enum.FIRST_PICKS)
        results.append(first)
        results += [tls_enum.eliminate(info, part) for part in tls_enum.split(first)]
    for r in results:
        found[r.chain.version] |= {a.cipher_suite.name for a in r.accepted}
    return found, results


def counter_of(info: ServerConnectivityInfo) -> int:
    config = info.network_configuration
    assert isinstance(config, ChanscanNetworkConfiguration)
    return config.counter.total


@pytest.mark.parametrize(
    "name",
    [
        "python-modern",
        "python-legacy",
        "openssl-tls1.0-all",
        "openssl-default",
        "openssl-client-auth",
    ],
)
def test_elimination_equals_sslyze_per_suite(servers: dict[str, Served], name: str) -> None:
    info = server_info(servers[name].endpoint())
    before = counter_of(info)
    mine, results = eliminate_all(info)
    ours = counter_of(info) - before
    theirs = sslyze_accepted(info)
    sslyze_cost = counter_of(info) - before - ours
    assert mine == theirs
    assert any(mine.values()), "every lab server accepts something"
    # One handshake per accepted suite plus one per chain end.
    accepted = sum(len(v) for v in mine.values())
    assert ours == sum(r.handshakes for r in results)
    assert ours <= accepted + 3 * len(results)
    assert sslyze_cost == 533  # one connection per suite it knows
    assert ours * 8 < sslyze_cost


def test_modern_server_costs_few_connections(servers: dict[str, Served]) -> None:
    info = server_info(servers["python-modern"].endpoint(by_name=True))
    before = counter_of(info)
    mine, _ = eliminate_all(info)
    groups = tls_enum.eliminate_groups(info)
    total = counter_of(info) - before
    assert mine[TlsVersionEnum.TLS_1_3] == {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    }
    assert total < 30
    assert groups.handshakes == len(groups.groups) + 1


def test_large_versions_are_split_into_parallel_chains(servers: dict[str, Served]) -> None:
    info = server_info(servers["openssl-tls1.0-all"].endpoint())
    _, results = eliminate_all(info)
    tls10 = [r for r in results if r.chain.version is TlsVersionEnum.TLS_1_0]
    assert len(tls10) >= 3, "the first picks, then the other suites in a few chains"
    parts = [set(r.chain.suites) for r in tls10[1:]]
    assert all(not (a & b) for i, a in enumerate(parts) for b in parts[i + 1 :])
    assert not any(r.per_suite for r in results)


@pytest.mark.parametrize("name", ["python-modern", "python-legacy", "openssl-default"])
def test_group_elimination_equals_sslyze(servers: dict[str, Served], name: str) -> None:
    info = server_info(servers[name].endpoint())
    mine = tls_enum.eliminate_groups(info)
    theirs = run_command(info, ScanCommand.ELLIPTIC_CURVES).result
    assert {int(g) for g in mine.groups} == {c.openssl_nid for c in theirs.supported_curves}
    assert mine.groups


def test_hello_intolerant_server_falls_back_to_one_suite_per_handshake(lab: Lab) -> None:
    backend = start_python(
        lab, ADDR, "legacy-behind-f5", CertSpec(names=(NAME,), key="rsa"), LEGACY
    )
    port = free_port(ADDR)
    hello_intolerant_proxy(lab, ADDR, port, backend.port)
    front = Served("f5", ADDR, port, backend.issued)
    info = server_info(front.endpoint())
    mine, results = eliminate_all(info)
    per_suite = {r.chain.label for r in results if r.per_suite}
    # The TLS 1.0/1.1 and legacy-client TLS 1.2 full hellos are 256..511 bytes long.
    assert {"TLS_1_0/legacy", "TLS_1_1/legacy", "TLS_1_2/legacy"} <= per_suite
    assert mine == sslyze_accepted(server_info(backend.endpoint()))
    assert mine[TlsVersionEnum.TLS_1_0]


def test_server_preference_is_detected(lab: Lab, servers: dict[str, Served]) -> None:
    legacy = server_info(servers["python-legacy"].endpoint())
    modern = server_info(servers["python-modern"].endpoint())
    for info, expected in ((legacy, False), (modern, True)):
        chain = next(c for c in tls_enum.plan_chains() if c.label == "TLS_1_2/legacy")
        result = tls_enum.eliminate(info, chain)
        first, second = (a.cipher_suite for a in result.accepted[:2])
        pref, cost = tls_enum.server_prefers_own_order(info, chain, first, second)
        assert (pref, cost) == (expected, 1)


def test_chain_plan_covers_sslyze_exactly() -> None:
    chains: list[Chain] = tls_enum.plan_chains()
    from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository

    for v in TlsVersionEnum:
        planned = [s for c in chains if c.version is v for s in c.suites]
        assert len(planned) == len(set(planned))
        assert set(planned) == CipherSuitesRepository.get_all_cipher_suites(v)


def _robot_version_results(info: ServerConnectivityInfo) -> list[ChainResult]:
    _, results = eliminate_all(info)
    version = robot_version(info)
    return [r for r in results if r.chain.version is version]


def test_robot_verdict_without_rsa_kex_is_sslyzes_own(servers: dict[str, Served]) -> None:
    """No RSA key exchange accepted at ROBOT's version: the probe reports sslyze's
    verdict without ROBOT's handshakes, and sslyze, asked itself, says the same."""
    info = server_info(servers["python-modern"].endpoint())
    assert not accepts_rsa_kex(_robot_version_results(info))
    before = counter_of(info)
    skipped = robot_without_rsa(info)
    assert counter_of(info) == before, "the verdict costs no connection"
    theirs = run_command(info, ScanCommand.ROBOT)
    assert counter_of(info) - before >= 6  # sslyze's three attempts, two handshakes each
    assert skipped.error is None and theirs.error is None
    assert skipped.result.robot_result.name == "NOT_VULNERABLE_RSA_NOT_SUPPORTED"
    assert skipped.result.robot_result == theirs.result.robot_result


@pytest.mark.parametrize("name", ["python-legacy", "openssl-default"])
def test_robot_with_one_key_fetch_agrees_with_sslyze(servers: dict[str, Served], name: str) -> None:
    info = server_info(servers[name].endpoint())
    assert accepts_rsa_kex(_robot_version_results(info))
    before = counter_of(info)
    key = robot_key(info)
    assert key is not None
    results, failures = run_jobs(robot_jobs(info, key))
    ours = finish_command(info, ScanCommand.ROBOT, results, failures)
    cost = counter_of(info) - before
    theirs = run_command(info, ScanCommand.ROBOT)
    assert ours.error is None and theirs.error is None
    assert ours.result.robot_result == theirs.result.robot_result
    # One key fetch instead of three: sslyze spends at least two handshakes more.
    assert cost <= 2 + 3 * 5
    assert counter_of(info) - before - cost >= cost + 2


@pytest.mark.parametrize(("name", "expected"), [("python-legacy", False), ("python-modern", True)])
def test_preference_shown_by_the_picks_matches_the_explicit_check(
    servers: dict[str, Served], name: str, expected: bool
) -> None:
    info = server_info(servers[name].endpoint())
    chain = next(c for c in tls_enum.plan_chains() if c.label == "TLS_1_2/legacy")
    result = tls_enum.eliminate(info, chain)
    assert len(result.accepted) >= 2
    first, second = (a.cipher_suite for a in result.accepted[:2])
    explicit, _ = tls_enum.server_prefers_own_order(info, chain, first, second)
    assert tls_enum.preference_from_picks(result) is expected
    assert explicit is expected
    # The order check rode on the elimination: at most one handshake beyond the picks.
    assert result.handshakes <= len(result.accepted) + 2


@pytest.mark.parametrize("name", ["python-modern", "openssl-client-auth"])
def test_first_tls13_handshake_receives_the_chain_fetch_chain_would(
    servers: dict[str, Served], name: str
) -> None:
    """The probe takes the certificate chain from the TLS 1.3 chain's first handshake
    instead of a handshake of its own: it must be the very chain sslyze's default
    connection receives."""
    info = server_info(servers[name].endpoint())
    assert info.tls_probing_result.highest_tls_version_supported is TlsVersionEnum.TLS_1_3
    chain = next(c for c in tls_enum.plan_chains() if c.version is TlsVersionEnum.TLS_1_3)
    first = tls_enum.eliminate(info, chain, max_picks=tls_enum.FIRST_PICKS)
    assert first.received_chain
    assert pem_chain_to_der(first.received_chain) == fetch_chain(info)


def test_groups_found_whatever_their_order(servers: dict[str, Served]) -> None:
    """Common groups are offered first (a right TLS 1.3 key share, no HelloRetry): the
    set found is still sslyze's, and it costs one handshake per group plus one."""
    info = server_info(servers["openssl-default"].endpoint())
    mine = tls_enum.eliminate_groups(info)
    theirs = run_command(info, ScanCommand.ELLIPTIC_CURVES).result
    assert {int(g) for g in mine.groups} == {c.openssl_nid for c in theirs.supported_curves}
    assert mine.handshakes == len(mine.groups) + 1
