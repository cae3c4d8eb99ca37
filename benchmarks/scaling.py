"""Scaling: chanscan's scheduler against 10, 100 and 1,000 synthetic SSH endpoints.

The servers are tiny asyncio servers in the harness process (one per ``127.62.x.y``)
that send an identification line and a KEXINIT encoded with chanscan's own wire
helpers. The scan runs in a child process (``--worker``) so that the child's peak RSS
is the scanner's alone: discovery plus the banner+KEXINIT read of the SSH probe
(``chanscan.probes.ssh.read_hello``), without the asyncssh host-key and auth checks,
which would measure asyncssh rather than the scheduler.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter as Tally
from pathlib import Path

import trio

from benchmarks.measure import run_child
from chanscan.lab import Lab
from chanscan.lab.ssh_servers import start_greeting_server
from chanscan.model import Channel, Endpoint, PlatformHint, ScanOptions
from chanscan.obs.ssh import KexInit, SshObservation
from chanscan.probes.base import ProbeContext
from chanscan.probes.ssh import read_hello
from chanscan.scheduler import ResultCollector, scan_endpoints

SIZES = (10, 100, 1000)
SMOKE_SIZES = (10,)
PORT = 22

# What a current OpenSSH offers (ssh -Q kex etc.), so that the KEXINIT has a realistic size.
BENCH_KEXINIT = KexInit(
    kex=(
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256",
        "diffie-hellman-group14-sha256",
        "ext-info-s",
        "kex-strict-s-v00@openssh.com",
    ),
    host_key=("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"),
    ciphers_c2s=("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr"),
    ciphers_s2c=("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr"),
    macs_c2s=("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"),
    macs_s2c=("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"),
    compression_c2s=("none", "zlib@openssh.com"),
    compression_s2c=("none", "zlib@openssh.com"),
)


def address(i: int) -> str:
    """The i-th synthetic endpoint: 127.62.0.1 .. 127.62.3.232 for 1,000."""
    return f"127.62.{i // 250}.{i % 250 + 1}"


def start_servers(lab: Lab, count: int) -> None:
    for i in range(count):
        start_greeting_server(
            lab, address(i), PORT, identification="SSH-2.0-OpenSSH_9.2", kexinit=BENCH_KEXINIT
        )


class KexInitProbe:
    """The first part of chanscan's SSH probe: identification and KEXINIT."""

    channel = Channel.SSH

    async def run(self, ctx: ProbeContext) -> SshObservation:
        hello = await read_hello(ctx)
        return SshObservation(identification=hello.identification.line, kexinit=hello.kexinit)


def _rss_mib() -> float:
    """Current resident set (VmRSS) of this process, from /proc (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def worker(count: int, concurrency: int) -> dict[str, object]:
    endpoints = [Endpoint(address(i), address(i), PORT, PlatformHint.AUTO) for i in range(count)]
    options = ScanOptions(global_connections=concurrency, endpoint_deadline=60.0)
    collector = ResultCollector(total=count)
    # Peak RSS of the process is mostly the imports; the growth across the scan itself
    # is what depends on the endpoint count.
    before = _rss_mib()
    t0 = time.perf_counter()
    trio.run(scan_endpoints, endpoints, options, {Channel.SSH: KexInitProbe()}, collector)
    wall = time.perf_counter() - t0
    after = _rss_mib()
    statuses = Tally(r.status.value for r in collector.results)
    with_kex = sum(1 for r in collector.results if r.ssh is not None and r.ssh.kexinit)
    return {
        "endpoints": count,
        "scan_wall_s": round(wall, 3),
        "statuses": dict(statuses),
        "with_kexinit": with_kex,
        "connections": sum(r.connections for r in collector.results),
        "rss_before_scan_mib": round(before, 1),
        "rss_after_scan_mib": round(after, 1),
        "scan_rss_growth_mib": round(after - before, 1),
    }


def run_scaling(
    lab: Lab, out_dir: Path, sizes: tuple[int, ...], concurrency: int = 64
) -> list[dict[str, object]]:
    """Start max(sizes) servers once, then one child scan per size."""
    start_servers(lab, max(sizes))
    rows: list[dict[str, object]] = []
    for n in sizes:
        log = out_dir / f"scaling-{n}.json"
        argv = [sys.executable, "-m", "benchmarks.scaling", "--worker", str(n)]
        argv += ["--concurrency", str(concurrency)]
        wall, cpu, rss, rc, timed_out = run_child(argv, timeout=300, stdout=log)
        row: dict[str, object] = {
            "endpoints": n,
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "max_rss_mib": round(rss, 1),
            "returncode": rc,
            "timed_out": timed_out,
        }
        try:
            row.update(json.loads(log.read_text().strip().splitlines()[-1]))
        except (OSError, ValueError, IndexError):
            row["error"] = log.read_text()[-500:] if log.exists() else "no output"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaling")
    p.add_argument("--worker", type=int, required=True, help="scan this many endpoints")
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args(argv)
    print(json.dumps(worker(args.worker, args.concurrency)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
