"""The TLS probe end to end through the scheduler's ``probe_once``, against real TLS
servers on loopback (Python ``ssl`` and ``openssl s_server``)."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from cryptography.utils import CryptographyDeprecationWarning
from sslyze.plugins.scan_commands import ScanCommand

from chanscan import serde
from chanscan.lab.authd_server import add_authd_server
from chanscan.lab.core import Lab, free_port
from chanscan.lab.tls_servers import (
    LEGACY,
    CertSpec,
    hello_intolerant_proxy,
    plaintext_http_server,
    single_worker_server,
    version_intolerant_proxy,
)
from chanscan.model import Channel, Endpoint, EndpointResult, ScanOptions, Status
from chanscan.obs.tls import TlsObservation
from chanscan.probes.tls import TlsProbe
from chanscan.probes.tls_jobs import ChanscanNetworkConfiguration, run_command
from chanscan.scheduler import ResultCollector, probe_once, scan_endpoints
from tests._tls_lab import NAME, Served, server_info, start_openssl, start_python

ADDR = "127.30.3.1"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@pytest.fixture(scope="module")
def modern(lab: Lab) -> Served:
    return start_python(
        lab,
        ADDR,
        "modern",
        CertSpec(names=(NAME, ADDR)),
        hsts="max-age=31536000; includeSubDomains",
    )


@pytest.fixture(scope="module")
def legacy(lab: Lab) -> Served:
    return start_python(lab, ADDR, "legacy", CertSpec(names=(NAME, ADDR), key="rsa"), LEGACY)


def tls_of(result: EndpointResult) -> TlsObservation:
    assert result.status is Status.OK, result.error
    assert result.tls is not None
    return result.tls


def versions(obs: TlsObservation) -> dict[str, bool | None]:
    return {p.version: p.accepted for p in obs.protocols}


async def test_modern_server_by_name(modern: Served) -> None:
    probe = TlsProbe(web_ports=frozenset({modern.port}))
    result = await probe_once(modern.endpoint(by_name=True), probe)
    obs = tls_of(result)
    assert versions(obs) == {
        "SSL 2.0": False,
        "SSL 3.0": False,
        "TLS 1.0": False,
        "TLS 1.1": False,
        "TLS 1.2": True,
        "TLS 1.3": True,
    }
    suites = obs.all_suites()
    assert {s.name for s in suites} >= {
        "TLS_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    }
    assert all(s.forward_secrecy and s.aead and not s.cbc for s in suites)
    ecdhe = next(s for s in suites if s.key_exchange == "ECDHE")
    assert ecdhe.authentication == "ECDSA"
    assert ecdhe.ephemeral_curve in obs.groups
    assert "X25519" in obs.groups and "secp256r1" in obs.groups
    assert obs.negotiation is not None
    assert (obs.negotiation.modern_version, obs.negotiation.agree) == ("TLS 1.3", True)
    v = obs.vulns
    assert (v.heartbleed, v.ccs_injection, v.compression) == (False, False, False)
    assert (v.secure_renegotiation, v.client_renegotiation) == (True, False)
    assert (v.fallback_scsv, v.extended_master_secret) == (True, True)
    assert v.robot == "NOT_VULNERABLE_RSA_NOT_SUPPORTED"
    assert obs.http is not None and obs.http.hsts == "max-age=31536000; includeSubDomains"
    cert = obs.certificate
    assert cert is not None
    assert (cert.name_checked, cert.hostname_matches) == (NAME, True)
    assert cert.trusted_custom is None and cert.trusted_system is False
    assert obs.enumeration == "elimination" and obs.not_determined == ()
    # sslyze would open 533 connections for the suites alone.
    assert 10 < result.connections < 60
    # The observation survives the JSON report format.
    data = json.loads(json.dumps(serde.to_jsonable(result)))
    assert data["connections"] == result.connections
    assert serde.from_jsonable(EndpointResult, data) == result


async def test_private_ca_with_and_without_ca_bundle(modern: Served, tmp_path: Path) -> None:
    assert modern.issued.ca_pem is not None
    bundle = tmp_path / "vmca.pem"
    bundle.write_bytes(modern.issued.ca_pem)
    with_bundle = tls_of(
        await probe_once(modern.endpoint(by_name=True), TlsProbe(), ScanOptions(ca_bundle=bundle))
    )
    without = tls_of(await probe_once(modern.endpoint(by_name=True), TlsProbe()))
    assert with_bundle.certificate is not None and without.certificate is not None
    assert with_bundle.certificate.trusted_custom is True
    assert without.certificate.trusted_custom is None
    assert with_bundle.http is None, "HSTS is only asked on web UI ports"


async def test_legacy_server(legacy: Served) -> None:
    obs = tls_of(await probe_once(legacy.endpoint(), TlsProbe()))
    assert versions(obs)["TLS 1.0"] is True and versions(obs)["TLS 1.1"] is True
    assert versions(obs)["TLS 1.3"] is False
    tls10 = next(p for p in obs.protocols if p.version == "TLS 1.0")
    names = {s.name for s in tls10.cipher_suites}
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in names
    static = next(s for s in tls10.cipher_suites if s.name == "TLS_RSA_WITH_AES_128_CBC_SHA")
    assert (static.key_exchange, static.forward_secrecy, static.cbc) == ("RSA", False, True)
    assert tls10.server_preference is False
    assert obs.negotiation is not None and obs.negotiation.modern_version == "TLS 1.2"
    assert obs.vulns.robot == "NOT_VULNERABLE_NO_ORACLE"
    assert obs.vulns.early_data is None, "no TLS 1.3, so early data was not asked"


async def test_expired_self_signed_rsa1024_sha1(lab: Lab) -> None:
    weak = start_python(
        lab,
        ADDR,
        "weak",
        CertSpec(
            names=(NAME,),
            key="rsa",
            rsa_bits=1024,
            hash="sha1",
            self_signed=True,
            not_before_days=-400,
            days_valid=365,
        ),
        LEGACY,
    )
    obs = tls_of(await probe_once(weak.endpoint(by_name=True), TlsProbe()))
    assert obs.certificate is not None
    leaf = obs.certificate.chain[0]
    assert (leaf.key_type, leaf.key_bits, leaf.signature_hash) == ("RSA", 1024, "sha1")
    assert leaf.self_signed is True
    assert leaf.not_after < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def test_hostname_mismatch(lab: Lab) -> None:
    other = start_python(lab, ADDR, "mismatch", CertSpec(names=("other.test",)))
    obs = tls_of(await probe_once(other.endpoint(by_name=True), TlsProbe()))
    assert obs.certificate is not None
    assert (obs.certificate.name_checked, obs.certificate.hostname_matches) == (NAME, False)


async def test_ip_scan_sends_no_sni_to_a_strict_server(lab: Lab) -> None:
    log: list[str | None] = []
    strict = start_python(
        lab, ADDR, "strict", CertSpec(names=(NAME, ADDR)), sni_log=log, reject_ip_sni=True
    )
    obs = tls_of(await probe_once(strict.endpoint(), TlsProbe()))
    assert versions(obs)["TLS 1.3"] is True
    assert log and set(log) == {None}
    assert obs.certificate is not None and obs.certificate.name_checked == ADDR
    log.clear()
    tls_of(await probe_once(strict.endpoint(by_name=True), TlsProbe()))
    assert log and set(log) == {NAME}


async def test_authd_banner_then_tls(lab: Lab) -> None:
    port = free_port(ADDR)
    add_authd_server(lab, ADDR, port, names=(ADDR,))
    result = await probe_once(Endpoint(ADDR, ADDR, port), TlsProbe(Channel.AUTHD))
    obs = tls_of(result)
    assert obs.preface is not None and obs.preface.startswith("220 VMware Authentication Daemon")
    assert versions(obs)["TLS 1.3"] is True
    assert obs.certificate is not None and obs.certificate.hostname_matches is True


async def test_plaintext_port_is_not_tls(lab: Lab) -> None:
    port = free_port(ADDR)
    plaintext_http_server(lab, ADDR, port)
    result = await probe_once(Endpoint(ADDR, ADDR, port), TlsProbe())
    assert result.status is Status.ERROR
    assert result.error is not None and result.error.startswith("not TLS")
    assert result.connections == 1


async def test_tarpit_costs_its_deadline_only(lab: Lab) -> None:
    port = free_port(ADDR)
    lab.tarpit(ADDR, port)
    t0 = time.monotonic()
    result = await probe_once(
        Endpoint(ADDR, ADDR, port), TlsProbe(), ScanOptions(endpoint_deadline=2)
    )
    assert result.status is Status.TIMEOUT
    assert time.monotonic() - t0 < 3.5


@pytest.mark.needs_openssl
async def test_openssl_s_server(lab: Lab) -> None:
    served = start_openssl(
        lab, ADDR, "s_server", CertSpec(names=(ADDR,), key="rsa"), ["-cipher", "ALL:@SECLEVEL=0"]
    )
    obs = tls_of(await probe_once(served.endpoint(), TlsProbe()))
    assert versions(obs)["TLS 1.3"] is True and versions(obs)["TLS 1.2"] is True
    tls12 = next(p for p in obs.protocols if p.version == "TLS 1.2")
    kx = {s.key_exchange for s in tls12.cipher_suites}
    assert {"ECDHE", "DHE", "RSA"} <= kx
    dhe = next(s for s in tls12.cipher_suites if s.key_exchange == "DHE")
    assert dhe.ephemeral_key_type == "DH" and (dhe.ephemeral_key_bits or 0) >= 2048


async def test_single_worker_appliance_is_serialized_not_misreported(
    lab: Lab, legacy: Served
) -> None:
    port = free_port(ADDR)
    single_worker_server(lab, ADDR, port, legacy.port)
    direct = tls_of(await probe_once(legacy.endpoint(), TlsProbe()))
    behind = tls_of(await probe_once(Endpoint(ADDR, ADDR, port), TlsProbe()))
    assert versions(behind) == versions(direct)
    assert {s.name for s in behind.all_suites()} == {s.name for s in direct.all_suites()}


async def test_negotiation_mismatch_is_recorded(lab: Lab, legacy: Served) -> None:
    """A middlebox that drops hellos with supported_versions: the modern path fails
    while the per-version legacy hellos negotiate TLS 1.0 to 1.2."""
    port = free_port(ADDR)
    version_intolerant_proxy(lab, ADDR, port, legacy.port)
    obs = tls_of(await probe_once(Endpoint(ADDR, ADDR, port), TlsProbe()))
    assert obs.negotiation is not None
    assert obs.negotiation.modern_version is None
    assert obs.negotiation.legacy_versions == ("TLS 1.0", "TLS 1.1", "TLS 1.2")
    assert obs.negotiation.agree is False
    direct = tls_of(await probe_once(legacy.endpoint(), TlsProbe()))
    assert direct.negotiation is not None and direct.negotiation.agree is True


async def test_scan_with_a_tarpit_finishes_the_rest(lab: Lab, modern: Served) -> None:
    """Discovery + probe through the real scheduler: the tarpit costs its deadline, the
    TLS and authd endpoints next to it are measured in full."""
    tarpit = free_port(ADDR)
    lab.tarpit(ADDR, tarpit)
    authd = free_port(ADDR)
    add_authd_server(lab, ADDR, authd, names=(ADDR,))
    endpoints = [
        Endpoint(ADDR, ADDR, tarpit),
        modern.endpoint(by_name=True),
        Endpoint(ADDR, ADDR, authd),
    ]
    probes = {Channel.TLS: TlsProbe(), Channel.AUTHD: TlsProbe(Channel.AUTHD)}
    collector = ResultCollector(total=len(endpoints))
    deadline = 4.0
    t0 = time.monotonic()
    await scan_endpoints(
        endpoints, ScanOptions(endpoint_deadline=deadline, sniff_timeout=0.5), probes, collector
    )
    assert time.monotonic() - t0 < deadline + 2
    by_port = {r.port: r for r in collector.report(complete=True).endpoints}
    assert by_port[tarpit].status is Status.TIMEOUT
    tls = by_port[modern.port]
    assert (tls.channel, tls.status) == (Channel.TLS, Status.OK)
    assert tls.tls is not None and tls.tls.accepted_versions() == ("TLS 1.2", "TLS 1.3")
    assert tls.connections > 10  # discovery's plus the probe's, all counted
    ad = by_port[authd]
    assert (ad.channel, ad.status) == (Channel.AUTHD, Status.OK), ad.error
    assert ad.tls is not None and ad.tls.preface is not None


@pytest.mark.parametrize("which", ["modern", "legacy"])
async def test_full_probe_costs_at_most_an_eighth_of_sslyze(
    which: str, modern: Served, legacy: Served
) -> None:
    served = modern if which == "modern" else legacy
    result = await probe_once(served.endpoint(), TlsProbe(web_ports=frozenset({served.port})))
    assert result.status is Status.OK
    info = await trio.to_thread.run_sync(server_info, served.endpoint())
    config = info.network_configuration
    assert isinstance(config, ChanscanNetworkConfiguration)

    def everything() -> None:
        # What sslyze's full scan connects for: every command, each job once. Its
        # bundled trust store has a certificate that cryptography warns about.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            for command in ScanCommand:
                if command is not ScanCommand.SESSION_RESUMPTION:
                    outcome = run_command(info, command)
                    assert outcome.error is None, (command, outcome.error)

    await trio.to_thread.run_sync(everything)
    sslyze_total = config.counter.total
    assert sslyze_total > 500
    assert result.connections * 8 <= sslyze_total, (result.connections, sslyze_total)


@pytest.mark.needs_openssl
async def test_client_certificate_required_is_not_determined_never_absent(lab: Lab) -> None:
    served = start_openssl(lab, ADDR, "mtls", CertSpec(names=(ADDR,)), ["-Verify", "1"])
    obs = tls_of(await probe_once(served.endpoint(), TlsProbe()))
    assert obs.accepted_versions() == ("TLS 1.2", "TLS 1.3")
    assert obs.certificate is not None and obs.certificate.hostname_matches is True
    # Renegotiation needs a finished handshake: unknown here, not "secure".
    assert obs.vulns.secure_renegotiation is None
    assert any(n.startswith("session_renegotiation") for n in obs.not_determined)
    # The server's pick is unreadable before the client certificate: found by halving.
    assert obs.enumeration == "per-suite"


async def test_long_hello_intolerant_server_is_enumerated_per_suite(
    lab: Lab, legacy: Served
) -> None:
    port = free_port(ADDR)
    hello_intolerant_proxy(lab, ADDR, port, legacy.port)
    behind = tls_of(await probe_once(Endpoint(ADDR, ADDR, port), TlsProbe()))
    direct = tls_of(await probe_once(legacy.endpoint(), TlsProbe()))
    assert behind.enumeration == "per-suite" and direct.enumeration == "elimination"
    assert versions(behind) == versions(direct)
    assert {s.name for s in behind.all_suites()} == {s.name for s in direct.all_suites()}
