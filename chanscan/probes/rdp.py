"""The RDP probe (3389, and Hyper-V VMConnect on 2179): which security protocols the
server accepts, then the TLS layer behind the negotiation.

One X.224 Connection Request per protocol asked *alone* ([MS-RDPBCGR] 2.2.1.1.1):
standard RDP security (0), TLS (SSL), TLS+CredSSP (SSL|HYBRID), and CredSSP with early
authorization (SSL|HYBRID|HYBRID_EX). The answer to each is a Connection Confirm with
RDP_NEG_RSP (the protocol the server selected), RDP_NEG_FAILURE (why not), or no
negotiation data at all (a pre-RDP 5.2 server: standard security only).

The TLS layer: with ``tls_probe`` (the full TLS probe, configured for RDP
opportunistic TLS) it runs behind a context whose connections are pre-negotiated;
without one the probe does one handshake of its own and records the version and the
leaf certificate, naming the rest as not determined.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import trio

from chanscan.errors import ProbeError, ProtocolError
from chanscan.model import Channel, Endpoint, ScanOptions
from chanscan.obs.rdp import RdpEncryption, RdpNegotiation, RdpObservation
from chanscan.obs.tls import ProtocolSupport, TlsObservation
from chanscan.probes import rdp_mcs as mcs
from chanscan.probes import rdp_wire as w
from chanscan.probes.base import Observation, Probe, ProbeContext
from chanscan.probes.tls_cert import certificate_checks

T = TypeVar("T")

# (name, requestedProtocols): each protocol with what a real client sends alongside it.
REQUESTS: tuple[tuple[str, int], ...] = (
    ("rdp", w.PROTOCOL_RDP),
    ("ssl", w.PROTOCOL_SSL),
    ("hybrid", w.PROTOCOL_SSL | w.PROTOCOL_HYBRID),
    ("hybrid_ex", w.PROTOCOL_SSL | w.PROTOCOL_HYBRID | w.PROTOCOL_HYBRID_EX),
)
_SELECTED = {
    "rdp": w.PROTOCOL_RDP,
    "ssl": w.PROTOCOL_SSL,
    "hybrid": w.PROTOCOL_HYBRID,
    "hybrid_ex": w.PROTOCOL_HYBRID_EX,
}
_TLS_BASED = ("ssl", "hybrid", "hybrid_ex")
_PY_VERSIONS = {
    "TLSv1": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
}
_NOT_PROBED = "cipher suites, other versions and vulnerabilities (full TLS probe not wired for RDP)"


async def receive_tpkt(stream: trio.abc.Stream) -> bytes:
    """One TPKT packet; ProtocolError on EOF, garbage or oversize."""
    buf = b""
    need = 4
    while len(buf) < need:  # bounded: need <= w.MAX_TPKT and every pass adds a byte or ends
        chunk = await stream.receive_some(need - len(buf))
        if not chunk:
            raise ProtocolError(
                "connection closed before the X.224 Connection Confirm"
                + (f" (after {len(buf)} bytes)" if buf else "")
            )
        buf += chunk
        if len(buf) == 4 and need == 4:
            try:
                need = w.tpkt_length(buf)
            except w.RdpWireError as exc:
                raise ProtocolError(f"not RDP: {exc}") from None
    return buf


async def negotiate(stream: trio.abc.Stream, requested: int) -> w.ConnectionConfirm:
    await stream.send_all(w.encode_connection_request(requested))
    data = await receive_tpkt(stream)
    try:
        return w.decode_connection_confirm(data)
    except w.RdpWireError as exc:
        raise ProtocolError(f"not RDP: {exc}") from None


def _record(name: str, mask: int, cc: w.ConnectionConfirm) -> RdpNegotiation:
    if cc.legacy:
        return RdpNegotiation(name, mask, selected="rdp", legacy=True)
    if cc.failure is not None:
        return RdpNegotiation(name, mask, failure=cc.failure_name)
    return RdpNegotiation(name, mask, selected=",".join(cc.selected_names))


class RdpProbe:
    channel = Channel.RDP

    def __init__(self, tls_probe: Probe | None = None) -> None:
        self.tls_probe = tls_probe

    async def run(self, ctx: ProbeContext) -> RdpObservation:
        thunks = [functools.partial(self._ask, ctx, n, m) for n, m in REQUESTS]
        negs = await ctx.gather(thunks)
        if all(n.error for n in negs):
            raise ProtocolError(f"no RDP negotiation answer: {negs[0].error}")
        accepted = tuple(n.requested for n in negs if self._accepted(n))
        refused = tuple(n.requested for n in negs if not self._accepted(n))
        failure = next((n.failure for n in negs if n.failure), None)
        obs = RdpObservation(
            protocols_accepted=accepted,
            protocols_refused=refused,
            negotiation_failure=failure,
            negotiations=tuple(negs),
        )
        if "rdp" in accepted:
            obs = replace(obs, encryption=await standard_security(ctx))
        tls_based = [_SELECTED[p] for p in accepted if p in _TLS_BASED]
        if not tls_based:
            return obs
        # Ask for TLS plus whatever CredSSP variant it took, as mstsc and sslyze do.
        tls_ctx = RdpTlsContext(ctx, w.PROTOCOL_SSL | functools.reduce(operator.or_, tls_based))
        try:
            if self.tls_probe is None:
                return replace(obs, tls=await one_handshake(tls_ctx))
            tls = await self.tls_probe.run(tls_ctx)
        except (ProbeError, trio.BrokenResourceError) as exc:
            # The negotiation result stands on its own; keep it and say why TLS is missing.
            return replace(obs, tls_not_probed=f"TLS layer after negotiation failed: {exc}")
        if not isinstance(tls, TlsObservation):
            raise TypeError(f"tls_probe returned {type(tls).__name__}")
        return replace(obs, tls=tls)

    @staticmethod
    def _accepted(n: RdpNegotiation) -> bool:
        return n.error is None and n.selected == n.requested

    @staticmethod
    async def _ask(ctx: ProbeContext, name: str, mask: int) -> RdpNegotiation:
        async with ctx.connection() as stream:
            try:
                return _record(name, mask, await negotiate(stream, mask))
            except (ProtocolError, trio.BrokenResourceError) as exc:
                # One refusal by hanging up is an answer too; all of them is "not RDP".
                return RdpNegotiation(name, mask, error=str(exc) or type(exc).__name__)


class RdpTlsContext:
    """A ProbeContext whose ``connection()`` streams have already been through the
    X.224 negotiation with TLS selected: the TLS probe's own trio handshakes then work
    unchanged. sslyze's connections do the same via its RDP opportunistic TLS."""

    def __init__(self, inner: ProbeContext, requested: int) -> None:
        self._inner = inner
        self._requested = requested

    @property
    def endpoint(self) -> Endpoint:
        return self._inner.endpoint

    @property
    def options(self) -> ScanOptions:
        return self._inner.options

    @property
    def banner(self) -> bytes:
        return b""

    @property
    def first_reply(self) -> bytes:
        return b""  # discovery's answer was the X.224 confirm, not TLS

    def note_partial(self, observation: Observation) -> None:
        pass  # the RDP probe's row is an RdpObservation; a TLS part alone is not one

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[trio.SocketStream]:
        async with self._inner.connection() as stream:
            cc = await negotiate(stream, self._requested)
            if cc.selected is None or cc.selected == w.PROTOCOL_RDP:
                why = cc.failure_name or "standard RDP security"
                raise ProtocolError(f"server did not select TLS on this connection ({why})")
            yield stream

    def budget(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._inner.budget()

    def count_connections(self, n: int = 1) -> None:
        self._inner.count_connections(n)

    def degrade_host(self) -> None:
        self._inner.degrade_host()

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._inner.run_in_thread(fn, *args)

    async def run_asyncio(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return await self._inner.run_asyncio(factory)

    async def gather(self, thunks: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        return await self._inner.gather(thunks)


def _client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # trust is judged by certificate_checks
    # Windows Server 2008/2012 RDP may speak only TLS 1.0: let OpenSSL 3 offer it.
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


async def one_handshake(ctx: ProbeContext) -> TlsObservation:
    """The fallback TLS layer: one handshake, the version it got and the leaf."""
    ep = ctx.endpoint
    async with ctx.connection() as stream:
        tls = trio.SSLStream(stream, _client_context(), server_hostname=ep.server_name)
        await tls.do_handshake()
        version = _PY_VERSIONS.get(str(tls.version()))
        leaf = tls.getpeercert(binary_form=True)
    if not leaf:
        raise ProtocolError("no certificate in the RDP TLS handshake")
    checks = await ctx.run_in_thread(
        functools.partial(certificate_checks, ca_bundle=ctx.options.ca_bundle),
        [leaf],
        ep.server_name or ep.address,
    )
    # Python's ssl (3.11) shows only the leaf: completeness cannot be told from it.
    checks = replace(checks, chain_complete=None)
    protocols = (ProtocolSupport(version, True),) if version else ()
    return TlsObservation(
        protocols=protocols,
        certificate=checks,
        enumeration="single-handshake",
        not_determined=(_NOT_PROBED,),
    )


# -- standard RDP security: encryption level and methods ([MS-RDPBCGR] 2.2.1.3/2.2.1.4) --
_ALL_METHODS = sum(mcs.ENCRYPTION_METHODS.values())


async def _receive_mcs(stream: trio.abc.Stream) -> bytes:
    """One TPKT of at most ``mcs.MAX_RESPONSE`` bytes; ProtocolError otherwise."""
    buf = b""
    need = 4
    while len(buf) < need:  # bounded: need <= MAX_RESPONSE, every pass adds or ends
        chunk = await stream.receive_some(need - len(buf))
        if not chunk:
            raise ProtocolError(f"closed after our MCS Connect Initial ({len(buf)} bytes in)")
        buf += chunk
        if need == 4 and len(buf) == 4:
            if buf[0] != 3:
                raise ProtocolError(f"not a TPKT answer (first byte 0x{buf[0]:02x})")
            need = int.from_bytes(buf[2:4], "big")
            if not 7 <= need <= mcs.MAX_RESPONSE:
                raise ProtocolError(
                    f"MCS Connect Response of {need} bytes (limit {mcs.MAX_RESPONSE})"
                )
    return buf


async def _offer(ctx: ProbeContext, methods: int) -> mcs.ServerSecurity:
    async with ctx.connection() as stream:
        cc = await negotiate(stream, w.PROTOCOL_RDP)
        if not (cc.legacy or cc.selected_names == ("rdp",)):
            raise ProtocolError("standard RDP security not selected on this connection")
        await stream.send_all(mcs.encode_connect_initial(methods))
        try:
            return mcs.decode_connect_response(await _receive_mcs(stream))
        except mcs.RdpMcsError as exc:
            raise ProtocolError(f"MCS Connect Response: {exc}") from None


async def standard_security(ctx: ProbeContext) -> RdpEncryption:
    """Offer every method once (the level, and the method a modern client gets), then
    each method alone (which ones a client can end up with). A refusal of one offer
    (the server hangs up) is an answer; no answer at all is "not determined"."""
    # One read's bound, as for sslyze's handshakes: a server that takes the PDU and
    # stays silent costs this once, and the rest of the endpoint's probe goes on.
    bound = ctx.options.network_timeout

    async def one(mask: int) -> mcs.ServerSecurity | str:
        with trio.move_on_after(bound):
            try:
                return await _offer(ctx, mask)
            except (ProtocolError, trio.BrokenResourceError) as exc:
                return str(exc) or type(exc).__name__
        return f"no MCS Connect Response within {bound:g} s"

    full = await one(_ALL_METHODS)
    if isinstance(full, str):
        return RdpEncryption(error=full)
    singles = [functools.partial(one, m) for m in mcs.ENCRYPTION_METHODS.values()]
    answers = await ctx.gather(singles)
    chosen = {a.method for a in answers if isinstance(a, mcs.ServerSecurity) and a.method}
    return RdpEncryption(
        level=full.level,
        method=full.method,
        methods=tuple(n for n in mcs.ENCRYPTION_METHODS if n in chosen),
    )
