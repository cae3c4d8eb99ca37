"""A discovery sweep of 127.61.0.0/24 across chanscan's default management ports, with
tarpits (accept, never answer) and filtered ports (SYN never answered) in it.

The harness process holds the tarpits and filtered ports; the sweep itself runs in a
child process (``--worker``) through chanscan's own planner and scheduler with no
probes, i.e. exactly the discovery stage of ``chanscan scan``: one connection per
port, refused = closed, no SYN-ACK within the connect deadline = filtered.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter as Tally
from pathlib import Path

import trio

from benchmarks.fleet import Counter, counting_tarpit
from benchmarks.measure import run_child
from chanscan.config import PLATFORM_PORTS, inventory_from_args, plan
from chanscan.lab import Lab
from chanscan.model import PlatformHint, ScanOptions
from chanscan.scheduler import ResultCollector, scan

NETWORK = "127.61.0.0/24"
# Tarpits on a server-first port (22: chanscan waits for a banner first) and on
# client-first ports (443, 5480, 9443: chanscan sends a ClientHello and waits).
TARPITS = (
    ("127.61.0.10", 443),
    ("127.61.0.20", 22),
    ("127.61.0.30", 5480),
    ("127.61.0.40", 9443),
    ("127.61.0.50", 902),
)
FILTERED = (("127.61.0.60", 443), ("127.61.0.70", 22), ("127.61.0.80", 5986))


def start_sweep_lab(lab: Lab, counter: Counter) -> None:
    for addr, port in TARPITS:
        counting_tarpit(lab, counter, addr, port)
    for addr, port in FILTERED:
        lab.filtered(addr, port)


def worker(connect_timeout: float, concurrency: int) -> dict[str, object]:
    ports = PLATFORM_PORTS[PlatformHint.AUTO]
    planned = plan(inventory_from_args([NETWORK], ports, PlatformHint.AUTO, "default"))
    options = ScanOptions(connect_timeout=connect_timeout, global_connections=concurrency)
    collector = ResultCollector()
    t0 = time.perf_counter()
    trio.run(scan, planned, options, {}, collector)
    wall = time.perf_counter() - t0
    slowest = sorted(collector.results, key=lambda r: -r.elapsed_ms)[:8]
    return {
        "endpoints": len(collector.results),
        "ports": list(ports),
        "scan_wall_s": round(wall, 3),
        "statuses": dict(Tally(r.status.value for r in collector.results)),
        "slowest": [
            {"endpoint": f"{r.address}:{r.port}", "status": r.status.value, "ms": r.elapsed_ms}
            for r in slowest
        ],
    }


def run_sweep(lab: Lab, out_dir: Path, connect_timeout: float = 3.0) -> dict[str, object]:
    counter = Counter()
    start_sweep_lab(lab, counter)
    log = out_dir / "sweep.json"
    argv = [sys.executable, "-m", "benchmarks.sweep", "--worker"]
    argv += ["--connect-timeout", f"{connect_timeout:g}"]
    wall, cpu, rss, rc, timed_out = run_child(argv, timeout=300, stdout=log)
    row: dict[str, object] = {
        "network": NETWORK,
        "connect_timeout_s": connect_timeout,
        "tarpits": [f"{a}:{p}" for a, p in TARPITS],
        "filtered": [f"{a}:{p}" for a, p in FILTERED],
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "max_rss_mib": round(rss, 1),
        "returncode": rc,
        "timed_out": timed_out,
        "tarpit_connections": sum(counter.snapshot().values()),
    }
    try:
        row.update(json.loads(log.read_text().strip().splitlines()[-1]))
    except (OSError, ValueError, IndexError):
        row["error"] = log.read_text()[-500:] if log.exists() else "no output"
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sweep")
    p.add_argument("--worker", action="store_true", required=True)
    p.add_argument("--connect-timeout", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args(argv)
    print(json.dumps(worker(args.connect_timeout, args.concurrency)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
