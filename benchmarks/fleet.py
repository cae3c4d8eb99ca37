"""The loopback fleet: real TLS and SSH servers behind counting TCP proxies.

Every live endpoint a tool is pointed at is a small relay on ``127.60.1.N`` in front
of the real server on ``127.60.2.N``. The relay counts the connections it accepts, so
"connections per endpoint" is measured on the server side, never taken from a tool's
own report. Closed ports are simply ports nobody listens on in the scanned range.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chanscan.lab import Handle, Lab, LabError, require_loopback
from chanscan.lab.legacy_tls import esxi55_host
from chanscan.lab.ssh_servers import sshd_available, start_legacy_asyncssh, start_sshd
from chanscan.lab.tls_servers import CertSpec, ServerCert, issue, openssl_server

FRONT_NET = "127.60.1."
BACK_NET = "127.60.2."
TARPIT_ADDRESS = "127.60.3.1"
SSH_PORT = 22
TLS_PORT = 443
ESXI55_SDK_PORT = 8055  # the plaintext /sdk imitation behind the ESXi 5.5 TLS front
# Ports chanscan (and nmap) scan across the fleet's address range; any address/port
# pair with no server behind it is a closed port (RST), as on a real management VLAN.
SCAN_PORTS = (SSH_PORT, TLS_PORT)

# OpenSSL 3.0 needs SECLEVEL=0 for TLS 1.0/1.1 and SHA-1 at all.
_LEGACY_OPENSSL_CIPHERS = "ALL:@SECLEVEL=0"
_MODERN_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


@dataclass(frozen=True)
class FleetEndpoint:
    name: str
    kind: str  # "tls" or "ssh"
    address: str  # the counting relay a tool is pointed at
    port: int
    server: str  # what answers behind the relay

    @property
    def target(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass
class Counter:
    """Accepted connections per (address, port), updated on the lab loop thread, with
    the monotonic time of each accept (to tell connections made after a deadline)."""

    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    times: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def hit(self, address: str, port: int) -> None:
        key = (address, port)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.times.setdefault(key, []).append(time.monotonic())

    def reset(self) -> None:
        self.counts.clear()
        self.times.clear()

    def snapshot(self) -> dict[tuple[str, int], int]:
        return dict(self.counts)

    def accepted_after(self, address: str, port: int, moment: float) -> int:
        """Connections accepted after ``moment`` (``time.monotonic()``)."""
        return sum(1 for t in self.times.get((address, port), ()) if t > moment)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float = 0.0) -> None:
    # Half-close is relayed (write_eof) instead of closing: sslyze and nmap both read a
    # server's last alert after they stop sending.
    if delay > 0:
        await _delayed_pipe(src, dst, delay)
        return
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except OSError:
        dst.transport.abort()


async def _delayed_pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float) -> None:
    """A link with a one-way delay: each chunk (and the final EOF) is delivered
    ``delay`` seconds after it arrived, chunks in order, reading never paused (a WAN
    link keeps carrying bytes while earlier ones are in flight)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:  # ends at the EOF marker (b"")
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if dst.can_write_eof():
                    dst.write_eof()
                return
            dst.write(data)
            await dst.drain()

    sender = asyncio.ensure_future(deliver())
    try:
        while data := await src.read(65536):
            queue.put_nowait((loop.time() + delay, data))
        queue.put_nowait((loop.time() + delay, b""))
        await sender
    except OSError:
        dst.transport.abort()
    finally:
        sender.cancel()


def counting_proxy(
    lab: Lab,
    counter: Counter,
    address: str,
    port: int,
    backend: tuple[str, int],
    delay: float = 0.0,
) -> Handle:
    """A TCP relay on ``address:port`` to ``backend`` that counts accepted connections.
    ``delay``: one-way delay in seconds, both directions (RTT = 2 x delay on top of
    loopback), plus one RTT for the connect to the backend as a real link would add
    to the TCP handshake."""
    require_loopback(address)
    require_loopback(backend[0])

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter.hit(address, port)
        try:
            if delay > 0:
                await asyncio.sleep(2 * delay)  # the TCP handshake's round trip
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*backend), 10)
        except (OSError, TimeoutError):
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay))
        finally:
            up_writer.close()

    return lab.add_stream_server(f"relay-{address}:{port}", address, port, handler)


def counting_tarpit(lab: Lab, counter: Counter, address: str, port: int) -> Handle:
    """Accepts, counts, and never sends a byte (a hung management agent)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter.hit(address, port)
        while await reader.read(4096):
            pass

    return lab.add_stream_server("tarpit", address, port, hold)


# -- nginx --------------------------------------------------------------------------------
NGINX = "/usr/sbin/nginx"

_NGINX_MODERN = f"""
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers {_MODERN_TLS12_CIPHERS};
    ssl_prefer_server_ciphers on;
    add_header Strict-Transport-Security "max-age=31536000" always;
"""
_NGINX_LEGACY = f"""
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
    ssl_ciphers {_LEGACY_OPENSSL_CIPHERS};
    ssl_prefer_server_ciphers off;
    ssl_session_tickets on;
"""


def nginx_available() -> bool:
    return shutil.which(NGINX) is not None or Path(NGINX).exists()


def start_nginx(
    lab: Lab, address: str, port: int, issued: ServerCert, *, legacy: bool, name: str
) -> Handle:
    """A real nginx (Debian's build) with its own prefix, config and pid in a temp dir."""
    require_loopback(address)
    tmp = Path(tempfile.mkdtemp(prefix="chanscan-nginx-"))
    lab.register(Handle(f"{name}-tmp", address, port, lambda: shutil.rmtree(tmp, True)))
    (tmp / "cert.pem").write_bytes(issued.cert_pem)
    (tmp / "key.pem").write_bytes(issued.key_pem)
    (tmp / "logs").mkdir()
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/logs/error.log crit;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen {address}:{port} ssl;
    ssl_certificate {tmp}/cert.pem;
    ssl_certificate_key {tmp}/key.pem;
    {_NGINX_LEGACY if legacy else _NGINX_MODERN}
    location / {{ return 200 "chanscan bench\\n"; }}
  }}
}}
"""
    )
    check = subprocess.run(
        [NGINX, "-t", "-p", str(tmp), "-c", str(conf)], capture_output=True, text=True, timeout=30
    )
    if check.returncode != 0:
        raise LabError(f"nginx rejected its config: {check.stderr.strip()[:400]}")
    return lab.add_process(name, address, port, [NGINX, "-p", str(tmp), "-c", str(conf)])


# -- the fleet ------------------------------------------------------------------------------
@dataclass
class Fleet:
    lab: Lab
    counter: Counter
    endpoints: list[FleetEndpoint]
    skipped: list[str]
    host_count: int  # the scanned range is FRONT_NET + 1 .. host_count

    @property
    def tls(self) -> list[FleetEndpoint]:
        return [e for e in self.endpoints if e.kind == "tls"]

    @property
    def ssh(self) -> list[FleetEndpoint]:
        return [e for e in self.endpoints if e.kind == "ssh"]

    @property
    def scan_range(self) -> str:
        return f"{FRONT_NET}1-{FRONT_NET}{self.host_count}"

    def connections(self, eps: list[FleetEndpoint]) -> dict[str, int]:
        snap = self.counter.snapshot()
        return {e.name: snap.get((e.address, e.port), 0) for e in eps}


def tlslite_available() -> bool:
    return importlib.util.find_spec("tlslite") is not None


def _tls_backend(
    lab: Lab, kind: str, back: str, front: str, legacy: bool, name: str
) -> tuple[Handle, str]:
    if kind == "esxi55":
        # SSL 3.0 / TLS 1.0 with RC4 and 3DES (tlslite-ng), the vSphere /sdk behind it
        handle, _ = esxi55_host(lab, back, TLS_PORT, backend_port=ESXI55_SDK_PORT)
        return handle, "ESXi 5.5-like host (tlslite-ng)"
    spec = CertSpec(names=(front,), key="rsa" if legacy else "ec")
    issued = issue(spec)
    if kind == "nginx":
        return start_nginx(lab, back, TLS_PORT, issued, legacy=legacy, name=name), "nginx"
    args: list[str] = ["-cipher", _LEGACY_OPENSSL_CIPHERS] if legacy else []
    if not legacy:
        args += ["-no_tls1", "-no_tls1_1", "-cipher", _MODERN_TLS12_CIPHERS]
    return openssl_server(lab, back, TLS_PORT, issued, args, name=name), "openssl s_server"


def start_fleet(lab: Lab, *, smoke: bool = False) -> Fleet:
    """Start the fleet. ``smoke``: one TLS and one SSH endpoint (CI's quick run)."""
    counter = Counter()
    endpoints: list[FleetEndpoint] = []
    skipped: list[str] = []
    plan: list[tuple[str, str, bool]] = [("tls", "openssl", False), ("ssh", "sshd", False)]
    if not smoke:
        plan += [
            ("tls", "openssl", True),
            ("tls", "nginx", False),
            ("tls", "nginx", True),
            ("ssh", "sshd", True),
            ("ssh", "asyncssh", True),
            ("tls", "esxi55", True),
        ]
    n = 0
    for kind, server, legacy in plan:
        if server == "nginx" and not nginx_available():
            skipped.append("nginx endpoints: nginx not installed (apt-get install nginx-light)")
            continue
        if server == "esxi55" and not tlslite_available():
            skipped.append("ESXi 5.5 endpoint: tlslite-ng not installed (pip install tlslite-ng)")
            continue
        if server == "sshd" and not sshd_available():
            skipped.append("sshd endpoints: /usr/sbin/sshd not installed")
            continue
        n += 1
        front, back = f"{FRONT_NET}{n}", f"{BACK_NET}{n}"
        label = server if server == "esxi55" else f"{server}-{'legacy' if legacy else 'modern'}"
        if kind == "tls":
            _, what = _tls_backend(lab, server, back, front, legacy, label)
            port = TLS_PORT
        elif server == "sshd":
            start_sshd(lab, back, SSH_PORT, legacy=legacy, name=label)
            what, port = "OpenSSH sshd", SSH_PORT
        else:
            start_legacy_asyncssh(lab, back, SSH_PORT)
            what, port = "asyncssh", SSH_PORT
        counting_proxy(lab, counter, front, port, (back, port))
        desc = f"{what} ({'legacy' if legacy else 'modern'} config)"
        endpoints.append(FleetEndpoint(label, kind, front, port, desc))
    return Fleet(lab, counter, endpoints, skipped, n)


def start_tarpits(lab: Lab, counter: Counter) -> list[FleetEndpoint]:
    """One tarpit on the TLS port and one on the SSH port of ``TARPIT_ADDRESS``."""
    out = []
    for kind, port in (("tls", TLS_PORT), ("ssh", SSH_PORT)):
        counting_tarpit(lab, counter, TARPIT_ADDRESS, port)
        out.append(FleetEndpoint(f"tarpit-{port}", kind, TARPIT_ADDRESS, port, "tarpit"))
    return out


@contextlib.contextmanager
def running_fleet(smoke: bool = False) -> Iterator[Fleet]:
    """For interactive use: ``with running_fleet() as fleet: ...``."""
    with Lab() as lab:
        yield start_fleet(lab, smoke=smoke)
