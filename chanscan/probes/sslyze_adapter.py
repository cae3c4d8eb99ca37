"""The one place chanscan touches sslyze's and nassl's private names.

The TLS probe drives sslyze below its ``Scanner`` (job by job, under chanscan's own
budgets), which needs a few things sslyze does not publish: the socket opener and the
pre-handshake step it hooks, ROBOT's key fetch and oracle run, the per-suite handshake,
the renegotiation jobs, nassl's OpenSSL error class, and the texts of some errors.
Everything of that kind is named here, against the pinned versions below, and
``tests/test_sslyze_adapter.py`` fails on an sslyze or nassl upgrade (and on any other
chanscan module reaching for a private name), so an upgrade is a reviewed change of
this file, not a silent break in the probe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nassl._nassl import OpenSSLError
from sslyze.connection_helpers import tls_connection
from sslyze.errors import (
    ConnectionToServerFailed,
    ConnectionToServerTimedOut,
    ServerRejectedConnection,
)
from sslyze.plugins import session_renegotiation_plugin as _renegotiation
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import (
    CipherSuiteAcceptedByServer,
    connect_with_cipher_suite,
)
from sslyze.plugins.plugin_base import ScanJob, ScanJobResult
from sslyze.plugins.robot import _robot_tester
from sslyze.plugins.robot.implementation import RobotImplementation

__all__ = [
    "CLIENT_RENEGOTIATION_JOB",
    "GROUP_REJECTION_TEXTS",
    "NASSL_VERSION",
    "ROBOT_ATTEMPTS",
    "SECURE_RENEGOTIATION_JOB",
    "SILENT_DROP_TEXTS",
    "SSLYZE_VERSION",
    "CipherSuiteAcceptedByServer",
    "OpenSSLError",
    "ServerDoesNotSupportRsa",
    "connect_with_cipher_suite",
    "get_rsa_parameters",
    "is_plain_connection_failure",
    "job_result",
    "open_socket",
    "pre_handshake",
    "replace_open_socket",
    "replace_pre_handshake",
    "run_oracle_detection",
]

# What this file was written against (pyproject.toml pins both).
SSLYZE_VERSION = "6.3.1"
NASSL_VERSION = "5.4.0"

# -- ROBOT (sslyze/plugins/robot/_robot_tester.py) ---------------------------------------
ROBOT_ATTEMPTS: int = RobotImplementation._TEST_ATTEMPTS_NB
ServerDoesNotSupportRsa = _robot_tester.ServerDoesNotSupportRsa
get_rsa_parameters = _robot_tester._get_rsa_parameters
run_oracle_detection = _robot_tester._run_oracle_detection

# -- renegotiation (sslyze/plugins/session_renegotiation_plugin.py) -------------------------
SECURE_RENEGOTIATION_JOB: Callable[..., Any] = _renegotiation._test_secure_renegotiation
CLIENT_RENEGOTIATION_JOB: Callable[..., Any] = _renegotiation._test_client_renegotiation

# -- error texts ------------------------------------------------------------------------------
# sslyze's messages for "no connection at all" rather than a TLS answer: a server that
# drops a long hello shows these, a server that does not speak a version sends an alert.
SILENT_DROP_TEXTS = (
    "timed out",
    "Server closed the connection",
    "Server rejected the connection",
    "Server interrupted the TLS handshake",
)
# OpenSSL errors sslyze's curve test takes as "group rejected" (its issues 466/490/579).
GROUP_REJECTION_TEXTS = ("unexpected message", "wrong curve")


def is_plain_connection_failure(exc: BaseException) -> bool:
    """A failure to talk to the server at all: exactly these sslyze classes, not their
    subclasses (a rejected TLS handshake is an answer)."""
    return type(exc) in (
        ConnectionToServerFailed,
        ConnectionToServerTimedOut,
        ServerRejectedConnection,
    )


def job_result(value: Any, exception: Exception | None) -> ScanJobResult:
    """A job result as sslyze's plugins expect it (its fields are underscored)."""
    return ScanJobResult(_return_value=value, _exception=exception)


# -- hooks (sslyze/connection_helpers/tls_connection.py) ------------------------------------
def open_socket() -> Callable[..., Any]:
    """sslyze's socket opener: every TCP connection of its jobs goes through it."""
    fn: Callable[..., Any] = tls_connection._open_socket
    return fn


def replace_open_socket(fn: Callable[..., Any]) -> None:
    tls_connection._open_socket = fn


def pre_handshake() -> Callable[..., Any]:
    """``SslConnection``'s step before the handshake (opens the socket; opportunistic
    TLS), the one place a connection's configuration and its socket meet."""
    fn: Callable[..., Any] = tls_connection.SslConnection._do_pre_handshake
    return fn


def replace_pre_handshake(fn: Callable[..., Any]) -> None:
    tls_connection.SslConnection._do_pre_handshake = fn  # type: ignore[method-assign]


def job_function(job: ScanJob) -> Callable[..., Any]:
    fn: Callable[..., Any] = job.function_to_call
    return fn
