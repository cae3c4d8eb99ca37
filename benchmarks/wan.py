"""The WAN scenario: the same fleet servers reached through relays that hold each chunk
for a one-way delay (both directions; the backend connect waits one round trip, as a
TCP handshake across the link would), at 20 ms and 80 ms round trip. Management
networks are sites apart, not loopback: every sequential handshake pays the RTT.

Relays for RTT ``r`` ms listen on ``127.64.r.N`` in front of the fleet's backend
``127.60.2.N`` and count connections like the loopback fleet's relays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.fleet import BACK_NET, FRONT_NET, Fleet, counting_proxy
from benchmarks.peers import ScanSettings
from chanscan.lab import Lab

RTTS_MS = (20, 80)


def wan_front(rtt_ms: int, n: int) -> str:
    return f"127.64.{rtt_ms}.{n}"


def start_wan(lab: Lab, fleet: Fleet, rtt_ms: int) -> tuple[Fleet, tuple[str, ...]]:
    """Delayed relays in front of ``fleet``'s backends; the WAN fleet and its hosts."""
    delay = rtt_ms / 2000.0
    endpoints = []
    for e in fleet.endpoints:
        n = int(e.address.removeprefix(FRONT_NET))
        front = wan_front(rtt_ms, n)
        counting_proxy(lab, fleet.counter, front, e.port, (f"{BACK_NET}{n}", e.port), delay)
        endpoints.append(replace(e, address=front))
    hosts = tuple(sorted({e.address for e in endpoints}))
    return Fleet(lab, fleet.counter, endpoints, [], fleet.host_count), hosts


RunFleet = Callable[[Fleet, Path, int, ScanSettings], dict[str, Any]]


def run_wan(lab: Lab, fleet: Fleet, work: Path, rounds: int, run_fleet: RunFleet) -> dict[str, Any]:
    """Every peer against the fleet at each RTT, alternating within each round."""
    out: dict[str, Any] = {}
    for rtt in RTTS_MS:
        wan, hosts = start_wan(lab, fleet, rtt)
        sub = work / f"wan-{rtt}"
        sub.mkdir(parents=True, exist_ok=True)
        # The per-endpoint deadline stays chanscan's default (30 s): a WAN costs time.
        result = run_fleet(wan, sub, rounds, ScanSettings(scan_hosts=hosts))
        result["scan_range"] = f"{hosts[0]}-{hosts[-1]}" if hosts else ""
        result["rtt_ms"] = rtt
        out[str(rtt)] = result
    return out


def ratio(result: dict[str, Any]) -> tuple[float, float, float] | None:
    """(chanscan wall, sslyze + ssh-audit wall, chanscan / peers) from one RTT's run."""
    tools = result.get("tools", {})
    cs, sy, sa = tools.get("chanscan"), tools.get("sslyze"), tools.get("ssh-audit")
    if not (cs and sy and sa):
        return None
    peers = sy["wall_median_s"] + sa["wall_median_s"]
    return cs["wall_median_s"], peers, cs["wall_median_s"] / peers
