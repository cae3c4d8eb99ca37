"""Misbehaving endpoints: what half-broken management appliances do to a scanner.

One server per misbehaviour class of issue 12, each on the lab's asyncio loop and
stopped by its handle:

1. :func:`close_after_hello` closes (FIN) or resets (RST) right after the ClientHello;
2. :func:`trickle` sends one byte every few seconds (a TLS record header that never
   completes);
3. :func:`pre_banner_proxy` sends lines before the SSH identification (RFC 4253 4.2
   allows them), then relays to a real SSH server;
4. a real sshd with non-ASCII bytes in its identification (``VersionAddendum``, see
   :func:`chanscan.lab.ssh_servers.start_sshd`);
5. :func:`oversized_chain_server` sends a ~1 MiB chain of 200 certificates;
6. :func:`reset_after_first` answers one connection, then resets everyone for a while;
7. :func:`busy_worker` serves one connection at a time with a backlog of 1, then is
   busy (accepts nothing) for a long time;
8. :func:`ssh_raw_server` sends an SSH identification and then whatever bytes it is
   given (a 2 GiB packet length, a 1 MiB identification line).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID, ObjectIdentifier

from chanscan.lab.certs import Issued, new_key
from chanscan.lab.core import Handle, Lab, require_loopback

# A private-use OID (the 2.25 UUID arc, ITU-T X.667) for the padding extension that
# makes each chain certificate large; non-critical, so parsers skip it.
_PADDING_OID = ObjectIdentifier("2.25.329800735698586629295641978511506172918")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST rather than a FIN (SO_LINGER with a zero timeout)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def close_after_hello(
    lab: Lab, address: str, port: int, *, reset: bool = False, name: str = "close-after-hello"
) -> Handle:
    """Reads the first bytes the client sends (its ClientHello), then closes with FIN,
    or with RST when ``reset``, before sending a single byte."""
    require_loopback(address)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(4096), 10)
        if reset:
            _reset(writer)

    return lab.add_stream_server(name, address, port, handler)


def trickle(
    lab: Lab,
    address: str,
    port: int,
    data: bytes = b"\x16\x03\x01\x00",
    interval: float = 2.0,
    name: str = "trickle",
) -> Handle:
    """Waits for the client's first bytes, then sends ``data`` one byte every
    ``interval`` seconds (the default: a TLS handshake record header that never
    completes) and holds the connection until the client leaves."""
    require_loopback(address)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(4096), 10)
        for i in range(len(data)):  # bounded by len(data)
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(interval)
        while await reader.read(4096):
            pass

    return lab.add_stream_server(name, address, port, handler)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    finally:
        dst.close()


def pre_banner_proxy(
    lab: Lab,
    address: str,
    port: int,
    backend_port: int,
    lines: int,
    name: str = "ssh-pre-banner",
) -> Handle:
    """Sends ``lines`` text lines (a login notice, as some BMCs and TCP wrappers do)
    before relaying to the SSH server on ``address:backend_port``, whose identification
    then follows as the first line of its own."""
    require_loopback(address)
    notice = b"".join(b"Notice %d: authorised use only\r\n" % i for i in range(lines))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(notice)
        await writer.drain()
        up_reader, up_writer = await asyncio.open_connection(address, backend_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return lab.add_stream_server(name, address, port, handler)


def ssh_raw_server(
    lab: Lab, address: str, port: int, payload: bytes, name: str = "ssh-raw"
) -> Handle:
    """Sends ``payload`` (an identification line and whatever follows it) at once and
    holds the connection until the client leaves."""
    require_loopback(address)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        while await reader.read(4096):
            pass

    return lab.add_stream_server(name, address, port, handler)


#: An SSH-2 server whose first binary packet claims 2^31 - 1 bytes (RFC 4253 6.1
#: caps what a client must accept at 35000).
HUGE_PACKET = b"SSH-2.0-OpenSSH_7.4\r\n" + struct.pack("!IB", 0x7FFFFFFF, 4) + b"\x14" * 64
#: A 1 MiB identification line.
LONG_IDENTIFICATION = b"SSH-2.0-" + b"A" * (1024 * 1024) + b"\r\n"


def _padded(subject: str, issuer: x509.Name | None, padding: int) -> Issued:
    key = new_key()
    start = datetime.now(UTC) - timedelta(hours=1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    blob = b"\x04\x82" + struct.pack("!H", padding) + b"\x00" * padding  # OCTET STRING
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=90))
        .add_extension(x509.UnrecognizedExtension(_PADDING_OID, blob), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def oversized_chain(count: int = 200, padding: int = 5000) -> tuple[Issued, tuple[Issued, ...]]:
    """A leaf and ``count - 1`` further certificates, each carrying ``padding`` bytes of
    a private extension: about ``count * padding`` bytes on the wire (200 x 5000 is
    about 1 MiB, ten times OpenSSL's 100 KiB ``max_cert_list`` on the client side).
    The chain does not verify; nothing gets that far."""
    leaf = _padded("oversized.lab", None, padding)
    rest = tuple(_padded(f"filler {i}", None, padding) for i in range(count - 1))
    return leaf, rest


def oversized_chain_server(
    lab: Lab,
    address: str,
    port: int,
    *,
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    count: int = 200,
    name: str = "oversized-chain",
) -> Handle:
    """A real Python ``ssl`` server that presents a ~1 MiB chain of ``count``
    certificates, then answers one HTTP request."""
    require_loopback(address)
    leaf, rest = oversized_chain(count)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = maximum
    with tempfile.TemporaryDirectory(prefix="chanscan-lab-") as d:
        crt, key = leaf.write(Path(d), "server", rest)
        ctx.load_cert_chain(crt, key)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(4096), 10)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    return lab.add_stream_server(name, address, port, handler, ssl=ctx)


def reset_after_first(
    lab: Lab,
    address: str,
    port: int,
    backend_port: int,
    *,
    answered: int = 1,
    quiet: float = 30.0,
    name: str = "reset-after-first",
) -> Handle:
    """A flaky load balancer: relays the first ``answered`` connections to the TLS
    server on ``address:backend_port``, then resets every connection for ``quiet``
    seconds after the last relayed one began, then relays again."""
    require_loopback(address)
    state = {"served": 0, "until": 0.0}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        now = time.monotonic()
        if state["served"] >= answered and now < state["until"]:
            _reset(writer)
            return
        if now >= state["until"] and state["served"] >= answered:
            state["served"] = 0
        state["served"] += 1
        state["until"] = now + quiet
        up_reader, up_writer = await asyncio.open_connection(address, backend_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return lab.add_stream_server(name, address, port, handler)


def busy_worker(
    lab: Lab,
    address: str,
    port: int,
    backend_port: int,
    *,
    served: int = 2,
    busy: float = 30.0,
    name: str = "busy-worker",
) -> Handle:
    """An appliance with one worker and a listen backlog of 1: it serves connections
    one at a time (relayed to ``address:backend_port``); after ``served`` of them it
    is busy for ``busy`` seconds and accepts nothing, so new connections sit in the
    backlog (or their SYNs are dropped once it is full)."""
    require_loopback(address)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((address, port))
    lsock.listen(1)
    lsock.setblocking(False)
    count = {"n": 0}

    async def relay(conn: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=conn)
        try:
            up_reader, up_writer = await asyncio.open_connection(address, backend_port)
            await asyncio.wait_for(
                asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer)), 30
            )
        finally:
            writer.close()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        while True:  # until the handle stops the task
            if count["n"] >= served:
                await asyncio.sleep(busy)
                count["n"] = 0
            conn, _ = await loop.sock_accept(lsock)
            count["n"] += 1
            with contextlib.suppress(Exception):
                await relay(conn)  # one worker: the next accept waits for this one

    class _Task:
        def __init__(self, task: asyncio.Task[None]) -> None:
            self.task = task

        def close(self) -> None:
            self.task.cancel()
            lsock.close()

    async def start() -> _Task:
        return _Task(asyncio.ensure_future(serve()))

    return lab.add_server(name, address, port, start)


#: The misbehaviour classes :func:`start_all` starts, by name -> (last octet, port).
CLASSES: dict[str, tuple[int, int]] = {
    "1 FIN after ClientHello": (1, 443),
    "1 RST after ClientHello": (2, 443),
    "2 trickle 0x16 byte by byte": (3, 443),
    "3 10 lines before SSH id": (4, 22),
    "3 2000 lines before SSH id": (5, 22),
    "4 non-ASCII SSH id (sshd)": (6, 22),
    "5 1 MiB chain, TLS 1.2": (7, 443),
    "5 1 MiB chain, TLS 1.3": (8, 443),
    "6 one handshake, then resets": (9, 443),
    "7 one worker, busy 60 s": (10, 443),
    "8 SSH packet length 2^31-1": (11, 22),
    "8 1 MiB SSH identification": (12, 22),
}


def start_all(lab: Lab, net: str, *, sshd: bool = True) -> dict[str, tuple[str, int]]:
    """Every class of :data:`CLASSES` on ``net.<octet>`` (``net`` is three octets of a
    loopback block; relays' backends listen on the same address, other ports). Returns name ->
    (address, port); the sshd class is left out when ``sshd`` is False."""
    from chanscan.lab.ssh_servers import start_sshd
    from chanscan.lab.tls_servers import CertSpec, issue, python_tls_server

    tls_port, ssh_port = 4443, 2201
    out: dict[str, tuple[str, int]] = {}
    for cls, (octet, port) in CLASSES.items():
        addr = f"{net}.{octet}"
        if cls.startswith("1 "):
            close_after_hello(lab, addr, port, reset="RST" in cls)
        elif cls.startswith("2 "):
            trickle(lab, addr, port)
        elif cls.startswith("3 "):
            pre_banner_proxy(lab, addr, port, ssh_port, 10 if "10 lines" in cls else 2000)
            # the proxy relays to the backend on its own address
            pre_banner_backend(lab, addr, ssh_port)
        elif cls.startswith("4 "):
            if not sshd:
                continue
            start_sshd(lab, addr, port, version_addendum=b"Debian-\xc3\xa9\xff")
        elif cls.startswith("5 "):
            top = ssl.TLSVersion.TLSv1_3 if "1.3" in cls else ssl.TLSVersion.TLSv1_2
            oversized_chain_server(lab, addr, port, maximum=top)
        elif cls.startswith("6 "):
            python_tls_server(lab, addr, tls_port, issue(CertSpec(names=("flaky.lab",))))
            reset_after_first(lab, addr, port, tls_port, quiet=60.0)
        elif cls.startswith("7 "):
            python_tls_server(lab, addr, tls_port, issue(CertSpec(names=("busy.lab",))))
            busy_worker(lab, addr, port, tls_port, busy=60.0)
        elif "packet length" in cls:
            ssh_raw_server(lab, addr, port, HUGE_PACKET)
        else:
            ssh_raw_server(lab, addr, port, LONG_IDENTIFICATION)
        out[cls] = (addr, port)
    return out


def pre_banner_backend(lab: Lab, address: str, port: int) -> Handle:
    """The asyncssh server a :func:`pre_banner_proxy` on ``address`` relays to."""
    from chanscan.lab.ssh_servers import start_asyncssh

    return start_asyncssh(lab, address, port, name="ssh-behind-notice", password=True)
