"""TLS lab servers for tests and demos: Python ``ssl`` servers on the lab loop and
``openssl s_server`` processes, each with a certificate made to show one fault.

Python 3.11 links OpenSSL 3.0 here, which is built without 3DES and RC4, so the
"legacy" server shows TLS 1.0/1.1, CBC and static-RSA suites but no SWEET32 suite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from chanscan.lab.core import Handle, Lab, require_loopback

AUTHD_BANNER = (
    b"220 VMware Authentication Daemon Version 1.10: SSL Required, "
    b"ServerDaemonProtocol:SOAP, MKSDisplayProtocol:VNC , VMXARGS supported, "
    b"NFCSSL supported/t\r\n"
)

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
class Issued:
    cert_pem: bytes  # leaf first, then the issuing CA when not self-signed
    key_pem: bytes
    ca_pem: bytes | None  # the private CA (for --ca-bundle); None when self-signed


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chanscan lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


# DER of the AlgorithmIdentifier OIDs (RFC 4055 / RFC 3279): same length, so the TBS
# can be patched in place.
_OID_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
_OID_SHA1_RSA = bytes.fromhex("06092a864886f70d010105")


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _sign(builder: x509.CertificateBuilder, key: Any, hash_name: str) -> x509.Certificate:
    """Sign with SHA-256, or with SHA-1 for the weak-signature lab fault: cryptography
    refuses SHA-1 in the builder, so the SHA-256 TBS gets the SHA-1 OID and is signed
    by hand (RSA keys only, which is what the "RSA-1024 SHA-1" fault needs)."""
    cert = builder.sign(key, hashes.SHA256())
    if hash_name != "sha1":
        return cert
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the SHA-1 lab fault needs an RSA signing key")
    tbs = cert.tbs_certificate_bytes.replace(_OID_SHA256_RSA, _OID_SHA1_RSA, 1)
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    alg = _der(0x30, _OID_SHA1_RSA + b"\x05\x00")
    der = _der(0x30, tbs + alg + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def issue(spec: CertSpec) -> Issued:
    """A leaf (and, unless self-signed, a private CA) as PEM."""
    now = dt.datetime.now(dt.UTC)
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = (
        rsa.generate_private_key(65537, spec.rsa_bits)
        if spec.key == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    not_before = now + dt.timedelta(days=spec.not_before_days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(spec.names[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=spec.days_valid))
        .add_extension(_san(spec.names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if spec.self_signed:
        cert = _sign(builder.issuer_name(_name(spec.names[0])), key, spec.hash)
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem, None)
    ca_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, 2048)
        if spec.hash == "sha1"
        else ec.generate_private_key(ec.SECP256R1())
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("chanscan lab private CA"))
        .issuer_name(_name("chanscan lab private CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = _sign(builder.issuer_name(ca_cert.subject), ca_key, spec.hash)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    return Issued(cert.public_bytes(serialization.Encoding.PEM) + ca_pem, key_pem, ca_pem)


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


def server_context(issued: Issued, profile: ServerProfile = MODERN) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; the legacy lab server exists to offer them.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = profile.minimum
        ctx.maximum_version = profile.maximum
    # Set before loading the chain: SECLEVEL decides whether a 1024-bit key loads.
    ctx.set_ciphers(profile.ciphers)
    # Python's SSLContext turns server preference on by default; undo it when asked.
    if profile.server_preference:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    with tempfile.TemporaryDirectory(prefix="chanscan-lab-") as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        ctx.load_cert_chain(cert, key)
    return ctx


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
    issued: Issued,
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
    ctx = server_context(issued, profile)
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


def authd_server(
    lab: Lab, address: str, port: int, issued: Issued, profile: ServerProfile = MODERN
) -> Handle:
    """ESXi authd (902) look-alike: the plaintext 220 line, then a TLS handshake."""
    require_loopback(address)
    ctx = server_context(issued, profile)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AUTHD_BANNER)
        await writer.drain()
        await asyncio.wait_for(writer.start_tls(ctx), 10)
        await _http_handler(reader, writer, None)

    return lab.add_stream_server("authd", address, port, handler)


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
    issued: Issued,
    extra_args: Sequence[str] = (),
    name: str = "openssl-s_server",
) -> Handle:
    """``openssl s_server -www`` (a real OpenSSL stack), stopped by pid."""
    require_loopback(address)
    host = f"[{address}]" if ":" in address else address
    with tempfile.TemporaryDirectory(prefix="chanscan-lab-") as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
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
        if issued.ca_pem is not None:
            # s_server sends only the first certificate of -cert; the rest goes here.
            chain = Path(tmp, "chain.pem")
            chain.write_bytes(issued.ca_pem)
            argv += ["-cert_chain", str(chain)]
        # s_server reads the files at start-up; add_process returns once it listens.
        return lab.add_process(name, address, port, argv)
