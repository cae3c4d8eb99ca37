"""Issue 12, item 12: probe modules imported from several worker threads at once once
ended a scan with "internal error ... _DeadlockError: deadlock detected by
_ModuleLock('sslyze.plugins.openssl_cipher_suites')". A fresh interpreter per round
(the race is in the first imports), many rounds over:

- every probe kind built by its own thread at the same instant (with one lock per
  probe, as before the fix, this failed in 30 of 30 rounds);
- every probe kind (TLS, authd, RDP, SSH, with fingerprinting) started at once by a
  scan of real lab servers: zero internal errors, every row ok."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROUNDS = 10
NET = "127.112.2"  # this module's loopback block
SCRIPT = Path(__file__).with_name("_startup_race.py")
CHANNELS = {"443": "tls", "3389": "rdp", "22": "ssh", "902": "authd"}


def test_every_probe_built_at_the_same_instant() -> None:
    for round_no in range(ROUNDS):  # bounded
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "build"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (round_no, done.stderr[-2000:])
        assert done.stdout == "", (round_no, done.stdout)


@pytest.mark.slow
def test_every_probe_kind_at_once_has_no_internal_error() -> None:
    rows = 0
    for round_no in range(ROUNDS):  # bounded
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "scan", NET],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, (round_no, done.stderr[-2000:])
        lines = done.stdout.splitlines()
        assert len(lines) == 9, (round_no, done.stdout, done.stderr[-2000:])
        for line in lines:
            endpoint, status, channel, error = line.split("|", 3)
            assert "internal error" not in error, (round_no, line)
            assert status == "ok", (round_no, line)
            assert channel == CHANNELS[endpoint.rsplit(":", 1)[1]], (round_no, line)
        rows += len(lines)
    assert rows == ROUNDS * 9
