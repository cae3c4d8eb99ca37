"""Discovery: is the port open, and which management channel speaks on it.

One TCP connection per port: connect (refused = closed, no answer = filtered), wait
briefly for a server-first banner (SSH, ESXi authd), else send the request that port
most likely answers (X.224 for RDP ports, ``GET /`` for plaintext HTTP ports, a TLS
ClientHello elsewhere) and classify the reply. The scheduler wraps all of it in the
endpoint deadline; this module never opens nurseries or sets its own deadline beyond
the sniff waits that define the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from chanscan.discovery_wire import (
    HTTP_PORTS,
    RDP_PORTS,
    SSH_PORTS,
    build_client_hello,
    build_http_request,
    build_x224_connection_request,
    classify_banner,
    classify_reply,
    parse_http_head,
    reply_needs,
    ssh_line_follows,
)
from chanscan.errors import ConnectError
from chanscan.model import Channel, Status
from chanscan.obs.http import HttpObservation
from chanscan.probes.base import ProbeContext

# Ports where the client speaks first (TLS web UIs, WinRM, CIM): no banner wait.
CLIENT_FIRST_PORTS = frozenset({443, 5480, 5986, 5989, 8443, 9443, 80, 5985, 8080, 3389, 2179})

_MAX_REPLY = 16 * 1024


@dataclass(frozen=True)
class Discovery:
    status: Status
    channel: Channel = Channel.UNKNOWN
    banner: bytes = b""
    http: HttpObservation | None = None
    detail: str | None = None
    reply: bytes = b""  # the answer to our sniff request (TLS: the server's first flight)


async def _read_some(
    stream: trio.SocketStream, seconds: float, until: bytes | None
) -> tuple[bytes, bool]:
    """Read until ``until`` appears, EOF, ``_MAX_REPLY`` bytes or ``seconds`` pass.
    Returns the bytes and whether the peer closed the connection."""
    data = b""
    with trio.move_on_after(seconds):
        while len(data) < _MAX_REPLY:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return data, True
            data += chunk
            if until is None or until in data:
                break
    return data, False


async def _read_reply(
    stream: trio.SocketStream, seconds: float, until: bytes | None
) -> tuple[bytes, bool]:
    """:func:`_read_some`, then on for the rest of ``seconds`` while the answer is an
    unfinished TLS record (a lone 0x16 is the start of one, not an unknown protocol)."""
    end = trio.current_time() + seconds
    data, eof = await _read_some(stream, seconds, until)
    while not eof and reply_needs(data) and len(data) < _MAX_REPLY:
        # bounded: every round adds bytes or the time runs out
        left = end - trio.current_time()
        if left <= 0:
            break
        try:
            more, eof = await _read_some(stream, left, None)
        except (trio.BrokenResourceError, OSError):
            return data, True  # reset inside the record: an answer cut short
        if not more:
            break
        data += more
    return data, eof


async def _read_banner(
    stream: trio.SocketStream, seconds: float, ssh_port: bool
) -> tuple[bytes, bool]:
    """A server-first banner: the first line, and on an SSH port, while it looks like
    text lines before an SSH identification (RFC 4253 4.2), more of them within
    ``seconds``, up to the SSH probe's caps."""
    end = trio.current_time() + seconds
    data, eof = await _read_some(stream, seconds, b"\n")
    while ssh_port and not eof and ssh_line_follows(data):  # bounded: caps and time
        left = end - trio.current_time()
        if left <= 0:
            break
        more, eof = await _read_some(stream, left, b"\n")
        if not more:
            break
        data += more
    return data, eof


def _first_request(port: int, server_name: str | None, host: str) -> tuple[bytes, bytes | None]:
    if port in RDP_PORTS:
        return build_x224_connection_request(), None
    if port in HTTP_PORTS:
        return build_http_request(server_name or host), b"\r\n\r\n"
    return build_client_hello(server_name), None


def _request_name(port: int) -> str:
    if port in RDP_PORTS:
        return "X.224 connection request"
    return "HTTP request" if port in HTTP_PORTS else "TLS ClientHello"


async def discover(ctx: ProbeContext) -> Discovery:
    ep, opts = ctx.endpoint, ctx.options
    try:
        async with ctx.connection() as stream:
            # The whole sniff answers within one connect deadline, so a tarpit costs
            # discovery no more than a filtered port does.
            budget = opts.connect_timeout
            banner = b""
            if ep.port not in CLIENT_FIRST_PORTS:
                waited = min(opts.sniff_timeout, budget / 2)
                budget -= waited
                banner, eof = await _read_banner(stream, waited, ep.port in SSH_PORTS)
                if eof and not banner:
                    return Discovery(Status.ERROR, detail="closed the connection without a word")
                if banner:
                    sniff = classify_banner(banner)
                    if (
                        sniff.channel is None
                        and ep.port in SSH_PORTS
                        and ssh_line_follows(banner, capped=True)
                    ):
                        # Text lines up to the cap and no identification: the SSH
                        # probe reads on and names the cap it hit.
                        return Discovery(Status.OK, Channel.SSH, banner)
                    if sniff.channel is None:
                        return Discovery(Status.OK, Channel.UNKNOWN, banner, detail=sniff.detail)
                    if sniff.channel is Channel.AUTHD:
                        # authd's line is followed by TLS on the same connection
                        return Discovery(Status.OK, Channel.AUTHD, banner)
                    return Discovery(Status.OK, sniff.channel, banner)
            request, until = _first_request(ep.port, ep.server_name, ep.address)
            try:
                await stream.send_all(request)
            except (trio.BrokenResourceError, OSError) as exc:
                return Discovery(Status.ERROR, detail=f"connection lost while sniffing: {exc}")
            try:
                reply, eof = await _read_reply(stream, budget, until)
            except (trio.BrokenResourceError, OSError) as exc:
                # A reset before any byte of an answer is the server refusing our
                # request, not a lost connection of ours.
                return Discovery(
                    Status.ERROR,
                    detail=f"reset by the peer after our {_request_name(ep.port)}, "
                    f"before any answer ({exc})",
                )
    except ConnectError as exc:
        if exc.kind == "refused":
            return Discovery(Status.CLOSED, detail=str(exc))
        if exc.kind in ("timeout", "down"):  # down: its host answered nothing so far
            return Discovery(Status.FILTERED, detail=str(exc))
        return Discovery(Status.ERROR, detail=str(exc))
    except (trio.BrokenResourceError, OSError) as exc:
        return Discovery(Status.ERROR, detail=f"connection lost while sniffing: {exc}")
    if not reply and eof:
        return Discovery(
            Status.ERROR,
            detail=f"closed by the peer after our {_request_name(ep.port)}, before any answer",
        )
    if reply_needs(reply):
        got = "closed after" if eof else f"no more within {opts.connect_timeout:g}s after"
        return Discovery(
            Status.ERROR if eof else Status.TIMEOUT,
            detail=f"TLS record header incomplete: {got} {len(reply)} of its 5 bytes "
            f"({reply.hex()})",
        )
    if not reply:
        return Discovery(
            Status.TIMEOUT,
            detail=f"TCP open but no protocol answer within {opts.connect_timeout:g}s",
        )
    sniff = classify_reply(reply)
    if sniff.channel is Channel.HTTP:
        return Discovery(Status.OK, Channel.HTTP, http=parse_http_head(reply))
    if sniff.channel is Channel.SSH:
        return Discovery(Status.OK, Channel.SSH, reply)
    if sniff.channel is None:
        auth = classify_banner(reply)
        if auth.channel is not None:
            return Discovery(Status.OK, auth.channel, reply)
        return Discovery(Status.OK, Channel.UNKNOWN, reply, detail=sniff.detail)
    return Discovery(Status.OK, sniff.channel, detail=sniff.detail or None, reply=reply)
