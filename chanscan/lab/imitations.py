"""Lab endpoints dressed as vCenter, ESXi, XenServer/XCP-ng and Hyper-V hosts.

Each function takes a :class:`Lab`, starts one asyncio server on a loopback address
and returns an :class:`Imitation` whose ``requests`` list records what the server
was asked (so tests count requests on the server side). ESXi's authd on 902 is
:func:`chanscan.lab.authd_server.add_authd_server`. Shapes follow the public
documents and published captures:

- vSphere Web Services API reference: ServiceInstance.RetrieveServiceContent and the
  AboutInfo object; ``/sdk/vimServiceVersions.xml`` namespace file.
- XenAPI wire protocol (https://xapi-project.github.io/xen-api/wire-protocol.html) for
  the XML-RPC ``Failure`` struct; the XAPI welcome page on ``/``.
- DMTF DSP0226 11 and [MS-WSMV] 3.1.4.16 for WS-Man Identify; [MS-WSMV] 3.1.4.1 /
  RFC 4559 for the ``401`` with ``WWW-Authenticate: Negotiate <challenge>``.
- [MS-RDPBCGR] 2.2.1.1/2.2.1.2 (X.224 negotiation), [MS-CSSP] 2.2.1 (TSRequest) and
  [MS-NLMP] 2.2.1.2 (CHALLENGE_MESSAGE) for RDP's CredSSP answer.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from chanscan.fingerprint import credssp, vim
from chanscan.lab import encoders
from chanscan.lab.certs import self_signed
from chanscan.lab.core import Handle, Lab
from chanscan.lab.rdp_server import answer_connection_request
from chanscan.lab.tls_context import context_for
from chanscan.probes.rdp_wire import PROTOCOL_HYBRID

# Real builds (see chanscan/rules/data/vmware_builds.toml for the sources).
ESXI_67 = vim.VimAbout(
    name="VMware ESXi",
    full_name="VMware ESXi 6.7.0 build-14320388",
    vendor="VMware, Inc.",
    version="6.7.0",
    build="14320388",
    os_type="vmnix-x86",
    product_line_id="embeddedEsx",
    api_type="HostAgent",
    api_version="6.7.3",
)
# ESXi 5.5 GA (2013): the legacy TLS host of chanscan.lab.legacy_tls.
ESXI_55 = vim.VimAbout(
    name="VMware ESXi",
    full_name="VMware ESXi 5.5.0 build-1331820",
    vendor="VMware, Inc.",
    version="5.5.0",
    build="1331820",
    os_type="vmnix-x86",
    product_line_id="embeddedEsx",
    api_type="HostAgent",
    api_version="5.5",
)
ESXI_80 = vim.VimAbout(
    name="VMware ESXi",
    full_name="VMware ESXi 8.0.2 build-22380479",
    vendor="VMware, Inc.",
    version="8.0.2",
    build="22380479",
    os_type="vmnix-x86",
    product_line_id="embeddedEsx",
    api_type="HostAgent",
    api_version="8.0.2.0",
)
VCENTER_80 = vim.VimAbout(
    name="VMware vCenter Server",
    full_name="VMware vCenter Server 8.0.2 build-23929136",
    vendor="VMware, Inc.",
    version="8.0.2",
    build="23929136",
    os_type="linux-x64",
    product_line_id="vpx",
    api_type="VirtualCenter",
    api_version="8.0.2.0",
)

ESXI_DEFAULT_OU = "VMware ESX Server Default Certificate"

_SERVICE_FAULT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
    b'<faultstring></faultstring><detail><NotAuthenticatedFault xmlns="urn:vim25"'
    b' xsi:type="NotAuthenticated" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    b"</NotAuthenticatedFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None


@dataclass
class Load:
    """Connections open at once on one imitation, to check the per-host budget."""

    active: int = 0
    peak: int = 0

    def enter(self) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)

    def leave(self) -> None:
        self.active -= 1


@dataclass
class Imitation:
    handle: Handle
    requests: list[Request] = field(default_factory=list)
    load: Load = field(default_factory=Load)

    @property
    def address(self) -> str:
        return self.handle.address

    @property
    def port(self) -> int:
        return self.handle.port


def _server_context(common_name: str, org_unit: str | None = None) -> ssl.SSLContext:
    # Self-signed, as ESXi and XCP-ng ship; made with cryptography (no test-only deps,
    # so ``chanscan demo`` runs from a plain install).
    return context_for(self_signed(common_name, org_unit=org_unit, days=365))


Route = Callable[[Request, bytes], tuple[int, tuple[tuple[str, str], ...], bytes]]

_REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}


def _http_handler(
    route: Route, log: list[Request], load: Load
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        load.enter()
        try:
            await _one_request(reader, writer)
        finally:
            load.leave()

    async def _one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        method, path = [*lines[0].split(" "), "", ""][:2]
        headers = tuple(
            (k.strip().lower(), v.strip())
            for k, _, v in (line.partition(":") for line in lines[1:] if ":" in line)
        )
        req = Request(method, path, headers)
        length = int(req.header("content-length") or 0)
        body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
        log.append(req)
        status, extra, payload = route(req, body)
        out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        out += [f"{k}: {v}" for k, v in extra]
        out += [f"Content-Length: {len(payload)}", "Connection: close"]
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()

    return handle


def vsphere_sdk(
    lab: Lab,
    address: str,
    port: int,
    about: vim.VimAbout,
    *,
    refuse_sdk: bool = False,
    context: ssl.SSLContext | None = None,
    tls: bool = True,
) -> Imitation:
    """An ESXi or vCenter ``/sdk`` answering RetrieveServiceContent without a session.
    ESXi imitations present the default self-signed certificate's OU. ``refuse_sdk``
    answers every SOAP call with a ServiceFault (as a locked-down or proxied /sdk
    does), leaving only the namespace file. ``tls=False`` serves plaintext, for a
    TLS front end of its own (chanscan.lab.legacy_tls)."""
    is_esxi = about.api_type == "HostAgent"
    log: list[Request] = []
    load = Load()
    api = about.api_version or "8.0.0.0"
    xml_type = ("Content-Type", "text/xml; charset=utf-8")

    def route(req: Request, body: bytes) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        if req.method == "POST" and req.path.rstrip("/") == "/sdk":
            if b"RetrieveServiceContent" in body and not refuse_sdk:
                return 200, (xml_type,), encoders.service_content_xml(about, "00000000-0000-0000")
            return 500, (xml_type,), _SERVICE_FAULT
        if req.method == "GET" and req.path == "/sdk/vimServiceVersions.xml":
            return 200, (xml_type,), encoders.service_versions_xml(api, ("7.0.3.0", "6.7.3"))
        if req.method == "GET" and req.path == "/":
            title = "VMware ESXi" if is_esxi else "vSphere Client"
            return 200, (("Content-Type", "text/html"),), f"<title>{title}</title>".encode()
        return 404, (), b""

    ctx = context or _server_context(
        "esxi.lab.invalid" if is_esxi else "vcenter.lab.invalid",
        ESXI_DEFAULT_OU if is_esxi else None,
    )
    handle = lab.add_stream_server(
        f"sdk-{about.version}",
        address,
        port,
        _http_handler(route, log, load),
        ssl=ctx if tls else None,
    )
    return Imitation(handle, log, load)


def xapi_host(
    lab: Lab,
    address: str,
    port: int = 443,
    product: str = "XCP-ng",
    version: str = "8.2.1",
    *,
    context: ssl.SSLContext | None = None,
) -> Imitation:
    """A XAPI front page on ``/`` and XML-RPC ``SESSION_INVALID`` on ``POST /``."""
    log: list[Request] = []
    load = Load()

    def route(req: Request, body: bytes) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        if req.method == "GET" and req.path == "/":
            return 200, (("Content-Type", "text/html"),), encoders.front_page_html(product, version)
        if req.method == "POST" and req.path == "/":
            return 200, (("Content-Type", "text/xml"),), encoders.fault_xml("SESSION_INVALID", "")
        return 404, (), b""

    ctx = context or _server_context("xapi.lab.invalid")
    handle = lab.add_stream_server(
        "xapi",
        address,
        port,
        _http_handler(route, log, load),
        ssl=ctx,
    )
    return Imitation(handle, log, load)


@dataclass(frozen=True)
class WindowsIdentity:
    netbios_computer: str = "HV01"
    netbios_domain: str = "LAB"
    dns_computer: str = "hv01.lab.example"
    dns_domain: str = "lab.example"
    os_version: tuple[int, int, int] = (10, 0, 17763)

    def challenge(self) -> bytes:
        return encoders.build_challenge(
            netbios_computer=self.netbios_computer,
            netbios_domain=self.netbios_domain,
            dns_computer=self.dns_computer,
            dns_domain=self.dns_domain,
            os_version=self.os_version,
        )


def winrm(
    lab: Lab,
    address: str,
    port: int = 5985,
    *,
    tls: bool = False,
    identity: WindowsIdentity = WindowsIdentity(),
) -> Imitation:
    """WinRM: anonymous Identify answered with ``OS: 0.0.0``; everything else 401, and
    a 401 carrying an NTLM CHALLENGE to a ``Negotiate`` NTLM NEGOTIATE."""
    log: list[Request] = []
    load = Load()
    soap = ("Content-Type", "application/soap+xml;charset=UTF-8")
    server = ("Server", "Microsoft-HTTPAPI/2.0")

    def route(req: Request, body: bytes) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        if req.path.lower() != "/wsman":
            return 404, (server,), b""
        auth = req.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() in ("negotiate", "ntlm") and token:
            raw = base64.b64decode(token)
            if encoders.is_negotiate(raw):
                challenge = base64.b64encode(identity.challenge()).decode()
                return 401, (server, ("WWW-Authenticate", f"{scheme} {challenge}")), b""
        if req.method == "POST" and b"Identify" in body and not auth:
            product = "OS: 0.0.0 SP: 0.0 Stack: 3.0"
            return (
                200,
                (server, soap),
                encoders.identify_response_xml("Microsoft Corporation", product),
            )
        return (
            401,
            (server, ("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "Kerberos")),
            b"",
        )

    kwargs: dict[str, object] = {}
    if tls:
        kwargs["ssl"] = _server_context(identity.dns_computer)
    handle = lab.add_stream_server(
        "winrm", address, port, _http_handler(route, log, load), **kwargs
    )
    return Imitation(handle, log, load)


# A host with NLA required: CredSSP is the only protocol it selects.
_NLA_ONLY = frozenset({"hybrid"})


def rdp(
    lab: Lab, address: str, port: int = 3389, *, identity: WindowsIdentity = WindowsIdentity()
) -> Imitation:
    """RDP with NLA: X.224 confirm selecting CredSSP, TLS, then a TSRequest carrying the
    NTLM CHALLENGE in answer to the client's NEGOTIATE."""
    log: list[Request] = []
    ctx = _server_context(identity.dns_computer)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = await answer_connection_request(reader, writer, _NLA_ONLY)
        if answered is None:
            return
        request, selected = answered
        log.append(Request("X224", f"requested={request.requested or 0}"))
        if selected != PROTOCOL_HYBRID:
            return
        await writer.start_tls(ctx)
        buf = b""
        total: int | None = None
        while total is None or len(buf) < total:  # bounded by the client's DER length
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            if not chunk:
                return
            buf += chunk
            total = credssp.der_total_length(buf)
        _version, token, _error = credssp.decode_ts_request(buf[:total])
        log.append(
            Request("CredSSP", "negotiate" if token and encoders.is_negotiate(token) else "?")
        )
        if token is None or not encoders.is_negotiate(token):
            return
        writer.write(credssp.encode_ts_request(identity.challenge()))
        await writer.drain()
        await asyncio.wait_for(reader.read(65536), 10)

    return Imitation(lab.add_stream_server("rdp", address, port, handle), log)


def web_page(lab: Lab, address: str, port: int, title: str, server: str | None = None) -> Imitation:
    """An HTTPS front page with a given title (a BMC, a VAMI): ``/sdk`` is 404."""
    log: list[Request] = []
    load = Load()
    extra = (("Server", server),) if server else ()

    def route(req: Request, body: bytes) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        if req.method == "GET" and req.path == "/":
            page = f"<html><head><title>{title}</title></head><body></body></html>"
            return 200, (*extra, ("Content-Type", "text/html")), page.encode()
        return 404, extra, b""

    ctx = _server_context("web.lab.invalid")
    handle = lab.add_stream_server("web", address, port, _http_handler(route, log, load), ssl=ctx)
    return Imitation(handle, log, load)


def greeting(lab: Lab, address: str, port: int, line: bytes) -> Imitation:
    """A server-first greeting (an SSH identification string, say) and nothing more."""
    log: list[Request] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        log.append(Request("CONNECT", "greeting"))
        writer.write(line)
        await writer.drain()
        await asyncio.wait_for(reader.read(4096), 10)

    return Imitation(lab.add_stream_server("greeting", address, port, handle), log)
