"""TLS lab servers for tests and demos: Python ``ssl`` servers on the lab loop and
``openssl s_server`` processes, each with a certificate made to show one fault.

Python 3.11 links OpenSSL 3.0 here, which is built without 3DES and RC4, so the
"legacy" server shows TLS 1.0/1.1, CBC and static-RSA suites but no SWEET32 suite.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chanscan.lab.certs import Issued, LabCA, new_key, self_signed
from chanscan.lab.core import Handle, Lab, require_loopback
from chanscan.lab.tls_context import context_for

_HTTP_BODY = b"chanscan lab\n"


@dataclass(frozen=True)
class CertSpec:
    names: tuple[str, ...] = ("chanscan.test",)  # DNS names or IP literals for the SAN
    key: str = "ec"  # "ec" (P-256) or "rsa"
    rsa_bits: int = 2048
    hash: str = "sha256"  # or "sha1"
    days_valid: int = 90
    not_before_days: int = -1  # relative to now; positive = not yet valid
    self_signed: bool = False


@dataclass(frozen=True)
class ServerCert:
    """A lab server's certificate: the leaf and, unless self-signed, its private CA."""

    leaf: Issued
    ca: Issued | None = None

    @property
    def chain(self) -> tuple[Issued, ...]:
        return () if self.ca is None else (self.ca,)

    @property
    def cert_pem(self) -> bytes:
        """The leaf, then the issuing CA: what a server presents."""
        return self.leaf.pem + b"".join(c.pem for c in self.chain)

    @property
    def key_pem(self) -> bytes:
        return self.leaf.key_pem

    @property
    def ca_pem(self) -> bytes | None:
        """The private CA (for ``--ca-bundle``); None when self-signed."""
        return None if self.ca is None else self.ca.pem


def issue(spec: CertSpec) -> ServerCert:
    """A leaf as ``spec`` says, self-signed or from a fresh private CA."""
    key = new_key("rsa", spec.rsa_bits) if spec.key == "rsa" else new_key()
    start = datetime.now(UTC) + timedelta(days=spec.not_before_days)
    if spec.self_signed:
        leaf = self_signed(
            *spec.names, key=key, hash_name=spec.hash, not_before=start, days=spec.days_valid
        )
        return ServerCert(leaf)
    # A SHA-1 signature needs an RSA issuer (see certs._sign_sha1).
    ca = LabCA("chanscan lab private CA", key=new_key("rsa", 2048) if spec.hash == "sha1" else None)
    leaf = ca.issue(
        *spec.names, key=key, hash_name=spec.hash, not_before=start, days=spec.days_valid
    )
    return ServerCert(leaf, ca.issued)


@dataclass(frozen=True)
class ServerProfile:
    """How a Python ``ssl`` lab server negotiates."""

    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    ciphers: str = "ECDHE+AESGCM:ECDHE+CHACHA20"  # TLS 1.2 and below
    server_preference: bool = True


MODERN = ServerProfile()
# SECLEVEL=0 is what lets OpenSSL 3.0 speak TLS 1.0/1.1 and SHA-1 at all.
LEGACY = ServerProfile(
    minimum=ssl.TLSVersion.TLSv1,
    maximum=ssl.TLSVersion.TLSv1_2,
    ciphers="ECDHE+AESGCM:ECDHE+AES:AES128-SHA:AES256-SHA:AES128-SHA256:@SECLEVEL=0",
    server_preference=False,
)


def profile_context(issued: ServerCert, profile: ServerProfile = MODERN) -> ssl.SSLContext:
    return context_for(
        issued.leaf,
        issued.chain,
        minimum=profile.minimum,
        maximum=profile.maximum,
        ciphers=profile.ciphers,
        server_preference=profile.server_preference,
    )


async def _http_handler(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hsts: str | None
) -> None:
    # Answer one request the way a management web UI would, so sslyze's HTTP headers
    # command has something to read.
    data = await asyncio.wait_for(reader.read(4096), 10)
    if not data:
        return
    headers = [b"HTTP/1.1 200 OK", b"Server: chanscan-lab", b"Connection: close"]
    if hsts is not None:
        headers.append(b"Strict-Transport-Security: " + hsts.encode())
    headers.append(b"Content-Length: %d" % len(_HTTP_BODY))
    writer.write(b"\r\n".join(headers) + b"\r\n\r\n" + _HTTP_BODY)
    await writer.drain()


def python_tls_server(
    lab: Lab,
    address: str,
    port: int,
    issued: ServerCert,
    profile: ServerProfile = MODERN,
    *,
    hsts: str | None = None,
    name: str = "python-tls",
    sni_log: list[str | None] | None = None,
    reject_ip_sni: bool = False,
) -> Handle:
    """A Python ``ssl`` server that answers HTTP requests after the handshake.

    ``sni_log`` collects the server name of every ClientHello (None: no SNI).
    ``reject_ip_sni`` answers an IP literal in SNI with illegal_parameter, as strict
    stacks do (RFC 6066 section 3 forbids it)."""
    require_loopback(address)
    ctx = profile_context(issued, profile)
    if sni_log is not None or reject_ip_sni:

        def on_sni(
            _obj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext
        ) -> int | None:
            if sni_log is not None:
                sni_log.append(server_name)
            if reject_ip_sni and server_name is not None and _is_ip(server_name):
                return ssl.ALERT_DESCRIPTION_ILLEGAL_PARAMETER
            return None

        ctx.sni_callback = on_sni

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _http_handler(reader, writer, hsts)

    return lab.add_stream_server(name, address, port, handler, ssl=ctx)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    finally:
        dst.close()


def hello_extensions(hello: bytes) -> set[int]:
    """Extension types of a TLS ClientHello handshake message (RFC 8446 4.1.2)."""
    pos = 4 + 2 + 32  # handshake header, legacy_version, random
    pos += 1 + hello[pos]  # session id
    pos += 2 + int.from_bytes(hello[pos : pos + 2], "big")  # cipher suites
    pos += 1 + hello[pos]  # compression methods
    if pos + 2 > len(hello):
        return set()
    end = min(len(hello), pos + 2 + int.from_bytes(hello[pos : pos + 2], "big"))
    pos += 2
    found: set[int] = set()
    while pos + 4 <= end:  # bounded by the hello's length
        found.add(int.from_bytes(hello[pos : pos + 2], "big"))
        pos += 4 + int.from_bytes(hello[pos + 2 : pos + 4], "big")
    return found


def hello_filter_proxy(
    lab: Lab,
    address: str,
    port: int,
    backend_port: int,
    drop: Callable[[bytes], bool],
    name: str = "hello-filter",
) -> Handle:
    """A middlebox in front of a lab server: a ClientHello record for which
    ``drop(record_body)`` is true is answered by closing the connection; anything
    else is relayed to ``address:backend_port``."""
    require_loopback(address)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        header = await asyncio.wait_for(reader.readexactly(5), 10)
        length = int.from_bytes(header[3:5], "big")
        body = await asyncio.wait_for(reader.readexactly(length), 10) if header[0] == 0x16 else b""
        if header[0] == 0x16 and drop(body):
            return  # the connection is closed by the lab's tracked wrapper
        up_reader, up_writer = await asyncio.open_connection(address, backend_port)
        up_writer.write(header + body)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return lab.add_stream_server(name, address, port, handler)


def hello_intolerant_proxy(
    lab: Lab, address: str, port: int, backend_port: int, drop: tuple[int, int] = (256, 511)
) -> Handle:
    """The F5 bug (https://support.f5.com/csp/article/K14758): a ClientHello record
    whose length falls in ``drop`` is dropped."""
    low, high = drop
    return hello_filter_proxy(
        lab, address, port, backend_port, lambda body: low <= len(body) <= high, "hello-intolerant"
    )


def version_intolerant_proxy(lab: Lab, address: str, port: int, backend_port: int) -> Handle:
    """A middlebox that drops any ClientHello carrying ``supported_versions`` (RFC 8446
    4.2.1, type 43): modern clients fail while per-version legacy hellos get through."""
    return hello_filter_proxy(
        lab,
        address,
        port,
        backend_port,
        lambda body: 43 in hello_extensions(body),
        "version-intolerant",
    )


def single_worker_server(lab: Lab, address: str, port: int, backend_port: int) -> Handle:
    """A BMC-class appliance: one connection at a time; a second concurrent one is
    closed at once. Relays to a lab TLS server on ``backend_port``."""
    require_loopback(address)
    busy = asyncio.Lock()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if busy.locked():
            return
        async with busy:
            up_reader, up_writer = await asyncio.open_connection(address, backend_port)
            back = asyncio.ensure_future(_pipe(up_reader, writer))
            # Free the worker once the client is done sending, as a real appliance
            # does when the peer closes, not when our relay has finished tearing down.
            await _pipe(reader, up_writer)
        await back

    return lab.add_stream_server("single-worker", address, port, handler)


def plaintext_http_server(lab: Lab, address: str, port: int) -> Handle:
    """WinRM-HTTP (5985) / port 80 look-alike: answers anything with plaintext HTTP."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(reader.read(4096), 10)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    return lab.add_stream_server("plain-http", address, port, handler)


def openssl_server(
    lab: Lab,
    address: str,
    port: int,
    issued: ServerCert,
    extra_args: Sequence[str] = (),
    name: str = "openssl-s_server",
) -> Handle:
    """``openssl s_server -www`` (a real OpenSSL stack), stopped by pid."""
    require_loopback(address)
    host = f"[{address}]" if ":" in address else address
    with tempfile.TemporaryDirectory(prefix="chanscan-lab-") as tmp:
        cert, key = issued.leaf.write(Path(tmp), "server")
        argv = [
            "openssl",
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            f"{host}:{port}",
            "-cert",
            str(cert),
            "-key",
            str(key),
            *extra_args,
        ]
        if issued.ca is not None:
            # s_server sends only the first certificate of -cert; the rest goes here.
            chain, _ = issued.ca.write(Path(tmp), "chain")
            argv += ["-cert_chain", str(chain)]
        # s_server reads the files at start-up; add_process returns once it listens.
        return lab.add_process(name, address, port, argv)
