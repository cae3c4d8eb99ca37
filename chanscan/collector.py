"""Where a scan's results land as they complete (survives cancellation and Ctrl-C),
and the progress line. No I/O but the optional progress output.

The collector also knows which endpoints are in flight, so an interrupted scan writes
them as ``interrupted`` rows instead of dropping them, and a progress line that stalls
can say what it waits on.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import trio

from chanscan import __version__
from chanscan.model import (
    SCHEMA_ID,
    Channel,
    DownHosts,
    Endpoint,
    EndpointResult,
    ScanReport,
    Status,
)
from chanscan.rows import base_result

# (done, total, what it waits on when nothing completed for a while, or None)
Progress = Callable[[int, int, "str | None"], None]
STALL_SECONDS = 3.0  # no completion for this long: the progress line names the wait


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def clock() -> float:
    """trio's clock inside a run (so tests can use an autojump clock), else monotonic."""
    try:
        return trio.current_time()
    except RuntimeError:
        return time.monotonic()


class ResultCollector:
    """Where results land as they complete; survives cancellation and Ctrl-C."""

    def __init__(self, total: int = 0) -> None:
        self.results: list[EndpointResult] = []
        self.total = total
        self.started_at = now_rfc3339()
        self.interrupted = False
        self.progress: Progress | None = None
        # Called once, at once, from the event loop when SIGINT/SIGTERM arrives.
        self.on_interrupt: Callable[[str], None] | None = None
        # Things the operator should hear before the scan runs (e.g. a name that lost
        # addresses to an exclude); the CLI prints them to stderr.
        self.on_note: Callable[[str], None] | None = None
        self.down_hosts: tuple[DownHosts, ...] = ()
        self.done = 0  # endpoints finished, listed or not (a down host's are counted)
        self.in_flight: dict[tuple[str, int], tuple[Endpoint, float]] = {}
        self.last_done = 0.0  # clock of the last completion (or of the start)

    def note(self, text: str) -> None:
        if self.on_note is not None:
            self.on_note(text)

    def start(self, ep: Endpoint) -> None:
        self.in_flight[(ep.address, ep.port)] = (ep, clock())

    def add(self, result: EndpointResult, finished: bool = True) -> None:
        """A row; ``finished=False`` when its endpoint was already counted by
        :meth:`finished` (rows held back until their host answered)."""
        self.in_flight.pop((result.address, result.port), None)
        self.results.append(result)
        if finished:
            self.finished()

    def finished(self, ep: Endpoint | None = None) -> None:
        """One endpoint done, whether it left a row or was counted as down."""
        if ep is not None:
            self.in_flight.pop((ep.address, ep.port), None)
        self.done += 1
        self.last_done = clock()
        if self.progress is not None:
            self.progress(self.done, self.total, None)

    def waiting_on(self, now: float) -> str | None:
        """ "waiting on 192.0.2.20:443, 11 s" once nothing completed for a while."""
        if not self.in_flight or now - self.last_done < STALL_SECONDS:
            return None
        ep, since = min(self.in_flight.values(), key=lambda v: v[1])
        others = len(self.in_flight) - 1
        host = f"[{ep.address}]" if ":" in ep.address else ep.address
        more = f" (+{others} more)" if others else ""
        return f"waiting on {host}:{ep.port}{more}, {now - since:.0f} s"

    def interrupt_in_flight(self, now: float) -> None:
        """Every endpoint still in flight becomes an ``interrupted`` row."""
        for ep, since in list(self.in_flight.values()):
            error = f"scan interrupted after {now - since:.1f} s on this endpoint"
            row = base_result(ep, Channel.UNKNOWN, Status.INTERRUPTED, error)
            self.results.append(replace(row, elapsed_ms=int((now - since) * 1000)))
        self.in_flight.clear()

    def report(self, complete: bool, command: Sequence[str] = ()) -> ScanReport:
        ordered = sorted(self.results, key=_sort_key)
        return ScanReport(
            schema=SCHEMA_ID,
            tool_version=__version__,
            complete=complete and not self.interrupted,
            started_at=self.started_at,
            finished_at=now_rfc3339(),
            endpoints=tuple(ordered),
            command=tuple(command),
            down_hosts=self.down_hosts,
        )


def _sort_key(r: EndpointResult) -> tuple[int, int, str, int]:
    try:
        ip = ipaddress.ip_address(r.address)
        return (ip.version, int(ip), r.host, r.port)
    except ValueError:
        return (9, 0, r.host, r.port)


def progress_printer(stream: Any = None, force: bool = False) -> Progress | None:
    """A one-line progress counter on stderr, only when stderr is a terminal (or
    ``force``); when nothing completed for a while it names what it waits on."""
    out = stream or sys.stderr
    if not force and not out.isatty():
        return None
    width = [0]

    def show(done: int, total: int, waiting: str | None = None) -> None:
        line = f"chanscan: {done}/{total} endpoints" + (f"; {waiting}" if waiting else "")
        # Pad over the longer line a "waiting on" note left behind.
        out.write("\r" + line.ljust(width[0]))
        width[0] = len(line)
        if done >= total:
            out.write("\n")
        out.flush()

    return show
