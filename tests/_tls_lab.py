"""Shared helpers for the TLS engine tests: lab servers and sslyze's own per-suite
results through the job-level API (never sslyze's Scanner)."""

from __future__ import annotations

from dataclasses import dataclass

from sslyze.plugins.scan_commands import ScanCommand
from sslyze.server_connectivity import ServerConnectivityInfo, TlsVersionEnum

from chanscan.lab.core import Lab, free_port
from chanscan.lab.tls_servers import (
    LEGACY,
    MODERN,
    CertSpec,
    ServerCert,
    ServerProfile,
    issue,
    openssl_server,
    python_tls_server,
)
from chanscan.model import Endpoint, ScanOptions
from chanscan.probes.tls_jobs import connectivity, network_setup, run_command

CIPHER_COMMANDS = {
    TlsVersionEnum.SSL_2_0: ScanCommand.SSL_2_0_CIPHER_SUITES,
    TlsVersionEnum.SSL_3_0: ScanCommand.SSL_3_0_CIPHER_SUITES,
    TlsVersionEnum.TLS_1_0: ScanCommand.TLS_1_0_CIPHER_SUITES,
    TlsVersionEnum.TLS_1_1: ScanCommand.TLS_1_1_CIPHER_SUITES,
    TlsVersionEnum.TLS_1_2: ScanCommand.TLS_1_2_CIPHER_SUITES,
    TlsVersionEnum.TLS_1_3: ScanCommand.TLS_1_3_CIPHER_SUITES,
}

NAME = "chanscan.test"


@dataclass(frozen=True)
class Served:
    name: str
    address: str
    port: int
    issued: ServerCert

    def endpoint(self, by_name: bool = False) -> Endpoint:
        return Endpoint(NAME if by_name else self.address, self.address, self.port)


def start_python(
    lab: Lab, address: str, name: str, spec: CertSpec, profile: ServerProfile = MODERN, **kw: object
) -> Served:
    port = free_port(address)
    issued = issue(spec)
    python_tls_server(lab, address, port, issued, profile, name=name, **kw)  # type: ignore[arg-type]
    return Served(name, address, port, issued)


def start_openssl(lab: Lab, address: str, name: str, spec: CertSpec, args: list[str]) -> Served:
    port = free_port(address)
    issued = issue(spec)
    openssl_server(lab, address, port, issued, args, name=name)
    return Served(name, address, port, issued)


def standard_servers(lab: Lab, address: str) -> list[Served]:
    """The lab servers every enumeration test runs against."""
    names = (NAME, address)
    return [
        start_python(lab, address, "python-modern", CertSpec(names=names)),
        start_python(lab, address, "python-legacy", CertSpec(names=names, key="rsa"), LEGACY),
        start_openssl(
            lab,
            address,
            "openssl-tls1.0-all",
            CertSpec(names=names, key="rsa"),
            ["-tls1", "-cipher", "ALL:@SECLEVEL=0"],
        ),
        start_openssl(lab, address, "openssl-default", CertSpec(names=names, key="rsa"), []),
        # Mutual TLS required, as on some management ports: handshakes stop at the
        # CertificateRequest, after the server has chosen its suite.
        start_openssl(lab, address, "openssl-client-auth", CertSpec(names=names), ["-Verify", "1"]),
    ]


def server_info(
    endpoint: Endpoint, preface: bool = False, options: ScanOptions | None = None
) -> ServerConnectivityInfo:
    location, config = network_setup(endpoint, options or ScanOptions(), expect_preface=preface)
    return connectivity(location, config)


def sslyze_accepted(info: ServerConnectivityInfo) -> dict[TlsVersionEnum, set[str]]:
    """sslyze's own one-suite-per-handshake result, per version."""
    out: dict[TlsVersionEnum, set[str]] = {}
    for version, command in CIPHER_COMMANDS.items():
        outcome = run_command(info, command)
        assert outcome.error is None, outcome.error
        out[version] = {a.cipher_suite.name for a in outcome.result.accepted_cipher_suites}
    return out
