"""WS-Management ``Identify`` (DMTF DSP0226 11; Windows' use in [MS-WSMV] 3.1.4.16).

An unauthenticated Identify names the vendor and stack; Windows answers it with
``OS: 0.0.0`` unless the request was authenticated, so it identifies the family
(Windows, a BMC's WS-Man stack), not the build: the NTLM challenge gives that.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from chanscan.model import PlatformInfo

IDENTITY_NS = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
MAX_XML = 64 * 1024

IDENTIFY_REQUEST = (
    f'<s:Envelope xmlns:s="{SOAP12_NS}" xmlns:wsmid="{IDENTITY_NS}">'
    "<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
).encode()

_OS_RE = re.compile(r"OS:\s*(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class WsmanIdentity:
    protocol_version: str | None
    product_vendor: str | None
    product_version: str | None

    @property
    def os_version(self) -> str | None:
        m = _OS_RE.search(self.product_version or "")
        if m is None or m.groups() == ("0", "0", "0"):
            return None
        return ".".join(m.groups())


def parse_identify(body: bytes) -> WsmanIdentity | None:
    if not body or len(body) > MAX_XML or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    resp = root.find(f".//{{{IDENTITY_NS}}}IdentifyResponse")
    if resp is None:
        return None

    def text(name: str) -> str | None:
        value = resp.findtext(f"{{{IDENTITY_NS}}}{name}")
        return value.strip() if value and value.strip() else None

    return WsmanIdentity(
        protocol_version=text("ProtocolVersion"),
        product_vendor=text("ProductVendor"),
        product_version=text("ProductVersion"),
    )


def platform_from_identify(ident: WsmanIdentity, source: str) -> PlatformInfo:
    vendor = ident.product_vendor or ""
    evidence = (
        f"{source}: WS-Man Identify vendor={vendor or '?'} version={ident.product_version or '?'}"
    )
    if "Microsoft" in vendor:
        # Windows with WinRM: the Hyper-V role itself is not visible without a login.
        os_version = ident.os_version
        return PlatformInfo(
            product="Hyper-V",
            version=None,
            build=os_version,
            confidence="low",
            evidence=(evidence + "; Windows host, Hyper-V role not confirmed",),
        )
    if any(v in vendor for v in ("Dell", "Intel", "Hewlett", "HPE", "Lenovo", "Supermicro")):
        return PlatformInfo(product="BMC", confidence="low", evidence=(evidence,))
    return PlatformInfo(product=None, confidence="low", evidence=(evidence,))
