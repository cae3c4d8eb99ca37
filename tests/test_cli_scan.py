"""End to end through the real command line: a lab subnet scanned with every probe,
JSON validated against the shipped schema, and Ctrl-C / SIGTERM keeping what was
measured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from chanscan.lab import Lab
from chanscan.lab.core import port_accepts
from chanscan.schema import shipped_schema

NET = "127.10.3"


def _chanscan(*args: str) -> list[str]:
    return [sys.executable, "-m", "chanscan", *args]


def _start_tarpits(lab: Lab, count: int) -> list[str]:
    targets = []
    for i in range(1, count + 1):
        lab.tarpit(f"{NET}.{i}", 443)
        targets.append(f"{NET}.{i}:443")
    return targets


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_writes_partial_json(lab: Lab, tmp_path: Path, sig: signal.Signals) -> None:
    _start_tarpits(lab, 5)
    out = tmp_path / "scan.json"
    proc = subprocess.Popen(
        _chanscan(
            "scan",
            f"{NET}.20",
            f"{NET}.1-5",
            "--ports",
            "1,443",
            "--concurrency",
            "1",
            "--timeout",
            "120",
            "--json",
            str(out),
            "--no-color",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        # One connection at a time: .20's closed ports finish at once, then each of
        # five tarpits holds the only slot for the connect deadline (3 s), so the
        # signal lands mid-scan.
        time.sleep(4)
        assert proc.poll() is None
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 3, err
    assert b"Traceback" not in err
    data = json.loads(out.read_text())
    jsonschema.validate(data, shipped_schema())
    assert data["complete"] is False
    statuses = {(e["address"], e["port"]): e["status"] for e in data["endpoints"]}
    # What finished before the signal is there.
    assert statuses[(f"{NET}.20", 443)] == "closed"
    assert statuses[(f"{NET}.1", 1)] == "closed"


def test_lab_is_loopback_only(lab: Lab) -> None:
    from chanscan.lab import LabError

    with pytest.raises(LabError, match="not loopback"):
        lab.tarpit("192.0.2.1", 443)
    assert not port_accepts("127.10.3.99", 443, timeout=0.2)
