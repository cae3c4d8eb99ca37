"""The contract between the scheduler and the probes.

A probe is an object with a ``channel`` and an async ``run(ctx)`` that returns an
:class:`Observation` (one of the ``chanscan.obs`` types). Probes never open
nurseries, never start threads and never set their own deadlines: everything that
needs concurrency, a thread, or a connection budget goes through the
:class:`ProbeContext` the scheduler hands them, and the scheduler wraps ``run`` in
the endpoint deadline. A probe signals a broken peer by raising
:class:`chanscan.errors.ProbeError`; the scheduler turns it into an error row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

import trio

from chanscan.model import Channel, Endpoint, ScanOptions
from chanscan.obs.rdp import RdpObservation
from chanscan.obs.ssh import SshObservation
from chanscan.obs.tls import TlsObservation

T = TypeVar("T")

Observation = TlsObservation | SshObservation | RdpObservation


class ProbeContext(Protocol):
    """What the scheduler offers a probe for one endpoint."""

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def options(self) -> ScanOptions: ...

    @property
    def banner(self) -> bytes:
        """What discovery read from the server before sending anything (may be empty)."""
        ...

    @property
    def first_reply(self) -> bytes:
        """What the server answered to discovery's sniff request (for TLS: its first
        flight up to at least the record header; may be empty)."""
        ...

    def note_partial(self, observation: Observation) -> None:
        """What the probe has measured so far: if the endpoint deadline ends the probe,
        the row carries this (a partial row) rather than a bare timeout."""
        ...

    def connection(self) -> AbstractAsyncContextManager[trio.SocketStream]:
        """Open a TCP connection to the endpoint inside the host and global budgets;
        counted in ``EndpointResult.connections``; closed on exit."""
        ...

    def budget(self) -> AbstractAsyncContextManager[None]:
        """Hold one connection slot of the budgets without opening a socket (for work
        that connects by itself, e.g. sslyze jobs or asyncssh)."""
        ...

    def count_connections(self, n: int = 1) -> None:
        """Record connections a probe opened by other means (sslyze, asyncssh)."""
        ...

    def degrade_host(self) -> None:
        """Tell the scheduler this host drops parallel connections: serialize it."""
        ...

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` on one of the scheduler's long-lived workers.
        Does not take a budget slot by itself: wrap in ``budget()`` when it connects."""
        ...

    async def run_asyncio(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run an asyncio coroutine (asyncssh) on the scheduler's asyncio loop thread;
        cancelling the trio caller cancels the asyncio task."""
        ...

    async def gather(self, thunks: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run ``thunks`` concurrently in the scheduler's nursery; results in order.
        The first exception cancels the rest and propagates."""
        ...


class Probe(Protocol):
    channel: Channel

    async def run(self, ctx: ProbeContext) -> Observation: ...
