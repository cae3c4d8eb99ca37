"""An ESXi-authd-like lab server (port 902): a plaintext greeting, then TLS.

Real authd sends its ``220 VMware Authentication Daemon`` line as soon as the TCP
connection opens and expects the client's ClientHello right after it; sslyze,
testssl.sh and nmap start the handshake at once and fail on it.

This is the lab's one authd: :data:`AUTHD_BANNER` is the greeting every lab module and
test uses.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable

from chanscan.lab.core import Handle, Lab, require_loopback
from chanscan.lab.tls_context import server_context

# ESXi authd's greeting on 902 as nmap's service probes record it.
AUTHD_BANNER = (
    b"220 VMware Authentication Daemon Version 1.10: SSL Required, "
    b"ServerDaemonProtocol:SOAP, MKSDisplayProtocol:VNC , VMXARGS supported, "
    b"NFCSSL supported/t\r\n"
)
# Said to whatever arrives over TLS before closing: the lab speaks no authd commands.
_REFUSAL = b"500 chanscan lab authd: no commands\r\n"
_TIMEOUT = 10.0


def add_authd_server(
    lab: Lab,
    address: str,
    port: int,
    *,
    context: ssl.SSLContext | None = None,
    names: Iterable[str] = ("esx.lab.example",),
    banner: bytes = AUTHD_BANNER,
) -> Handle:
    """Greet with ``banner``, then TLS with ``context`` (a leaf for ``names`` from a
    fresh private CA when not given). The first bytes after the handshake get one line
    and the connection closes, so a scanner waiting for an answer (a renegotiation or
    heartbeat check) hears at once instead of at its socket timeout."""
    require_loopback(address)
    tls = context or server_context(names)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner)
        await writer.drain()
        await asyncio.wait_for(writer.start_tls(tls), _TIMEOUT)
        if await asyncio.wait_for(reader.read(4096), _TIMEOUT):
            writer.write(_REFUSAL)
            await writer.drain()

    return lab.add_stream_server("authd", address, port, handle)
