"""Ctrl-C and SIGTERM answer at once (issue 15 items 3-5): a real signal to a real
``chanscan`` process scanning lab tarpits; the times are measured. The endpoints in
flight are written as ``interrupted`` rows, the exit is 3 and stderr says which
endpoints were not probed. The stalled progress line names what it waits on.

Loopback block: 127.15.1.0/24 (this file's)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import trio
import trio.testing

from chanscan.config import inventory_from_args, plan
from chanscan.lab import Lab
from chanscan.model import PlatformHint, ScanOptions, Status
from chanscan.probes import default_probes
from chanscan.scheduler import ResultCollector, progress_printer, scan
from chanscan.schema import shipped_schema

NET = "127.15.1"
TARPITS = 4
# Generous for a loaded 2-core box; the targets are 0.2 s and 1.5 s on an idle one.
MESSAGE_WITHIN = 1.0
EXIT_WITHIN = 3.0


class _Lines:
    """stderr read on a thread, each line stamped with when it arrived."""

    def __init__(self, stream: io.BufferedReader) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: io.BufferedReader) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append((time.monotonic(), raw.decode("utf-8", "replace")))

    def first(self, text: str) -> float | None:
        return next((t for t, line in self.lines if text in line), None)

    def join(self) -> str:
        self._thread.join(10)
        return "".join(line for _, line in self.lines)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_at_once_and_keeps_the_endpoints_in_flight(
    lab: Lab, tmp_path: Path, sig: signal.Signals
) -> None:
    for i in range(1, TARPITS + 1):
        lab.tarpit(f"{NET}.{i}", 443)
    out = tmp_path / "scan.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chanscan",
            "scan",
            f"{NET}.1-{TARPITS}",
            f"{NET}.50",
            "--ports",
            "443",
            "--timeout",
            "120",
            "--json",
            str(out),
            "--no-color",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stderr is not None
    err = _Lines(proc.stderr)  # type: ignore[arg-type]
    try:
        # The closed port (.50) answers at once; the tarpits accept and say nothing,
        # so they are in flight for the whole 120 s deadline. Wait until the scan is
        # surely past start-up (a bounded wait on the real clock).
        time.sleep(3.0)
        assert proc.poll() is None, err.join()
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        exited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = err.join()
    proc.stderr.close()
    said = err.first("stopping; writing what was measured")
    assert said is not None, text
    assert said - sent < MESSAGE_WITHIN, (said - sent, text)
    assert exited < EXIT_WITHIN, (exited, text)
    assert proc.returncode == 3, text
    assert "Traceback" not in text
    # Exit 3 explains itself: the endpoints not probed, a count, the flag.
    assert f"{TARPITS} endpoints not probed" in text and "--allow-unreachable" in text
    assert f"{NET}.1:443 (interrupted)" in text

    data = json.loads(out.read_text())
    jsonschema.validate(data, shipped_schema())
    assert data["complete"] is False
    status = {e["address"]: e["status"] for e in data["endpoints"]}
    assert status == {
        **{f"{NET}.{i}": "interrupted" for i in range(1, TARPITS + 1)},
        f"{NET}.50": "closed",
    }
    row = next(e for e in data["endpoints"] if e["status"] == "interrupted")
    assert row["error"].startswith("scan interrupted after")


async def test_stalled_progress_names_what_it_waits_on(lab: Lab) -> None:
    """An autojump clock lets the 30 s deadline pass in no real time; the progress
    line must say which endpoint holds the scan up, and for how long."""
    lab.tarpit(f"{NET}.60", 443)
    planned = plan(inventory_from_args([f"{NET}.60:443"], None, PlatformHint.AUTO, "default"))
    seen: list[tuple[int, int, str | None]] = []
    collector = ResultCollector()
    collector.progress = lambda done, total, note: seen.append((done, total, note))
    options = ScanOptions(endpoint_deadline=30.0, connect_timeout=3.0)
    clock = trio.testing.MockClock(autojump_threshold=0.05)

    async def run() -> None:
        await scan(planned, options, default_probes(), collector)

    # A nested trio.run cannot share pytest-trio's loop: run the scan on its own.
    await trio.to_thread.run_sync(lambda: trio.run(run, clock=clock), abandon_on_cancel=False)
    notes = [n for _, _, n in seen if n]
    assert notes, seen
    assert notes[0].startswith(f"waiting on {NET}.60:443, ")
    seconds = [int(n.rsplit(", ", 1)[1].split()[0]) for n in notes]
    # Named only after STALL_SECONDS without a completion, then counting up.
    assert seconds == sorted(seconds) and seconds[0] >= 3
    # The last frame is the completion, with the note gone.
    assert seen[-1] == (1, 1, None)
    (result,) = collector.results
    assert (result.address, result.port) == (f"{NET}.60", 443)
    assert result.status is not Status.INTERRUPTED


def test_progress_line_pads_over_a_longer_note() -> None:
    buf = io.StringIO()
    show = progress_printer(buf, force=True)
    assert show is not None
    show(1, 3, "waiting on 192.0.2.20:443, 11 s")
    show(2, 3, None)
    show(3, 3, None)
    frames = buf.getvalue().split("\r")[1:]
    assert frames[0] == "chanscan: 1/3 endpoints; waiting on 192.0.2.20:443, 11 s"
    assert frames[1].startswith("chanscan: 2/3 endpoints") and len(frames[1]) == len(frames[0])
    assert frames[2].endswith("\n")
