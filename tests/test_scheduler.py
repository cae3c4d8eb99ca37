"""The scheduler's guarantees: deadlines from outside, budgets, errors as data,
worker threads and the asyncio bridge. No network here but loopback lab servers."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest
import trio
import trio.testing

from chanscan.aiobridge import AsyncioBridge
from chanscan.errors import ProtocolError
from chanscan.model import Channel, Endpoint, ScanOptions, Status
from chanscan.obs.tls import TlsObservation
from chanscan.probes.base import ProbeContext
from chanscan.scheduler import EndpointContext, Scheduler, probe_once
from chanscan.workers import ThreadWorkers

EP = Endpoint("192.0.2.10", "192.0.2.10", 443)  # never connected to in these tests


@dataclass
class SleepyProbe:
    channel: Channel = Channel.TLS

    async def run(self, ctx: ProbeContext) -> TlsObservation:
        await trio.sleep_forever()
        raise AssertionError("unreachable")


@dataclass
class BrokenProbe:
    channel: Channel = Channel.TLS

    async def run(self, ctx: ProbeContext) -> TlsObservation:
        raise ProtocolError("server sent garbage")


async def test_deadline_applies_from_outside(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    result = await probe_once(EP, SleepyProbe(), ScanOptions(endpoint_deadline=12))
    assert result.status == Status.TIMEOUT
    assert "12s deadline" in (result.error or "")
    assert trio.current_time() - start == pytest.approx(12)


async def test_probe_error_becomes_an_error_row() -> None:
    result = await probe_once(EP, BrokenProbe())
    assert result.status == Status.ERROR
    assert result.error == "server sent garbage"


async def test_per_host_and_global_budgets(autojump_clock: trio.testing.MockClock) -> None:
    opts = ScanOptions(per_host_connections=3, global_connections=4)
    sched = Scheduler(opts, {})
    active: dict[str, int] = {"a": 0, "b": 0, "all": 0}
    peak: dict[str, int] = {"a": 0, "b": 0, "all": 0}

    async def hold(ctx: EndpointContext, host: str) -> None:
        async with ctx.budget():
            active[host] += 1
            active["all"] += 1
            peak[host] = max(peak[host], active[host])
            peak["all"] = max(peak["all"], active["all"])
            await trio.sleep(1)
            active[host] -= 1
            active["all"] -= 1

    ctx_a = EndpointContext(sched, Endpoint("a", "192.0.2.1", 443))
    ctx_b = EndpointContext(sched, Endpoint("b", "192.0.2.2", 443))
    thunks = [lambda: hold(ctx_a, "a") for _ in range(8)] + [
        lambda: hold(ctx_b, "b") for _ in range(8)
    ]
    await ctx_a.gather(thunks)
    # Six tasks hold a host slot (three per host) and compete for four global ones;
    # trio's scheduling order decides how those four split between the hosts.
    assert peak["all"] == 4
    assert 1 <= peak["a"] <= 3 and 1 <= peak["b"] <= 3

    peak.update(a=0, all=0)
    await ctx_a.gather([lambda: hold(ctx_a, "a") for _ in range(8)])
    assert peak["a"] == 3  # alone, a host gets exactly its own budget

    ctx_a.degrade_host()  # a fragile host is serialized from now on
    peak["a"] = 0
    await ctx_a.gather([lambda: hold(ctx_a, "a") for _ in range(4)])
    assert peak["a"] == 1
    sched.close()


async def test_gather_keeps_order_and_propagates_errors() -> None:
    sched = Scheduler(ScanOptions(), {})
    ctx = EndpointContext(sched, EP)

    async def val(i: int) -> int:
        await trio.sleep(0.001 * (5 - i))
        return i

    assert await ctx.gather([lambda i=i: val(i) for i in range(5)]) == [0, 1, 2, 3, 4]

    async def boom() -> int:
        raise ProtocolError("x")

    with pytest.raises(ProtocolError):
        await ctx.gather([boom])
    sched.close()


async def test_worker_threads_are_long_lived() -> None:
    workers = ThreadWorkers(2)
    names = [await workers.run(lambda: threading.current_thread().name) for _ in range(20)]
    assert set(names) <= {"chanscan-worker-0", "chanscan-worker-1"}

    def fail() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        await workers.run(fail)
    workers.close()
    assert not any(t.name.startswith("chanscan-worker") for t in threading.enumerate())


async def test_asyncio_bridge_cancels_the_asyncio_side() -> None:
    bridge = AsyncioBridge()
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await bridge.run(answer) == 42
    with trio.move_on_after(0.2) as scope:
        await bridge.run(forever)
    assert scope.cancelled_caught
    assert cancelled.is_set()
    assert bridge.pending_tasks() == 0
    bridge.close()


@dataclass
class BuggyProbe:
    channel: Channel = Channel.TLS

    async def run(self, ctx: ProbeContext) -> TlsObservation:
        raise KeyError("unexpected field in a server answer")


async def test_a_probe_bug_costs_one_endpoint_not_the_scan() -> None:
    result = await probe_once(EP, BuggyProbe())
    assert result.status == Status.ERROR
    assert result.error is not None
    assert "internal error in the tls probe" in result.error and "KeyError" in result.error
