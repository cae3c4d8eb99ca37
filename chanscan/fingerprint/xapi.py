"""XenServer / XCP-ng: the XAPI front page and XAPI's XML-RPC failure shape.

XAPI serves a welcome page on ``/`` naming the product; its XML-RPC answers wrap every
result in a struct with ``Status`` (``Success``/``Failure``) and ``ErrorDescription``
(XenAPI reference, "Wire protocol for remote API calls", https://xapi-project.github.io/xen-api/wire-protocol.html),
which no other management stack uses, so an unauthenticated call's
``SESSION_INVALID`` failure names XAPI even where the page is customised.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from chanscan.model import PlatformInfo

MAX_BODY = 256 * 1024

_TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_PRODUCT_RE = re.compile(
    r"(XCP-ng|Citrix Hypervisor|XenServer)(?:\s+(\d+(?:\.\d+){0,2}))?", re.IGNORECASE
)

_CANONICAL = {"xcp-ng": "XCP-ng", "xenserver": "XenServer", "citrix hypervisor": "XenServer"}


def parse_front_page(body: bytes, server_header: str | None = None) -> PlatformInfo | None:
    body = body[:MAX_BODY]
    m = _TITLE_RE.search(body)
    title = m.group(1).decode("utf-8", errors="replace").strip() if m else ""
    text = body.decode("utf-8", errors="replace")
    found = _PRODUCT_RE.search(title) or _PRODUCT_RE.search(text)
    if found is None:
        return None
    product = _CANONICAL[found.group(1).lower()]
    version = found.group(2)
    evidence = f"XAPI front page: title={title!r}"
    if server_header:
        evidence += f"; Server={server_header}"
    return PlatformInfo(
        product=product,
        version=version,
        confidence="medium",
        evidence=(evidence,),
    )


def parse_xmlrpc_fault(body: bytes) -> tuple[str, ...] | None:
    """The ErrorDescription of an XAPI ``Failure`` answer, or None if this is not one."""
    if not body or len(body) > MAX_BODY or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    if root.tag != "methodResponse":
        return None
    members = {}
    for member in root.iter("member"):
        name = (member.findtext("name") or "").strip()
        members[name] = member.find("value")
    status = members.get("Status")
    if status is None or "".join(status.itertext()).strip() != "Failure":
        return None
    desc = members.get("ErrorDescription")
    if desc is None:
        return ()
    return tuple("".join(v.itertext()).strip() for v in desc.iter("value") if len(list(v)) == 0)


def platform_from_fault(description: tuple[str, ...]) -> PlatformInfo:
    # XenServer and XCP-ng share XAPI: the fault names the stack, not the product.
    return PlatformInfo(
        product=None,
        confidence="low",
        evidence=(f"XAPI XML-RPC Failure {', '.join(description) or '(empty)'}",),
    )
