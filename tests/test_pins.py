"""Pin store: trust on first use, changed keys, accepted changes, known_hosts seeding,
and two processes writing one store at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncssh
import pytest

from chanscan.errors import ConfigError
from chanscan.known_hosts import parse_known_hosts
from chanscan.model import (
    SCHEMA_ID,
    Axis,
    Channel,
    EndpointResult,
    Grade,
    PlatformHint,
    ScanReport,
    Severity,
    Status,
)
from chanscan.obs.ssh import HostKey, SshObservation
from chanscan.obs.tls import Certificate, CertificateChecks, TlsObservation
from chanscan.pins import (
    SSH_CHANGED,
    TLS_CHANGED,
    TLS_INCONSISTENT,
    PinStore,
    apply_pin_findings,
    inconsistent_tls_keys,
)

HOST = "esx01.example.com"
ADDR = "192.0.2.21"


def ssh_key(alg: str = "ssh-ed25519") -> asyncssh.SSHKey:
    return asyncssh.generate_private_key(alg)


def host_key(key: asyncssh.SSHKey, verified: bool = True) -> HostKey:
    return HostKey(
        algorithm=key.algorithm.decode(),
        key_type=key.algorithm.decode(),
        bits=256,
        fingerprint=key.get_fingerprint("sha256"),
        verified=verified,
    )


def ssh_result(*keys: HostKey, host: str = HOST, port: int = 22) -> EndpointResult:
    return EndpointResult(
        host=host,
        address=ADDR if host == HOST else host,
        port=port,
        channel=Channel.SSH,
        status=Status.OK,
        ssh=SshObservation(identification="SSH-2.0-OpenSSH_9.2", host_keys=keys),
        grade=Grade(eavesdropping="A", mitm="A", overall="A"),
    )


def tls_result(
    spki: str, port: int = 443, hint: PlatformHint = PlatformHint.AUTO
) -> EndpointResult:
    leaf = Certificate(
        subject=f"CN={HOST}",
        issuer=f"CN={HOST}",
        serial="01",
        not_before="2026-01-01T00:00:00Z",
        not_after="2027-01-01T00:00:00Z",
        sha256_fingerprint=hashlib.sha256(spki.encode()).hexdigest(),
        spki_sha256=spki,
    )
    return EndpointResult(
        host=HOST,
        address=ADDR,
        port=port,
        channel=Channel.TLS if port != 902 else Channel.AUTHD,
        status=Status.OK,
        platform_hint=hint,
        tls=TlsObservation(certificate=CertificateChecks(chain=(leaf,), name_checked=HOST)),
        grade=Grade(eavesdropping="A", mitm="A", overall="A"),
    )


def report(*results: EndpointResult) -> ScanReport:
    return ScanReport(
        schema=SCHEMA_ID,
        tool_version="test",
        complete=True,
        started_at="2026-11-29T00:00:00Z",
        finished_at="2026-11-29T00:00:01Z",
        endpoints=results,
    )


def ids(additions: list) -> list[str]:  # type: ignore[type-arg]
    return [f.id for add in additions for f in add.findings]


def test_tofu_then_stable(tmp_path: Path) -> None:
    ed, rsa = ssh_key(), ssh_key("ssh-rsa")
    scan = report(ssh_result(host_key(ed), host_key(rsa)), tls_result("spki-A"))
    store_path = tmp_path / "sub" / "pins.db"
    store_path.parent.mkdir()
    with PinStore(store_path) as store:
        assert store.check_and_record(scan, now="2026-11-01T00:00:00Z") == []
        pins = store.pins()
        assert {(p.kind, p.key_type, p.fingerprint) for p in pins} == {
            ("ssh", "ssh-ed25519", ed.get_fingerprint("sha256")),
            ("ssh", "ssh-rsa", rsa.get_fingerprint("sha256")),
            ("tls", "", "spki-A"),
        }
        assert {p.source for p in pins} == {"scan"}
        assert store.check_and_record(scan, now="2026-11-02T00:00:00Z") == []
        assert {p.last_seen for p in store.pins()} == {"2026-11-02T00:00:00Z"}
        assert {p.first_seen for p in store.pins()} == {"2026-11-01T00:00:00Z"}
    with sqlite3.connect(store_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unverified_keys_are_never_pinned(tmp_path: Path) -> None:
    with PinStore(tmp_path / "p.db") as store:
        assert store.check_and_record(report(ssh_result(host_key(ssh_key(), verified=False)))) == []
        assert store.pins() == []


def test_changed_ssh_key_is_critical_mitm_until_accepted(tmp_path: Path) -> None:
    old, new, rsa = ssh_key(), ssh_key(), ssh_key("ssh-rsa")
    with PinStore(tmp_path / "p.db") as store:
        store.check_and_record(report(ssh_result(host_key(old), host_key(rsa))))
        changed = report(ssh_result(host_key(new), host_key(rsa)))
        additions = store.check_and_record(changed)
        assert ids(additions) == [SSH_CHANGED]
        finding = additions[0].findings[0]
        assert finding.severity is Severity.CRITICAL and finding.axis is Axis.MITM
        evidence = " ".join(finding.evidence)
        assert old.get_fingerprint("sha256") in evidence
        assert new.get_fingerprint("sha256") in evidence
        graded = apply_pin_findings(changed, additions).endpoints[0]
        assert graded.grade is not None and graded.grade.overall == "F"
        assert graded.grade.capped_by.mitm == SSH_CHANGED
        # not accepted: still flagged on the next scan
        assert ids(store.check_and_record(changed)) == [SSH_CHANGED]
        assert store.accept("nosuch.example.com") == 0
        assert store.accept(ADDR, 2222) == 0
        assert store.accept(HOST.upper(), 22) == 1
        assert store.pending() == []
        assert store.check_and_record(changed) == []
        assert {p.source for p in store.pins() if p.kind == "ssh"} == {"accepted"}
        # the old key is now the stranger
        assert ids(store.check_and_record(report(ssh_result(host_key(old))))) == [SSH_CHANGED]


def test_only_new_key_types_proven_is_a_change(tmp_path: Path) -> None:
    # An interceptor holding no pinned key could offer only another key type.
    ed, rsa = ssh_key(), ssh_key("ssh-rsa")
    with PinStore(tmp_path / "p.db") as store:
        store.check_and_record(report(ssh_result(host_key(ed))))
        additions = store.check_and_record(report(ssh_result(host_key(rsa))))
        assert ids(additions) == [SSH_CHANGED]
        assert "none of the pinned key types" in additions[0].findings[0].evidence[0]
        # next to the proven pinned key, a new type is simply recorded
        assert store.check_and_record(report(ssh_result(host_key(ed), host_key(rsa)))) == []
        assert {p.key_type for p in store.pins()} == {"ssh-ed25519", "ssh-rsa"}


def test_changed_tls_key_and_accept_by_address(tmp_path: Path) -> None:
    with PinStore(tmp_path / "p.db") as store:
        store.check_and_record(report(tls_result("spki-A")))
        additions = store.check_and_record(report(tls_result("spki-B")))
        assert ids(additions) == [TLS_CHANGED]
        assert "spki-A" in additions[0].findings[0].evidence[0]
        assert store.accept(ADDR) == 1
        assert store.check_and_record(report(tls_result("spki-B"))) == []
        assert ids(store.check_and_record(report(tls_result("spki-A")))) == [TLS_CHANGED]


def test_esxi_ports_with_different_keys_are_inconsistent(tmp_path: Path) -> None:
    esxi = PlatformHint.ESXI
    same = report(tls_result("k1", 443, esxi), tls_result("k1", 902, esxi))
    assert inconsistent_tls_keys(same) == []
    differ = report(tls_result("k1", 443, esxi), tls_result("k2", 902, esxi))
    found = inconsistent_tls_keys(differ)
    assert sorted(a.port for a in found) == [443, 902]
    assert {f.id for a in found for f in a.findings} == {TLS_INCONSISTENT}
    assert found[0].findings[0].severity is Severity.MEDIUM
    # a platform that legitimately uses several certificates is not flagged
    assert inconsistent_tls_keys(report(tls_result("k1", 443), tls_result("k2", 902))) == []
    with PinStore(tmp_path / "p.db") as store:
        assert sorted(ids(store.check_and_record(differ))) == [TLS_INCONSISTENT] * 2


def _hashed(name: str, salt: bytes) -> str:
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_known_hosts_fingerprints_match_asyncssh() -> None:
    key = ssh_key("ssh-rsa")
    line = f"{HOST},{ADDR} {key.export_public_key().decode().strip()}"
    parsed = parse_known_hosts(line)
    assert [e.fingerprint for e in parsed.entries] == [key.get_fingerprint("sha256")] * 2
    assert [e.name for e in parsed.entries] == [HOST, ADDR]


def test_known_hosts_import_seeds_pins(tmp_path: Path) -> None:
    plain, hashed, other, ca = ssh_key(), ssh_key(), ssh_key(), ssh_key()
    pub = {k: k.export_public_key().decode().strip() for k in (plain, hashed, other, ca)}
    kh = tmp_path / "known_hosts"
    kh.write_text(
        textwrap.dedent(
            f"""\
            # a comment
            [{HOST}]:2222 {pub[plain]}
            {_hashed(HOST, os.urandom(20))} {pub[hashed]}
            {_hashed("[other.example.com]:2200", os.urandom(20))} {pub[other]}
            @cert-authority *.example.com {pub[ca]}
            *.example.net {pub[other]}
            bad.example.com ssh-ed25519 !!notbase64!!
            """
        )
    )
    with PinStore(tmp_path / "p.db") as store:
        result = store.import_known_hosts(kh)
        assert result.imported == 3
        assert len(result.skipped) == 3
        assert store.import_known_hosts(kh).imported == 0  # idempotent

        # first scan ever, yet the known_hosts key is the pin: a match is quiet ...
        assert store.check_and_record(report(ssh_result(host_key(plain), port=2222))) == []
        assert {p.source for p in store.pins()} == {"known_hosts"}
        # ... and the hashed entry (port 22) catches a different key on first contact
        additions = store.check_and_record(report(ssh_result(host_key(plain))))
        assert ids(additions) == [SSH_CHANGED]
        assert hashed.get_fingerprint("sha256") in additions[0].findings[0].evidence[0]
        # hashed entry with a non-default port, matched through "[name]:port"
        other_ep = ssh_result(host_key(other), host="other.example.com", port=2200)
        assert store.check_and_record(report(other_ep)) == []


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_known_hosts_hashed_by_ssh_keygen(tmp_path: Path) -> None:
    key = ssh_key()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{HOST} {key.export_public_key().decode().strip()}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(kh)], check=True, capture_output=True, timeout=30)
    assert kh.read_text().startswith("|1|")
    with PinStore(tmp_path / "p.db") as store:
        assert store.import_known_hosts(kh).imported == 1
        assert store.check_and_record(report(ssh_result(host_key(key)))) == []
        assert ids(store.check_and_record(report(ssh_result(host_key(ssh_key()))))) == [SSH_CHANGED]


def test_unreadable_store_is_a_config_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="pin store"):
        PinStore(junk).open()
    with pytest.raises(ConfigError, match="pin store"):
        PinStore(tmp_path / "missing-dir" / "p.db").open()
    with pytest.raises(ConfigError, match="known_hosts"):
        PinStore(tmp_path / "ok.db").import_known_hosts(tmp_path / "nope")


WRITER = """
import os, sys, time
from chanscan.model import SCHEMA_ID, Channel, EndpointResult, ScanReport, Status
from chanscan.obs.tls import Certificate, CertificateChecks, TlsObservation
from chanscan.pins import PinStore

path, tag, rounds, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
open(os.path.join(ready, tag), "w").close()
for _ in range(3000):  # start together once both writers are up (bounded: 30 s)
    if len(os.listdir(ready)) == 2:
        break
    time.sleep(0.01)
start = time.monotonic()
def result(i):
    leaf = Certificate(subject="CN=x", issuer="CN=x", serial="1", not_before="",
                       not_after="", spki_sha256=f"spki-{i}")
    return EndpointResult(host=f"h{i}.example.com", address=f"2001:db8::{i:x}", port=443,
                          channel=Channel.TLS, status=Status.OK,
                          tls=TlsObservation(certificate=CertificateChecks((leaf,), "x")))
for r in range(rounds):
    eps = tuple(result(i) for i in range(r * 5, r * 5 + 10))  # overlaps the other writer
    rep = ScanReport(SCHEMA_ID, "t", True, "", "", eps)
    with PinStore(path) as store:
        assert store.check_and_record(rep, consistency=False) == [], tag
print("done", tag, start, time.monotonic())
"""


def test_two_processes_write_one_store(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    ready = tmp_path / "ready"
    ready.mkdir()
    rounds = 60
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), tag, str(rounds), str(ready)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    try:
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    spans = []
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        word, _, start, end = out.split()
        assert word == "done"
        spans.append((float(start), float(end)))
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1, "the writers did not overlap; the test proved nothing"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        pinned = set(db.execute("SELECT host, address FROM pins"))
    assert pinned == {
        (f"h{i}.example.com", f"2001:db8::{i:x}") for i in range((rounds - 1) * 5 + 10)
    }
