"""Where a scan's results land as they complete (survives cancellation and Ctrl-C),
and the progress line. No I/O but the optional progress output."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from chanscan import __version__
from chanscan.model import SCHEMA_ID, DownHosts, EndpointResult, ScanReport


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ResultCollector:
    """Where results land as they complete; survives cancellation and Ctrl-C."""

    def __init__(self, total: int = 0) -> None:
        self.results: list[EndpointResult] = []
        self.total = total
        self.started_at = now_rfc3339()
        self.interrupted = False
        self.progress: Callable[[int, int], None] | None = None
        self.down_hosts: tuple[DownHosts, ...] = ()
        self.done = 0  # endpoints finished, listed or not (a down host's are counted)

    def add(self, result: EndpointResult, finished: bool = True) -> None:
        """A row; ``finished=False`` when its endpoint was already counted by
        :meth:`finished` (rows held back until their host answered)."""
        self.results.append(result)
        if finished:
            self.finished()

    def finished(self) -> None:
        """One endpoint done, whether it left a row or was counted as down."""
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

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


def progress_printer(stream: Any = None) -> Callable[[int, int], None] | None:
    """A one-line progress counter on stderr, only when stderr is a terminal."""
    out = stream or sys.stderr
    if not out.isatty():
        return None

    def show(done: int, total: int) -> None:
        out.write(f"\rchanscan: {done}/{total} endpoints")
        if done >= total:
            out.write("\n")
        out.flush()

    return show
