"""The benchmark harness in smoke mode: real fleet (openssl s_server + OpenSSH sshd behind
counting relays), real peers where installed, one round. Checks the result files'
structure and the server-side connection counts; never asserts a timing."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.fleet import Counter, counting_proxy, counting_tarpit
from benchmarks.measure import round_order, run_child
from chanscan.lab import Lab
from chanscan.lab.ssh_servers import sshd_available

pytestmark = [
    pytest.mark.needs_openssl,
    pytest.mark.needs_sshd,
    pytest.mark.slow,
    pytest.mark.skipif(
        not sshd_available() or shutil.which("openssl") is None, reason="needs sshd and openssl"
    ),
]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("bench")
    assert main(["--smoke", "--no-install", "--out", str(out)]) == 0
    doc = json.loads((out / "latest.json").read_text())
    doc["_md"] = (out / "latest.md").read_text()
    return doc


def test_smoke_result_structure(smoke: dict[str, object]) -> None:
    doc = smoke
    assert doc["mode"] == "smoke" and doc["rounds"] == 1
    machine = doc["machine"]
    assert isinstance(machine, dict)
    assert machine["cores"] >= 1 and machine["memory_mib"] > 0
    assert set(machine["versions"]) >= {"python", "chanscan", "sslyze", "openssh", "openssl"}
    fleet = doc["fleet"]
    assert isinstance(fleet, dict)
    kinds = sorted(e["kind"] for e in fleet["endpoints"])
    assert kinds == ["ssh", "tls"]
    tools = fleet["tools"]
    assert {"chanscan", "sslyze"} <= set(tools)
    for name, t in tools.items():
        assert t["runs"] == 1, name
        assert t["wall_min_s"] <= t["wall_median_s"] <= t["wall_max_s"]
        assert t["cpu_median_s"] >= 0 and t["rss_median_mib"] > 0
        assert t["failures"] == 0, f"{name} was killed at the tool timeout"
    ids = [t["id"] for t in doc["targets"]]
    assert ids == ["wall", "connections", "tarpit", "sweep", "rss", "scaling", "wan", "netns-sweep"]
    assert {t["status"] for t in doc["targets"]} <= {"MET", "MISSED", "NOT MEASURED"}
    scaling = doc["scaling"]
    assert [r["endpoints"] for r in scaling] == [10]
    assert scaling[0]["with_kexinit"] == 10
    md = doc["_md"]
    assert isinstance(md, str)
    assert "## Targets" in md and "| chanscan" in md and "cores" in md


def test_smoke_counts_connections_on_the_server_side(smoke: dict[str, object]) -> None:
    tools = smoke["fleet"]["tools"]  # type: ignore[index]
    cs, sy = tools["chanscan"], tools["sslyze"]
    assert cs["tls_conns_per_endpoint"] >= 1 and cs["ssh_conns_per_endpoint"] >= 1
    assert sy["tls_conns_per_endpoint"] > cs["tls_conns_per_endpoint"]
    assert sy["ssh_conns_per_endpoint"] is None  # sslyze is only charged for TLS endpoints
    # chanscan's JSON reports its own count; the relays' count must agree with it.
    claimed = sum(cs["claimed_connections"].values())
    assert claimed == sum(cs["measurements"][0]["connections"].values())


def test_smoke_coverage_compares_suites(smoke: dict[str, object]) -> None:
    cov = smoke["fleet"]["coverage"]  # type: ignore[index]
    rows = cov["tls_vs_sslyze"]
    assert len(rows) == 1 and rows[0]["peer"] > 0
    assert rows[0]["only_peer"] == [], "chanscan missed suites sslyze saw"


def test_relay_and_tarpit_count_accepts() -> None:
    counter = Counter()
    with Lab() as lab:
        srv = socket.create_server(("127.60.250.2", 0))
        port = srv.getsockname()[1]
        try:
            counting_proxy(lab, counter, "127.60.250.1", port, ("127.60.250.2", port))
            counting_tarpit(lab, counter, "127.60.250.3", port)
            for _ in range(3):
                with socket.create_connection(("127.60.250.1", port), timeout=5) as c:
                    conn, _addr = srv.accept()
                    with conn:
                        c.sendall(b"ping")
                        assert conn.recv(4) == b"ping"
            with socket.create_connection(("127.60.250.3", port), timeout=5) as t:
                t.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    t.recv(1)
        finally:
            srv.close()
    assert counter.snapshot() == {("127.60.250.1", port): 3, ("127.60.250.3", port): 1}


def test_run_child_reports_child_usage_and_kills_on_timeout(tmp_path: Path) -> None:
    code = "x = bytearray(80 * 1024 * 1024); print(len(x))"
    wall, cpu, rss, rc, timed_out = run_child(
        ["python3", "-c", code], timeout=60, stdout=tmp_path / "o"
    )
    assert rc == 0 and not timed_out and rss >= 80 and cpu >= 0 and wall > 0
    wall, _, _, _, timed_out = run_child(["sleep", "30"], timeout=0.5)
    assert timed_out and wall < 10


def test_round_order_alternates() -> None:
    assert round_order(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert round_order(["a", "b", "c"], 1) == ["c", "b", "a"]


def test_peers_cli_flags_exist() -> None:
    """The flags the harness passes exist in the installed peers' CLIs."""
    exe = shutil.which("ssh-audit")
    if exe is None:
        pytest.skip("ssh-audit not installed")
    text = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30).stdout
    for flag in ("-T", "-j", "--skip-rate-test"):
        assert flag in text
