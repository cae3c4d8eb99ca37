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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
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


def _hash(name: str) -> Any:
    # SHA-1 is the fault the "expired RSA-1024 SHA-1" lab certificate shows; the type
    # stubs of cryptography leave it out of sign(), the runtime still accepts it.
    return hashes.SHA1() if name == "sha1" else hashes.SHA256()


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
        cert = builder.issuer_name(_name(spec.names[0])).sign(key, _hash(spec.hash))
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem, None)
    ca_key = ec.generate_private_key(ec.SECP256R1())
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
    cert = builder.issuer_name(ca_cert.subject).sign(ca_key, _hash(spec.hash))
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
    ctx.minimum_version = profile.minimum
    ctx.maximum_version = profile.maximum
    # Set before loading the chain: SECLEVEL decides whether a 1024-bit key loads.
    ctx.set_ciphers(profile.ciphers)
    if profile.server_preference:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
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
) -> Handle:
    """A Python ``ssl`` server that answers HTTP requests after the handshake."""
    require_loopback(address)
    ctx = server_context(issued, profile)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _http_handler(reader, writer, hsts)

    return lab.add_stream_server(name, address, port, handler, ssl=ctx)


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
        # s_server reads the files at start-up; add_process returns once it listens.
        return lab.add_process(name, address, port, argv)
