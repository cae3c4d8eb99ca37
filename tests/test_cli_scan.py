"""End to end through the real command line: a lab subnet scanned with every probe,
JSON validated against the shipped schema, and Ctrl-C / SIGTERM keeping what was
measured."""

from __future__ import annotations

import asyncio
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
from chanscan.lab.authd_server import add_authd_server
from chanscan.lab.certs import self_signed
from chanscan.lab.core import port_accepts
from chanscan.lab.rdp_server import add_rdp_server
from chanscan.lab.ssh_servers import start_asyncssh, start_legacy_asyncssh
from chanscan.lab.tls_context import context_for
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
            "--discovery-concurrency",
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


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await asyncio.wait_for(reader.read(4096), 10):
        pass


async def _plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


def test_subnet_scan_through_the_cli(lab: Lab, tmp_path: Path) -> None:
    """A /28 of the lab (16 addresses): TLS, SSH, authd, RDP, HTTP, a tarpit and
    closed ports, scanned with every probe through the real command line."""
    net = "127.10.4"
    ctx = context_for(self_signed(f"{net}.1", "mgmt.lab.example"))
    lab.add_stream_server("tls", f"{net}.1", 443, _hold, ssl=ctx)
    start_asyncssh(lab, f"{net}.2", 22)
    add_authd_server(lab, f"{net}.3", 902)
    add_rdp_server(lab, f"{net}.4", 3389)
    lab.tarpit(f"{net}.5", 443)
    lab.add_stream_server("http", f"{net}.6", 80, _plain_http)
    out = tmp_path / "scan.json"
    t0 = time.monotonic()
    proc = subprocess.run(
        _chanscan(
            "scan",
            f"{net}.0/28",
            "--ports",
            "22,80,443,902,3389",
            "--timeout",
            "20",
            "--json",
            str(out),
            "--no-color",
        ),
        capture_output=True,
        timeout=120,
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1, proc.stderr  # the self-signed certificates fail the gate
    data = json.loads(out.read_text())
    jsonschema.validate(data, shipped_schema())
    assert data["complete"] is True
    assert len(data["endpoints"]) == 16 * 5
    seen = {
        (e["address"], e["port"]): (e["status"], e["channel"])
        for e in data["endpoints"]
        if e["status"] != "closed"
    }
    assert seen == {
        (f"{net}.1", 443): ("ok", "tls"),
        (f"{net}.2", 22): ("ok", "ssh"),
        (f"{net}.3", 902): ("ok", "authd"),
        (f"{net}.4", 3389): ("ok", "rdp"),
        (f"{net}.5", 443): ("timeout", "unknown"),
        (f"{net}.6", 80): ("ok", "http"),
    }
    by = {(e["address"], e["port"]): e for e in data["endpoints"]}
    assert by[(f"{net}.1", 443)]["tls"]["certificate"]["chain"][0]["self_signed"] is True
    assert by[(f"{net}.2", 22)]["ssh"]["host_keys"]
    assert by[(f"{net}.3", 902)]["tls"]["preface"].startswith("220 VMware Authentication Daemon")
    assert by[(f"{net}.4", 3389)]["rdp"]["protocols_accepted"]
    ids = {f["id"] for f in by[(f"{net}.6", 80)]["findings"]}
    assert ids == {"cleartext.management_port"}
    # The tarpit costs one connect deadline (3 s); nothing waits on it.
    assert by[(f"{net}.5", 443)]["elapsed_ms"] < 4000
    assert elapsed < 60


def test_change_window_baseline_and_pins_through_the_cli(lab: Lab, tmp_path: Path) -> None:
    """Scan, weaken the server and replace its host key, scan again with --baseline and
    --pins: both regressions are reported and the exit code is 1."""
    addr = "127.10.7.1"
    before, after, pins = tmp_path / "before.json", tmp_path / "after.json", tmp_path / "p.db"
    common = ["--ports", "22", "--pins", str(pins), "--no-color", "--fail-on", "critical"]
    handle = start_asyncssh(lab, addr, 22)
    first = subprocess.run(
        _chanscan("scan", addr, "--json", str(before), *common), capture_output=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    handle.stop()
    start_legacy_asyncssh(lab, addr, 22)  # new host key, legacy algorithms, passwords
    second = subprocess.run(
        _chanscan("scan", addr, "--json", str(after), "--baseline", str(before), *common),
        capture_output=True,
        timeout=120,
    )
    assert second.returncode == 1, second.stderr
    out = second.stdout.decode()
    assert "host key" in out.lower()
    (endpoint,) = json.loads(after.read_text())["endpoints"]
    ids = {f["id"] for f in endpoint["findings"]}
    assert "pin.ssh_host_key_changed" in ids
    assert {"ssh.cipher.broken", "ssh.auth.password"} <= ids
    assert endpoint["grade"]["mitm"] == "F"
    # The same two scans through `chanscan diff`.
    diff = subprocess.run(
        _chanscan("diff", str(before), str(after)), capture_output=True, timeout=60
    )
    assert diff.returncode == 1
    assert b"ssh.cipher.broken" in diff.stdout
