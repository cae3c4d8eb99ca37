"""The SSH probe end to end against real servers on 127.20.0.0/16: OpenSSH sshd (modern
and legacy configs), asyncssh servers, greeting-only servers, a tarpit."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import trio

from chanscan.lab.core import Lab
from chanscan.lab.ssh_servers import (
    TERRAPIN_CBC_ETM,
    TERRAPIN_CHACHA,
    sshd_available,
    start_asyncssh,
    start_greeting_server,
    start_legacy_asyncssh,
    start_sshd,
)
from chanscan.model import Channel, Endpoint, EndpointResult, ScanOptions, Status
from chanscan.obs.ssh import KexInit
from chanscan.probes.ssh import SshProbe, host_key_requests
from chanscan.probes.ssh_wire import key_bits
from chanscan.rules.ssh import findings
from chanscan.scheduler import (
    EndpointContext,
    ResultCollector,
    Scheduler,
    probe_once,
    scan_endpoints,
)

MODERN = "127.20.0.1"
LEGACY = "127.20.0.2"
PY_LEGACY = "127.20.1.1"
CHACHA = "127.20.1.2"
CBC_ETM = "127.20.1.3"
PY_MODERN = "127.20.1.4"
SSH1 = "127.20.1.5"
SSH199 = "127.20.1.6"
TARPIT = "127.20.1.7"
HANG = "127.20.1.8"
HTTP = "127.20.1.9"
PORT = 22 if os.geteuid() == 0 else 2222
OPTS = ScanOptions(endpoint_deadline=20.0)


def _require_sshd() -> None:
    if sshd_available():
        return
    if os.environ.get("CI"):
        pytest.fail("sshd is not installed but CI must run the sshd tests")
    pytest.skip("OpenSSH sshd not installed")


async def _probe_all(addresses: list[str]) -> dict[str, EndpointResult]:
    out: dict[str, EndpointResult] = {}
    for a in addresses:
        out[a] = await probe_once(Endpoint(a, a, PORT), SshProbe(), OPTS)
    return out


@pytest.fixture(scope="module")
def py_results() -> Iterator[dict[str, EndpointResult]]:
    with Lab() as lab:
        start_legacy_asyncssh(lab, PY_LEGACY, PORT)
        start_asyncssh(
            lab,
            PY_MODERN,
            PORT,
            key_types=("ssh-ed25519", "ecdsa-sha2-nistp384", "ssh-rsa"),
        )
        start_greeting_server(lab, CHACHA, PORT, kexinit=TERRAPIN_CHACHA)
        start_greeting_server(lab, CBC_ETM, PORT, kexinit=TERRAPIN_CBC_ETM)
        start_greeting_server(lab, SSH1, PORT, identification="SSH-1.5-OpenSSH_2.9", kexinit=None)
        start_greeting_server(
            lab, SSH199, PORT, identification="SSH-1.99-OpenSSH_3.9p1", kexinit=TERRAPIN_CHACHA
        )

        async def http(reader: object, writer: object) -> None:
            import asyncio

            assert isinstance(writer, asyncio.StreamWriter)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

        lab.add_stream_server("http", HTTP, PORT, http)
        yield trio.run(_probe_all, [PY_LEGACY, PY_MODERN, CHACHA, CBC_ETM, SSH1, SSH199, HTTP])


@pytest.fixture(scope="module")
def sshd_results() -> Iterator[dict[str, EndpointResult]]:
    _require_sshd()
    with Lab() as lab:
        start_sshd(lab, MODERN, PORT)
        start_sshd(lab, LEGACY, PORT, legacy=True)
        yield trio.run(_probe_all, [MODERN, LEGACY])


def _ids(result: EndpointResult) -> set[str]:
    return {f.id for f in findings(result, now=datetime.now(UTC))}


def _evidence(result: EndpointResult, fid: str) -> tuple[str, ...]:
    return next(f.evidence for f in findings(result, now=datetime.now(UTC)) if f.id == fid)


# -- OpenSSH ------------------------------------------------------------------------------


@pytest.mark.needs_sshd
def test_modern_sshd_observation(sshd_results: dict[str, EndpointResult]) -> None:
    r = sshd_results[MODERN]
    assert r.status is Status.OK, r.error
    ssh = r.ssh
    assert ssh is not None and ssh.kexinit is not None
    assert ssh.identification.startswith("SSH-2.0-OpenSSH_")
    assert ssh.product == "OpenSSH" and ssh.protocol_version == "2.0"
    # Debian backported strict kex to 9.2p1; OpenSSH sends ext-info-s only from 9.6 on.
    assert ssh.kexinit.strict_kex
    assert {k.key_type for k in ssh.host_keys} == {"ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"}
    assert all(k.verified for k in ssh.host_keys)
    assert {k.key_type: k.bits for k in ssh.host_keys}["ssh-rsa"] == 3072
    assert ssh.auth_methods == ("publickey",)
    assert ssh.not_determined == () and ssh.errors == ()
    # greeting + 3 key families + the 'none' auth query
    assert r.connections == 5
    assert findings(r, now=datetime.now(UTC)) == []


@pytest.mark.needs_sshd
def test_legacy_sshd_findings(sshd_results: dict[str, EndpointResult]) -> None:
    r = sshd_results[LEGACY]
    assert r.status is Status.OK, r.error
    assert r.ssh is not None
    assert r.ssh.auth_methods == ("publickey", "password")
    ids = _ids(r)
    expected = {
        "ssh.kex.sha1",
        "ssh.kex.weak_group",
        "ssh.hostkey.sha1",
        "ssh.hostkey.dsa",
        "ssh.hostkey.weak_rsa",
        "ssh.cipher.broken",
        "ssh.cipher.cbc",
        "ssh.mac.md5",
        "ssh.mac.sha1",
        "ssh.mac.short",
        "ssh.mac.encrypt_and_mac",
        "ssh.auth.password",
        "ssh.kex.no_pq",
    }
    assert ids == expected
    assert _evidence(r, "ssh.kex.sha1") == (
        "diffie-hellman-group-exchange-sha1",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group1-sha1",
    )
    assert _evidence(r, "ssh.kex.weak_group") == ("diffie-hellman-group1-sha1",)
    assert _evidence(r, "ssh.cipher.broken") == ("3des-cbc",)
    assert _evidence(r, "ssh.mac.md5") == ("hmac-md5",)
    assert _evidence(r, "ssh.mac.short") == ("hmac-sha1-96",)
    weak = _evidence(r, "ssh.hostkey.weak_rsa")
    assert len(weak) == 1 and weak[0].startswith("ssh-rsa 1024 bits SHA256:")


_KEXINIT_LINES = {
    "KEX algorithms": "kex",
    "host key algorithms": "host_key",
    "ciphers ctos": "ciphers_c2s",
    "ciphers stoc": "ciphers_s2c",
    "MACs ctos": "macs_c2s",
    "MACs stoc": "macs_s2c",
    "compression ctos": "compression_c2s",
    "compression stoc": "compression_s2c",
}


def _ssh_vv_server_kexinit(address: str) -> dict[str, tuple[str, ...]]:
    """What OpenSSH's own client logs as the peer's KEXINIT (no credentials offered)."""
    argv = ["ssh", "-vv", "-F", "/dev/null", "-p", str(PORT)]
    for opt in (
        "BatchMode=yes",
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "ConnectTimeout=5",
        "PubkeyAuthentication=no",
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
        "GSSAPIAuthentication=no",
    ):
        argv += ["-o", opt]
    proc = subprocess.run(
        [*argv, f"chanscan-probe@{address}", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    log = proc.stderr
    peer = log[log.index("peer server KEXINIT proposal") :]
    out: dict[str, tuple[str, ...]] = {}
    for label, field in _KEXINIT_LINES.items():
        m = re.search(rf"debug2: {re.escape(label)}: ?(.*)", peer)
        assert m is not None, label
        out[field] = tuple(m.group(1).split(",")) if m.group(1) else ()
    return out


@pytest.mark.needs_sshd
@pytest.mark.parametrize("address", [MODERN, LEGACY])
def test_kexinit_equals_ssh_vv(address: str, sshd_results: dict[str, EndpointResult]) -> None:
    ssh = sshd_results[address].ssh
    assert ssh is not None and ssh.kexinit is not None
    expected = _ssh_vv_server_kexinit(address)
    got = {f: getattr(ssh.kexinit, f) for f in expected}
    assert got == expected


def _keyscan(address: str) -> set[tuple[str, str]]:
    proc = subprocess.run(
        ["ssh-keyscan", "-T", "5", "-p", str(PORT), "-t", "rsa,ecdsa,ed25519,dsa", address],
        capture_output=True,
        text=True,
        timeout=30,
    )
    keys: set[tuple[str, str]] = set()
    for line in proc.stdout.splitlines():
        if not line or line.startswith("#"):
            continue
        _host, ktype, b64 = line.split()[:3]
        digest = hashlib.sha256(base64.b64decode(b64)).digest()
        keys.add((ktype, "SHA256:" + base64.b64encode(digest).decode().rstrip("=")))
    return keys


@pytest.mark.needs_sshd
@pytest.mark.parametrize("address", [MODERN, LEGACY])
def test_host_keys_equal_ssh_keyscan(address: str, sshd_results: dict[str, EndpointResult]) -> None:
    ssh = sshd_results[address].ssh
    assert ssh is not None
    scanned = _keyscan(address)
    assert len(scanned) == 3
    assert {(k.key_type, k.fingerprint) for k in ssh.host_keys} == scanned


# -- asyncssh and greeting-only servers ---------------------------------------------------------


def test_legacy_asyncssh_findings(py_results: dict[str, EndpointResult]) -> None:
    r = py_results[PY_LEGACY]
    assert r.status is Status.OK, r.error
    assert r.ssh is not None and r.ssh.product == "AsyncSSH"
    assert r.ssh.kexinit is not None and r.ssh.kexinit.ext_info and r.ssh.kexinit.strict_kex
    assert set(r.ssh.auth_methods) == {"publickey", "password", "keyboard-interactive"}
    ids = _ids(r)
    for fid in (
        "ssh.cipher.broken",
        "ssh.compression.pre_auth",
        "ssh.hostkey.dsa",
        "ssh.hostkey.sha1",
        "ssh.kex.sha1",
        "ssh.kex.weak_group",
        "ssh.mac.md5",
        "ssh.mac.short",
        "ssh.auth.password",
        "ssh.auth.keyboard_interactive",
    ):
        assert fid in ids, fid
    # asyncssh always offers strict kex; its RSA key is 2048 bits
    assert "ssh.terrapin" not in ids and "ssh.hostkey.weak_rsa" not in ids
    assert set(_evidence(r, "ssh.cipher.broken")) == {
        "arcfour256",
        "arcfour",
        "3des-cbc",
        "blowfish-cbc",
    }
    assert _evidence(r, "ssh.compression.pre_auth") == ("zlib",)
    dsa = _evidence(r, "ssh.hostkey.dsa")
    assert dsa[0] == "ssh-dss" and any(e.startswith("ssh-dss 1024 bits SHA256:") for e in dsa)


def test_modern_asyncssh_host_key_families(py_results: dict[str, EndpointResult]) -> None:
    r = py_results[PY_MODERN]
    assert r.ssh is not None
    types = sorted((k.key_type, k.bits) for k in r.ssh.host_keys)
    assert types == [("ecdsa-sha2-nistp384", 384), ("ssh-ed25519", 256), ("ssh-rsa", 2048)]
    assert all(k.verified and k.fingerprint.startswith("SHA256:") for k in r.ssh.host_keys)
    ids = _ids(r)
    assert "ssh.auth.password" not in ids and "ssh.terrapin" not in ids
    # asyncssh's default kex list has no post-quantum hybrid
    assert "ssh.kex.no_pq" in ids


@pytest.mark.parametrize(
    ("address", "evidence"),
    [
        (CHACHA, {"chacha20-poly1305@openssh.com"}),
        (CBC_ETM, {"aes128-cbc", "hmac-sha2-256-etm@openssh.com"}),
    ],
)
def test_terrapin_exposed(
    address: str, evidence: set[str], py_results: dict[str, EndpointResult]
) -> None:
    r = py_results[address]
    assert r.status is Status.OK, r.error
    assert r.ssh is not None and r.ssh.strict_kex is False
    ev = _evidence(r, "ssh.terrapin")
    assert evidence <= set(ev)
    # the greeting-only server closes before a key exchange: nothing is made up
    assert r.ssh.host_keys == ()
    assert set(r.ssh.not_determined) == {"host_key:ssh-ed25519", "auth_methods"}
    assert len(r.ssh.errors) == 2 and all(": " in e for e in r.ssh.errors)
    assert "ssh.auth.password" not in _ids(r)


def test_ssh1_servers(py_results: dict[str, EndpointResult]) -> None:
    only1 = py_results[SSH1]
    assert only1.ssh is not None and only1.ssh.kexinit is None
    assert "kexinit" in only1.ssh.not_determined
    assert _ids(only1) == {"ssh.protocol.v1"}
    both = py_results[SSH199]
    assert both.ssh is not None and both.ssh.kexinit is not None
    assert "ssh.protocol.v1" in _ids(both) and "ssh.terrapin" in _ids(both)


def test_not_ssh_is_a_protocol_error(py_results: dict[str, EndpointResult]) -> None:
    r = py_results[HTTP]
    assert r.status is Status.ERROR and r.ssh is None
    assert r.error is not None and "not an SSH-2 server" in r.error


# -- deadlines ------------------------------------------------------------------------------


def _established_to(address: str, port: int) -> int:
    """Our TCP connections to address:port still ESTABLISHED (from /proc/net/tcp)."""
    want = "{:02X}{:02X}{:02X}{:02X}:{:04X}".format(
        *reversed([int(x) for x in address.split(".")]), port
    )
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows if r[2] == want and r[3] == "01")


@pytest.fixture
def hung_lab() -> Iterator[Lab]:
    with Lab() as lab:
        lab.tarpit(TARPIT, PORT)
        start_greeting_server(lab, HANG, PORT, kexinit=TERRAPIN_CHACHA, hang=True)
        yield lab


@pytest.mark.parametrize("address", [TARPIT, HANG])
async def test_deadline_aborts_hung_probe(address: str, hung_lab: Lab) -> None:
    # Positive control: the /proc/net/tcp check does see an open connection.
    with trio.socket.socket() as s:
        await s.connect((address, PORT))
        assert _established_to(address, PORT) == 1
    # network_timeout above the deadline: only the scheduler's deadline can end it.
    opts = ScanOptions(endpoint_deadline=1.0, network_timeout=30.0)
    t0 = trio.current_time()
    r = await probe_once(Endpoint(address, address, PORT), SshProbe(), opts)
    assert r.status is Status.TIMEOUT
    assert trio.current_time() - t0 < 5.0
    assert r.connections >= 1
    assert _established_to(address, PORT) == 0


async def test_deadline_cancels_asyncio_tasks(hung_lab: Lab) -> None:
    """The asyncssh connections (run on the bridge loop) are cancelled and unwound
    when trio cancels: no task is left on the loop before it is closed."""
    opts = ScanOptions(endpoint_deadline=2.0, network_timeout=30.0)
    sched = Scheduler(opts, {})
    try:
        ctx = EndpointContext(sched, Endpoint(HANG, HANG, PORT))
        with trio.move_on_after(opts.endpoint_deadline) as scope:
            await SshProbe().run(ctx)
        assert scope.cancelled_caught
        assert ctx.connections == 3  # greeting, ssh-ed25519, auth: all were underway
        assert await trio.to_thread.run_sync(sched.bridge.pending_tasks) == 0
        assert _established_to(HANG, PORT) == 0
    finally:
        sched.close()


# -- pure helpers ---------------------------------------------------------------------------


def test_host_key_requests_one_per_family() -> None:
    offered = (
        "rsa-sha2-512-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
        "ssh-ed25519",
        "ssh-rsa",
        "rsa-sha2-256",
        "ssh-rsa-sha256@ssh.com",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp521",
        "ssh-dss",
    )
    assert host_key_requests(offered) == (
        "rsa-sha2-512-cert-v01@openssh.com",
        "ssh-ed25519",
        "rsa-sha2-256",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp521",
        "ssh-dss",
    )
    assert host_key_requests(("ssh-rsa",)) == ("ssh-rsa",)
    assert host_key_requests(KexInit().host_key) == ()


def test_key_bits_of_garbage_is_zero() -> None:
    assert key_bits(b"") == 0
    assert key_bits(b"\x00\x00\x00\x07ssh-rsa\x00") == 0
    assert key_bits(b"\x00\x00\x00\x07unknown") == 0


async def test_scan_discovers_ssh_and_runs_the_probe(
    py_results: dict[str, EndpointResult],
) -> None:
    """Through discovery: the server-first SSH banner routes the endpoint to SshProbe."""
    collector = ResultCollector(1)
    ep = Endpoint(PY_LEGACY, PY_LEGACY, PORT)
    await scan_endpoints([ep], OPTS, {Channel.SSH: SshProbe()}, collector)
    (r,) = collector.report(complete=True).endpoints
    assert r.channel is Channel.SSH and r.status is Status.OK, r.error
    assert r.banner is not None and r.banner.startswith("SSH-2.0-AsyncSSH_")
    direct = py_results[PY_LEGACY].ssh
    assert r.ssh is not None and direct is not None
    assert r.ssh.kexinit == direct.kexinit
