"""The pure half of a Dask scan: where to send it, how to cut it, what comes back.

No I/O and no Dask import here, so all of it is tested without a cluster.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chanscan.config import PlannedTarget
from chanscan.errors import UsageError
from chanscan.model import EndpointResult, ScanOptions, Vantage
from chanscan.rows import planned_error
from chanscan.serde import from_jsonable

# A shard carries at most this many hosts: small enough that a lost worker costs
# little and a slow site shows in the progress line, large enough that a /16 is not
# 65,536 Dask tasks, and enough to keep one worker's connection budget busy.
MAX_HOSTS_PER_SHARD = 64


@dataclass(frozen=True)
class DaskTarget:
    """The ``--dask`` value: ``local`` / ``local:N`` or a scheduler address."""

    local_workers: int | None = None  # processes of a LocalCluster (0 = one per core)
    address: str | None = None  # tcp://HOST:PORT or tls://HOST:PORT

    @property
    def is_local(self) -> bool:
        return self.address is None

    @property
    def scheme(self) -> str:
        return "" if self.address is None else self.address.split("://", 1)[0]

    @property
    def host(self) -> str:
        assert self.address is not None
        rest = self.address.split("://", 1)[1]
        if rest.startswith("["):
            return rest[1:].split("]", 1)[0]
        return rest.rsplit(":", 1)[0] if ":" in rest else rest


def parse_dask_target(text: str) -> DaskTarget:
    """``local``, ``local:N``, ``tcp://HOST[:PORT]`` or ``tls://HOST[:PORT]``."""
    value = text.strip()
    if value == "local":
        return DaskTarget(local_workers=0)
    if value.startswith("local:"):
        n = value[len("local:") :]
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise UsageError(f"--dask {text}: N in local:N must be a whole number 1-256")
        return DaskTarget(local_workers=int(n))
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("tcp", "tls") or not rest or "/" in rest:
        raise UsageError(
            f"--dask {text}: expected local, local:N, tcp://HOST:PORT or tls://HOST:PORT"
        )
    if ":" not in rest.rsplit("]", 1)[-1]:
        value = f"{value}:8786"  # Dask's default scheduler port
    return DaskTarget(address=value)


def is_loopback_host(host: str) -> bool:
    """A literal loopback address or ``localhost``; any other name counts as remote
    (deciding by a DNS answer would let a resolver switch encryption off)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(target: DaskTarget, insecure: bool) -> None:
    """Scan results are sensitive: plain ``tcp://`` only to a scheduler on this machine."""
    if target.scheme == "tcp" and not insecure and not is_loopback_host(target.host):
        raise UsageError(
            f"--dask {target.address}: refusing to send scan results in clear text to a "
            "scheduler that is not on loopback; use tls:// (see docs/deployment.md) or "
            "give --dask-insecure"
        )


# -- shards ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shard:
    """Whole hosts of one site, scanned by one worker with the ordinary trio scan."""

    index: int
    site: str | None
    targets: tuple[PlannedTarget, ...]

    @property
    def planned_endpoints(self) -> int:
        """Endpoints before resolution (a name may turn into several addresses)."""
        return sum(len(t.ports) for t in self.targets)

    @property
    def resources(self) -> dict[str, float]:
        return {} if self.site is None else {site_resource(self.site): 1}


@dataclass(frozen=True)
class ShardTask:
    """What a worker receives: the shard's targets and the scan options, with the
    ``--ca-bundle`` file's bytes (the path means nothing on another machine)."""

    targets: tuple[PlannedTarget, ...]
    options: ScanOptions
    ca_bundle_pem: bytes | None
    cancel_event: str  # name of the Dask Event that the client sets on Ctrl-C


def site_resource(site: str) -> str:
    return f"site-{site}"


def _host_key(t: PlannedTarget) -> str:
    return t.host.address or t.host.name or ""


def hosts_per_shard(hosts: int, workers: int) -> int:
    """As many hosts as an even split over the workers gives, up to the cap. An
    endpoint's scan is mostly waiting (banner sniff, handshakes, deadlines), so a worker
    is fastest with many hosts at once: cutting finer only queues the waits one after
    another (measured: 16 TLS endpoints in 8 shards on 2 workers took 2.2x the time of
    2 shards)."""
    per = math.ceil(hosts / max(1, workers))
    return max(1, min(MAX_HOSTS_PER_SHARD, per))


def make_shards(planned: Sequence[PlannedTarget], workers: int) -> list[Shard]:
    """Cut the plan by site, never splitting a host: every port of one address (or
    name) lands in one shard, even across groups, so the per-host budget holds."""
    by_site: dict[str | None, dict[str, list[PlannedTarget]]] = {}
    for t in planned:
        by_site.setdefault(t.site, {}).setdefault(_host_key(t), []).append(t)
    size = hosts_per_shard(sum(len(h) for h in by_site.values()), workers)
    shards: list[Shard] = []
    for site, hosts in by_site.items():
        host_lists = list(hosts.values())
        for i in range(0, len(host_lists), size):
            chunk = tuple(t for h in host_lists[i : i + size] for t in h)
            shards.append(Shard(len(shards), site, chunk))
    return shards


# -- rows ------------------------------------------------------------------------------
def unscanned_rows(shard: Shard, error: str) -> list[EndpointResult]:
    """One error row per planned endpoint of a shard no worker measured."""
    rows: list[EndpointResult] = []
    seen: set[tuple[str, int]] = set()
    for t in shard.targets:
        host = t.host.name or t.host.address or ""
        for port in t.ports:
            if (host, port) in seen:
                continue
            seen.add((host, port))
            row = planned_error(t, port, error, host=host, address=t.host.address or "")
            rows.append(replace(row, vantage=Vantage(shard.site, None)))
    return rows


def no_worker_message(site: str | None) -> str:
    return "no Dask worker connected" if site is None else f"no worker for site {site}"


def decode_results(answer: Mapping[str, Any], site: str | None) -> list[EndpointResult]:
    """A worker's answer (plain data) back into frozen results, each with its vantage."""
    worker = str(answer["worker"])
    rows = answer["results"]
    return [
        replace(
            from_jsonable(EndpointResult, row, f"worker {worker}: result[{i}]"),
            vantage=Vantage(site, worker),
        )
        for i, row in enumerate(rows)
    ]


# -- progress ------------------------------------------------------------------------------
def progress_line(sites: Mapping[str | None, tuple[int, int]]) -> str:
    """``done/total endpoints``, and the site furthest behind while any is unfinished.
    ``sites`` maps a site (None: groups without one) to (done, total)."""
    done = sum(d for d, _ in sites.values())
    total = sum(t for _, t in sites.values())
    line = f"chanscan: {done}/{total} endpoints"
    behind = [(d / t, -(t - d), s, d, t) for s, (d, t) in sites.items() if t and d < t]
    if behind and len(sites) > 1:
        _, _, site, d, t = min(behind, key=lambda b: (b[0], b[1]))
        line += f"; slowest site: {site or '(none)'} {d}/{t}"
    return line


def sites_of(shards: Iterable[Shard]) -> list[str | None]:
    seen: list[str | None] = []
    for s in shards:
        if s.site not in seen:
            seen.append(s.site)
    return seen
