"""What the TLS probe keeps from the first handshake a server answered, for the
servers that answer only that one (issue 12): an oversized chain, a load balancer that
answers once then resets, a one-worker appliance busy for a while.

- :func:`size_limit_error`: the handshake hit the TLS client's size limit; say so,
  with what the server's plaintext first flight showed before it;
- :func:`from_flight`: discovery's ClientHello answer (version and suite);
- :func:`with_backoff`: one more try after growing pauses, inside the deadline;
- :func:`partial_observation`: a row from that handshake alone, everything else
  not determined (never "not supported").
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.server_connectivity import TlsVersionEnum

from chanscan.discovery_wire import parse_server_flight
from chanscan.errors import ProtocolError
from chanscan.obs.tls import TLS_VERSIONS, ProtocolSupport, TlsObservation
from chanscan.probes import tls_enum
from chanscan.probes.base import ProbeContext
from chanscan.probes.sslyze_adapter import CipherSuiteAcceptedByServer
from chanscan.probes.tls_cert import certificate_checks

T = TypeVar("T")

# OpenSSL's client-side cap on a handshake message carrying the chain (max_cert_list,
# SSL_CTX_set_max_cert_list(3)): 100 KiB by default, in Python's ssl and in nassl.
MAX_CERT_LIST = 100 * 1024
DEADLINE_ENDED = "the endpoint deadline ended the probe"
_ENUMS = {
    "SSL 2.0": TlsVersionEnum.SSL_2_0,
    "SSL 3.0": TlsVersionEnum.SSL_3_0,
    "TLS 1.0": TlsVersionEnum.TLS_1_0,
    "TLS 1.1": TlsVersionEnum.TLS_1_1,
    "TLS 1.2": TlsVersionEnum.TLS_1_2,
    "TLS 1.3": TlsVersionEnum.TLS_1_3,
}


@dataclass(frozen=True)
class FirstHandshake:
    """What the first (modern) handshake showed: kept for the row even when every
    later connection fails (a server that answers once, then resets or sleeps)."""

    version: str
    cipher: str  # OpenSSL's name, as ssl.SSLSocket.cipher() gives it
    leaf_der: bytes | None


def too_large(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, ssl.SSLError) and cause.reason == "EXCESSIVE_MESSAGE_SIZE"


def size_limit_error(first_bytes: bytes) -> ProtocolError:
    """Every client we have (Python's ssl, nassl) stops at the same limit: say so, with
    what the server showed before it, rather than let sslyze call it "no cipher suite
    supported"."""
    flight = parse_server_flight(first_bytes)
    seen = flight.describe() if flight is not None else ""
    return ProtocolError(
        "handshake message over the TLS client's size limit "
        f"({MAX_CERT_LIST // 1024} KiB, OpenSSL max_cert_list: excessive "
        "message size), most likely the certificate chain; "
        + (f"seen before it: {seen}" if seen else "nothing readable before it")
    )


def _openssl_names() -> dict[int, str]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    # get_ciphers() ids carry OpenSSL's 0x0300xxxx prefix over the IANA code point.
    return {c["id"] & 0xFFFF: c["name"] for c in ctx.get_ciphers()}


def from_flight(reply: bytes) -> FirstHandshake | None:
    """Discovery's ClientHello answer as a first handshake: version and suite only."""
    flight = parse_server_flight(reply)
    if flight is None or flight.version is None or flight.cipher_suite is None:
        return None
    if flight.version not in _ENUMS:
        return None
    name = _openssl_names().get(flight.cipher_suite, f"0x{flight.cipher_suite:04X}")
    return FirstHandshake(flight.version, name, None)


BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
DEADLINE_ENDED = "the endpoint deadline ended the probe"


async def with_backoff(
    ctx: ProbeContext, attempt: Callable[[], Awaitable[T]], failure: type[Exception]
) -> T | str:
    """``attempt()`` again after growing pauses, as long as one more try (a network
    timeout) still ends a network timeout before the endpoint's deadline; its result,
    or why not."""
    tries = 0
    last = "no retry fitted in the deadline"
    for pause in BACKOFF:  # bounded by BACKOFF and the deadline
        left = trio.current_effective_deadline() - trio.current_time()
        if left < pause + 2 * ctx.options.network_timeout:
            break
        await trio.sleep(pause)
        tries += 1
        try:
            return await attempt()
        except failure as exc:
            last = str(exc)
    return f"{tries} retries with backoff failed too ({last})"


async def partial_observation(
    ctx: ProbeContext, first: FirstHandshake, preface: bytes | None, why: str
) -> TlsObservation:
    """A row from the first handshake alone: its version, suite and certificate are
    facts; everything else is not determined (never "not supported")."""
    ep = ctx.endpoint
    version_enum = _ENUMS[first.version]
    suites: tuple[Any, ...] = ()
    with contextlib.suppress(ValueError):
        suite = CipherSuitesRepository.get_cipher_suite_with_openssl_name(
            version_enum, first.cipher
        )
        suites = (tls_enum.describe_suite(CipherSuiteAcceptedByServer(suite, None)),)
    cert = None
    not_determined = [
        f"everything but the first handshake ({why})",
        f"protocols other than {first.version}",
        f"cipher suites beyond the one the first handshake chose ({first.cipher})",
    ]
    if not first.leaf_der:
        not_determined.append("certificate")
    else:
        try:
            check = functools.partial(certificate_checks, ca_bundle=ctx.options.ca_bundle)
            cert = await ctx.run_in_thread(check, (first.leaf_der,), ep.server_name or ep.address)
            not_determined.append("certificate chain beyond the leaf")
        except ProtocolError as exc:
            not_determined.append(f"certificate: {exc}")
    protocols = tuple(
        ProtocolSupport(name, True, suites)
        if name == first.version
        else ProtocolSupport(name, None)
        for name in TLS_VERSIONS
    )
    return TlsObservation(
        protocols=protocols,
        certificate=cert,
        negotiation=None,
        preface=None if preface is None else preface.decode("utf-8", "replace"),
        not_determined=tuple(not_determined),
    )
