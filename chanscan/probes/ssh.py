"""The SSH probe: identification and KEXINIT over trio, host keys and auth methods via
asyncssh on the scheduler's asyncio loop.

Connections per endpoint: one for the greeting, one per host key family the server
offers (RSA once, whatever its signature algorithms; each ECDSA curve, Ed25519, DSA and
each certificate type separately) and one for the ``none`` authentication query. The
asyncssh connections never send a password or a key: host keys come from a key
exchange that stops after NEWKEYS, auth methods from the server's answer to ``none``
(RFC 4252 5.2).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any

import asyncssh
import trio
from asyncssh.compression import get_compression_algs
from asyncssh.encryption import get_encryption_algs
from asyncssh.kex import get_kex_algs
from asyncssh.mac import get_mac_algs
from asyncssh.public_key import get_certificate_algs, get_public_key_algs

from chanscan.errors import ConnectError, ProtocolError
from chanscan.model import Channel
from chanscan.obs.ssh import HostKey, KexInit, SshObservation
from chanscan.probes.base import ProbeContext
from chanscan.probes.ssh_wire import (
    MAX_ID_LINE,
    MAX_PACKET,
    MAX_PRE_BANNER_BYTES,
    MAX_SKIPPED_PACKETS,
    NeedMore,
    SshHello,
    WireError,
    escape,
    key_bits,
    parse_hello,
)

CLIENT_SOFTWARE = "chanscan_0.1"
CLIENT_ID = f"SSH-2.0-{CLIENT_SOFTWARE}\r\n".encode("ascii")
MAX_HELLO_BYTES = MAX_PRE_BANNER_BYTES + MAX_ID_LINE + (MAX_SKIPPED_PACKETS + 1) * MAX_PACKET

CERT_SUFFIX = "-cert-v01@openssh.com"
# One RSA key answers for all three RSA signature algorithms (RFC 8332 3); ask with the
# strongest one the server offers so that the handshake succeeds on modern clients.
_RSA_ALGS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def _names(algs: list[bytes]) -> list[str]:
    return [a.decode("ascii") for a in algs]


def _kex_algs() -> list[str]:
    # Everything asyncssh implements except GSS-API kex (needs Kerberos, no host key):
    # the point is to reach servers that only speak legacy algorithms (a BMC with
    # diffie-hellman-group1-sha1 alone).
    return _names([a for a in get_kex_algs() if not a.startswith(b"gss-")])


def _host_key_algs(offered: tuple[str, ...]) -> list[str]:
    """The server's host key algorithms that asyncssh implements (ssh-dss included,
    which asyncssh's defaults leave out)."""
    known = set(_names([*get_public_key_algs(), *get_certificate_algs()]))
    return [a for a in offered if a in known]


def _client_algs() -> dict[str, list[str]]:
    return {
        "kex_algs": _kex_algs(),
        "encryption_algs": _names(get_encryption_algs()),
        "mac_algs": _names(get_mac_algs()),
        "compression_algs": _names(get_compression_algs()),
    }


def _is_rsa(base: str) -> bool:
    # ssh-rsa-sha256@ssh.com and friends are Tectia's RSA signature variants.
    return base in _RSA_ALGS or (base.startswith("ssh-rsa-sha") and base.endswith("@ssh.com"))


def host_key_requests(offered: tuple[str, ...]) -> tuple[str, ...]:
    """The host key algorithms to ask for, one per key family (and one per certificate
    family), in the server's order; unknown to asyncssh -> still asked, fails visibly."""
    out: list[str] = []
    seen: set[str] = set()
    for alg in offered:
        cert = alg.endswith(CERT_SUFFIX)
        base = alg[: -len(CERT_SUFFIX)] if cert else alg
        family = ("rsa" if _is_rsa(base) else base) + (" cert" if cert else "")
        if family in seen:
            continue
        seen.add(family)
        if _is_rsa(base):
            suffix = CERT_SUFFIX if cert else ""
            alg = next((a + suffix for a in _RSA_ALGS if a + suffix in offered), alg)
        out.append(alg)
    return tuple(out)


class SshProbe:
    channel = Channel.SSH

    async def run(self, ctx: ProbeContext) -> SshObservation:
        hello = await read_hello(ctx)
        ident = hello.identification
        base = SshObservation(
            identification=ident.line,
            protocol_version=ident.protocol_version,
            software=ident.software,
            product=ident.product,
            product_version=ident.product_version,
            comments=ident.comments,
            pre_banner=ident.pre_banner,
            kexinit=hello.kexinit,
            auth_user=ctx.options.ssh_user,
        )
        if hello.kexinit is None:
            return replace(base, not_determined=("kexinit", "host_keys", "auth_methods"))
        if not ident.ascii:
            # asyncssh decodes the identification as ASCII and drops the connection
            # otherwise; the exchange hash covers the line, so it cannot be rewritten
            # on the way either. KEXINIT above is all we can see.
            why = "asyncssh cannot read an identification that is not US-ASCII"
            return replace(
                base,
                not_determined=("host_keys", "auth_methods"),
                errors=(f"host_keys: {why}", f"auth_methods: {why}"),
            )
        return await _client_checks(ctx, base, hello.kexinit)


async def read_hello(ctx: ProbeContext) -> SshHello:
    """Send our identification and read the server's up to its KEXINIT."""
    async with ctx.connection() as stream:
        buf = bytearray()
        try:
            # RFC 4253 4.2: both sides may send the identification at once; OpenSSH
            # only sends its KEXINIT after it has read ours.
            await stream.send_all(CLIENT_ID)
            while True:  # bounded: MAX_HELLO_BYTES, and the scheduler's deadline
                res = parse_hello(bytes(buf))
                if isinstance(res, SshHello):
                    return res
                if isinstance(res, WireError):
                    raise ProtocolError(wire_error_text(res))
                assert isinstance(res, NeedMore)
                if len(buf) > MAX_HELLO_BYTES:
                    raise ProtocolError("no KEXINIT within the size limit")
                data = await stream.receive_some(65536)
                if not data:
                    break
                buf += data
        except trio.BrokenResourceError as exc:
            # A server that answers and resets at once (HTTP 400) is told by what it
            # sent before the reset, not by the reset.
            if not buf:
                raise ConnectError("reset", f"connection reset before any data: {exc}") from None
        raise ProtocolError(_closed_early(bytes(buf)))


def wire_error_text(err: WireError) -> str:
    """Name the cause in the server's own protocol: once a server has sent a valid
    SSH identification, a broken packet is its SSH protocol error, not a sign of
    another protocol."""
    if err.after_id or err.code in ("id_too_long", "pre_banner_too_long"):
        return f"SSH protocol error ({err.code}): {err.detail}"
    return f"not an SSH-2 server ({err.code}): {err.detail}"


def _closed_early(buf: bytes) -> str:
    if not buf:
        return "connection closed before the server's greeting"
    if buf.startswith(b"SSH-") or b"\nSSH-" in buf:
        return "connection closed before the server's KEXINIT"
    first = escape(buf.split(b"\n", 1)[0].rstrip(b"\r")[:80])
    return f"not an SSH-2 server: it sent {first!r}"


async def _client_checks(ctx: ProbeContext, base: SshObservation, kex: KexInit) -> SshObservation:
    requests = host_key_requests(kex.host_key)
    thunks: list[Callable[[], Awaitable[HostKey | str | tuple[str, ...]]]] = [
        partial(_host_key, ctx, alg) for alg in requests
    ]
    thunks.append(partial(_auth_methods, ctx, _host_key_algs(kex.host_key)))
    results = await ctx.gather(thunks)
    keys: list[HostKey] = []
    missing: list[str] = []
    errors: list[str] = []
    for alg, res in zip(requests, results[:-1], strict=True):
        if isinstance(res, HostKey):
            keys.append(res)
        else:
            missing.append(f"host_key:{alg}")
            errors.append(f"host_key:{alg}: {res}")
    auth = results[-1]
    methods: tuple[str, ...] = ()
    if isinstance(auth, tuple):
        methods = auth
    else:
        missing.append("auth_methods")
        errors.append(f"auth_methods: {auth}")
    return replace(
        base,
        host_keys=tuple(keys),
        auth_methods=methods,
        not_determined=tuple(missing),
        errors=tuple(errors),
    )


async def _options(ctx: ProbeContext) -> Any:
    return await asyncssh.SSHClientConnectionOptions.construct(
        client_version=CLIENT_SOFTWARE,
        connect_timeout=ctx.options.network_timeout,
        login_timeout=ctx.options.network_timeout,
        client_keys=None,  # never load, never offer a key
        agent_path=None,
        password=None,
        kbdint_auth=False,
        gss_auth=False,
        gss_kex=False,
        host_based_auth=False,
        **_client_algs(),
    )


async def _host_key(ctx: ProbeContext, alg: str) -> HostKey | str:
    ep = ctx.endpoint

    async def fetch() -> asyncssh.SSHKey | None:
        opts = await _options(ctx)
        # get_server_host_key and get_server_auth_methods rebuild the options with
        # their own kex_algs / server_host_key_algs arguments, whose default () means
        # asyncssh's modern defaults: pass them, or a legacy-only server never matches.
        return await asyncssh.get_server_host_key(
            ep.address,
            ep.port,
            kex_algs=_kex_algs(),
            server_host_key_algs=[alg],
            config=None,
            options=opts,
        )

    try:
        async with ctx.budget():
            ctx.count_connections()
            key = await ctx.run_asyncio(fetch)
    except (asyncssh.Error, OSError, ValueError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if key is None:
        return "no host key (GSS kex)"
    blob: bytes = key.public_data
    # asyncssh verified the server's signature over the exchange hash with this key
    # during the key exchange (kex_dh: key.verify(h, sig)), or the handshake failed.
    return HostKey(
        algorithm=alg,
        key_type=str(key.get_algorithm()),
        bits=key_bits(blob),
        fingerprint=key.get_fingerprint("sha256"),
        verified=True,
        certificate=alg.endswith(CERT_SUFFIX),
    )


async def _auth_methods(ctx: ProbeContext, host_key_algs: list[str]) -> tuple[str, ...] | str:
    ep = ctx.endpoint

    async def fetch() -> list[str]:
        opts = await _options(ctx)
        methods = await asyncssh.get_server_auth_methods(
            ep.address,
            ep.port,
            ctx.options.ssh_user,
            kex_algs=_kex_algs(),
            server_host_key_algs=host_key_algs or (),
            config=None,
            options=opts,
        )
        return list(methods)

    try:
        async with ctx.budget():
            ctx.count_connections()
            return tuple(await ctx.run_asyncio(fetch))
    except (asyncssh.Error, OSError, ValueError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
