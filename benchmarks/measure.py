"""Measuring one child process, and summarising rounds.

Wall time is measured here; CPU time and peak RSS come from the kernel's accounting
of the child (``os.wait4``), so they include the child's own waited-for children and
nothing of the harness or the fleet.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_POLL = 0.02


@dataclass(frozen=True)
class Run:
    """One measured run of one tool."""

    wall_s: float
    cpu_s: float  # user + system
    max_rss_mib: float
    returncode: int
    timed_out: bool
    connections: dict[str, int]  # per endpoint name, counted by the fleet's relays


def run_child(
    argv: Sequence[str],
    *,
    timeout: float,
    stdout: Path | None = None,
    env: dict[str, str] | None = None,
) -> tuple[float, float, float, int, bool]:
    """Run ``argv`` to completion (killed after ``timeout``): wall, cpu, peak RSS MiB,
    return code, timed out."""
    out = stdout.open("wb") if stdout is not None else subprocess.DEVNULL
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if stdout is not None else subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    finally:
        if stdout is not None and not isinstance(out, int):
            out.close()
    deadline = t0 + timeout
    timed_out = False
    while True:  # bounded by ``timeout``, then by the kill
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.perf_counter() > deadline and not timed_out:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(_POLL)
    wall = time.perf_counter() - t0
    # Popen must not try to reap the pid again.
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024.0, proc.returncode, timed_out


@dataclass(frozen=True)
class Summary:
    runs: int
    wall_median_s: float
    wall_min_s: float
    wall_max_s: float
    cpu_median_s: float
    rss_median_mib: float
    rss_max_mib: float
    conns_per_endpoint: float  # median over rounds of (total accepted / endpoints)
    failures: int  # runs that timed out (a tool's own non-zero exit is not a failure)

    @property
    def spread_s(self) -> float:
        return self.wall_max_s - self.wall_min_s


def summarise(runs: Sequence[Run], endpoints: int) -> Summary:
    walls = [r.wall_s for r in runs]
    per_ep = [sum(r.connections.values()) / max(1, endpoints) for r in runs]
    return Summary(
        runs=len(runs),
        wall_median_s=statistics.median(walls),
        wall_min_s=min(walls),
        wall_max_s=max(walls),
        cpu_median_s=statistics.median(r.cpu_s for r in runs),
        rss_median_mib=statistics.median(r.max_rss_mib for r in runs),
        rss_max_mib=max(r.max_rss_mib for r in runs),
        conns_per_endpoint=statistics.median(per_ep),
        failures=sum(1 for r in runs if r.timed_out),
    )


def round_order(names: Sequence[str], round_no: int) -> list[str]:
    """A/B/A/B then B/A/B/A: every tool runs early and late equally often, so a drift in
    the machine's load over the run does not favour whoever always goes first."""
    order = list(names)
    return order if round_no % 2 == 0 else order[::-1]
