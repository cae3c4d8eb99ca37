"""The scheduler: the one place that opens nurseries, owns the connection budgets,
the worker threads and the asyncio bridge, and applies deadlines from outside.

Flow per endpoint: discovery (one connection) -> the channel's probe -> optional
fingerprinting, all inside the endpoint deadline. Whatever goes wrong at a leaf
becomes data on that endpoint's row (``status`` + ``error``); nothing one endpoint does
stops the others. Results go to a :class:`ResultCollector` as they complete, so an
interrupted scan still has everything measured so far.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import trio

from chanscan import __version__
from chanscan.aiobridge import AsyncioBridge
from chanscan.config import PlannedTarget
from chanscan.discovery import discover
from chanscan.errors import ConnectError, ProbeError, ScopeError
from chanscan.model import (
    SCHEMA_ID,
    Channel,
    Endpoint,
    EndpointResult,
    PlatformInfo,
    ScanReport,
    Status,
)
from chanscan.obs.rdp import RdpObservation
from chanscan.obs.ssh import SshObservation
from chanscan.obs.tls import TlsObservation
from chanscan.probes.base import Observation, Probe, ProbeContext, ScanOptions
from chanscan.workers import ThreadWorkers

T = TypeVar("T")


class Fingerprinter(Protocol):
    """Platform fingerprinting in two halves: network requests that need nothing from
    the probe (run concurrently with it), then folding with the observation."""

    async def requests(self, ctx: ProbeContext, channel: Channel) -> Any: ...

    def result(
        self, ctx: ProbeContext, observation: Observation | None, gathered: Any
    ) -> PlatformInfo | None: ...


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# (done, total, what it waits on when nothing completed for a while, or None)
Progress = Callable[[int, int, "str | None"], None]
STALL_SECONDS = 3.0  # no completion for this long: the progress line names the wait


class ResultCollector:
    """Where results land as they complete; survives cancellation and Ctrl-C. It also
    knows which endpoints are in flight, so an interrupted scan writes them as
    ``interrupted`` rows instead of dropping them."""

    def __init__(self, total: int = 0) -> None:
        self.results: list[EndpointResult] = []
        self.total = total
        self.started_at = now_rfc3339()
        self.interrupted = False
        self.progress: Progress | None = None
        # Called once, at once, from the event loop when SIGINT/SIGTERM arrives.
        self.on_interrupt: Callable[[str], None] | None = None
        self.in_flight: dict[tuple[str, int], tuple[Endpoint, float]] = {}
        self.last_done = 0.0  # trio clock of the last completion (or of the start)
        # Things the operator should hear before the scan runs (e.g. a name that lost
        # addresses to an exclude); the CLI prints them to stderr.
        self.on_note: Callable[[str], None] | None = None

    def start(self, ep: Endpoint) -> None:
        self.in_flight[(ep.address, ep.port)] = (ep, _clock())

    def note(self, text: str) -> None:
        if self.on_note is not None:
            self.on_note(text)

    def add(self, result: EndpointResult) -> None:
        self.in_flight.pop((result.address, result.port), None)
        self.results.append(result)
        self.last_done = _clock()
        if self.progress is not None:
            self.progress(len(self.results), self.total, None)

    def waiting_on(self, now: float) -> str | None:
        """ "waiting on 192.0.2.20:443, 11 s" once nothing completed for a while."""
        if not self.in_flight or now - self.last_done < STALL_SECONDS:
            return None
        ep, since = min(self.in_flight.values(), key=lambda v: v[1])
        others = len(self.in_flight) - 1
        host = f"[{ep.address}]" if ":" in ep.address else ep.address
        more = f" (+{others} more)" if others else ""
        return f"waiting on {host}:{ep.port}{more}, {now - since:.0f} s"

    def interrupt_in_flight(self, now: float) -> None:
        """Every endpoint still in flight becomes an ``interrupted`` row."""
        for ep, since in list(self.in_flight.values()):
            self.results.append(
                replace(
                    _base_result(
                        ep,
                        Channel.UNKNOWN,
                        Status.INTERRUPTED,
                        f"scan interrupted after {now - since:.1f} s on this endpoint",
                    ),
                    elapsed_ms=int((now - since) * 1000),
                )
            )
        self.in_flight.clear()

    def report(self, complete: bool, command: Sequence[str] = ()) -> ScanReport:
        ordered = sorted(self.results, key=_sort_key)
        return ScanReport(
            schema=SCHEMA_ID,
            tool_version=__version__,
            complete=complete and not self.interrupted,
            started_at=self.started_at,
            finished_at=now_rfc3339(),
            endpoints=tuple(ordered),
            command=tuple(command),
        )


def _clock() -> float:
    """trio's clock inside a run (so tests can use an autojump clock), else monotonic."""
    try:
        return trio.current_time()
    except RuntimeError:
        return time.monotonic()


def _sort_key(r: EndpointResult) -> tuple[int, int, str, int]:
    try:
        ip = ipaddress.ip_address(r.address)
        return (ip.version, int(ip), r.host, r.port)
    except ValueError:
        return (9, 0, r.host, r.port)


# -- budgets --------------------------------------------------------------------------
class _Host:
    def __init__(self, per_host: int) -> None:
        self.limiter = trio.CapacityLimiter(per_host)
        self.failures = 0


class Scheduler:
    def __init__(
        self,
        options: ScanOptions,
        probes: Mapping[Channel, Probe],
        fingerprint: Fingerprinter | None = None,
    ) -> None:
        self.options = options
        self.probes = probes
        self.fingerprint = fingerprint
        self.global_limiter = trio.CapacityLimiter(options.global_connections)
        self._hosts: dict[str, _Host] = {}
        self.workers = ThreadWorkers(options.worker_threads)
        self.bridge = AsyncioBridge()

    def host(self, address: str) -> _Host:
        h = self._hosts.get(address)
        if h is None:
            h = self._hosts[address] = _Host(self.options.per_host_connections)
        return h

    def close(self, hurry: bool = False) -> None:
        # Interrupted: do not wait for blocking jobs to finish (the worker threads are
        # daemons and their results are dropped anyway); the user is waiting.
        self.workers.close(join_timeout=0.05 if hurry else 5.0)
        self.bridge.close()


class EndpointContext:
    """The :class:`ProbeContext` for one endpoint."""

    def __init__(self, sched: Scheduler, endpoint: Endpoint, banner: bytes = b"") -> None:
        self._sched = sched
        self._endpoint = endpoint
        self.banner = banner
        self.first_reply = b""
        self.partial: Observation | None = None
        self.connections = 0

    def note_partial(self, observation: Observation) -> None:
        self.partial = observation

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    @property
    def options(self) -> ScanOptions:
        return self._sched.options

    @contextlib.asynccontextmanager
    async def budget(self) -> AsyncIterator[None]:
        # A fresh borrower per use: one task may hold several slots (e.g. a probe that
        # keeps a connection open while it opens a second one).
        # Host slot first, then a global one: a task queued behind its own host must not
        # sit on a global slot that another host could use.
        borrower = object()
        host = self._sched.host(self._endpoint.address).limiter
        await host.acquire_on_behalf_of(borrower)
        try:
            await self._sched.global_limiter.acquire_on_behalf_of(borrower)
            try:
                yield
            finally:
                self._sched.global_limiter.release_on_behalf_of(borrower)
        finally:
            host.release_on_behalf_of(borrower)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[trio.SocketStream]:
        async with self.budget():
            timeout = self.options.connect_timeout
            with trio.move_on_after(timeout) as scope:
                stream = await open_stream(self._endpoint.address, self._endpoint.port)
            if scope.cancelled_caught:
                raise ConnectError("timeout", f"no TCP answer within {timeout:g}s")
            self.connections += 1
            try:
                yield stream
            finally:
                with trio.CancelScope(shield=True):
                    await stream.aclose()

    def count_connections(self, n: int = 1) -> None:
        self.connections += n

    def degrade_host(self) -> None:
        host = self._sched.host(self._endpoint.address)
        host.failures += 1
        host.limiter.total_tokens = 1

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._sched.workers.run(fn, *args)

    async def run_asyncio(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return await self._sched.bridge.run(factory)

    async def gather(self, thunks: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        results: list[Any] = [None] * len(thunks)

        async def one(i: int, thunk: Callable[[], Awaitable[T]]) -> None:
            results[i] = await thunk()

        try:
            async with trio.open_nursery() as nursery:
                for i, thunk in enumerate(thunks):
                    nursery.start_soon(one, i, thunk)
        except BaseExceptionGroup as group:
            # Probes handle their own error types, not groups: surface the first real
            # error; a group of nothing but Cancelled goes up as it is.
            first = _first_error(group)
            if first is None:
                raise
            raise first from None
        return results


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            inner = _first_error(exc)
            if inner is not None:
                return inner
        elif not isinstance(exc, trio.Cancelled):
            return exc
    return None


_REFUSED = {errno.ECONNREFUSED}
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}


async def open_stream(address: str, port: int) -> trio.SocketStream:
    """Connect to an already-resolved address; errors become :class:`ConnectError`.
    No deadline of its own: callers wrap it (``EndpointContext.connection``)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((address, port))
    except OSError as exc:
        sock.close()
        if exc.errno in _REFUSED:
            raise ConnectError("refused", "connection refused") from None
        kind = "unreachable" if exc.errno in _UNREACHABLE else "reset"
        raise ConnectError(kind, f"connect failed: {exc.strerror or exc}") from None
    except BaseException:
        sock.close()
        raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return trio.SocketStream(sock)


# -- one endpoint ---------------------------------------------------------------------
def _with_observation(result: EndpointResult, obs: Observation | None) -> EndpointResult:
    if isinstance(obs, TlsObservation):
        return replace(result, tls=obs)
    if isinstance(obs, SshObservation):
        return replace(result, ssh=obs)
    if isinstance(obs, RdpObservation):
        return replace(result, rdp=obs)
    return result


def _base_result(
    ep: Endpoint, channel: Channel, status: Status, error: str | None
) -> EndpointResult:
    return EndpointResult(
        host=ep.host,
        address=ep.address,
        port=ep.port,
        channel=channel,
        status=status,
        error=error,
        group=ep.group,
        policy=ep.policy,
        platform_hint=ep.platform_hint,
    )


#: The longest text a server can put into a report field (errors, evidence): a 1 MiB
#: identification line must not become a 1 MiB report.
MAX_TEXT = 512


def cap_text(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else f"{text[: limit - 30]}... ({len(text)} chars in all)"


def _cap_all(texts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(map(cap_text, texts))


def _too_long(texts: tuple[str, ...]) -> bool:
    return any(len(t) > MAX_TEXT for t in texts)


def _capped(result: EndpointResult) -> EndpointResult:
    """Every free text a server can fill, capped at :data:`MAX_TEXT` per entry."""
    if result.error is not None and len(result.error) > MAX_TEXT:
        result = replace(result, error=cap_text(result.error))
    p = result.platform
    if p is not None and _too_long(p.evidence):
        result = replace(result, platform=replace(p, evidence=_cap_all(p.evidence)))
    ssh = result.ssh
    if ssh is not None and (_too_long(ssh.errors) or _too_long(ssh.pre_banner)):
        ssh = replace(ssh, errors=_cap_all(ssh.errors), pre_banner=_cap_all(ssh.pre_banner))
        result = replace(result, ssh=ssh)
    tls = result.tls
    if tls is not None and _too_long(tls.not_determined):
        result = replace(result, tls=replace(tls, not_determined=_cap_all(tls.not_determined)))
    return result


def _banner_text(banner: bytes) -> str | None:
    if not banner:
        return None
    return banner.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")[:255] or None


async def _run_probe(ctx: EndpointContext, probe: Probe, result: EndpointResult) -> EndpointResult:
    try:
        obs = await probe.run(ctx)
    except ProbeError as exc:
        return replace(result, status=Status.ERROR, error=str(exc) or type(exc).__name__)
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        return replace(result, status=Status.ERROR, error=f"connection failed: {exc}")
    except Exception as exc:
        # A bug met on one server's odd answer (ours, or in sslyze / asyncssh) must cost
        # that endpoint, not the scan: record it loudly and go on.
        return replace(
            result,
            status=Status.ERROR,
            error=f"internal error in the {probe.channel.value} probe (a chanscan bug, "
            f"please report): {type(exc).__name__}: {exc}",
        )
    return _with_observation(result, obs)


async def _probe_and_fingerprint(
    sched: Scheduler, ctx: EndpointContext, result: EndpointResult
) -> EndpointResult:
    """The channel probe and the fingerprint requests side by side (they share the
    host's budget); the platform is folded once the observation is in."""
    probe = sched.probes.get(result.channel)
    fp = sched.fingerprint
    gathered: list[Any] = []

    async def fingerprint_requests() -> None:
        assert fp is not None
        try:
            gathered.append(await fp.requests(ctx, result.channel))
        except Exception as exc:
            gathered.append(exc)

    async with trio.open_nursery() as nursery:
        if fp is not None:
            nursery.start_soon(fingerprint_requests)
        if probe is not None:
            result = await _run_probe(ctx, probe, result)
    if fp is None or not gathered:
        return result
    platform: PlatformInfo | None
    if isinstance(gathered[0], BaseException):
        platform = PlatformInfo(evidence=(f"fingerprinting failed: {gathered[0]}",))
    else:
        obs = result.tls or result.ssh or result.rdp
        platform = fp.result(ctx, obs, gathered[0])
    return replace(result, platform=platform) if platform is not None else result


def _timed_out(result: EndpointResult, ctx: EndpointContext, deadline: float) -> EndpointResult:
    error = f"no complete answer within the {deadline:g}s deadline"
    if ctx.partial is not None and not (result.tls or result.ssh or result.rdp):
        # What the probe measured before the deadline stays on the row.
        result = _with_observation(result, ctx.partial)
        error += "; the row holds what was measured before it (partial)"
    return replace(result, status=Status.TIMEOUT, error=error)


async def scan_endpoint(sched: Scheduler, ep: Endpoint) -> EndpointResult:
    """Discovery + probe + fingerprint of one endpoint, inside its deadline."""
    ctx = EndpointContext(sched, ep)
    t0 = time.monotonic()
    result = _base_result(ep, Channel.UNKNOWN, Status.TIMEOUT, None)
    with trio.move_on_after(sched.options.endpoint_deadline) as scope:
        disc = await discover(ctx)
        result = replace(
            _base_result(
                ep, disc.channel, disc.status, disc.detail if disc.status != Status.OK else None
            ),
            banner=_banner_text(disc.banner),
            http=disc.http,
        )
        if disc.status == Status.OK and disc.channel is Channel.UNKNOWN and disc.detail:
            result = replace(result, error=disc.detail)
        ctx.banner = disc.banner
        ctx.first_reply = disc.reply
        if disc.status == Status.OK:
            result = await _probe_and_fingerprint(sched, ctx, result)
    if scope.cancelled_caught:
        result = _timed_out(result, ctx, sched.options.endpoint_deadline)
    elapsed = int((time.monotonic() - t0) * 1000)
    return _capped(replace(result, connections=ctx.connections, elapsed_ms=elapsed))


# -- resolution ------------------------------------------------------------------------
async def _resolve(name: str) -> list[str]:
    infos = await trio.socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in seen:
            seen.append(addr)
    return seen


async def resolve_targets(
    planned: Sequence[PlannedTarget],
    deadline: float = 10.0,
    notes: list[str] | None = None,
) -> tuple[list[Endpoint], list[EndpointResult]]:
    """Resolve every name once, concurrently. A name that does not resolve becomes an
    error row per port (the scan of everything else goes on). Excludes apply to the
    resolved addresses too; each name that lost addresses to one is told in ``notes``."""
    names = sorted({p.host.name for p in planned if p.host.name})
    resolved: dict[str, list[str] | str] = {}

    async def one(name: str) -> None:
        try:
            with trio.fail_after(deadline):
                resolved[name] = await _resolve(name)
        except (OSError, trio.TooSlowError) as exc:
            resolved[name] = f"cannot resolve {name}: {getattr(exc, 'strerror', None) or exc}"

    if names:
        async with trio.open_nursery() as nursery:
            for n in names:
                nursery.start_soon(one, n)
    endpoints: list[Endpoint] = []
    failed: list[EndpointResult] = []
    seen: set[tuple[str, int]] = set()
    for p in planned:
        if p.host.address is not None:
            pairs = [(p.host.address, p.host.address)]
        else:
            assert p.host.name is not None
            got = resolved[p.host.name]
            if isinstance(got, str):
                for port in p.ports:
                    failed.append(
                        EndpointResult(
                            host=p.host.name,
                            address="",
                            port=port,
                            channel=Channel.UNKNOWN,
                            status=Status.ERROR,
                            error=got,
                            group=p.group,
                            policy=p.policy,
                            platform_hint=p.platform,
                        )
                    )
                continue
            kept = [a for a in got if not p.excludes(a)]
            if notes is not None and len(kept) < len(got):
                lost = ", ".join(a for a in got if a not in kept)
                left = f"; scanning {', '.join(kept)}" if kept else "; nothing left to scan"
                notes.append(f"{p.host.name} resolves to excluded {lost}{left}")
            pairs = [(p.host.name, a) for a in kept]
        for host, addr in pairs:
            for port in p.ports:
                if (addr, port) in seen:
                    continue
                seen.add((addr, port))
                endpoints.append(Endpoint(host, addr, port, p.platform, p.policy, p.group))
    return endpoints, failed


# -- the whole scan ------------------------------------------------------------------------
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)
)


async def _watch_signals(collector: ResultCollector, cancel: trio.CancelScope) -> None:
    """Ctrl-C and SIGTERM stop the scan the same way, at once: say so, cancel every
    endpoint, and let the caller write what was measured."""
    try:
        with trio.open_signal_receiver(*_STOP_SIGNALS) as signals:
            async for _ in signals:
                collector.interrupted = True
                if collector.on_interrupt is not None:
                    collector.on_interrupt("stopping; writing what was measured")
                cancel.cancel()
                return
    except RuntimeError:  # not on the main thread (e.g. embedded use): no signal handling
        return


async def _watch_stalls(collector: ResultCollector) -> None:
    """Refresh the progress line once a second while nothing completes."""
    while True:
        await trio.sleep(1.0)
        note = collector.waiting_on(trio.current_time())
        if note is not None and collector.progress is not None:
            collector.progress(len(collector.results), collector.total, note)


async def scan_endpoints(
    endpoints: Sequence[Endpoint],
    options: ScanOptions,
    probes: Mapping[Channel, Probe],
    collector: ResultCollector,
    fingerprint: Fingerprinter | None = None,
) -> None:
    """Scan every endpoint, results into ``collector``. At most a bounded number of
    endpoint tasks exist at once, so a /16 does not allocate a million tasks."""
    sched = Scheduler(options, probes, fingerprint)
    in_flight = trio.Semaphore(max(16, options.global_connections * 4))
    collector.last_done = trio.current_time()
    try:
        async with trio.open_nursery() as outer:
            outer.start_soon(_watch_signals, collector, outer.cancel_scope)
            if collector.progress is not None:
                outer.start_soon(_watch_stalls, collector)
            async with trio.open_nursery() as nursery:

                async def run_one(ep: Endpoint) -> None:
                    try:
                        collector.start(ep)
                        collector.add(await scan_endpoint(sched, ep))
                    finally:
                        in_flight.release()

                for ep in endpoints:
                    await in_flight.acquire()
                    nursery.start_soon(run_one, ep)
            outer.cancel_scope.cancel()
    finally:
        if collector.interrupted:
            collector.interrupt_in_flight(_clock())
        sched.close(hurry=collector.interrupted)


async def scan(
    planned: Sequence[PlannedTarget],
    options: ScanOptions,
    probes: Mapping[Channel, Probe],
    collector: ResultCollector | None = None,
    fingerprint: Fingerprinter | None = None,
) -> ScanReport:
    collector = collector if collector is not None else ResultCollector()
    notes: list[str] = []
    endpoints, failed = await resolve_targets(planned, notes=notes)
    for text in notes:
        collector.note(text)
    if not endpoints and not failed:
        # Every name resolved into an exclude: an empty scope, never an empty pass.
        raise ScopeError("nothing to scan: every target resolves to an excluded address")
    collector.total = len(endpoints) + len(failed)
    for r in failed:
        collector.add(r)
    await scan_endpoints(endpoints, options, probes, collector, fingerprint)
    return collector.report(complete=True)


async def probe_once(
    endpoint: Endpoint,
    probe: Probe,
    options: ScanOptions | None = None,
    banner: bytes = b"",
) -> EndpointResult:
    """Run one probe against one endpoint without discovery (for tests and tools):
    the same budgets, workers, asyncio bridge and deadline as a real scan."""
    options = options or ScanOptions()
    sched = Scheduler(options, {probe.channel: probe})
    ctx = EndpointContext(sched, endpoint, banner)
    t0 = time.monotonic()
    result = _base_result(endpoint, probe.channel, Status.OK, None)
    try:
        with trio.move_on_after(options.endpoint_deadline) as scope:
            result = await _run_probe(ctx, probe, result)
        if scope.cancelled_caught:
            result = _timed_out(result, ctx, options.endpoint_deadline)
    finally:
        sched.close()
    return _capped(
        replace(result, connections=ctx.connections, elapsed_ms=int((time.monotonic() - t0) * 1000))
    )


def progress_printer(stream: Any = None, force: bool = False) -> Progress | None:
    """A one-line progress counter on stderr, only when stderr is a terminal (or
    ``force``); when nothing completed for a while it names what it waits on."""
    out = stream or sys.stderr
    if not force and not out.isatty():
        return None
    width = [0]

    def show(done: int, total: int, waiting: str | None = None) -> None:
        line = f"chanscan: {done}/{total} endpoints" + (f"; {waiting}" if waiting else "")
        # Pad over the longer line a "waiting on" note left behind.
        out.write("\r" + line.ljust(width[0]))
        width[0] = len(line)
        if done >= total:
            out.write("\n")
        out.flush()

    return show
