"""``chanscan scan --dask`` against real ``dask scheduler`` / ``dask worker`` processes on
loopback: two sites pinned by worker resources, the same findings as a local scan, each
row's vantage, a worker killed mid-shard, a site without workers, Ctrl-C, tls://.

Every process is started here and stopped by its pid; everything listens on
127.77.0.0/16 only (workers and scheduler with ``--host``, no dashboards).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Outside CI a machine without the dask extra skips this module; in CI (which installs
# the extra through `.[test]`) a missing Dask must fail loudly, never pass as a skip.
if os.environ.get("CI"):
    import distributed  # noqa: F401
else:
    pytest.importorskip("distributed", reason="the dask extra is not installed")

from chanscan.lab import Lab
from chanscan.lab.certs import LabCA, self_signed
from chanscan.lab.core import free_port, port_accepts
from chanscan.lab.ssh_servers import start_asyncssh
from chanscan.lab.tls_context import context_for, server_context
from chanscan.lab.tls_servers import plaintext_http_server

pytestmark = pytest.mark.slow

HOST = "127.77.0.1"
# `dask scheduler` / `dask worker` as modules of this interpreter: the same processes
# the `dask` command starts, found wherever pip put the package (a venv, --user, ...).
DASK_SCHEDULER = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
DASK_WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]
START_TIMEOUT = 60.0


# -- processes ------------------------------------------------------------------------------
@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path

    def registered(self) -> bool:
        return "Registered to:" in self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(15)


def _start(argv: list[str], log: Path, cwd: Path) -> Proc:
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=cwd, start_new_session=True
        )
    return Proc(popen, log)


def _wait(ready: Any, proc: Proc, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():  # bounded by START_TIMEOUT
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            pytest.fail(f"{what} did not start: {proc.log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


def start_scheduler(work: Path, host: str, port: int, tls: list[str] | None = None) -> Proc:
    argv = [*DASK_SCHEDULER, "--host", host, "--port", str(port), "--no-dashboard"]
    if tls:
        argv += ["--protocol", "tls", *tls]
    proc = _start(argv, work / f"scheduler-{port}.log", work)
    _wait(lambda: port_accepts(host, port), proc, "dask scheduler")
    return proc


def start_worker(
    work: Path,
    scheduler: str,
    name: str,
    site: str | None,
    *,
    nanny: bool = True,
    tls: list[str] | None = None,
) -> Proc:
    host = scheduler.split("://")[1].rsplit(":", 1)[0]
    argv = [*DASK_WORKER, scheduler, "--host", host, "--name", name, "--no-dashboard"]
    argv += ["--nworkers", "1", "--nthreads", "1", "--local-directory", str(work)]
    argv += ["--preload", "chanscan.distributed.worker"]  # as docs/deployment.md says
    argv += [] if nanny else ["--no-nanny"]
    argv += ["--resources", f"site-{site}=1"] if site else []
    argv += tls or []
    proc = _start(argv, work / f"worker-{name}.log", work)
    _wait(proc.registered, proc, f"dask worker {name}")
    return proc


def chanscan(*args: str) -> list[str]:
    return [sys.executable, "-m", "chanscan", "scan", "--no-color", *args]


def run_chanscan(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(chanscan(*args), capture_output=True, text=True, timeout=timeout, env=env)


def same_findings(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Findings with their evidence as a sorted list: the TLS enumeration lists a
    legacy server's suites in an order that depends on timing (seen to differ between a
    loaded and an idle run); which suites, findings and grades does not."""
    return sorted(({**f, "evidence": sorted(f["evidence"])} for f in row["findings"]), key=str)


def endpoints(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    return {(e["address"], e["port"]): e for e in json.loads(path.read_text())["endpoints"]}


# -- a lab server the tests can watch -----------------------------------------------------
@dataclass
class Watched:
    """Counts connections, holds them open until the peer goes (or closes at once when
    ``release`` is set), and says how many are open now."""

    seen: threading.Event = field(default_factory=threading.Event)
    count: int = 0
    open: int = 0
    release: bool = False

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count += 1
        self.open += 1
        self.seen.set()
        try:
            while not self.release and await asyncio.wait_for(reader.read(4096), 120):
                pass
        finally:
            self.open -= 1


# -- the module's cluster and estate ---------------------------------------------------------
@dataclass
class Cluster:
    address: str
    work: Path
    lab: Lab
    procs: list[Proc]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("dask")
    procs: list[Proc] = []
    with Lab() as lab:
        try:
            port = free_port(HOST)
            procs.append(start_scheduler(work, HOST, port))
            address = f"tcp://{HOST}:{port}"
            procs.append(start_worker(work, address, "wa", "a"))
            procs.append(start_worker(work, address, "wb", "b"))
            yield Cluster(address, work, lab, procs)
        finally:
            for p in reversed(procs):
                p.stop()


def test_same_findings_and_grades_as_a_local_scan(cluster: Cluster) -> None:
    lab, work = cluster.lab, cluster.work
    legacy = context_for(self_signed("127.77.1.1", "esx-a.lab.example"), legacy=True)
    lab.add_stream_server("legacy-tls", "127.77.1.1", 443, Watched().handler, ssl=legacy)
    start_asyncssh(lab, "127.77.1.2", 22)
    modern = server_context(["127.77.2.1"])
    lab.add_stream_server("modern-tls", "127.77.2.1", 443, Watched().handler, ssl=modern)
    plaintext_http_server(lab, "127.77.3.1", 80)
    targets = work / "estate.toml"
    targets.write_text(
        "[groups.a]\n"
        'hosts = ["127.77.1.1", "127.77.1.2"]\n'
        "ports = [22, 443]\n"
        'platform = "esxi"\n'
        'site = "a"\n'
        "[groups.b]\n"
        'hosts = ["127.77.2.1"]\n'
        "ports = [443]\n"
        'site = "b"\n'
        "[groups.anywhere]\n"
        'hosts = ["127.77.3.1"]\n'
        "ports = [80, 443]\n"
    )
    local_json, dask_json = work / "local.json", work / "dask.json"
    local = run_chanscan("--targets", str(targets), "--json", str(local_json))
    dist = run_chanscan(
        "--targets", str(targets), "--json", str(dask_json), "--dask", cluster.address
    )
    assert dist.returncode == local.returncode == 1, (local.stderr, dist.stderr)
    assert "Traceback" not in dist.stderr
    here, there = endpoints(local_json), endpoints(dask_json)
    assert set(here) == set(there) and len(there) == 7
    for key, mine in here.items():
        theirs = there[key]
        for part in ("status", "channel", "error", "platform", "grade"):
            assert theirs[part] == mine[part], (key, part)
        assert same_findings(theirs) == same_findings(mine), key
        assert mine["vantage"] is None
    ssh = there[("127.77.1.2", 22)]
    assert ssh["status"] == "ok" and ssh["findings"] and ssh["grade"]
    assert {f["id"] for f in there[("127.77.1.1", 443)]["findings"]} >= {
        "tls.protocol.tls1_0",
        "tls.cert.self_signed",
    }
    for (address, _), row in there.items():
        site = {"127.77.1": "a", "127.77.2": "b"}.get(address.rsplit(".", 1)[0])
        if site is None:
            assert row["vantage"]["site"] is None and row["vantage"]["worker"] in ("wa", "wb")
        else:
            assert row["vantage"] == {"site": site, "worker": f"w{site}"}
    assert json.loads(dask_json.read_text())["complete"] is True


def test_a_site_without_workers_is_rows_that_say_so(cluster: Cluster) -> None:
    targets = cluster.work / "nowhere.toml"
    targets.write_text(
        '[groups.dc9]\nhosts = ["127.77.8.1"]\nports = [443, 8443]\nsite = "dc9"\n'
        '[groups.a]\nhosts = ["127.77.8.2"]\nports = [1]\nsite = "a"\n'
    )
    out = cluster.work / "nowhere.json"
    proc = run_chanscan("--targets", str(targets), "--json", str(out), "--dask", cluster.address)
    assert proc.returncode == 3, proc.stderr
    rows = endpoints(out)
    assert json.loads(out.read_text())["complete"] is True
    for port in (443, 8443):
        row = rows[("127.77.8.1", port)]
        assert (row["status"], row["error"]) == ("error", "no worker for site dc9")
        assert row["vantage"] == {"site": "dc9", "worker": None}
    measured = rows[("127.77.8.2", 1)]
    assert measured["status"] == "closed"
    assert measured["vantage"] == {"site": "a", "worker": "wa"}
    assert "no worker for site dc9" in proc.stdout


def test_a_worker_killed_mid_shard_is_replaced(cluster: Cluster) -> None:
    """The shard's only worker dies while it holds a connection to the server; a second
    worker of the site takes the shard over and the row records it."""
    server = Watched()
    cluster.lab.add_stream_server("watched", "127.77.4.1", 443, server.handler)
    first = start_worker(cluster.work, cluster.address, "wk1", "k", nanny=False)
    second: Proc | None = None
    targets = cluster.work / "kill.toml"
    targets.write_text('[groups.k]\nhosts = ["127.77.4.1"]\nports = [443]\nsite = "k"\n')
    out = cluster.work / "kill.json"
    scan = subprocess.Popen(
        chanscan("--targets", str(targets), "--json", str(out), "--dask", cluster.address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.seen.wait(60), "the shard never reached the server"
        second = start_worker(cluster.work, cluster.address, "wk2", "k", nanny=False)
        server.release = True  # the rerun gets an answer at once
        os.kill(first.popen.pid, signal.SIGKILL)
        _, err = scan.communicate(timeout=120)
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait(10)
        first.stop()
        if second is not None:
            second.stop()
    assert "Traceback" not in err
    doc = json.loads(out.read_text())
    assert doc["complete"] is True
    (row,) = doc["endpoints"]
    assert row["vantage"] == {"site": "k", "worker": "wk2"}
    assert row["status"] != "timeout"
    assert server.count >= 2


def test_a_site_whose_last_worker_dies_is_rows_that_say_so(cluster: Cluster) -> None:
    """No worker of the site comes back: after the grace period the shard's endpoints
    are error rows, not a scan that waits for ever."""
    server = Watched()
    cluster.lab.add_stream_server("orphaned", "127.77.4.2", 443, server.handler)
    only = start_worker(cluster.work, cluster.address, "wm1", "m", nanny=False)
    targets = cluster.work / "orphan.toml"
    targets.write_text(
        '[groups.m]\nhosts = ["127.77.4.2"]\nports = [443]\nsite = "m"\n'
        '[groups.b]\nhosts = ["127.77.4.3"]\nports = [1]\nsite = "b"\n'
    )
    out = cluster.work / "orphan.json"
    scan = subprocess.Popen(
        chanscan("--targets", str(targets), "--json", str(out), "--dask", cluster.address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.seen.wait(60), "the shard never reached the server"
        os.kill(only.popen.pid, signal.SIGKILL)
        t0 = time.monotonic()
        _, err = scan.communicate(timeout=90)
        waited = time.monotonic() - t0
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait(10)
        only.stop()
    assert scan.returncode == 3, err
    assert "Traceback" not in err
    rows = endpoints(out)
    orphan = rows[("127.77.4.2", 443)]
    assert (orphan["status"], orphan["error"]) == ("error", "no worker for site m")
    assert orphan["vantage"] == {"site": "m", "worker": None}
    assert rows[("127.77.4.3", 1)]["vantage"] == {"site": "b", "worker": "wb"}
    assert 10 <= waited < 60  # the grace period (10 s), not the endpoint deadline
    assert json.loads(out.read_text())["complete"] is True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_cancels_the_shards_and_keeps_what_came_back(
    cluster: Cluster, sig: signal.Signals
) -> None:
    server = Watched()
    # One server per run: the handle of the first stays in the module's lab.
    last = 1 if sig == signal.SIGINT else 3
    cluster.lab.add_stream_server("held", f"127.77.5.{last}", 443, server.handler)
    targets = cluster.work / "interrupt.toml"
    targets.write_text(
        f'[groups.slow]\nhosts = ["127.77.5.{last}"]\nports = [443]\nsite = "a"\n'
        '[groups.quick]\nhosts = ["127.77.5.2"]\nports = [1, 2]\nsite = "b"\n'
    )
    out = cluster.work / "interrupt.json"
    argv = ["--targets", str(targets), "--json", str(out), "--timeout", "120"]
    scan = subprocess.Popen(
        chanscan(*argv, "--dask", cluster.address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.seen.wait(60), "the slow shard never reached the server"
        time.sleep(3)  # the quick shard (closed ports, the other site) comes back meanwhile
        assert scan.poll() is None
        scan.send_signal(sig)
        _, err = scan.communicate(timeout=60)
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait(10)
    assert scan.returncode == 3, err
    assert "Traceback" not in err and "interrupted" in err
    doc = json.loads(out.read_text())
    assert doc["complete"] is False
    rows = {(e["address"], e["port"]): e for e in doc["endpoints"]}
    assert set(rows) == {("127.77.5.2", 1), ("127.77.5.2", 2)}
    assert {r["vantage"]["worker"] for r in rows.values()} == {"wb"}
    # The running shard was told to stop: the worker lets go of the server long before
    # the 120 s deadline, so the site's worker is free again.
    deadline = time.monotonic() + 15
    while server.open and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.open == 0


def test_local_cluster_and_the_ca_bundle_travel(cluster: Cluster) -> None:
    """``--dask local:1`` starts its own worker process; the ``--ca-bundle`` file's
    contents go with the shard, so the private CA is trusted on the worker."""
    ca = LabCA("chanscan dask test CA")
    cluster.lab.add_stream_server(
        "local-tls", "127.77.9.1", 443, Watched().handler, ssl=server_context(["127.77.9.1"], ca)
    )
    bundle = ca.write_bundle(cluster.work)
    out = cluster.work / "local-cluster.json"
    targets = ["127.77.9.1:443", "127.77.9.2:1", "--ca-bundle", str(bundle)]
    proc = run_chanscan(*targets, "--json", str(out), "--dask", "local:1")
    assert proc.returncode == 0, proc.stderr
    rows = endpoints(out)
    tls = rows[("127.77.9.1", 443)]
    assert tls["tls"]["certificate"]["trusted_custom"] is True
    assert tls["grade"]["overall"].startswith("A")
    assert rows[("127.77.9.2", 1)]["status"] == "closed"
    for row in rows.values():
        assert row["vantage"]["site"] is None
        assert row["vantage"]["worker"].startswith("tcp://127.0.0.1:")


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    import trustme

    ca, other = trustme.CA(), trustme.CA()
    files: dict[str, Path] = {}
    for name, cert in (
        ("node", ca.issue_cert("127.77.0.2")),
        ("client", ca.issue_cert("chanscan-client.lab.example")),
    ):
        files[f"{name}_cert"] = tmp_path / f"{name}.pem"
        files[f"{name}_key"] = tmp_path / f"{name}.key"
        cert.cert_chain_pems[0].write_to_path(str(files[f"{name}_cert"]))
        cert.private_key_pem.write_to_path(str(files[f"{name}_key"]))
    files["ca"], files["other_ca"] = tmp_path / "ca.pem", tmp_path / "other-ca.pem"
    ca.cert_pem.write_to_path(str(files["ca"]))
    other.cert_pem.write_to_path(str(files["other_ca"]))
    return files


def test_tls_between_client_scheduler_and_workers(
    tmp_path: Path, tls_files: dict[str, Path], lab: Lab
) -> None:
    host = "127.77.0.2"
    node = ["--tls-ca-file", str(tls_files["ca"]), "--tls-cert", str(tls_files["node_cert"])]
    node += ["--tls-key", str(tls_files["node_key"])]
    port = free_port(host)
    address = f"tls://{host}:{port}"
    procs = [start_scheduler(tmp_path, host, port, tls=node)]
    try:
        procs.append(start_worker(tmp_path, address, "wt", "t", tls=node))
        client = ["--dask-tls-ca", str(tls_files["ca"])]
        client += ["--dask-tls-cert", str(tls_files["client_cert"])]
        client += ["--dask-tls-key", str(tls_files["client_key"])]
        target = ["--ports", "1", "127.77.6.1"]
        out = tmp_path / "tls.json"
        ok = run_chanscan(*target, "--json", str(out), "--dask", address, *client)
        assert ok.returncode == 0, ok.stderr
        (row,) = endpoints(out).values()
        assert (row["status"], row["vantage"]) == ("closed", {"site": None, "worker": "wt"})

        # A scheduler whose certificate the client's CA did not sign is refused, as is
        # clear text to it, and a scheduler nobody runs: each is one line on stderr and
        # exit 2 before anything is scanned (the watched server sees no connection).
        server = Watched()
        lab.add_stream_server("untouched", "127.77.7.1", 443, server.handler)
        stranger = ["--dask-tls-ca", str(tls_files["other_ca"]), *client[2:]]
        nobody = f"tcp://127.77.0.9:{free_port('127.77.0.9')}"
        attempts = ((address, stranger), (f"tcp://{host}:{port}", []), (nobody, []))
        refused = [
            subprocess.Popen(
                chanscan("127.77.7.1:443", "--dask", a, *flags),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for a, flags in attempts
        ]
        for p, (a, _) in zip(refused, attempts, strict=True):
            out, err = p.communicate(timeout=60)
            assert p.returncode == 2, err
            assert err.startswith(f"chanscan: error: --dask {a}: cannot reach the Dask scheduler")
            assert len(err.splitlines()) == 1 and out == "", err
        assert server.count == 0
        bare = run_chanscan(*target, "--dask", address)
        assert bare.returncode == 2
        assert "give --dask-tls-ca, --dask-tls-cert and --dask-tls-key" in bare.stderr
    finally:
        for p in reversed(procs):
            p.stop()
