"""The sslyze job runner (chanscan.probes.tls_jobs) and the suite description."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import CipherSuiteAcceptedByServer
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.server_connectivity import TlsVersionEnum

from chanscan.lab.core import Lab, free_port
from chanscan.lab.tls_servers import LEGACY, CertSpec
from chanscan.model import Endpoint, ScanOptions, Status
from chanscan.probes.tls import TlsProbe
from chanscan.probes.tls_enum import describe_suite
from chanscan.probes.tls_jobs import (
    LONG_COMMANDS,
    command_jobs,
    finish_command,
    network_setup,
    run_command,
    run_jobs,
)
from chanscan.scheduler import probe_once
from tests._tls_lab import NAME, server_info, start_python

ADDR = "127.30.1.1"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


def test_network_setup_uses_the_resolved_address_and_one_attempt() -> None:
    # A name that cannot resolve: sslyze must not try (no blocking DNS in a job).
    by_name = Endpoint("vcenter.invalid", "192.0.2.10", 443)
    location, config = network_setup(by_name, ScanOptions(network_timeout=2.4))
    assert location.ip_address == "192.0.2.10" and location.hostname == "vcenter.invalid"
    assert (config.send_sni, config.tls_server_name_indication) == (True, "vcenter.invalid")
    assert (config.network_timeout, config.network_max_retries) == (2, 1)
    _, by_ip = network_setup(Endpoint("192.0.2.10", "192.0.2.10", 443), ScanOptions())
    assert by_ip.send_sni is False


def test_a_failed_job_is_retried_once_then_not_determined(lab: Lab) -> None:
    # TLS 1.2 at most: sslyze skips the Heartbleed connection for TLS 1.3 servers.
    served = start_python(lab, ADDR, "goes-away", CertSpec(names=(NAME,), key="rsa"), LEGACY)
    info = server_info(served.endpoint())
    ok = run_command(info, ScanCommand.HEARTBLEED)
    assert ok.error is None and ok.result.is_vulnerable_to_heartbleed is False
    handle = next(h for h in lab.handles if h.port == served.port)
    handle.stop()
    gone = run_command(info, ScanCommand.HEARTBLEED)
    assert gone.result is None
    assert gone.error is not None and "rejected" in gone.error.lower()
    assert gone.connection_failures == 2  # the job and its one retry


def test_long_commands_split_into_independent_jobs(lab: Lab) -> None:
    """The probe gives each job of a long command its own thread job: that only pays
    off (and is only safe) because sslyze plans them as separate attempts."""
    served = start_python(lab, ADDR, "long", CertSpec(names=(NAME,), key="rsa"), LEGACY)
    info = server_info(served.endpoint())
    plans = {c: command_jobs(info, c) for c in LONG_COMMANDS}
    assert len(plans[ScanCommand.ROBOT]) == 3
    assert len(plans[ScanCommand.SESSION_RENEGOTIATION]) == 2
    for command, planned in plans.items():
        parts = [run_jobs([job]) for job in planned]
        outcome = finish_command(info, command, [r for rs, _ in parts for r in rs], 0)
        assert outcome.error is None, outcome.error
    robot = finish_command(
        info,
        ScanCommand.ROBOT,
        [r for job in plans[ScanCommand.ROBOT] for r in run_jobs([job])[0]],
        0,
    )
    assert robot.result.robot_result.name == "NOT_VULNERABLE_NO_ORACLE"


async def test_closed_port_is_a_connect_error_not_a_tls_verdict() -> None:
    port = free_port(ADDR)
    result = await probe_once(Endpoint(ADDR, ADDR, port), TlsProbe())
    assert result.status is Status.ERROR
    assert result.error is not None and "refused" in result.error
    assert result.tls is None


async def test_probe_keeps_trio_responsive(lab: Lab) -> None:
    """nassl holds the GIL per handshake; the jobs run on worker threads so the trio
    thread still ticks while a full endpoint scan runs."""
    served = start_python(lab, ADDR, "responsive", CertSpec(names=(NAME,)))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:  # cancelled below
            await trio.sleep(0.01)
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        t0 = trio.current_time()
        result = await probe_once(served.endpoint(), TlsProbe())
        elapsed = trio.current_time() - t0
        nursery.cancel_scope.cancel()
    assert result.status is Status.OK
    # Generous: at least a third of the ticks an idle loop would have made.
    assert ticks >= int(elapsed / 0.01 / 3)


def _accepted(version: TlsVersionEnum, name: str) -> CipherSuiteAcceptedByServer:
    suite = next(s for s in CipherSuitesRepository.get_all_cipher_suites(version) if s.name == name)
    return CipherSuiteAcceptedByServer(cipher_suite=suite, ephemeral_key=None)


# (version, IANA name, "kx auth cipher", properties that hold)
DESCRIBED = [
    ("TLS_1_2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "RSA RSA 3DES_EDE_CBC", {"cbc"}),
    ("TLS_1_2", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE RSA CHACHA20_POLY1305",
     {"fs", "aead"}),
    ("TLS_1_2", "TLS_DH_anon_WITH_AES_128_CBC_SHA", "DH anon AES_128_CBC", {"cbc"}),
    ("TLS_1_0", "TLS_RSA_EXPORT_WITH_RC4_40_MD5", "RSA RSA RC4_40", {"export"}),
    ("TLS_1_2", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE ECDSA AES_256_GCM",
     {"fs", "aead"}),
    ("TLS_1_2", "TLS_RSA_WITH_NULL_SHA256", "RSA RSA NULL", set()),
    ("TLS_1_3", "TLS_AES_128_CCM_8_SHA256", "TLS13 TLS13 AES_128_CCM_8", {"fs", "aead"}),
    ("SSL_2_0", "SSL_CK_DES_192_EDE3_CBC_WITH_MD5", "RSA RSA 3DES_EDE_CBC", {"cbc"}),
    ("SSL_2_0", "SSL_CK_RC4_128_EXPORT40_WITH_MD5", "RSA RSA RC4_40", {"export"}),
]  # fmt: skip


@pytest.mark.parametrize(("version", "name", "parts", "props"), DESCRIBED)
def test_describe_suite(version: str, name: str, parts: str, props: set[str]) -> None:
    d = describe_suite(_accepted(TlsVersionEnum[version], name))
    assert f"{d.key_exchange} {d.authentication} {d.encryption}" == parts
    got = {
        k
        for k, v in (
            ("fs", d.forward_secrecy),
            ("aead", d.aead),
            ("cbc", d.cbc),
            ("export", d.export),
        )
        if v
    }
    assert got == props


@pytest.mark.parametrize("version", list(TlsVersionEnum))
def test_every_known_suite_is_described_consistently(version: TlsVersionEnum) -> None:
    kinds = {
        "RSA",
        "DHE",
        "DH",
        "ECDHE",
        "ECDH",
        "TLS13",
        "PSK",
        "SRP",
        "KRB5",
        "GOSTR341001",
        "GOSTR341094",
    }
    for suite in CipherSuitesRepository.get_all_cipher_suites(version):
        d = describe_suite(CipherSuiteAcceptedByServer(cipher_suite=suite, ephemeral_key=None))
        assert d.key_exchange in kinds, suite.name
        assert not (d.aead and d.cbc), suite.name
        assert d.key_bits == suite.key_size
        if "NULL" in d.encryption or "RC4" in d.encryption:
            assert not d.cbc and not d.aead, suite.name
        if suite.is_anonymous:
            assert d.authentication == "anon", suite.name
