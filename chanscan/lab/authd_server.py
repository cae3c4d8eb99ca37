"""An ESXi-authd-like lab server (port 902): a plaintext greeting, then TLS.

Real authd sends its ``220 VMware Authentication Daemon`` line as soon as the TCP
connection opens and expects the client's ClientHello right after it; sslyze,
testssl.sh and nmap start the handshake at once and fail on it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable

from chanscan.lab.core import Handle, Lab
from chanscan.lab.tls_context import server_context

AUTHD_BANNER = (
    b"220 VMware Authentication Daemon Version 1.10: SSL Required, "
    b"ServerDaemonProtocol:SOAP, MKSDisplayProtocol:VNC , VMXARGS supported, "
    b"NFCSSL supported/t\r\n"
)
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
    tls = context or server_context(names)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner)
        await writer.drain()
        await asyncio.wait_for(writer.start_tls(tls), _TIMEOUT)
        # Bounded by the client closing (every probe does) or Lab.stop closing us.
        while await asyncio.wait_for(reader.read(4096), _TIMEOUT):
            pass

    return lab.add_stream_server("authd", address, port, handle)
