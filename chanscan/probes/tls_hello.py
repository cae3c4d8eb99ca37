"""The hellos the TLS probe sends itself from trio (no sslyze): the modern handshake
with Python's OpenSSL 3 (TLS or plaintext? which version does a modern client get? what
did the first handshake show?) and the one-group TLS 1.3 hellos for the RFC 7919
finite-field groups nassl cannot offer. Bytes and verdicts for the latter come from the
pure :mod:`chanscan.probes.tls13_groups`.
"""

from __future__ import annotations

import functools
import ssl
import warnings

import trio

from chanscan.errors import ProtocolError
from chanscan.probes import tls13_groups
from chanscan.probes.base import ProbeContext
from chanscan.probes.tls_first import FirstHandshake, size_limit_error, too_large

__all__ = ["ffdhe_groups", "first_handshake", "modern_handshake", "read_line"]

_PY_VERSIONS = {
    "SSLv3": "SSL 3.0",
    "TLSv1": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
}
_TLS_FIRST_BYTES = frozenset(range(20, 25)) | frozenset(range(0x80, 0x100))
_MAX_PREFACE = 1024
_RECORDED = 4096  # enough for a ServerHello and the header of the Certificate after it


class _Recorder(trio.abc.Stream):
    """Passes bytes through and keeps the first ones the server sent, to tell a TLS
    alert from a plaintext answer when the handshake fails, and to say what the
    server's plaintext first flight showed when it was too large to finish."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.first = b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        if len(self.first) < _RECORDED:
            self.first += bytes(data[: _RECORDED - len(self.first)])
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


def _modern_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # trust is judged from the chain, not here
    # SECLEVEL=0 lets OpenSSL 3 offer TLS 1.0/1.1 so old servers can answer at all.
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Deprecated in Python, but offering TLS 1.0 is how old servers answer at all.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


async def read_line(stream: trio.abc.Stream) -> bytes:
    buf = b""
    while b"\n" not in buf:  # bounded by _MAX_PREFACE
        if len(buf) >= _MAX_PREFACE:
            raise ProtocolError("plaintext greeting before TLS is longer than expected")
        chunk = await stream.receive_some(_MAX_PREFACE - len(buf))
        if not chunk:
            raise ProtocolError("connection closed during the plaintext greeting")
        buf += chunk
    return buf.split(b"\n", 1)[0].rstrip(b"\r")


async def _first_record(stream: trio.abc.Stream) -> bytes:
    buf = b""
    need = 5
    while len(buf) < need:  # bounded: need <= MAX_RECORD and every pass adds or ends
        chunk = await stream.receive_some(need - len(buf))
        if not chunk:
            raise ProtocolError(f"closed after our ClientHello ({len(buf)} bytes in)")
        buf += chunk
        if need == 5 and len(buf) == 5:
            try:
                need = tls13_groups.record_length(buf)
            except tls13_groups.Tls13WireError as exc:
                raise ProtocolError(str(exc)) from None
    return buf


async def ffdhe_groups(ctx: ProbeContext, expect_preface: bool) -> tuple[list[str], list[str]]:
    """(the RFC 7919 groups the server takes for TLS 1.3, the ones not determined): one
    ClientHello per group, each inside one read's bound (sslyze's network timeout)."""
    bound = ctx.options.network_timeout

    async def one(name: str) -> bool | None:
        group = tls13_groups.FFDHE_GROUPS[name]
        with trio.move_on_after(bound):
            try:
                async with ctx.connection() as stream:
                    if expect_preface:
                        await read_line(stream)
                    hello = tls13_groups.encode_client_hello(group, ctx.endpoint.server_name)
                    await stream.send_all(hello)
                    first = await _first_record(stream)
                return tls13_groups.decode_server_first(first, group).supported
            except tls13_groups.Tls13WireError:
                return None
            except (ProtocolError, trio.BrokenResourceError) as exc:
                # Hanging up on a hello that names only an unknown group is a refusal,
                # as an alert would be; a reset before anything is not an answer.
                return False if "closed after" in str(exc) else None
        return None

    names = list(tls13_groups.FFDHE_GROUPS)
    answers = await ctx.gather([functools.partial(one, n) for n in names])
    taken = [n for n, a in zip(names, answers, strict=True) if a]
    unknown = [n for n, a in zip(names, answers, strict=True) if a is None]
    return taken, unknown


async def modern_handshake(
    ctx: ProbeContext, expect_preface: bool
) -> tuple[str | None, bytes | None]:
    """(negotiated version or None when the modern hello failed, the greeting line)."""
    first, preface = await first_handshake(ctx, expect_preface)
    return (None if first is None else first.version), preface


async def first_handshake(
    ctx: ProbeContext, expect_preface: bool
) -> tuple[FirstHandshake | None, bytes | None]:
    """The modern handshake: what it showed (None when it failed) and the greeting."""
    async with ctx.connection() as stream:
        preface = await read_line(stream) if expect_preface else None
        rec = _Recorder(stream)
        tls = trio.SSLStream(rec, _modern_context(), server_hostname=ctx.endpoint.server_name)
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            if rec.first and rec.first[0] not in _TLS_FIRST_BYTES:
                snippet = rec.first[:40].decode("ascii", "replace").splitlines()[0]
                raise ProtocolError(
                    f"not TLS: the server answered in plaintext ({snippet!r})"
                ) from None
            if too_large(exc):
                raise size_limit_error(rec.first) from None
            return None, preface
        version = _PY_VERSIONS.get(str(tls.version()))
        if version is None:
            return None, preface
        cipher = tls.cipher()
        leaf = tls.getpeercert(binary_form=True)
        return FirstHandshake(version, cipher[0] if cipher else "", leaf), preface
