"""Fails loudly when an sslyze upgrade breaks the job-level API or a private hook
chanscan relies on (sslyze is pinned to 6.3.1 in pyproject.toml)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from importlib.metadata import version

import pytest
import sslyze
from sslyze.connection_helpers import tls_connection
from sslyze.plugins.openssl_cipher_suites import _test_cipher_suite
from sslyze.plugins.openssl_cipher_suites._tls12_workaround import (
    WorkaroundForTls12ForCipherSuites,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.plugins.plugin_base import ScanJob, ScanJobResult
from sslyze.plugins.scan_commands import ScanCommand, ScanCommandsRepository
from sslyze.server_connectivity import ServerConnectivityInfo, TlsVersionEnum
from sslyze.server_setting import ServerNetworkConfiguration

from chanscan.lab.authd_server import AUTHD_BANNER, add_authd_server
from chanscan.lab.core import Lab, free_port
from chanscan.lab.tls_servers import CertSpec
from chanscan.model import Endpoint, ScanOptions
from chanscan.probes import tls_jobs
from chanscan.probes.tls_jobs import ChanscanNetworkConfiguration, install_hooks, run_command
from tests._tls_lab import NAME, server_info, start_python

ADDR = "127.30.4.1"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


def test_sslyze_is_the_pinned_version() -> None:
    assert version("sslyze") == "6.3.1", "re-check every hook in chanscan/probes/tls_jobs.py"
    assert sslyze.__version__.__version__ == "6.3.1"


@pytest.mark.parametrize("command", list(ScanCommand))
def test_every_command_has_the_job_level_api(command: ScanCommand) -> None:
    impl = ScanCommandsRepository.get_implementation_cls(command)
    jobs = inspect.signature(impl.scan_jobs_for_scan_command).parameters
    assert list(jobs) == ["server_info", "extra_arguments"]
    done = inspect.signature(impl.result_for_completed_scan_jobs).parameters
    assert list(done) == ["server_info", "scan_job_results"]
    assert {f for f in ScanJob.__dataclass_fields__} == {"function_to_call", "function_arguments"}
    assert ScanJobResult(_return_value=1, _exception=None).get_result() == 1


def test_private_hook_points_exist() -> None:
    # _open_socket(location, timeout) is looked up as a module global at call time.
    install_hooks()
    hooked = tls_connection._open_socket
    assert getattr(hooked, "_chanscan_hooked", False)
    assert list(inspect.signature(hooked.__wrapped__).parameters) == [
        "server_location",
        "network_timeout",
    ]
    init = tls_connection.SslConnection.__init__
    assert getattr(init, "_chanscan_hooked", False)
    params = list(inspect.signature(init.__wrapped__).parameters)
    # The positional index of the SNI switch is hard-coded in the hook.
    assert params[1:8] == [
        "server_location",
        "network_configuration",
        "tls_version",
        "should_ignore_client_auth",
        "should_use_legacy_openssl",
        "ca_certificates_path",
        "should_enable_server_name_indication",
    ]
    src = inspect.getsource(tls_connection.SslConnection._do_pre_handshake.__wrapped__)
    assert "_open_socket(self._server_location, self._network_configuration.network_timeout)" in src
    assert issubclass(ChanscanNetworkConfiguration, ServerNetworkConfiguration)


def test_enumeration_building_blocks_exist() -> None:
    counts = {v: len(CipherSuitesRepository.get_all_cipher_suites(v)) for v in TlsVersionEnum}
    # 533 per-suite handshakes is what sslyze 6.3.1 costs per endpoint.
    assert sum(counts.values()) == 533
    assert list(inspect.signature(_test_cipher_suite.connect_with_cipher_suite).parameters) == [
        "server_connectivity_info",
        "tls_version",
        "cipher_suite",
    ]
    assert WorkaroundForTls12ForCipherSuites.requires_legacy_openssl("DES-CBC3-SHA") is True
    assert "get_preconfigured_tls_connection" in dir(ServerConnectivityInfo)


def test_ip_scan_sends_no_sni_and_name_scan_sends_the_name(lab: Lab) -> None:
    log: list[str | None] = []
    served = start_python(
        lab, ADDR, "sni", CertSpec(names=(NAME,)), sni_log=log, reject_ip_sni=True
    )
    by_ip = server_info(served.endpoint())
    outcome = run_command(by_ip, ScanCommand.TLS_1_3_CIPHER_SUITES)
    assert outcome.result.accepted_cipher_suites, "a strict server rejects an IP literal in SNI"
    assert log and set(log) == {None}
    log.clear()
    by_name = server_info(served.endpoint(by_name=True))
    run_command(by_name, ScanCommand.TLS_1_2_CIPHER_SUITES)
    assert log and set(log) == {NAME}


def test_sslyze_on_its_own_sends_the_ip_as_sni(lab: Lab) -> None:
    """The reason the SNI hook exists: without it the strict server rejects sslyze."""
    log: list[str | None] = []
    served = start_python(lab, ADDR, "sni-plain", CertSpec(names=(NAME,)), sni_log=log)
    info = server_info(served.endpoint())
    conn = tls_connection.SslConnection(
        info.server_location,
        ServerNetworkConfiguration(tls_server_name_indication=ADDR, network_max_retries=1),
        TlsVersionEnum.TLS_1_2,
        True,
    )
    try:
        conn.connect()
    finally:
        conn.close()
    assert log[-1] == ADDR


def test_preface_hook_reads_the_authd_line_and_counts_connections(lab: Lab) -> None:
    port = free_port(ADDR)
    add_authd_server(lab, ADDR, port)
    info = server_info(Endpoint(ADDR, ADDR, port), preface=True)
    config = info.network_configuration
    assert isinstance(config, ChanscanNetworkConfiguration)
    assert config.counter.preface == AUTHD_BANNER.rstrip(b"\r\n")
    before = config.counter.total
    outcome = run_command(info, ScanCommand.TLS_1_3_CIPHER_SUITES)
    assert outcome.error is None
    assert len(outcome.result.accepted_cipher_suites) == 3
    # One connection per suite sslyze tried: the counter sees every socket.
    assert config.counter.total - before == len(
        CipherSuitesRepository.get_all_cipher_suites(TlsVersionEnum.TLS_1_3)
    )


def test_without_the_preface_hook_sslyze_fails_on_authd(lab: Lab) -> None:
    port = free_port(ADDR)
    add_authd_server(lab, ADDR, port)
    with pytest.raises(tls_jobs.ConnectionToServerFailed):
        server_info(
            Endpoint(ADDR, ADDR, port), preface=False, options=ScanOptions(network_timeout=1)
        )


def test_nassl_and_private_sslyze_names_we_use() -> None:
    from nassl._nassl import OpenSSLError
    from nassl.ephemeral_key_info import EcDhEphemeralKeyInfo, OpenSslEcNidEnum
    from nassl.ssl_client import SslClient
    from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import (
        CipherSuiteAcceptedByServer,
    )
    from sslyze.server_connectivity import enable_ecdh_cipher_suites

    assert issubclass(OpenSSLError, Exception)
    for method in (
        "get_received_chain",
        "get_current_cipher_name",
        "get_ephemeral_key",
        "set_groups",
        "set_ciphersuites",
        "set_cipher_list",
    ):
        assert callable(getattr(SslClient, method)), method
    assert "curve" in EcDhEphemeralKeyInfo.__dataclass_fields__
    assert OpenSslEcNidEnum.get_supported_by_ssl_client()
    assert list(CipherSuiteAcceptedByServer.__dataclass_fields__) == [
        "cipher_suite",
        "ephemeral_key",
    ]
    assert list(inspect.signature(enable_ecdh_cipher_suites).parameters) == [
        "tls_version",
        "ssl_client",
    ]
