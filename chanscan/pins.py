"""Host-key pinning across scans, to catch a man in the middle.

A SQLite store (stdlib ``sqlite3``) keeps, per address and port, the SSH host key
fingerprints whose possession the server proved (``HostKey.verified``: it signed the
exchange hash, RFC 4253 8) and the TLS leaf SPKI hash. The first scan records them
(trust on first use); a later scan that sees another key raises a critical MITM
finding until a person accepts the change (``accept``), which promotes exactly the key
last seen, never a blank cheque.

Identity is the address: a dual-stack or round-robin name is several endpoints, each
pinned on its own (the name is kept as a label), so scanning it never flips one pin
between the keys of different machines.

Concurrent scans may share one store: WAL journaling plus a busy timeout, and every
check-and-record runs in one ``BEGIN IMMEDIATE`` transaction, so two writers serialize
instead of interleaving reads and writes.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chanscan.errors import ConfigError
from chanscan.known_hosts import KnownHost, read_known_hosts
from chanscan.model import (
    EndpointResult,
    Finding,
    ScanReport,
    Status,
)
from chanscan.pin_findings import (
    SSH_CHANGED,
    TLS_CHANGED,
    TLS_INCONSISTENT,
    PinFindings,
    apply_pin_findings,
    inconsistent_tls_keys,
    ssh_changed,
    tls_changed,
    tls_spki,
)

__all__ = [
    "SSH_CHANGED",
    "TLS_CHANGED",
    "TLS_INCONSISTENT",
    "ImportResult",
    "Pin",
    "PinFindings",
    "PinStore",
    "accept",
    "apply_pin_findings",
    "check_and_record",
    "import_known_hosts",
    "inconsistent_tls_keys",
]

BUSY_TIMEOUT_S = 30.0
_OPEN_ATTEMPTS = 50  # bounded retries for the journal-mode switch, which the busy
_OPEN_BACKOFF_S = 0.1  # handler does not always cover while another process creates

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (
    host TEXT NOT NULL, port INTEGER NOT NULL, kind TEXT NOT NULL, key_type TEXT NOT NULL,
    fingerprint TEXT NOT NULL, address TEXT NOT NULL, source TEXT NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
    PRIMARY KEY (address, port, kind, key_type));
CREATE TABLE IF NOT EXISTS pending (
    host TEXT NOT NULL, port INTEGER NOT NULL, kind TEXT NOT NULL, key_type TEXT NOT NULL,
    fingerprint TEXT NOT NULL, address TEXT NOT NULL, seen TEXT NOT NULL,
    PRIMARY KEY (address, port, kind, key_type));
CREATE TABLE IF NOT EXISTS known_hosts (
    name TEXT NOT NULL, port INTEGER NOT NULL, salt BLOB NOT NULL, digest BLOB NOT NULL,
    key_type TEXT NOT NULL, fingerprint TEXT NOT NULL, imported TEXT NOT NULL,
    UNIQUE (name, port, salt, digest, key_type, fingerprint));
"""
# Version 1 keyed pins by (host name, port); version 2 keys them by (address, port).
_USER_VERSION = 2
_MIGRATE_V1 = """
ALTER TABLE pins RENAME TO pins_v1;
ALTER TABLE pending RENAME TO pending_v1;
"""
_COPY_V1 = """
INSERT OR REPLACE INTO pins SELECT * FROM pins_v1 WHERE address != '';
INSERT OR REPLACE INTO pending SELECT * FROM pending_v1 WHERE address != '';
DROP TABLE pins_v1;
DROP TABLE pending_v1;
"""


@dataclass(frozen=True)
class Pin:
    host: str
    port: int
    kind: str  # "ssh" or "tls"
    key_type: str  # SSH key type; "" for TLS
    fingerprint: str  # SSH "SHA256:..."; TLS base64 SHA-256 of the SPKI
    address: str
    source: str  # "scan", "known_hosts" or "accepted"
    first_seen: str
    last_seen: str


@dataclass(frozen=True)
class ImportResult:
    imported: int  # new entries (already present ones are not counted)
    skipped: tuple[str, ...]
    found: int = 0  # host key entries read from the file, new or already present


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ssh_verified(result: EndpointResult) -> dict[str, str]:
    if result.ssh is None:
        return {}
    return {k.key_type: k.fingerprint for k in result.ssh.host_keys if k.verified and k.fingerprint}


class PinStore:
    """One SQLite pin file. Use as a context manager; created on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    # -- connection ---------------------------------------------------------------
    def __enter__(self) -> PinStore:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._db is not None:
            return
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigError(f"pin store {self.path}: {exc}") from None
        try:
            self._init(db)
        except sqlite3.Error as exc:
            db.close()
            raise ConfigError(f"pin store {self.path}: {exc}") from None
        self._db = db

    def _init(self, db: sqlite3.Connection) -> None:
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                mode = db.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                has_pins = db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='pins'"
                ).fetchone()
                if has_pins and version < _USER_VERSION:
                    # A store written by a version that keyed pins by name: re-key it by
                    # address, keeping every pin (a name's last address is what it has).
                    script = f"{_MIGRATE_V1}{_SCHEMA}{_COPY_V1}"
                else:
                    script = _SCHEMA
                db.executescript(
                    f"BEGIN IMMEDIATE;{script}PRAGMA user_version={_USER_VERSION};COMMIT;"
                )
                return
            except sqlite3.OperationalError as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if "locked" not in str(exc) or attempt == _OPEN_ATTEMPTS - 1:
                    raise
                time.sleep(_OPEN_BACKOFF_S)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.open()
        db = self._db
        assert db is not None
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ConfigError(f"pin store {self.path}: {exc}") from None

    # -- queries ------------------------------------------------------------------
    def pins(self, host: str | None = None) -> list[Pin]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT host, port, kind, key_type, fingerprint, address, source, first_seen,"
                " last_seen FROM pins WHERE ?1 IS NULL OR host = ?1 OR address = ?1"
                " ORDER BY host, port, kind, key_type",
                (host.lower() if host else None,),
            ).fetchall()
        return [Pin(*row) for row in rows]

    def known_hosts(self) -> list[tuple[str, int, str, str]]:
        """Seeded known_hosts entries: (name, or "(hashed)", port, key type, fingerprint)."""
        with self._tx() as db:
            return [
                (str(n) or "(hashed)", int(p), str(t), str(f))
                for n, p, t, f in db.execute(
                    "SELECT name, port, key_type, fingerprint FROM known_hosts"
                    " ORDER BY name, port, key_type"
                )
            ]

    def pending(self) -> list[tuple[str, int, str, str, str]]:
        """Changes seen and not yet accepted: (host, port, kind, key_type, fingerprint)."""
        with self._tx() as db:
            return [
                (str(h), int(p), str(k), str(t), str(f))
                for h, p, k, t, f in db.execute(
                    "SELECT host, port, kind, key_type, fingerprint FROM pending"
                    " ORDER BY host, port, kind, key_type"
                )
            ]

    # -- the scan hook ------------------------------------------------------------
    def check_and_record(
        self, report: ScanReport, now: str | None = None, consistency: bool = True
    ) -> list[PinFindings]:
        """Compare every endpoint's proven keys with the pins, record what is new, and
        return the findings to add (including ``pin.tls_key_inconsistent`` unless
        ``consistency`` is off)."""
        stamp = now or _now()
        out: list[PinFindings] = []
        with self._tx() as db:
            known = _load_known(db)
            for r in report.endpoints:
                if r.status is not Status.OK:
                    continue
                found: list[Finding] = []
                keys = _ssh_verified(r)
                if keys:
                    found += _check_ssh(db, r, keys, known, stamp)
                spki = tls_spki(r)
                if spki is not None:
                    found += _check_tls(db, r, spki, stamp)
                if found:
                    out.append(PinFindings(r.host, r.address, r.port, tuple(found)))
        if consistency:
            out += inconsistent_tls_keys(report)
        return out

    def accept(self, host: str, port: int | None = None, now: str | None = None) -> int:
        """Pin the keys last seen in place of the old ones for ``host`` (name or address)
        and optionally one port. Returns how many endpoints changed; 0 when nothing was
        pending, so a typo cannot silently accept anything."""
        stamp = now or _now()
        with self._tx() as db:
            rows = db.execute(
                "SELECT DISTINCT address, port, kind FROM pending"
                " WHERE (host = ?1 OR address = ?1) AND (?2 IS NULL OR port = ?2)",
                (host.lower(), port),
            ).fetchall()
            for a, p, kind in rows:
                # The pending set is everything proven in that scan, so it replaces the
                # pinned set whole (a key type the server dropped must not linger).
                key = (a, p, kind)
                db.execute("DELETE FROM pins WHERE address=? AND port=? AND kind=?", key)
                db.execute(
                    "INSERT INTO pins SELECT host, port, kind, key_type, fingerprint, address,"
                    " 'accepted', ?, ? FROM pending WHERE address=? AND port=? AND kind=?",
                    (stamp, stamp, *key),
                )
                db.execute("DELETE FROM pending WHERE address=? AND port=? AND kind=?", key)
        return len({(a, p) for a, p, _ in rows})

    def import_known_hosts(self, path: str | Path, now: str | None = None) -> ImportResult:
        parsed = read_known_hosts(path)
        stamp = now or _now()
        with self._tx() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO known_hosts VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.name, e.port, e.salt, e.digest, e.key_type, e.fingerprint, stamp)
                    for e in parsed.entries
                ],
            )
            imported = db.total_changes - before
        return ImportResult(imported, parsed.skipped, len(parsed.entries))


def _load_known(db: sqlite3.Connection) -> list[tuple[KnownHost, str]]:
    rows = db.execute(
        "SELECT name, port, salt, digest, key_type, fingerprint, imported FROM known_hosts"
    ).fetchall()
    return [(KnownHost(n, p, bytes(s), bytes(d), t, f), i) for n, p, s, d, t, f, i in rows]


def _check_ssh(
    db: sqlite3.Connection,
    r: EndpointResult,
    keys: dict[str, str],
    known: list[tuple[KnownHost, str]],
    stamp: str,
) -> list[Finding]:
    host = r.host.lower()
    pinned = {
        t: Pin(*row)
        for row in db.execute(
            "SELECT host, port, kind, key_type, fingerprint, address, source, first_seen,"
            " last_seen FROM pins WHERE address=? AND port=? AND kind='ssh'",
            (r.address, r.port),
        )
        for t in (row[3],)
    }
    if not pinned:
        # Seed from known_hosts, matching the name as given or the address, as ssh would.
        for entry, imported in known:
            if entry.key_type in pinned:
                continue
            if entry.matches(r.host, r.port) or entry.matches(r.address, r.port):
                pinned[entry.key_type] = Pin(
                    host,
                    r.port,
                    "ssh",
                    entry.key_type,
                    entry.fingerprint,
                    r.address,
                    "known_hosts",
                    imported,
                    imported,
                )
        for pin in pinned.values():
            _upsert_pin(db, pin)
    if not pinned:
        for key_type, fp in keys.items():
            _upsert_pin(db, Pin(host, r.port, "ssh", key_type, fp, r.address, "scan", stamp, stamp))
        return []

    matched = [t for t, fp in keys.items() if t in pinned and pinned[t].fingerprint == fp]
    changed = [t for t, fp in keys.items() if t in pinned and pinned[t].fingerprint != fp]
    if not changed and matched:
        for t, fp in keys.items():
            if t in pinned:
                db.execute(
                    "UPDATE pins SET last_seen=?, host=? WHERE address=? AND port=? AND"
                    " kind='ssh' AND key_type=?",
                    (stamp, host, r.address, r.port, t),
                )
            else:  # a new key type next to a proven, unchanged one: the same server
                _upsert_pin(db, Pin(host, r.port, "ssh", t, fp, r.address, "scan", stamp, stamp))
        db.execute(
            "DELETE FROM pending WHERE address=? AND port=? AND kind='ssh'", (r.address, r.port)
        )
        return []

    evidence = []
    for t in changed:
        p = pinned[t]
        evidence.append(
            f"{t}: pinned {p.fingerprint} (first seen {p.first_seen}, source {p.source}),"
            f" now {keys[t]}"
        )
    if not changed:
        offered = ", ".join(f"{t} {fp}" for t, fp in sorted(keys.items()))
        evidence.append(
            f"none of the pinned key types ({', '.join(sorted(pinned))}) proven; server"
            f" proved only {offered}"
        )
    db.execute("DELETE FROM pending WHERE address=? AND port=? AND kind='ssh'", (r.address, r.port))
    db.executemany(
        "INSERT INTO pending VALUES (?, ?, 'ssh', ?, ?, ?, ?)",
        [(host, r.port, t, fp, r.address, stamp) for t, fp in keys.items()],
    )
    return [ssh_changed(r, evidence)]


def _check_tls(db: sqlite3.Connection, r: EndpointResult, spki: str, stamp: str) -> list[Finding]:
    host = r.host.lower()
    row = db.execute(
        "SELECT host, port, kind, key_type, fingerprint, address, source, first_seen, last_seen"
        " FROM pins WHERE address=? AND port=? AND kind='tls' AND key_type=''",
        (r.address, r.port),
    ).fetchone()
    if row is None:
        _upsert_pin(db, Pin(host, r.port, "tls", "", spki, r.address, "scan", stamp, stamp))
        return []
    pinned = Pin(*row)
    if pinned.fingerprint == spki:
        db.execute(
            "UPDATE pins SET last_seen=?, host=? WHERE address=? AND port=? AND kind='tls'",
            (stamp, host, r.address, r.port),
        )
        db.execute(
            "DELETE FROM pending WHERE address=? AND port=? AND kind='tls'", (r.address, r.port)
        )
        return []
    db.execute(
        "INSERT OR REPLACE INTO pending VALUES (?, ?, 'tls', '', ?, ?, ?)",
        (host, r.port, spki, r.address, stamp),
    )
    return [tls_changed(r, pinned.fingerprint, pinned.first_seen, pinned.source, spki)]


def _upsert_pin(db: sqlite3.Connection, pin: Pin) -> None:
    db.execute(
        "INSERT OR REPLACE INTO pins VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        dataclasses.astuple(pin),
    )


def check_and_record(path: str | Path, report: ScanReport) -> list[PinFindings]:
    with PinStore(path) as store:
        return store.check_and_record(report)


def accept(path: str | Path, host: str, port: int | None = None) -> int:
    with PinStore(path) as store:
        return store.accept(host, port)


def import_known_hosts(path: str | Path, known_hosts: str | Path) -> ImportResult:
    with PinStore(path) as store:
        return store.import_known_hosts(known_hosts)
