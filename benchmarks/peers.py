"""How each tool is run against the fleet, and how a missing peer is installed or
skipped (always with a printed line, never silently)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.fleet import SCAN_PORTS, FleetEndpoint

# sslyze scan commands covering what chanscan's TLS probe checks (versions and suites,
# certificate, the classic vulnerabilities, renegotiation, compression, fallback SCSV,
# 0-RTT, groups, HSTS, EMS). ``--mozilla_config disable`` keeps its exit code about the
# scan, not about Mozilla's profile.
SSLYZE_COMMANDS = (
    "--certinfo",
    "--sslv2",
    "--sslv3",
    "--tlsv1",
    "--tlsv1_1",
    "--tlsv1_2",
    "--tlsv1_3",
    "--heartbleed",
    "--openssl_ccs",
    "--robot",
    "--reneg",
    "--compression",
    "--fallback",
    "--early_data",
    "--elliptic_curves",
    "--http_headers",
    "--ems",
    "--mozilla_config",
    "disable",
)


@dataclass(frozen=True)
class Invocation:
    """One tool run: the argv and the endpoints whose connections it is charged for."""

    tool: str
    argv: tuple[str, ...]
    endpoints: tuple[FleetEndpoint, ...]
    output: Path


@dataclass(frozen=True)
class Peer:
    name: str
    build: Callable[[Sequence[FleetEndpoint], Path, ScanSettings], Invocation | None]


@dataclass(frozen=True)
class ScanSettings:
    """The deadlines given to chanscan (and, where they have one, the peers)."""

    timeout: float = 60.0  # chanscan's per-endpoint deadline
    connect_timeout: float = 3.0
    scan_hosts: tuple[str, ...] = ()  # chanscan/nmap scan these hosts x SCAN_PORTS


def _ports() -> str:
    return ",".join(str(p) for p in SCAN_PORTS)


def chanscan_cmd(eps: Sequence[FleetEndpoint], out: Path, s: ScanSettings) -> Invocation:
    hosts = s.scan_hosts or tuple(sorted({e.address for e in eps}))
    argv = (
        sys.executable,
        "-m",
        "chanscan",
        "scan",
        *hosts,
        "--ports",
        _ports(),
        "--json",
        str(out),
        "--timeout",
        f"{s.timeout:g}",
        "--connect-timeout",
        f"{s.connect_timeout:g}",
        "--allow-unreachable",
        "--fail-on",
        "critical",
        "--no-color",
    )
    return Invocation("chanscan", argv, tuple(eps), out)


def sslyze_cmd(eps: Sequence[FleetEndpoint], out: Path, s: ScanSettings) -> Invocation | None:
    tls = [e for e in eps if e.kind == "tls"]
    if not tls:
        return None
    # host:port{ip}: scanned by IP with no name to resolve, as chanscan does.
    targets = [f"{e.address}:{e.port}{{{e.address}}}" for e in tls]
    argv = (
        sys.executable,
        "-m",
        "sslyze",
        "--quiet",
        f"--json_out={out}",
        *SSLYZE_COMMANDS,
        *targets,
    )
    return Invocation("sslyze", argv, tuple(tls), out)


def _ssh_audit(
    rate_test: bool,
) -> Callable[[Sequence[FleetEndpoint], Path, ScanSettings], Invocation | None]:
    def build(eps: Sequence[FleetEndpoint], out: Path, s: ScanSettings) -> Invocation | None:
        ssh = [e for e in eps if e.kind == "ssh"]
        exe = shutil.which("ssh-audit")
        if not ssh or exe is None:
            return None
        targets = out.with_suffix(".targets")
        targets.write_text("".join(f"{e.address}:{e.port}\n" for e in ssh))
        argv: tuple[str, ...] = (exe, "-j", "-T", str(targets))
        if not rate_test:
            argv += ("--skip-rate-test",)
        tool = "ssh-audit" if rate_test else "ssh-audit --skip-rate-test"
        return Invocation(tool, argv, tuple(ssh), out)

    return build


def nmap_cmd(eps: Sequence[FleetEndpoint], out: Path, s: ScanSettings) -> Invocation | None:
    exe = shutil.which("nmap")
    if exe is None:
        return None
    hosts = s.scan_hosts or tuple(sorted({e.address for e in eps}))
    # -Pn: loopback hosts need no ping; -n: no reverse DNS of 127.60.x.y.
    argv = (
        exe,
        "-Pn",
        "-n",
        "-p",
        _ports(),
        "--script",
        "ssl-enum-ciphers,ssh2-enum-algos",
        "-oX",
        str(out),
        *hosts,
    )
    return Invocation("nmap", argv, tuple(eps), out)


PEERS: tuple[Peer, ...] = (
    Peer("chanscan", chanscan_cmd),
    Peer("sslyze", sslyze_cmd),
    Peer("ssh-audit", _ssh_audit(True)),
    Peer("ssh-audit --skip-rate-test", _ssh_audit(False)),
    Peer("nmap", nmap_cmd),
)


def _run(argv: Sequence[str]) -> bool:
    try:
        return subprocess.run(list(argv), capture_output=True, timeout=600).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_peers(log: Callable[[str], None], install: bool = True) -> list[str]:
    """Install what is missing (ssh-audit from PyPI, nmap and nginx from Debian) when
    ``install``; return one line per peer still missing."""
    missing: list[str] = []
    if importlib.util.find_spec("sslyze") is None:
        missing.append("sslyze: not importable (it is a chanscan dependency; pip install -e .)")
    if shutil.which("ssh-audit") is None and install:
        log("installing ssh-audit from PyPI")
        _run([sys.executable, "-m", "pip", "install", "-q", "ssh-audit"])
    if shutil.which("ssh-audit") is None:
        missing.append("ssh-audit: not installed and could not be installed; skipped")
    apt = [p for p, exe in (("nmap", "nmap"), ("nginx-light", "nginx")) if not shutil.which(exe)]
    if apt and install and shutil.which("apt-get"):
        log(f"installing {' '.join(apt)} from Debian")
        if not _run(["apt-get", "install", "-y", "-q", *apt]):
            _run(["apt-get", "update", "-q"])
            _run(["apt-get", "install", "-y", "-q", *apt])
    if shutil.which("nmap") is None:
        missing.append("nmap: not installed and could not be installed; skipped")
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx: not installed; the fleet uses openssl s_server only")
    return missing


def versions() -> dict[str, str]:
    """Versions for the machine line."""
    out: dict[str, str] = {"python": sys.version.split()[0]}
    for mod in ("chanscan", "sslyze", "asyncssh", "trio", "cryptography"):
        try:
            from importlib.metadata import version

            out[mod] = version(mod)
        except Exception:
            out[mod] = "not installed"
    for name, argv in (
        ("openssh", ["/usr/sbin/sshd", "-V"]),
        ("openssl", ["openssl", "version"]),
        ("ssh-audit", ["ssh-audit", "--help"]),
        ("nmap", ["nmap", "--version"]),
        ("nginx", ["nginx", "-v"]),
    ):
        out[name] = _first_line(argv, name)
    return out


def _first_line(argv: Sequence[str], name: str) -> str:
    try:
        p = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (p.stdout + p.stderr).strip()
    for line in text.splitlines():
        if name == "ssh-audit" and "ssh-audit v" in line:
            return line.strip("# ").split(",")[0]
        if name != "ssh-audit" and line.strip():
            return line.strip()
    return "unknown"
