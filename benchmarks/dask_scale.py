"""``--dask``: a loopback fleet of TLS endpoints scanned by one process and by
``--dask local:N``, and the fixed cost of the Dask path on a one-endpoint scan.

    python -m benchmarks.dask_scale [--endpoints 16] [--workers 2] [--out FILE]

The fleet is ``openssl s_server -www`` processes on 127.78.0.0/24 (a real OpenSSL
stack, in C, so that serving costs little next to the scanner). Every scan runs in a
child process, as a user would run it; wall and CPU times are the child's (CPU
includes its Dask worker processes). The fixed overhead is measured twice: against
a scheduler and worker already running on loopback (what a deployment pays per scan;
the first scan a worker sees and the next one) and with ``--dask local:1`` (which
starts a cluster for the scan). One round: the
numbers are a measurement of this machine, not a test; nothing asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import run_child
from chanscan.lab import Lab
from chanscan.lab.core import free_port, port_accepts
from chanscan.lab.tls_servers import CertSpec, issue, openssl_server

NET = "127.78.0"
PORT = 443
SCHEDULER_HOST = "127.78.1.1"
TIMEOUT = 600.0
# The lab keeps a child's stderr in a pipe it reads only on failure: keep Dask terse.
_QUIET = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "warning"}


def log(msg: str) -> None:
    sys.stderr.write(f"bench dask: {msg}\n")
    sys.stderr.flush()


def start_fleet(lab: Lab, count: int) -> list[str]:
    targets = []
    for i in range(1, count + 1):
        address = f"{NET}.{i}"
        openssl_server(lab, address, PORT, issue(CertSpec(names=(address,))))
        targets.append(f"{address}:{PORT}")
    return targets


def start_cluster(lab: Lab, work: Path) -> str:
    """A scheduler and one worker on loopback, as ``dask`` processes stopped by pid."""
    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port(SCHEDULER_HOST)
    lab.add_process(
        "dask-scheduler",
        SCHEDULER_HOST,
        port,
        [dask, "scheduler", "--host", SCHEDULER_HOST, "--port", str(port), "--no-dashboard"],
        ready_timeout=60,
        cwd=str(work),
        env=_QUIET,
    )
    address = f"tcp://{SCHEDULER_HOST}:{port}"
    worker_port = free_port(SCHEDULER_HOST)
    worker = [dask, "worker", address, "--host", SCHEDULER_HOST, "--worker-port", str(worker_port)]
    worker += ["--no-nanny", "--nthreads", "1", "--no-dashboard", "--local-directory", str(work)]
    worker += ["--preload", "chanscan.distributed.worker"]  # as docs/deployment.md says
    lab.add_process(
        "dask-worker",
        SCHEDULER_HOST,
        worker_port,
        worker,
        ready_timeout=60,
        cwd=str(work),
        env=_QUIET,
    )
    time.sleep(2.0)  # listening comes just before registering with the scheduler
    return address


def scan(work: Path, name: str, targets: list[str], *extra: str) -> dict[str, Any]:
    out = work / f"{name}.json"
    argv = [sys.executable, "-m", "chanscan", "scan", *targets, "--ports", str(PORT)]
    argv += ["--json", str(out), "--no-color", "--allow-unreachable", *extra]
    wall, cpu, rss, rc, timed_out = run_child(argv, timeout=TIMEOUT, stdout=work / f"{name}.log")
    doc = json.loads(out.read_text()) if out.exists() else {"endpoints": []}
    graded = sum(1 for e in doc["endpoints"] if e.get("grade"))
    log(f"{name}: {wall:.2f}s wall, {cpu:.2f}s cpu, rc {rc}, {graded} graded")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "max_rss_mib": round(rss, 1),
        "returncode": rc,
        "timed_out": timed_out,
        "endpoints": len(doc["endpoints"]),
        "graded": graded,
        "statuses": sorted({e["status"] for e in doc["endpoints"]}),
        "grades": sorted(
            (e["address"], (e.get("grade") or {}).get("overall")) for e in doc["endpoints"]
        ),
    }


def run(endpoints: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chanscan-bench-dask-") as tmp, Lab() as lab:
        work = Path(tmp)
        log(f"starting {endpoints} openssl s_server endpoints on {NET}.0/24")
        fleet = start_fleet(lab, endpoints)
        one = scan(work, "one-process", fleet)
        spread = scan(work, f"dask-local-{workers}", fleet, "--dask", f"local:{workers}")
        small = [f"{NET}.250:1"]  # one closed port: nothing but the fixed costs
        assert not port_accepts(f"{NET}.250", 1)
        small_local = scan(work, "small-one-process", small)
        address = start_cluster(lab, work)
        small_first = scan(work, "small-dask-running-first", small, "--dask", address)
        small_running = scan(work, "small-dask-running", small, "--dask", address)
        small_cluster = scan(work, "small-dask-local-1", small, "--dask", "local:1")
    same = one["grades"] == spread["grades"]
    for measured in (one, spread, small_local, small_first, small_running, small_cluster):
        measured.pop("grades")
    return {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_1min": round(os.getloadavg()[0], 2),
        },
        "fleet_endpoints": endpoints,
        "workers": workers,
        "tls_fleet": {
            "one_process": one,
            f"dask_local_{workers}": spread,
            "speedup": round(one["wall_s"] / spread["wall_s"], 2) if spread["wall_s"] else None,
            "same_grades": same,
            "target_speedup": 1.7,
        },
        "fixed_overhead": {
            "one_process_s": small_local["wall_s"],
            "dask_running_scheduler_first_scan_s": small_first["wall_s"],
            "dask_running_scheduler_s": small_running["wall_s"],
            "dask_local_1_s": small_cluster["wall_s"],
            "statuses": [
                s["statuses"] for s in (small_local, small_first, small_running, small_cluster)
            ],
            "overhead_running_scheduler_s": round(
                small_running["wall_s"] - small_local["wall_s"], 3
            ),
            "overhead_local_cluster_s": round(small_cluster["wall_s"] - small_local["wall_s"], 3),
            "target_s": 1.0,
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dask_scale")
    p.add_argument("--endpoints", type=int, default=16, help="TLS endpoints (1-249)")
    p.add_argument("--workers", type=int, default=2, help="N of --dask local:N")
    p.add_argument("--out", type=Path, help="also write the JSON result here")
    args = p.parse_args(argv)
    if not 1 <= args.endpoints <= 249:
        p.error("--endpoints must be 1-249")
    result = run(args.endpoints, args.workers)
    text = json.dumps(result, indent=2) + "\n"
    if args.out is not None:
        args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
