"""What makes a sparse sweep fast and small: the discovery budget sized from the
file-descriptor limit, connect timeouts that follow the measured round trips, and
hosts that answer nothing marked down and counted per network instead of one row per
port. No I/O of its own and no nurseries: the scheduler drives it.
"""

from __future__ import annotations

import ipaddress
import resource
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import trio

from chanscan.config import PlannedTarget
from chanscan.model import DownHosts, Endpoint, EndpointResult, Status

# RFC 6298 section 2: alpha = 1/8, beta = 1/4, RTO = SRTT + max(G, K * RTTVAR), K = 4.
_ALPHA = 0.125
_BETA = 0.25
_K = 4
# Never wait less than this for a SYN-ACK once round trips are known: a live port must
# not be reported filtered because a busy scanner (many tasks on few cores) noticed its
# answer late. nmap -T4 uses 100 ms; chanscan's measured "RTT" includes its own
# scheduling delay, so it keeps a wider margin.
TIMEOUT_FLOOR = 0.5
# Re-apply a lower timeout to connects already waiting only when it fell this much.
_SHRINK_STEP = 0.8

# A host is down when this many of its discovery connects went unanswered (neither a
# SYN-ACK nor a RST) and none was answered. Its first ports run at once (the per-host
# budget), so an open port among them keeps the host up.
DOWN_AFTER = 3

# File descriptors kept for everything but discovery: probe connections, worker threads'
# sockets, the asyncio bridge, the pin store, output files.
_FD_RESERVE = 256
MAX_DISCOVERY = 2048
MIN_DISCOVERY = 16


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (allowed without privileges);
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep what we have; the budget below follows it
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def discovery_budget(requested: int, fd_limit: int, probe_connections: int) -> int:
    """Discovery connections at once: the user's number, or (0) as many as the fd limit
    leaves after the probes' share, within [MIN_DISCOVERY, MAX_DISCOVERY]."""
    if requested > 0:
        return requested
    free = fd_limit - _FD_RESERVE - 2 * probe_connections
    return max(MIN_DISCOVERY, min(MAX_DISCOVERY, free))


class RttEstimator:
    """The discovery connect timeout: RFC 6298's retransmission timeout over the connect
    times measured so far (a SYN-ACK or a RST is an answer), at least ``floor`` and at
    most ``ceiling`` (the user's --connect-timeout, also the value before any sample).
    Connects already waiting get a lower deadline as soon as the estimate shrinks."""

    def __init__(self, ceiling: float, floor: float = TIMEOUT_FLOOR) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.samples = 0
        self._waiting: dict[trio.CancelScope, float] = {}
        self._applied = ceiling

    def timeout(self) -> float:
        if self.srtt is None:
            return self.ceiling
        rto = self.srtt + _K * self.rttvar
        return max(self.floor, min(self.ceiling, rto))

    def sample(self, seconds: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = seconds, seconds / 2
        else:
            self.rttvar = (1 - _BETA) * self.rttvar + _BETA * abs(self.srtt - seconds)
            self.srtt = (1 - _ALPHA) * self.srtt + _ALPHA * seconds
        self.samples += 1
        now = self.timeout()
        if now < self._applied * _SHRINK_STEP:
            self._applied = now
            for scope, start in self._waiting.items():
                scope.deadline = min(scope.deadline, start + now)
        elif now > self._applied:
            self._applied = now  # later connects get the longer wait; none is cut short

    def waiting(self, scope: trio.CancelScope, start: float) -> None:
        self._waiting[scope] = start

    def done(self, scope: trio.CancelScope) -> None:
        self._waiting.pop(scope, None)


def network_of(address: str) -> str:
    """The network a down host is counted in: its /24 (IPv4) or /64 (IPv6)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass
class HostState:
    """Discovery's view of one address: answered at all, how many connects went
    unanswered, the rows held back until the host's fate is known."""

    answered: bool = False
    silent: int = 0
    down: bool = False
    held: list[EndpointResult] = field(default_factory=list)


@dataclass
class _Down:
    hosts: int = 0
    ports: int = 0


class DownLedger:
    """Rows of hosts that have not answered yet are held; a host that answers gets them
    back as ordinary rows, a host declared down becomes a count in its network."""

    def __init__(self) -> None:
        self._hosts: dict[str, HostState] = {}
        self._down: dict[str, _Down] = {}

    def state(self, address: str) -> HostState:
        s = self._hosts.get(address)
        if s is None:
            s = self._hosts[address] = HostState()
        return s

    def is_down(self, address: str) -> bool:
        s = self._hosts.get(address)
        return s is not None and s.down

    def record(self, result: EndpointResult) -> list[EndpointResult]:
        """Feed one finished endpoint; returns the rows to report now."""
        s = self.state(result.address)
        if s.down:
            self._down[network_of(result.address)].ports += 1
            return []
        if result.status is not Status.FILTERED:
            if s.answered:
                return [result]
            s.answered = True
            held, s.held = s.held, []
            return [*held, result]
        if s.answered:
            return [result]
        s.silent += 1
        s.held.append(result)
        if s.silent >= DOWN_AFTER:
            s.down = True
            entry = self._down.setdefault(network_of(result.address), _Down())
            entry.hosts += 1
            entry.ports += len(s.held)
            s.held = []
        return []

    def finish(self) -> list[EndpointResult]:
        """Rows still held at the end (an interrupted scan keeps what it measured)."""
        out: list[EndpointResult] = []
        for s in self._hosts.values():
            out += s.held
            s.held = []
        return out

    def release(self, address: str) -> list[EndpointResult]:
        """Every port of ``address`` is done: drop its state (memory follows the
        addresses in flight, not the sweep) and return the rows it still held (a host
        with too few ports to call it down keeps its filtered rows)."""
        s = self._hosts.pop(address, None)
        return [] if s is None else s.held

    def down_hosts(self) -> tuple[DownHosts, ...]:
        return tuple(
            DownHosts(network=net, hosts=d.hosts, ports=d.ports)
            for net, d in sorted(self._down.items(), key=lambda kv: _net_key(kv[0]))
        )


def _net_key(net: str) -> tuple[int, int, str]:
    try:
        n = ipaddress.ip_network(net)
        return (n.version, int(n.network_address), net)
    except ValueError:
        return (9, 0, net)


class PlannedEndpoints:
    """The endpoints of a plan, made one at a time as the scan takes them (a /16 of ten
    management ports is 655,360 endpoints: held at once they alone would cost more than
    the whole scan may). Re-iterable; ``len`` without making them. An address planned
    more than once (overlapping targets, two names for one address) keeps each port
    once, as the first target that named it."""

    def __init__(self, planned: Sequence[PlannedTarget], resolved: Mapping[str, list[str]]) -> None:
        self._planned = planned
        self._resolved = resolved
        ports_of: dict[str, int] = {}
        repeated: dict[str, set[int]] = {}
        for p in planned:
            for _, addr in self._pairs(p):
                if addr in ports_of:
                    repeated.setdefault(addr, set())
                ports_of[addr] = ports_of.get(addr, 0) + len(p.ports)
        # Only addresses planned twice need their ports remembered while iterating.
        for p in planned:
            for _, addr in self._pairs(p):
                if addr in repeated:
                    repeated[addr].update(p.ports)
        self._repeated = frozenset(repeated)
        self._len = sum(ports_of[a] for a in ports_of if a not in repeated)
        self._len += sum(len(ports) for ports in repeated.values())

    def _pairs(self, p: PlannedTarget) -> list[tuple[str, str]]:
        if p.host.address is not None:
            return [(p.host.address, p.host.address)]
        assert p.host.name is not None
        # An exclude wins over what a name resolves to ("--exclude always wins").
        return [(p.host.name, a) for a in self._resolved.get(p.host.name, ()) if not p.excludes(a)]

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Endpoint]:
        seen: set[tuple[str, int]] = set()
        for p in self._planned:
            for host, addr in self._pairs(p):
                for port in p.ports:
                    if addr in self._repeated:
                        if (addr, port) in seen:
                            continue
                        seen.add((addr, port))
                    yield Endpoint(host, addr, port, p.platform, p.policy, p.group)
