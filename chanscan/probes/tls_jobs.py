"""Driving sslyze 6.3.1 at the job level, under chanscan's budgets.

sslyze's ``Scanner`` owns its own thread pool and connection limits; chanscan has a
single scheduler, so we use the layer below it: ``check_connectivity_to_server``, then
for each scan command its implementation's ``scan_jobs_for_scan_command`` and
``result_for_completed_scan_jobs``. The jobs of one command run back to back in ONE
worker-thread hop (nassl holds the GIL during a handshake, so a hop per job costs real
time), inside one budget slot.

Two sslyze hooks are installed here (see ``install_hooks``; the private names they
replace come from ``sslyze_adapter``), both covered by ``tests/test_sslyze_api.py``:

* sslyze's socket opener (``sslyze_adapter.open_socket``) is wrapped to stop a job
  whose endpoint deadline has passed before it connects again
  (``workers.check_cancelled``), to count every TCP connection sslyze opens and, for
  ESXi authd (902), to read the plaintext
  ``220 VMware Authentication Daemon`` line before the handshake starts.
* ``SslConnection.__init__`` is wrapped so that a scan by IP address sends no SNI
  (RFC 6066 section 3 forbids IP literals in ``server_name``); sslyze itself always
  sends one.
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import OpenSslVerifyEnum, OpenSslVersionEnum
from sslyze.connection_helpers import tls_connection
from sslyze.errors import ConnectionToServerFailed, TlsHandshakeTimedOut
from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite
from sslyze.plugins.plugin_base import ScanJob, ScanJobResult
from sslyze.plugins.scan_commands import ScanCommand, ScanCommandsRepository
from sslyze.plugins.session_renegotiation_plugin import SessionRenegotiationExtraArgument
from sslyze.server_connectivity import (
    ServerConnectivityInfo,
    TlsVersionEnum,
    check_connectivity_to_server,
)
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from chanscan.model import Endpoint, ScanOptions
from chanscan.probes import sslyze_adapter as adapter
from chanscan.probes import tls_enum
from chanscan.workers import check_cancelled

# The longest plaintext greeting we accept before TLS (authd's is ~150 bytes).
_MAX_PREFACE = 1024

# Commands whose jobs hold one connection for a long time (ROBOT sends several
# oracle probes on one job, renegotiation loops on one connection). The probe runs
# ROBOT's attempts as separate thread jobs (``robot_jobs``) and renegotiation last,
# alone (see ``TlsProbe``); kept as the list of commands sslyze plans in several jobs.
LONG_COMMANDS = (ScanCommand.ROBOT, ScanCommand.SESSION_RENEGOTIATION)
ROBOT_ATTEMPTS = adapter.ROBOT_ATTEMPTS
# One accepted client-initiated renegotiation is the finding (the server lets a client
# make it do handshakes on demand). sslyze's default of ten in a row only adds evidence
# of missing rate limits, and a one-connection-at-a-time appliance (openssl s_server,
# BMC-class stacks) stalls after each one: ~1 s apiece, on the critical path of a scan.
CLIENT_RENEGOTIATIONS = 1


class ConnectionCounter:
    """Counts sslyze's TCP connections for one endpoint; shared by worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._taken = 0
        self.preface: bytes | None = None

    def add(self) -> None:
        with self._lock:
            self._count += 1

    @property
    def total(self) -> int:
        with self._lock:
            return self._count

    def take_new(self) -> int:
        """Connections opened since the last call (to report them to the scheduler)."""
        with self._lock:
            n, self._taken = self._count - self._taken, self._count
            return n


@dataclass(frozen=True)
class ChanscanNetworkConfiguration(ServerNetworkConfiguration):
    """sslyze's network configuration plus what our hooks need to know."""

    send_sni: bool = True
    expect_preface: bool = False  # read one plaintext line before the handshake
    counter: ConnectionCounter = field(default_factory=ConnectionCounter, compare=False)


class PrefaceError(OSError):
    """The server did not send the expected plaintext line before TLS."""


def _read_preface(sock: socket.socket) -> bytes:
    buf = b""
    while b"\n" not in buf and len(buf) < _MAX_PREFACE:  # bounded by _MAX_PREFACE
        chunk = sock.recv(_MAX_PREFACE - len(buf))
        if not chunk:
            raise PrefaceError("connection closed before the plaintext greeting ended")
        buf += chunk
    if b"\n" not in buf:
        raise PrefaceError("plaintext greeting longer than expected")
    line, _, rest = buf.partition(b"\n")
    if rest:
        # Bytes after the greeting would be TLS records we already consumed; authd
        # sends nothing more until the client speaks, so this is a different server.
        raise PrefaceError("unexpected data after the plaintext greeting")
    return line.rstrip(b"\r")


_HOOKED = "_chanscan_hooked"


def install_hooks() -> None:
    """Install both sslyze hooks once per process (idempotent, thread-safe enough:
    called at import time of this module)."""
    original_open = adapter.open_socket()
    if not getattr(original_open, _HOOKED, False):

        @functools.wraps(original_open)
        def open_socket(location: ServerNetworkLocation, timeout: int) -> socket.socket:
            return _open_socket_hook(original_open, location, timeout)

        setattr(open_socket, _HOOKED, True)
        adapter.replace_open_socket(open_socket)
        # Other chanscan code may not bind the configuration; _do_pre_handshake passes
        # only (location, timeout), so the configuration is found via the thread-local
        # set by the SslConnection hook below.

    original_init = tls_connection.SslConnection.__init__
    if not getattr(original_init, _HOOKED, False):

        @functools.wraps(original_init)
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            _ssl_connection_init_hook(original_init, self, *args, **kwargs)

        setattr(init, _HOOKED, True)
        tls_connection.SslConnection.__init__ = init  # type: ignore[method-assign]

        original_pre = adapter.pre_handshake()

        @functools.wraps(original_pre)
        def pre_handshake(self: Any) -> None:
            _current.config = self._network_configuration
            try:
                original_pre(self)
            finally:
                _current.config = None

        adapter.replace_pre_handshake(pre_handshake)


class _Current(threading.local):
    config: ServerNetworkConfiguration | None = None


_current = _Current()


def _open_socket_hook(
    original: Callable[[ServerNetworkLocation, int], socket.socket],
    location: ServerNetworkLocation,
    timeout: int,
) -> socket.socket:
    # The endpoint's deadline is a promise to the host: once it has cancelled this job's
    # caller, no further connection is opened (every sslyze/nassl connect passes here).
    check_cancelled()
    sock = original(location, timeout)
    config = _current.config
    if isinstance(config, ChanscanNetworkConfiguration):
        config.counter.add()
        if config.expect_preface:
            try:
                config.counter.preface = _read_preface(sock)
            except BaseException:
                sock.close()
                raise
    return sock


def _ssl_connection_init_hook(
    original: Callable[..., None], self: Any, *args: Any, **kwargs: Any
) -> None:
    config = kwargs.get("network_configuration", args[1] if len(args) > 1 else None)
    if isinstance(config, ChanscanNetworkConfiguration) and not config.send_sni:
        if (
            len(args) > 6
        ):  # positional form: (location, config, version, ignore_auth, legacy, ca, sni)
            args = (*args[:6], False, *args[7:])
        else:
            kwargs["should_enable_server_name_indication"] = False
    original(self, *args, **kwargs)


install_hooks()


# -- building sslyze's view of an endpoint ---------------------------------------------


def network_setup(
    endpoint: Endpoint, options: ScanOptions, *, expect_preface: bool = False
) -> tuple[ServerNetworkLocation, ChanscanNetworkConfiguration]:
    """Location with the already-resolved IP (so sslyze does no blocking DNS) and the
    configuration: SNI only when scanned by name, one network attempt per connect."""
    name = endpoint.server_name
    location = ServerNetworkLocation(
        hostname=name or endpoint.address, port=endpoint.port, ip_address=endpoint.address
    )
    config = ChanscanNetworkConfiguration(
        # sslyze requires a value even when we suppress the extension.
        tls_server_name_indication=name or endpoint.address,
        network_timeout=max(1, round(options.network_timeout)),
        network_max_retries=1,
        send_sni=name is not None,
        expect_preface=expect_preface,
    )
    return location, config


def connectivity(
    location: ServerNetworkLocation, config: ChanscanNetworkConfiguration
) -> ServerConnectivityInfo:
    """Blocking: sslyze's connectivity test (highest version, one working suite)."""
    probing = check_connectivity_to_server(location, config)
    return ServerConnectivityInfo(
        server_location=location, network_configuration=config, tls_probing_result=probing
    )


# -- running a command's jobs ------------------------------------------------------------


@dataclass(frozen=True)
class CommandOutcome:
    """What one scan command produced: a result, or why it was not determined."""

    command: ScanCommand
    result: Any | None
    error: str | None
    connection_failures: int


def _is_network_failure(exc: BaseException) -> bool:
    # A rejected handshake is an answer (plugins interpret it); only a failure to talk
    # to the server at all is worth one retry.
    if isinstance(exc, TlsHandshakeTimedOut):
        return True
    if isinstance(exc, ConnectionToServerFailed):
        return adapter.is_plain_connection_failure(exc)
    return isinstance(exc, (socket.timeout, ConnectionError))


def _run_job(job: ScanJob) -> tuple[ScanJobResult, int]:
    failures = 0
    for attempt in range(2):  # the job, then one retry after a network failure
        try:
            return adapter.job_result(job.function_to_call(*job.function_arguments), None), failures
        except Exception as exc:
            if _is_network_failure(exc):
                failures += 1
                if attempt == 0:
                    continue
            return adapter.job_result(None, exc), failures
    raise AssertionError("unreachable")


def command_jobs(
    server_info: ServerConnectivityInfo, command: ScanCommand, ca_bundle: Path | None = None
) -> list[ScanJob]:
    """The jobs of ``command`` (no network: sslyze only plans here)."""
    impl = ScanCommandsRepository.get_implementation_cls(command)
    extra: Any = None
    if command is ScanCommand.CERTIFICATE_INFO and ca_bundle is not None:
        extra = CertificateInfoExtraArgument(custom_ca_file=ca_bundle)
    elif command is ScanCommand.SESSION_RENEGOTIATION:
        extra = SessionRenegotiationExtraArgument(
            client_renegotiation_attempts=CLIENT_RENEGOTIATIONS
        )
    return list(impl.scan_jobs_for_scan_command(server_info, extra))


def run_jobs(jobs: Sequence[ScanJob]) -> tuple[list[ScanJobResult], int]:
    """Blocking: ``jobs`` back to back on the calling worker thread, each retried once
    after a network failure; also returns how many network failures were seen."""
    results: list[ScanJobResult] = []
    failures = 0
    for job in jobs:
        res, f = _run_job(job)
        results.append(res)
        failures += f
    return results, failures


def finish_command(
    server_info: ServerConnectivityInfo,
    command: ScanCommand,
    results: list[ScanJobResult],
    failures: int,
) -> CommandOutcome:
    """sslyze's own interpretation of the job results; a failure there (a job that
    failed twice) is recorded as not determined, never as absent."""
    impl = ScanCommandsRepository.get_implementation_cls(command)
    try:
        result = impl.result_for_completed_scan_jobs(server_info, results)
    except Exception as exc:  # the error text is the evidence
        return CommandOutcome(command, None, f"{type(exc).__name__}: {exc}".strip(), failures)
    return CommandOutcome(command, result, None, failures)


# -- ROBOT with one key fetch ---------------------------------------------------------------
# sslyze's three ROBOT attempts each fetch the server's RSA key first (one or two
# handshakes each) before their five oracle payloads. The key and the suites that
# reach it do not change between attempts, so it is fetched once, with sslyze's own
# function and cipher strings, and the three oracle runs reuse it.

_ROBOT_GCM = "AES128-GCM-SHA256:AES256-GCM-SHA384"  # sslyze's first try on TLS 1.2


@functools.cache
def _rsa_kex_names() -> frozenset[str]:
    # What sslyze's ROBOT test offers to get the server's RSA key: the legacy client's
    # "RSA" cipher string, i.e. RSA key exchange (its GCM first try is a subset).
    client = LegacySslClient(
        ssl_version=OpenSslVersionEnum.TLSV1_2, ssl_verify=OpenSslVerifyEnum.NONE
    )
    client.set_cipher_list("RSA")
    return frozenset(client.get_cipher_list())


def robot_version(info: ServerConnectivityInfo) -> TlsVersionEnum:
    """The version sslyze's ROBOT test uses: TLS 1.2 on a TLS 1.3 server, else the
    highest one."""
    highest = info.tls_probing_result.highest_tls_version_supported
    if highest.value >= TlsVersionEnum.TLS_1_3.value:
        return TlsVersionEnum.TLS_1_2
    return highest


def may_offer_rsa_kex(chain: tls_enum.Chain) -> bool:
    """Whether ``chain`` has a candidate sslyze's ROBOT test would offer."""
    names = _rsa_kex_names()
    return any(s.openssl_name in names for s in chain.suites)


def accepts_rsa_kex(results: Sequence[tls_enum.ChainResult]) -> bool:
    """Whether any suite sslyze's ROBOT test would offer was accepted in ``results``.
    With none accepted at ``robot_version``, sslyze's ROBOT cannot connect and reports
    NOT_VULNERABLE_RSA_NOT_SUPPORTED (plugins/robot/_robot_tester.py, test_robot)."""
    names = _rsa_kex_names()
    return any(a.cipher_suite.openssl_name in names for r in results for a in r.accepted)


@dataclass(frozen=True)
class RobotKey:
    version: TlsVersionEnum
    cipher_string: str
    modulus: int
    exponent: int


def robot_key(server_info: ServerConnectivityInfo) -> RobotKey | None:
    """Blocking, one or two handshakes: what each sslyze ROBOT attempt starts with
    (``_robot_tester.test_robot``): TLS 1.2 on a TLS 1.3 server, the RSA GCM suites
    first there, then any RSA key exchange. None: no RSA key exchange."""
    version = robot_version(server_info)
    candidates = [_ROBOT_GCM, "RSA"] if version is TlsVersionEnum.TLS_1_2 else ["RSA"]
    for cipher_string in candidates:
        numbers = adapter.get_rsa_parameters(server_info, version, cipher_string)
        if numbers is not None:
            return RobotKey(version, cipher_string, numbers.n, numbers.e)
    return None


def robot_jobs(server_info: ServerConnectivityInfo, key: RobotKey) -> list[ScanJob]:
    """sslyze's three oracle-detection attempts (five payload connections each) for
    an already fetched key; their results go to sslyze's ROBOT interpretation."""
    args = [server_info, key.version, key.cipher_string, key.modulus, key.exponent, True]
    return [
        ScanJob(function_to_call=adapter.run_oracle_detection, function_arguments=args)
        for _ in range(ROBOT_ATTEMPTS)
    ]


class RobotGate:
    """Holds ROBOT back until the first elimination phase at ROBOT's version is in.
    When every chain there has finished without accepting an RSA key-exchange suite,
    sslyze's ROBOT could not connect either and reports NOT_VULNERABLE_RSA_NOT_SUPPORTED:
    that verdict is given without its handshakes. Otherwise (RSA seen, more picks to
    come, or a chain failed) ROBOT runs, starting with sslyze's own key fetch."""

    def __init__(self, version: TlsVersionEnum, plan: list[tls_enum.Chain]) -> None:
        self.version = version
        self._pending = sum(1 for c in plan if self.relevant(c))
        self._run: bool | None = None
        self._event = trio.Event()
        if not self._pending:
            self.decide(True)

    def relevant(self, chain: tls_enum.Chain) -> bool:
        return chain.version is self.version and may_offer_rsa_kex(chain)

    def decide(self, run: bool) -> None:
        if self._run is None:
            self._run = run
            self._event.set()

    def picked(self, suite: CipherSuite) -> None:
        """One pick of a relevant chain, as soon as it is made (called on the trio
        thread): an RSA key-exchange suite settles it without waiting for the chain."""
        if suite.openssl_name in _rsa_kex_names():
            self.decide(True)

    def first_phase(self, first: tls_enum.ChainResult) -> None:
        if accepts_rsa_kex([first]) or not first.finished:
            self.decide(True)
            return
        self._pending -= 1
        if self._pending <= 0:
            self.decide(False)

    async def wait(self) -> bool:
        """Whether ROBOT must run."""
        await self._event.wait()
        return bool(self._run)


def robot_without_rsa(server_info: ServerConnectivityInfo) -> CommandOutcome:
    """sslyze's own verdict for a server without RSA key exchange."""
    results = [
        adapter.job_result(None, adapter.ServerDoesNotSupportRsa()) for _ in range(ROBOT_ATTEMPTS)
    ]
    return finish_command(server_info, ScanCommand.ROBOT, results, 0)


def split_renegotiation(
    server_info: ServerConnectivityInfo,
) -> tuple[list[ScanJob], list[ScanJob]]:
    """sslyze's renegotiation jobs as (those that only handshake, those that
    renegotiate). Only the client-initiated renegotiation stalls a one-connection
    server afterwards, so only it has to come last; the secure-renegotiation check is
    one ordinary handshake that can run with everything else. An unexpected plan
    (another sslyze) keeps every job for the end."""
    jobs = command_jobs(server_info, ScanCommand.SESSION_RENEGOTIATION)
    early = [j for j in jobs if adapter.job_function(j) is adapter.SECURE_RENEGOTIATION_JOB]
    late = [j for j in jobs if adapter.job_function(j) is adapter.CLIENT_RENEGOTIATION_JOB]
    if len(early) != 1 or len(late) != 1 or len(jobs) != 2:
        return [], jobs
    return early, late


def run_command(
    server_info: ServerConnectivityInfo,
    command: ScanCommand,
    ca_bundle: Path | None = None,
) -> CommandOutcome:
    """Blocking: all jobs of ``command`` back to back on the calling worker thread."""
    results, failures = run_jobs(command_jobs(server_info, command, ca_bundle))
    return finish_command(server_info, command, results, failures)
