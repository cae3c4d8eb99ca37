"""Sparse sweeps: the discovery budget from the fd limit, connect timeouts that follow
measured round trips, and addresses that answer nothing counted per network."""

from __future__ import annotations

import itertools
import resource

import pytest
import trio
import trio.lowlevel
import trio.testing

from chanscan.lab.core import Lab, free_port
from chanscan.model import Channel, DownHosts, Endpoint, EndpointResult, ScanOptions, Status
from chanscan.scheduler import ResultCollector, scan_endpoints
from chanscan.sweep import (
    DOWN_AFTER,
    MAX_DISCOVERY,
    MIN_DISCOVERY,
    TIMEOUT_FLOOR,
    DownLedger,
    RttEstimator,
    discovery_budget,
    network_of,
    raise_fd_limit,
)

DEAD = "127.83.2.1"
LIVE = "127.83.2.2"


def _row(address: str, port: int, status: Status) -> EndpointResult:
    return EndpointResult(address, address, port, Channel.UNKNOWN, status)


def test_timeout_is_the_ceiling_until_a_round_trip_is_measured() -> None:
    rtt = RttEstimator(ceiling=3.0)
    assert rtt.timeout() == 3.0
    rtt.sample(0.001)  # loopback: the floor, not 4 ms
    assert rtt.timeout() == TIMEOUT_FLOOR
    for _ in range(20):
        rtt.sample(2.5)  # a slow link: the estimate grows, capped by the user's value
    assert rtt.timeout() == 3.0


def test_rfc6298_estimate_between_floor_and_ceiling() -> None:
    rtt = RttEstimator(ceiling=10.0)
    rtt.sample(0.4)  # first sample: SRTT = R, RTTVAR = R/2 -> RTO = R + 4 R/2 = 3R
    assert rtt.timeout() == pytest.approx(1.2)
    rtt.sample(0.4)  # RTTVAR = 3/4 * 0.2; SRTT stays 0.4
    assert rtt.timeout() == pytest.approx(0.4 + 4 * 0.15)


async def test_connects_already_waiting_get_the_shorter_timeout() -> None:
    rtt = RttEstimator(ceiling=3.0)
    start = trio.current_time()
    with trio.CancelScope(deadline=start + rtt.timeout()) as scope:
        rtt.waiting(scope, start)
        rtt.sample(0.001)
        assert scope.deadline == pytest.approx(start + TIMEOUT_FLOOR)
        await trio.lowlevel.checkpoint()
        rtt.done(scope)


def test_an_address_silent_on_its_first_ports_is_counted_not_listed() -> None:
    ledger = DownLedger()
    rows = [_row(DEAD, p, Status.FILTERED) for p in range(1, DOWN_AFTER + 3)]
    out = [r for row in rows for r in ledger.record(row)]
    assert out == [] and ledger.is_down(DEAD)
    assert ledger.down_hosts() == (DownHosts("127.83.2.0/24", 1, len(rows)),)
    assert ledger.release(DEAD) == []


def test_an_answer_brings_back_the_held_filtered_rows() -> None:
    ledger = DownLedger()
    first = _row(LIVE, 1, Status.FILTERED)
    assert ledger.record(first) == []
    closed = _row(LIVE, 2, Status.CLOSED)
    assert ledger.record(closed) == [first, closed]
    later = _row(LIVE, 3, Status.FILTERED)  # a firewalled port on a live host: a row
    assert ledger.record(later) == [later]
    assert not ledger.is_down(LIVE) and ledger.down_hosts() == ()


def test_too_few_ports_to_call_it_down_keeps_the_rows() -> None:
    ledger = DownLedger()
    rows = [_row(DEAD, p, Status.FILTERED) for p in range(1, DOWN_AFTER)]
    for row in rows:
        assert ledger.record(row) == []
    assert ledger.release(DEAD) == rows
    assert ledger.down_hosts() == ()


def test_networks_per_family() -> None:
    assert network_of("192.0.2.77") == "192.0.2.0/24"
    assert network_of("2001:db8::1:2") == "2001:db8::/64"


def test_discovery_budget_follows_the_fd_limit() -> None:
    assert discovery_budget(7, 1024, 64) == 7  # the user's number wins
    assert discovery_budget(0, 1024, 64) == 1024 - 256 - 128
    assert discovery_budget(0, 300, 64) == MIN_DISCOVERY
    assert discovery_budget(0, 1 << 20, 64) == MAX_DISCOVERY


def test_soft_fd_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if soft == hard and hard > 1024:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        got = raise_fd_limit()
        now, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert now == got
        assert hard == resource.RLIM_INFINITY or now == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_sweep_counts_a_silent_address_and_cuts_its_waits(lab: Lab) -> None:
    # DEAD drops every SYN on its six ports (full backlogs); LIVE answers with RSTs,
    # whose round trips set the timeout.
    dead_ports = [free_port(DEAD) for _ in range(6)]
    for p in dead_ports:
        lab.filtered(DEAD, p)
    live_closed = [free_port(LIVE) for _ in range(4)]
    endpoints = [Endpoint(LIVE, LIVE, p) for p in live_closed]
    endpoints += [Endpoint(DEAD, DEAD, p) for p in dead_ports]
    collector = ResultCollector()
    opts = ScanOptions(connect_timeout=2.5, sniff_timeout=0.2)
    start = trio.current_time()
    await scan_endpoints(endpoints, opts, {}, collector)
    took = trio.current_time() - start
    assert collector.report(complete=True).down_hosts == (DownHosts("127.83.2.0/24", 1, 6),)
    rows = {(r.address, r.port): r.status for r in collector.results}
    assert all(addr == LIVE for addr, _ in rows)
    assert {rows[(LIVE, p)] for p in live_closed} == {Status.CLOSED}
    # Five silent connects at once, cut to the floor by the live host's RSTs; the
    # sixth port is not tried. Waiting the 2.5 s ceiling twice would take 5 s.
    assert took < 2.4, took


def test_down_hosts_are_unprobed_for_the_exit_code() -> None:
    from chanscan.exitcodes import ExitCode, Gate, exit_code
    from chanscan.model import ScanReport
    from chanscan.reports.options import RenderOptions
    from chanscan.reports.table import headline

    report = ScanReport(
        "chanscan/1", "0", True, "t0", "t1", (), (), (DownHosts("192.0.2.0/24", 2, 20),)
    )
    assert exit_code(report, Gate()) is ExitCode.INCOMPLETE
    assert exit_code(report, Gate(allow_unreachable=True)) is ExitCode.OK
    assert "2 addresses down" in headline(report, RenderOptions())


async def test_a_slash_16_plan_is_not_held_in_memory() -> None:
    # Planning only: nothing is sent (RFC 5737 documentation addresses, and no scan).
    from chanscan.config import inventory_from_args, parse_ports, plan
    from chanscan.model import PlatformHint
    from chanscan.scheduler import resolve_targets
    from chanscan.sweep import PlannedEndpoints

    ports = parse_ports("22,443,902", "-p")
    inv = inventory_from_args(
        ["198.51.100.0/24", "198.51.100.7", "203.0.113.0/16"], ports, PlatformHint.AUTO, "default"
    )
    endpoints, failed = await resolve_targets(plan(inv, max_hosts=70_000))
    assert failed == [] and isinstance(endpoints, PlannedEndpoints)
    # 203.0.113.0/16 is 65,536 addresses; .7 repeats an address of the /24 (kept once).
    assert len(endpoints) == (256 + 65_536) * 3
    first = list(itertools.islice(endpoints, 6))
    assert [(e.address, e.port) for e in first[:3]] == [("198.51.100.0", p) for p in ports]
    pairs = {(e.address, e.port) for e in endpoints if e.address.startswith("198.51.100.")}
    assert len(pairs) == 256 * 3


async def test_progress_counts_endpoints_of_down_hosts_too(lab: Lab) -> None:
    dead_ports = [free_port(DEAD) for _ in range(4)]
    for p in dead_ports:
        lab.filtered(DEAD, p)
    closed = free_port(LIVE)
    endpoints = [Endpoint(LIVE, LIVE, closed), *(Endpoint(DEAD, DEAD, p) for p in dead_ports)]
    seen: list[tuple[int, int]] = []
    collector = ResultCollector(total=len(endpoints))
    collector.progress = lambda done, total, _waiting=None: seen.append((done, total))
    await scan_endpoints(endpoints, ScanOptions(connect_timeout=1.0), {}, collector)
    assert len(collector.results) == 1 and collector.down_hosts[0].hosts == 1
    assert seen[-1] == (5, 5) and [d for d, _ in seen] == [1, 2, 3, 4, 5]
