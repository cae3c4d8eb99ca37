"""The TLS probe: fills a :class:`TlsObservation` for one TLS endpoint (also ESXi
authd on 902, whose plaintext greeting precedes the handshake).

Order of work, all inside the scheduler's endpoint deadline:

1. One handshake from trio with Python's OpenSSL 3 and a modern ClientHello
   (``supported_versions``): tells TLS from a plaintext port and from a tarpit (which
   just waits for the deadline), and gives the "modern path" of the negotiation check.
2. sslyze's connectivity test (highest version, one working suite).
3. Everything else at once through ``ctx.gather``: ROBOT (held until the elimination
   at its version shows RSA key exchange, then one key fetch and its three oracle runs
   in parallel), the elimination chains (one per TLS version and client build), the
   groups, the certificate chain (taken from the first TLS 1.3 handshake when the
   server speaks TLS 1.3), then the short vulnerability commands.
4. The client-initiated renegotiation last and alone (see ``renegotiation`` below);
   the secure-renegotiation handshake runs in step 3.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from nassl.ssl_client import ClientCertificateRequested
from sslyze.connection_helpers.opportunistic_tls_helpers import ProtocolWithOpportunisticTlsEnum
from sslyze.errors import ConnectionToServerFailed, TlsHandshakeFailed
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.server_connectivity import ServerConnectivityInfo, TlsVersionEnum

from chanscan.errors import ConnectError, ProbeError, ProtocolError
from chanscan.model import Channel
from chanscan.obs.tls import (
    CertificateChecks,
    HttpInfo,
    NegotiationCheck,
    ProtocolSupport,
    TlsObservation,
    VulnChecks,
)
from chanscan.probes import tls_enum
from chanscan.probes.base import ProbeContext
from chanscan.probes.sslyze_adapter import CipherSuiteAcceptedByServer, OpenSSLError
from chanscan.probes.tls_cert import certificate_checks
from chanscan.probes.tls_first import (
    DEADLINE_ENDED,
    from_flight,
    partial_observation,
    with_backoff,
)
from chanscan.probes.tls_hello import ffdhe_groups, first_handshake
from chanscan.probes.tls_jobs import (
    CommandOutcome,
    ConnectionCounter,
    RobotGate,
    connectivity,
    finish_command,
    network_setup,
    robot_jobs,
    robot_key,
    robot_version,
    robot_without_rsa,
    run_command,
    run_jobs,
    split_renegotiation,
)

T = TypeVar("T")

# HTTPS management UIs (vCenter/ESXi 443, VAMI 5480, vSphere Client 9443, XenServer /
# iDRAC-class 8443): worth sslyze's HTTP headers request for HSTS.
WEB_UI_PORTS = frozenset({443, 5480, 8443, 9443})

VERSION_NAMES = {
    TlsVersionEnum.SSL_2_0: "SSL 2.0",
    TlsVersionEnum.SSL_3_0: "SSL 3.0",
    TlsVersionEnum.TLS_1_0: "TLS 1.0",
    TlsVersionEnum.TLS_1_1: "TLS 1.1",
    TlsVersionEnum.TLS_1_2: "TLS 1.2",
    TlsVersionEnum.TLS_1_3: "TLS 1.3",
}
# What the modern (Python OpenSSL 3) hello can negotiate at all.
_MODERN_RANGE = ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
# TLS record content types (RFC 8446 5.1; 20-24); SSL 2.0 replies start with 0x80+.
_QUICK_COMMANDS = (
    ScanCommand.HEARTBLEED,
    ScanCommand.OPENSSL_CCS_INJECTION,
    ScanCommand.TLS_COMPRESSION,
    ScanCommand.TLS_FALLBACK_SCSV,
    ScanCommand.TLS_EXTENDED_MASTER_SECRET,
)


@dataclass
class _Collected:
    outcomes: dict[ScanCommand, CommandOutcome] = field(default_factory=dict)
    chains: dict[tls_enum.Chain, list[tls_enum.ChainResult]] = field(default_factory=dict)
    preference: dict[tls_enum.Chain, bool | None] = field(default_factory=dict)
    failed_versions: dict[TlsVersionEnum, str] = field(default_factory=dict)
    groups: tls_enum.GroupsResult | None = None
    ffdhe: tuple[str, ...] = ()  # RFC 7919 groups taken for TLS 1.3 (nassl cannot offer them)
    expect_preface: bool = False
    chain_der: tuple[bytes, ...] = ()
    not_determined: list[str] = field(default_factory=list)
    # The chain the first TLS 1.3 handshake received (see ``certificate`` below).
    tls13_chain: tuple[str, ...] = ()
    tls13_first: trio.Event = field(default_factory=trio.Event)


class JobFailed(ProbeError):
    """A thread job could not complete. sslyze's own exceptions are frozen dataclasses,
    which break any ``async with`` they cross (contextlib assigns ``__traceback__``),
    so they are translated on the worker thread before they reach trio."""

    def __init__(self, message: str, network: bool) -> None:
        super().__init__(message)
        self.network = network


def _guarded(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except ConnectionToServerFailed as exc:
        network = not isinstance(exc, TlsHandshakeFailed)
        raise JobFailed(exc.error_message, network) from None
    except OSError as exc:
        raise JobFailed(str(exc) or type(exc).__name__, True) from None
    except OpenSSLError as exc:
        raise JobFailed(f"OpenSSL: {exc}", False) from None
    except Exception as exc:  # nassl/sslyze surprises on odd servers: data, not a crash
        raise JobFailed(f"{type(exc).__name__}: {exc}", False) from None


class _Jobs:
    """Thread jobs for one endpoint: a budget slot each, connections counted."""

    def __init__(self, ctx: ProbeContext, counter: ConnectionCounter) -> None:
        self.ctx = ctx
        self.counter = counter

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        async with self.ctx.budget():
            try:
                return await self.ctx.run_in_thread(_guarded, fn, *args)
            finally:
                self.ctx.count_connections(self.counter.take_new())

    async def call_retry(self, fn: Callable[..., T], *args: Any) -> T:
        """Once more after a network failure, with the host degraded to one connection
        at a time (a single-worker appliance drops parallel handshakes)."""
        try:
            return await self.call(fn, *args)
        except JobFailed as exc:
            if not exc.network:
                raise
            self.ctx.degrade_host()
        return await self.call(fn, *args)


def fetch_chain(info: ServerConnectivityInfo) -> tuple[bytes, ...]:
    """Blocking, one handshake: the certificate chain as the server sent it (DER)."""
    conn = info.get_preconfigured_tls_connection()
    try:
        # The chain has arrived before a CertificateRequest interrupts the handshake.
        with contextlib.suppress(ClientCertificateRequested):
            conn.connect()
        pems = conn.ssl_client.get_received_chain()
    finally:
        conn.close()
    return pem_chain_to_der(pems)


def pem_chain_to_der(pems: Sequence[str]) -> tuple[bytes, ...]:
    return tuple(
        x509.load_pem_x509_certificate(p.encode()).public_bytes(Encoding.DER) for p in pems
    )


class TlsProbe:
    """Probe for ``Channel.TLS`` (default) or ``Channel.AUTHD``."""

    def __init__(
        self,
        channel: Channel = Channel.TLS,
        web_ports: frozenset[int] = WEB_UI_PORTS,
        opportunistic: ProtocolWithOpportunisticTlsEnum | None = None,
    ) -> None:
        self.channel = channel
        self.web_ports = web_ports
        # RDP: sslyze's own X.224 step before every handshake of its jobs (our own
        # connections come pre-negotiated from the RDP probe's context).
        self.opportunistic = opportunistic

    async def run(self, ctx: ProbeContext) -> TlsObservation:
        ep = ctx.endpoint
        expect_preface = self.channel is Channel.AUTHD or ctx.banner.startswith(b"220 ")
        # Discovery's hello may have had the server's only answer (a server that
        # answers one handshake, then resets or sleeps): what it showed is kept.
        sniffed = from_flight(ctx.first_reply)
        if sniffed is not None:
            ctx.note_partial(await partial_observation(ctx, sniffed, None, DEADLINE_ENDED))
        try:
            first, preface = await first_handshake(ctx, expect_preface)
        except (ConnectError, OSError, trio.BrokenResourceError):
            if sniffed is None:
                raise
            first, preface = None, None  # it answered discovery: see what sslyze gets
        modern_version = None if first is None else first.version
        if first is not None:
            ctx.note_partial(await partial_observation(ctx, first, preface, DEADLINE_ENDED))
        first = first or sniffed
        location, config = network_setup(ep, ctx.options, expect_preface=expect_preface)
        if self.opportunistic is not None:
            config = dataclasses.replace(config, tls_opportunistic_encryption=self.opportunistic)
        jobs = _Jobs(ctx, config.counter)
        try:
            info = await jobs.call_retry(connectivity, location, config)
        except JobFailed as exc:
            if first is None:
                raise ProtocolError(f"no TLS handshake succeeded: {exc}") from None
            # The server did answer our first handshake: back off and try again while
            # the deadline allows; failing that, keep what that handshake showed.
            retried = await with_backoff(
                ctx, functools.partial(jobs.call, connectivity, location, config), JobFailed
            )
            if isinstance(retried, str):
                return await partial_observation(
                    ctx, first, preface, f"later connections failed: {exc}; {retried}"
                )
            info = retried
        web = not expect_preface and self.opportunistic is None
        got = _Collected(expect_preface=expect_preface)
        await self._collect(ctx, jobs, info, got, web)
        troubled = bool(got.not_determined or got.failed_versions) or any(
            o.connection_failures for o in got.outcomes.values()
        )
        suspects = [
            c
            for c, results in got.chains.items()
            if troubled and results[0].silent_end and not any(r.accepted for r in results)
        ]
        # A version whose connections were dropped while we ran in parallel, but that
        # answers when asked alone, means a one-worker appliance: serialize the host
        # and measure everything again rather than report a wrong "not supported".
        alone: bool = False
        if suspects:
            try:
                alone = await jobs.call(tls_enum.any_accepted, info, suspects)
            except JobFailed:
                alone = True  # even a lone connection failed: slow down all the more
        if alone:
            ctx.degrade_host()
            got = _Collected(expect_preface=expect_preface)
            await self._collect(ctx, jobs, info, got, web)
        try:
            cert = await ctx.run_in_thread(
                _certificate, got.chain_der, ep.server_name or ep.address, ctx.options.ca_bundle
            )
        except ProtocolError as exc:  # an unparseable leaf: the rest still stands
            cert = None
            got.not_determined.append(f"certificate: {exc}")
        return _observation(got, cert, modern_version, preface)

    async def _collect(
        self,
        ctx: ProbeContext,
        jobs: _Jobs,
        info: ServerConnectivityInfo,
        got: _Collected,
        web: bool,
    ) -> None:
        together, last = self._thunks(ctx, jobs, info, got, web)
        await ctx.gather(together)
        await last()

    def _thunks(
        self,
        ctx: ProbeContext,
        jobs: _Jobs,
        info: ServerConnectivityInfo,
        got: _Collected,
        web: bool,
    ) -> tuple[list[Callable[[], Awaitable[None]]], Callable[[], Awaitable[None]]]:
        """(what runs at once, what runs alone after it)."""
        highest = info.tls_probing_result.highest_tls_version_supported

        def record(outcome: CommandOutcome) -> None:
            if outcome.connection_failures >= 2:
                ctx.degrade_host()
            got.outcomes[outcome.command] = outcome
            if outcome.error is not None:
                got.not_determined.append(f"{outcome.command.value}: {outcome.error}")

        async def robot() -> None:
            if not await gate.wait():
                record(robot_without_rsa(info))
                return
            try:
                key = await jobs.call_retry(robot_key, info)
            except JobFailed as exc:
                record(CommandOutcome(ScanCommand.ROBOT, None, str(exc), 0))
                return
            if key is None:
                record(robot_without_rsa(info))
                return
            # The three attempts are independent: one thread job each, so they overlap.
            parts = await ctx.gather(
                [functools.partial(jobs.call, run_jobs, [job]) for job in robot_jobs(info, key)]
            )
            results = [r for rs, _ in parts for r in rs]
            record(finish_command(info, ScanCommand.ROBOT, results, sum(f for _, f in parts)))

        reneg_early, reneg_late = split_renegotiation(info)
        reneg_parts: list[tuple[list[Any], int]] = []

        async def secure_renegotiation() -> None:
            if reneg_early:
                reneg_parts.append(await jobs.call(run_jobs, reneg_early))

        async def renegotiation() -> None:
            # The client-initiated renegotiation last and alone: after it a
            # one-connection-at-a-time server (openssl s_server) sleeps a whole second
            # before it serves the next connection; last, nothing of ours waits for it.
            # (The secure-renegotiation handshake ran with everything else.)
            parts = [*reneg_parts, await jobs.call(run_jobs, reneg_late)]
            results = [r for rs, _ in parts for r in rs]
            cmd = ScanCommand.SESSION_RENEGOTIATION
            record(finish_command(info, cmd, results, sum(f for _, f in parts)))

        async def command(cmd: ScanCommand) -> None:
            record(await jobs.call(run_command, info, cmd, ctx.options.ca_bundle))

        token = trio.lowlevel.current_trio_token()

        def tell_gate(suite: CipherSuite) -> None:
            # On the worker thread: hand the pick to trio; a probe already gone (its
            # deadline) has nothing left to tell.
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(gate.picked, suite)

        async def chain(c: tls_enum.Chain) -> None:
            # ROBOT needs only to know whether RSA key exchange is accepted at its
            # version: the first such pick releases it, long before the chain ends.
            watch = tell_gate if gate.relevant(c) else None
            try:
                first = await jobs.call_retry(
                    tls_enum.eliminate, info, c, tls_enum.FIRST_PICKS, watch
                )
            except JobFailed as exc:
                got.failed_versions[c.version] = f"{c.label}: {exc}"
                if gate.relevant(c):
                    gate.decide(True)  # RSA is not ruled out: let ROBOT see for itself
                if c.version is TlsVersionEnum.TLS_1_3:
                    got.tls13_first.set()
                return
            if c.version is TlsVersionEnum.TLS_1_3:
                got.tls13_chain = first.received_chain
                got.tls13_first.set()
            if gate.relevant(c):
                gate.first_phase(first)
            parts = tls_enum.split(first)
            try:
                rest = await ctx.gather(
                    [functools.partial(jobs.call_retry, tls_enum.eliminate, info, p) for p in parts]
                )
            except JobFailed as exc:
                got.failed_versions[c.version] = f"{c.label}: {exc}"
                return
            results = [first, *rest]
            got.chains[c] = results
            accepted = [a for r in results for a in r.accepted]
            # Usually the picks themselves show whose order counts: no extra handshake.
            shown = tls_enum.preference_from_picks(first)
            if shown is not None:
                got.preference[c] = shown
            elif len(accepted) >= 2:
                try:
                    pref, _ = await jobs.call(
                        tls_enum.server_prefers_own_order,
                        info,
                        c,
                        accepted[0].cipher_suite,
                        accepted[1].cipher_suite,
                    )
                except JobFailed:
                    pref = None  # not determined; the suites themselves are known
                got.preference[c] = pref

        async def groups() -> None:
            try:
                got.groups = await jobs.call_retry(tls_enum.eliminate_groups, info)
            except JobFailed as exc:
                got.not_determined.append(f"groups: {exc}")
            if highest is TlsVersionEnum.TLS_1_3:
                taken, unknown = await ffdhe_groups(ctx, got.expect_preface)
                got.ffdhe = tuple(taken)
                if unknown:
                    got.not_determined.append(f"groups: {', '.join(unknown)} (TLS 1.3)")

        async def certificate() -> None:
            if highest is TlsVersionEnum.TLS_1_3 and any(
                c.version is TlsVersionEnum.TLS_1_3 for c in plan
            ):
                # fetch_chain's handshake would be the TLS 1.3 chain's first one again:
                # same client build and hello but the suites, which in TLS 1.3 do not
                # choose the certificate (RFC 8446 4.4.2.2: signature_algorithms and
                # SNI do). So that handshake's chain is used.
                await got.tls13_first.wait()
                if got.tls13_chain:
                    try:
                        got.chain_der = await ctx.run_in_thread(pem_chain_to_der, got.tls13_chain)
                        return
                    except ValueError:
                        pass  # unparseable here: let the dedicated fetch report it
            try:
                got.chain_der = await jobs.call_retry(fetch_chain, info)
            except JobFailed as exc:
                got.not_determined.append(f"certificate: {exc}")

        plan = tls_enum.plan_chains()
        gate = RobotGate(robot_version(info), plan)
        thunks: list[Callable[[], Awaitable[None]]] = [robot]
        thunks += [functools.partial(chain, c) for c in plan]
        thunks += [groups, certificate, secure_renegotiation]
        quick = list(_QUICK_COMMANDS)
        if info.tls_probing_result.highest_tls_version_supported is TlsVersionEnum.TLS_1_3:
            quick.append(ScanCommand.TLS_1_3_EARLY_DATA)
        if web and ctx.endpoint.port in self.web_ports:
            quick.append(ScanCommand.HTTP_HEADERS)
        thunks += [functools.partial(command, c) for c in quick]
        return thunks, renegotiation


def _protocols(got: _Collected) -> tuple[ProtocolSupport, ...]:
    out: list[ProtocolSupport] = []
    for version, label in VERSION_NAMES.items():
        chains = {c: r for c, r in got.chains.items() if c.version is version}
        accepted: list[CipherSuiteAcceptedByServer] = [
            a for results in chains.values() for r in results for a in r.accepted
        ]
        if version in got.failed_versions:
            status: bool | None = None
        else:
            status = bool(accepted)
        prefs = [got.preference.get(c) for c in sorted(chains, key=lambda c: c.legacy)]
        pref = next((p for p in prefs if p is not None), None)
        suites = tuple(tls_enum.describe_suite(a) for a in accepted)
        out.append(ProtocolSupport(label, status, suites, pref if status else None))
    return tuple(out)


def _vulns(got: _Collected) -> VulnChecks:
    def res(cmd: ScanCommand) -> Any:
        o = got.outcomes.get(cmd)
        return None if o is None else o.result

    reneg = res(ScanCommand.SESSION_RENEGOTIATION)
    robot = res(ScanCommand.ROBOT)
    return VulnChecks(
        heartbleed=getattr(res(ScanCommand.HEARTBLEED), "is_vulnerable_to_heartbleed", None),
        ccs_injection=getattr(
            res(ScanCommand.OPENSSL_CCS_INJECTION), "is_vulnerable_to_ccs_injection", None
        ),
        robot=None if robot is None else robot.robot_result.name,
        secure_renegotiation=getattr(reneg, "supports_secure_renegotiation", None),
        client_renegotiation=getattr(reneg, "is_vulnerable_to_client_renegotiation_dos", None),
        compression=getattr(res(ScanCommand.TLS_COMPRESSION), "supports_compression", None),
        fallback_scsv=getattr(res(ScanCommand.TLS_FALLBACK_SCSV), "supports_fallback_scsv", None),
        early_data=getattr(res(ScanCommand.TLS_1_3_EARLY_DATA), "supports_early_data", None),
        extended_master_secret=getattr(
            res(ScanCommand.TLS_EXTENDED_MASTER_SECRET), "supports_ems_extension", None
        ),
    )


def _http(got: _Collected) -> HttpInfo | None:
    o = got.outcomes.get(ScanCommand.HTTP_HEADERS)
    if o is None or o.result is None or o.result.http_error_trace is not None:
        return None
    h = o.result.strict_transport_security_header
    hsts = None
    if h is not None:
        parts = [f"max-age={h.max_age}"] if h.max_age is not None else []
        parts += ["includeSubDomains"] if h.include_subdomains else []
        parts += ["preload"] if h.preload else []
        hsts = "; ".join(parts)
    # sslyze reports the path it ended on; "/" means there was no redirect.
    path = o.result.http_path_redirected_to
    return HttpInfo(hsts=hsts, redirected_to=path if path not in (None, "/") else None)


def _certificate(
    chain_der: tuple[bytes, ...], name: str, ca_bundle: Path | None
) -> CertificateChecks | None:
    # Blocking (signature checks, trust-store loading): runs on a worker thread.
    if not chain_der:
        return None
    return certificate_checks(chain_der, name, ca_bundle=ca_bundle)


def _observation(
    got: _Collected,
    cert: CertificateChecks | None,
    modern_version: str | None,
    preface: bytes | None,
) -> TlsObservation:
    protocols = _protocols(got)
    legacy = tuple(p.version for p in protocols if p.accepted)
    in_range = [v for v in legacy if v in _MODERN_RANGE]
    expected = in_range[-1] if in_range else None
    # A server should pick the highest version it accepts; when a version above the
    # expected one could not be determined, nobody can say which one it should pick,
    # so the comparison is not determined either (an unknown never raises a finding).
    above = _MODERN_RANGE[_MODERN_RANGE.index(expected) + 1 :] if expected else _MODERN_RANGE
    unsure = any(p.accepted is None for p in protocols if p.version in above)
    agree: bool | None = modern_version == expected
    if unsure and (not agree or modern_version is None or expected is None):
        agree = None
    not_determined = [*got.not_determined, *got.failed_versions.values()]
    per_suite = any(r.per_suite for results in got.chains.values() for r in results)
    groups = () if got.groups is None else tuple(tls_enum.group_name(g) for g in got.groups.groups)
    groups += tuple(g for g in got.ffdhe if g not in groups)
    return TlsObservation(
        protocols=protocols,
        groups=groups,
        certificate=cert,
        vulns=_vulns(got),
        negotiation=NegotiationCheck(modern_version, legacy, agree),
        http=_http(got),
        preface=None if preface is None else preface.decode("utf-8", "replace"),
        enumeration="per-suite" if per_suite else "elimination",
        not_determined=tuple(not_determined),
    )
