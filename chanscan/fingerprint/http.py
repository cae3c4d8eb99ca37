"""A minimal HTTP/1.1 exchange over a trio stream: one request, one bounded answer.

Fingerprinting sends at most a handful of fixed requests, so a full client is not
needed; ``Connection: close`` lets a body without length end at EOF (RFC 9112 6.3).
"""

from __future__ import annotations

import ssl
import warnings
from dataclasses import dataclass
from typing import Any, cast

import trio

from chanscan.errors import ProtocolError

MAX_HEAD = 32 * 1024
MAX_BODY = 256 * 1024

_PY_VERSIONS = {
    "TLS 1.0": ssl.TLSVersion.TLSv1,
    "TLS 1.1": ssl.TLSVersion.TLSv1_1,
    "TLS 1.2": ssl.TLSVersion.TLSv1_2,
    "TLS 1.3": ssl.TLSVersion.TLSv1_3,
}


def client_context(version: str | None = None) -> ssl.SSLContext:
    """A client context for reading public identification over whatever TLS the server
    speaks: the oldest appliances (ESXi 5.5, XenServer 7.1 behind stunnel) answer only
    TLS 1.0 with RSA-1024 / SHA-1 certificates and static-RSA, 3DES or RC4 suites,
    which OpenSSL 3 offers only at security level 0 with the minimum version lowered.
    ``version`` (what the server chose in discovery's handshake) pins the version.
    Trust is judged by the TLS probe from the chain, never here."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:COMPLEMENTOFDEFAULT:@SECLEVEL=0")
    pinned = _PY_VERSIONS.get(version or "")
    with warnings.catch_warnings():
        # Deprecated in Python; speaking TLS 1.0 is how these hosts answer at all.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = pinned or ssl.TLSVersion.TLSv1
        if pinned is not None:
            ctx.maximum_version = pinned
    return ctx


def failure_reason(exc: BaseException) -> str:
    """Never empty: trio's BrokenResourceError carries the TLS error as its cause,
    and an exception with no text is named by its type."""
    parts: list[str] = []
    seen: BaseException | None = exc
    for _ in range(4):  # bounded: a short cause chain
        if seen is None:
            break
        text = str(seen).strip()
        if isinstance(seen, ssl.SSLError) and seen.reason:
            text = f"TLS: {seen.reason}" + (f" ({seen.library})" if seen.library else "")
        if text and text not in parts:
            parts.append(text)
        seen = seen.__cause__ or seen.__context__
    return "; ".join(parts) or type(exc).__name__


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name: str) -> tuple[str, ...]:
        name = name.lower()
        return tuple(v for k, v in self.headers if k == name)


def build_request(
    method: str,
    path: str,
    host: str,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: chanscan"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _receive_until(stream: trio.abc.Stream, buf: bytearray, need: int) -> bool:
    """Grow ``buf`` to ``need`` bytes; False at EOF."""
    while len(buf) < need:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return False
        buf += chunk
    return True


def parse_head(head: bytes) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP answer: {lines[0][:60]!r}")
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", tuple(headers)


def _dechunk(data: bytes) -> bytes | None:
    """Decode a complete chunked body, or None if it is not complete yet."""
    out = bytearray()
    pos = 0
    while True:  # bounded: each chunk advances pos; a zero chunk ends
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        size_text = data[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError("bad chunk size") from None
        if size == 0:
            return bytes(out)
        start = end + 2
        if start + size + 2 > len(data):
            return None
        out += data[start : start + size]
        pos = start + size + 2
        if len(out) > MAX_BODY:
            return bytes(out[:MAX_BODY])


async def exchange(stream: trio.abc.Stream, request: bytes) -> HttpResponse:
    await stream.send_all(request)
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            raise ProtocolError("HTTP header too large")
        chunk = await stream.receive_some(65536)
        if not chunk:
            if not buf:
                raise ProtocolError("connection closed without an HTTP answer")
            raise ProtocolError("connection closed inside the HTTP header")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status, reason, headers = parse_head(head)
    body = bytearray(rest)
    hdr = dict(headers)
    if "chunked" in hdr.get("transfer-encoding", "").lower():
        while (decoded := _dechunk(bytes(body))) is None and len(body) < MAX_BODY + 4096:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            body += chunk
        final = decoded if decoded is not None else bytes(body[:MAX_BODY])
    elif "content-length" in hdr and hdr["content-length"].isdigit():
        need = min(int(hdr["content-length"]), MAX_BODY)
        await _receive_until(stream, body, need)
        final = bytes(body[:need])
    else:
        while len(body) < MAX_BODY:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            body += chunk
        final = bytes(body[:MAX_BODY])
    return HttpResponse(status, reason, headers, final)


# -- legacy TLS through nassl's OpenSSL 1.0.2 -------------------------------------------
# Debian's OpenSSL 3 has no SSL 3.0, RC4 or 3DES at all, whatever the security level;
# nassl (sslyze's OpenSSL wrapper) ships a legacy OpenSSL build that still speaks them.
# Blocking: callers run it on a worker thread; the socket timeout bounds every step.


def _python_suites() -> frozenset[int]:
    ctx = client_context()
    # get_ciphers() ids carry OpenSSL's 0x0300xxxx prefix over the IANA code point.
    return frozenset(c["id"] & 0xFFFF for c in ctx.get_ciphers())


def needs_legacy_client(version: str | None, suite: int | None) -> bool:
    """Whether the version and suite the server chose for discovery's hello are out
    of reach of Python's OpenSSL (SSL 3.0; RC4, 3DES and other removed suites)."""
    if version == "SSL 3.0":
        return True
    return suite is not None and version != "TLS 1.3" and suite not in _python_suites()


def parse_response(data: bytes) -> HttpResponse:
    """A whole HTTP/1.1 answer read to EOF (``Connection: close``)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise ProtocolError("connection closed inside the HTTP header")
    status, reason, headers = parse_head(head)
    hdr = dict(headers)
    if "chunked" in hdr.get("transfer-encoding", "").lower():
        body = _dechunk(rest) or rest
    elif hdr.get("content-length", "").isdigit():
        body = rest[: int(hdr["content-length"])]
    else:
        body = rest
    return HttpResponse(status, reason, headers, bytes(body[:MAX_BODY]))


class _OneRecordSocket:
    """Hands nassl one TLS record per ``recv``. nassl's ``read`` passes one recv's
    bytes to OpenSSL and returns one SSL_read, which decrypts one record: two records
    in one recv (a server's 1/n-1 split against BEAST, headers and body) would leave
    the second inside OpenSSL, lost when the next recv meets EOF."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""

    def _fill(self, n: int) -> bool:
        while len(self._buf) < n:  # bounded by n and the socket timeout
            chunk = self._sock.recv(65536)
            if not chunk:
                return False
            self._buf += chunk
        return True

    def recv(self, _size: int) -> bytes:
        if not self._fill(5):
            out, self._buf = self._buf, b""
            return out
        self._fill(5 + int.from_bytes(self._buf[3:5], "big"))
        size = 5 + int.from_bytes(self._buf[3:5], "big")
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def send(self, data: bytes) -> int:
        return int(self._sock.send(data))

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def settimeout(self, value: float | None) -> None:
        self._sock.settimeout(value)

    def close(self) -> None:
        self._sock.close()


def legacy_https(
    address: str,
    port: int,
    server_name: str | None,
    version: str,
    request: bytes,
    timeout: float,
) -> tuple[HttpResponse, bytes | None]:
    """Blocking: one request over ``version`` ("any", or a name as "TLS 1.0") with
    nassl's legacy OpenSSL; the answer and the leaf certificate (DER)."""
    import socket

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from nassl.legacy_ssl_client import LegacySslClient
    from nassl.ssl_client import OpenSslVerifyEnum, OpenSslVersionEnum

    from chanscan.probes.sslyze_adapter import OpenSSLError  # the one home of private names

    versions = {
        "any": OpenSslVersionEnum.SSLV23,  # SSL 3.0 to TLS 1.2, the server picks
        "SSL 3.0": OpenSslVersionEnum.SSLV3,
        "TLS 1.0": OpenSslVersionEnum.TLSV1,
        "TLS 1.1": OpenSslVersionEnum.TLSV1_1,
        "TLS 1.2": OpenSslVersionEnum.TLSV1_2,
    }
    sock = socket.create_connection((address, port), timeout=timeout)
    try:
        client = LegacySslClient(
            underlying_socket=cast(socket.socket, _OneRecordSocket(sock)),
            ssl_version=versions[version],
            ssl_verify=OpenSslVerifyEnum.NONE,
        )
        if server_name:
            client.set_tlsext_host_name(server_name)
        client.set_cipher_list("ALL:COMPLEMENTOFALL")
        client.do_handshake()
        chain = client.get_received_chain()
        leaf = (
            x509.load_pem_x509_certificate(chain[0].encode()).public_bytes(Encoding.DER)
            if chain
            else None
        )
        client.write(request)
        data = bytearray()
        while len(data) < MAX_HEAD + MAX_BODY:  # bounded; Connection: close ends it
            try:
                chunk = client.read(65536)
            except (OSError, OpenSSLError):
                # The end of the answer: EOF (nassl's IOError "peer closed") or the
                # server's close_notify (SslError "Connection was shut down by peer").
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()  # no close_notify: the server closes first (Connection: close)
    return parse_response(bytes(data)), leaf
