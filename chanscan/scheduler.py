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
import signal
import socket
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import trio

from chanscan.aiobridge import AsyncioBridge

# Re-exported: the collector and the progress line lived here first.
from chanscan.collector import ResultCollector as ResultCollector
from chanscan.collector import clock
from chanscan.collector import now_rfc3339 as now_rfc3339
from chanscan.collector import progress_printer as progress_printer
from chanscan.config import PlannedTarget
from chanscan.discovery import discover
from chanscan.errors import ConnectError, ProbeError, ScopeError
from chanscan.model import (
    Channel,
    Endpoint,
    EndpointResult,
    PlatformInfo,
    ScanOptions,
    ScanReport,
    Status,
)
from chanscan.probes.base import Observation, Probe, ProbeContext
from chanscan.rows import banner_text, base_result, capped, planned_error, with_observation
from chanscan.sweep import (
    DownLedger,
    PlannedEndpoints,
    RttEstimator,
    discovery_budget,
    raise_fd_limit,
)
from chanscan.workers import ThreadWorkers

T = TypeVar("T")


class Fingerprinter(Protocol):
    """Platform fingerprinting in two halves: network requests that need nothing from
    the probe (run concurrently with it), then folding with the observation."""

    async def requests(self, ctx: ProbeContext, channel: Channel) -> Any: ...

    def result(
        self, ctx: ProbeContext, observation: Observation | None, gathered: Any
    ) -> PlatformInfo | None: ...


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
        self.discovery_connections = discovery_budget(
            options.discovery_connections, raise_fd_limit(), options.global_connections
        )
        self.discovery_limiter = trio.CapacityLimiter(self.discovery_connections)
        self.rtt = RttEstimator(options.connect_timeout)
        self.ledger = DownLedger()
        self._hosts: dict[str, _Host] = {}
        self.workers = ThreadWorkers(options.worker_threads)
        self.bridge = AsyncioBridge()

    def host(self, address: str) -> _Host:
        h = self._hosts.get(address)
        if h is None:
            h = self._hosts[address] = _Host(self.options.per_host_connections)
        return h

    def forget_host(self, address: str) -> None:
        """Every endpoint of ``address`` is done: its budget goes (a /16 sweep keeps
        state for the addresses in flight only)."""
        self._hosts.pop(address, None)

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
        # Set by the scheduler while discovery runs: its connects take the discovery
        # budget and the measured-RTT timeout, and a host found down is not waited for.
        self.discovering = False

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
        common = self._sched.discovery_limiter if self.discovering else self._sched.global_limiter
        await host.acquire_on_behalf_of(borrower)
        try:
            await common.acquire_on_behalf_of(borrower)
            try:
                yield
            finally:
                common.release_on_behalf_of(borrower)
        finally:
            host.release_on_behalf_of(borrower)

    async def _connect(self) -> trio.SocketStream:
        ep = self._endpoint
        if not self.discovering:
            timeout = self.options.connect_timeout
            with trio.move_on_after(timeout) as scope:
                return await open_stream(ep.address, ep.port)
            raise ConnectError("timeout", f"no TCP answer within {timeout:g}s")
        if self._sched.ledger.is_down(ep.address):
            raise ConnectError("down", "host down: no answer on its first ports")
        rtt = self._sched.rtt
        start = trio.current_time()
        with trio.CancelScope(deadline=start + rtt.timeout()) as scope:
            rtt.waiting(scope, start)
            try:
                stream = await open_stream(ep.address, ep.port)
            except ConnectError as exc:
                if exc.kind == "refused":  # a RST is an answer: its time counts
                    rtt.sample(trio.current_time() - start)
                raise
            finally:
                rtt.done(scope)
            rtt.sample(trio.current_time() - start)
            return stream
        waited = trio.current_time() - start
        raise ConnectError("timeout", f"no TCP answer within {waited:.2g}s")

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[trio.SocketStream]:
        async with self.budget():
            stream = await self._connect()
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
    return with_observation(result, obs)


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

    # A host that serves one connection at a time (degraded, or --per-host 1) would
    # hold its only slot on a fingerprint request that may sit unanswered for its whole
    # bound while the probe waits: there the requests come after the probe, where an
    # idle connection delays nothing of the channel's result.
    serial = sched.host(ctx.endpoint.address).limiter.total_tokens <= 1
    async with trio.open_nursery() as nursery:
        if fp is not None and not serial:
            nursery.start_soon(fingerprint_requests)
        if probe is not None:
            result = await _run_probe(ctx, probe, result)
    if fp is not None and serial:
        await fingerprint_requests()
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
        result = with_observation(result, ctx.partial)
        error += "; the row holds what was measured before it (partial)"
    return replace(result, status=Status.TIMEOUT, error=error)


async def scan_endpoint(sched: Scheduler, ep: Endpoint) -> EndpointResult:
    """Discovery + probe + fingerprint of one endpoint, inside its deadline."""
    ctx = EndpointContext(sched, ep)
    t0 = time.monotonic()
    result = base_result(ep, Channel.UNKNOWN, Status.TIMEOUT, None)
    with trio.move_on_after(sched.options.endpoint_deadline) as scope:
        ctx.discovering = True
        disc = await discover(ctx)
        ctx.discovering = False
        result = replace(
            base_result(
                ep, disc.channel, disc.status, disc.detail if disc.status != Status.OK else None
            ),
            banner=banner_text(disc.banner),
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
    return capped(replace(result, connections=ctx.connections, elapsed_ms=elapsed))


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
) -> tuple[PlannedEndpoints, list[EndpointResult]]:
    """Resolve every name once, concurrently. A name that does not resolve becomes an
    error row per port (the scan of everything else goes on). Excludes apply to the
    resolved addresses too; each name that lost addresses to one is told in ``notes``.
    The endpoints are made as the scan takes them (:class:`PlannedEndpoints`)."""
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
    failed: list[EndpointResult] = []
    addresses: dict[str, list[str]] = {}
    for name, got in resolved.items():
        if isinstance(got, list):
            addresses[name] = got
    for p in planned:
        answer = resolved.get(p.host.name) if p.host.name is not None else None
        if isinstance(answer, list) and notes is not None:
            kept = [a for a in answer if not p.excludes(a)]
            if len(kept) < len(answer):
                lost = ", ".join(a for a in answer if a not in kept)
                left = f"; scanning {', '.join(kept)}" if kept else "; nothing left to scan"
                notes.append(f"{p.host.name} resolves to excluded {lost}{left}")
        if isinstance(answer, str):
            for port in p.ports:
                failed.append(planned_error(p, port, answer, host=p.host.name or ""))
    return PlannedEndpoints(planned, addresses), failed


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
            collector.progress(collector.done, collector.total, note)


async def scan_endpoints(
    endpoints: Iterable[Endpoint],
    options: ScanOptions,
    probes: Mapping[Channel, Probe],
    collector: ResultCollector,
    fingerprint: Fingerprinter | None = None,
) -> None:
    """Scan every endpoint, results into ``collector``. At most a bounded number of
    endpoint tasks exist at once, so a /16 does not allocate a million tasks.
    ``endpoints`` is iterated twice (a list, or :class:`PlannedEndpoints`)."""
    sched = Scheduler(options, probes, fingerprint)
    # Endpoint tasks at once: enough to keep the discovery budget busy while probes run.
    in_flight = trio.Semaphore(max(16, sched.discovery_connections + options.global_connections))
    # Endpoints not yet finished per address, so a host's state goes when it is done.
    left: dict[str, int] = {}
    for ep in endpoints:
        left[ep.address] = left.get(ep.address, 0) + 1
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
                        result = await scan_endpoint(sched, ep)
                        for row in sched.ledger.record(result):
                            collector.add(row, finished=False)
                        left[ep.address] -= 1
                        if not left[ep.address]:
                            del left[ep.address]
                            for row in sched.ledger.release(ep.address):
                                collector.add(row, finished=False)
                            sched.forget_host(ep.address)
                        collector.finished(ep)
                    finally:
                        in_flight.release()

                for ep in endpoints:
                    await in_flight.acquire()
                    nursery.start_soon(run_one, ep)
            outer.cancel_scope.cancel()
    finally:
        for row in sched.ledger.finish():
            collector.add(row, finished=False)
        collector.down_hosts = sched.ledger.down_hosts()
        if collector.interrupted:
            collector.interrupt_in_flight(clock())
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
    result = base_result(endpoint, probe.channel, Status.OK, None)
    try:
        with trio.move_on_after(options.endpoint_deadline) as scope:
            result = await _run_probe(ctx, probe, result)
        if scope.cancelled_caught:
            result = _timed_out(result, ctx, options.endpoint_deadline)
    finally:
        sched.close()
    return capped(
        replace(result, connections=ctx.connections, elapsed_ms=int((time.monotonic() - t0) * 1000))
    )
