"""Identity is the address: a name that resolves to two machines is two endpoints, each
pinned, graded and diffed on its own, and an exclude applies to what a name resolves to.

The two machines are real asyncssh servers with different host keys on two loopback
addresses and the same port; the name is answered by a lab resolver installed in trio
(``trio.socket.set_custom_hostname_resolver``), the hook trio gives for exactly this, so
the scan resolves it through its ordinary path.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from chanscan.assess import AssessOptions, assess, fold_platforms
from chanscan.config import inventory_from_args, plan
from chanscan.diff import diff_reports
from chanscan.lab import Lab
from chanscan.lab.core import free_port
from chanscan.lab.ssh_servers import start_asyncssh
from chanscan.model import PlatformHint, ScanOptions, ScanReport, Status
from chanscan.pins import PinStore
from chanscan.probes import default_probes
from chanscan.scheduler import ResultCollector, scan

NAME = "dual.lab.test"
ADDRS = ("127.31.0.1", "127.31.0.2")  # this file's loopback block: 127.31.0.0/24


class LabResolver(trio.abc.HostnameResolver):
    """Answers one lab name with fixed loopback addresses; anything else is unknown."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = answers

    async def getaddrinfo(
        self, host: bytes | None, port: bytes | str | int | None, *args: Any, **kw: Any
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        p = int(port) if port not in (None, b"", "") else 0  # type: ignore[arg-type]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, p)) for a in self.answers[name]]

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        raise socket.gaierror(socket.EAI_NONAME, "not a lab address")


async def _scan(port: int, exclude: tuple[str, ...] = ()) -> tuple[ScanReport, list[str]]:
    trio.socket.set_custom_hostname_resolver(LabResolver({NAME: ADDRS}))
    inventory = inventory_from_args([NAME], (port,), PlatformHint.AUTO, "default", exclude)
    collector = ResultCollector()
    notes: list[str] = []
    collector.on_note = notes.append
    opts = ScanOptions(endpoint_deadline=20.0)
    report = await scan(plan(inventory), opts, default_probes(), collector)
    return report, notes


def _assessed(report: ScanReport, pins: Path) -> ScanReport:
    folded = fold_platforms(report)
    with PinStore(pins) as store:
        additions = store.check_and_record(folded, consistency=False)
    found: dict[tuple[str, int], tuple[Any, ...]] = {}
    for add in additions:
        found[(add.address, add.port)] = (*found.get((add.address, add.port), ()), *add.findings)
    return assess(folded, AssessOptions(pin_findings=found))


async def test_a_name_on_two_machines_is_two_endpoints_pinned_apart(
    lab: Lab, tmp_path: Path
) -> None:
    port = free_port(ADDRS[0])
    for address in ADDRS:  # two machines, two different host keys
        start_asyncssh(lab, address, port, name=f"ssh-{address}")
    pins = tmp_path / "pins.db"
    first = _assessed((await _scan(port))[0], pins)
    second = _assessed((await _scan(port))[0], pins)

    for report in (first, second):
        rows = sorted(report.endpoints, key=lambda r: r.address)
        assert [(r.host, r.address, r.status) for r in rows] == [
            (NAME, a, Status.OK) for a in ADDRS
        ]
        # A round-robin name never flips one pin between two machines' keys.
        assert not any(f.id.startswith("pin.") for r in rows for f in r.findings)
        assert all(r.grade is not None and r.grade.mitm != "F" for r in rows)
    keys = {
        r.address: {k.fingerprint for k in r.ssh.host_keys if k.verified}
        for r in first.endpoints
        if r.ssh is not None
    }
    assert keys[ADDRS[0]] and keys[ADDRS[1]] and keys[ADDRS[0]] != keys[ADDRS[1]]
    with PinStore(pins) as store:
        assert sorted({(p.host, p.address) for p in store.pins()}) == [(NAME, a) for a in ADDRS]

    # diff compares each address with itself: nothing changed, and nothing dropped.
    d = diff_reports(first, second)
    assert d.regressions == () and d.improvements == () and d.not_compared == ()


async def test_exclude_wins_over_a_name_that_resolves_into_it(lab: Lab) -> None:
    port = free_port(ADDRS[0])
    for address in ADDRS:
        start_asyncssh(lab, address, port, name=f"ssh-{address}")
    report, notes = await _scan(port, exclude=(f"{ADDRS[1]}/32",))
    assert [r.address for r in report.endpoints] == [ADDRS[0]]
    assert notes == [f"{NAME} resolves to excluded {ADDRS[1]}; scanning {ADDRS[0]}"]


def test_pins_of_a_name_keyed_store_are_rekeyed_by_address(tmp_path: Path) -> None:
    """A pin store written when pins were keyed by name opens and keeps its pins."""
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE pins (host TEXT NOT NULL, port INTEGER NOT NULL, kind TEXT NOT NULL,
              key_type TEXT NOT NULL, fingerprint TEXT NOT NULL, address TEXT NOT NULL,
              source TEXT NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
              PRIMARY KEY (host, port, kind, key_type));
            CREATE TABLE pending (host TEXT NOT NULL, port INTEGER NOT NULL, kind TEXT NOT NULL,
              key_type TEXT NOT NULL, fingerprint TEXT NOT NULL, address TEXT NOT NULL,
              seen TEXT NOT NULL, PRIMARY KEY (host, port, kind, key_type));
            INSERT INTO pins VALUES ('esx01.example', 22, 'ssh', 'ssh-ed25519', 'SHA256:a',
              '192.0.2.10', 'scan', '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z');
            """
        )
    with PinStore(path) as store:
        (pin,) = store.pins()
        assert (pin.host, pin.address, pin.fingerprint) == (
            "esx01.example",
            "192.0.2.10",
            "SHA256:a",
        )
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        ddl = db.execute("SELECT sql FROM sqlite_master WHERE name='pins'").fetchone()[0]
        assert "PRIMARY KEY (address, port, kind, key_type)" in ddl
