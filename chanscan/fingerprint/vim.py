"""The vSphere Web Services answers that name a vCenter or ESXi without a session.

``RetrieveServiceContent`` on ``/sdk`` is the one call the vSphere API allows before
login (vSphere Web Services API reference, ServiceInstance.RetrieveServiceContent and
the AboutInfo data object: name, fullName, vendor, version, build, osType,
productLineId, apiType, apiVersion). ``/sdk/vimServiceVersions.xml`` lists the API
namespaces and versions the endpoint speaks.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from chanscan.model import PlatformInfo

# Cap what we parse: a real ServiceContent is a few kB.
MAX_XML = 256 * 1024

RETRIEVE_SERVICE_CONTENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    b' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    b"<soapenv:Body>"
    b'<RetrieveServiceContent xmlns="urn:vim25">'
    b'<_this type="ServiceInstance">ServiceInstance</_this>'
    b"</RetrieveServiceContent>"
    b"</soapenv:Body></soapenv:Envelope>"
)

# The SOAPAction names the API namespace/version; "urn:vim25" alone is accepted by
# every release since 4.0 and is what pyVmomi's version probe falls back to.
SOAP_ACTION = '"urn:vim25"'

_PRODUCTS = {"VirtualCenter": "vCenter Server", "HostAgent": "ESXi"}


@dataclass(frozen=True)
class VimAbout:
    name: str | None = None
    full_name: str | None = None
    vendor: str | None = None
    version: str | None = None
    build: str | None = None
    os_type: str | None = None
    product_line_id: str | None = None
    api_type: str | None = None
    api_version: str | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse(body: bytes) -> ET.Element | None:
    if not body or len(body) > MAX_XML or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        # No DTDs: a ServiceContent never has one, and refusing them closes the
        # entity-expansion door without a third-party parser.
        return None
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def parse_service_content(body: bytes) -> VimAbout | None:
    """The ``about`` of a RetrieveServiceContentResponse, or None if this is not one."""
    root = _parse(body)
    if root is None:
        return None
    about = None
    for el in root.iter():
        if _local(el.tag) == "about":
            about = el
            break
    if about is None:
        return None
    fields = {_local(child.tag): (child.text or "").strip() or None for child in about}
    info = VimAbout(
        name=fields.get("name"),
        full_name=fields.get("fullName"),
        vendor=fields.get("vendor"),
        version=fields.get("version"),
        build=fields.get("build"),
        os_type=fields.get("osType"),
        product_line_id=fields.get("productLineId"),
        api_type=fields.get("apiType"),
        api_version=fields.get("apiVersion"),
    )
    if info.api_type is None and info.full_name is None:
        return None
    return info


def platform_from_about(about: VimAbout) -> PlatformInfo:
    product = _PRODUCTS.get(about.api_type or "")
    if product is None and about.full_name:
        if "vCenter" in about.full_name:
            product = "vCenter Server"
        elif "ESX" in about.full_name:
            product = "ESXi"
    parts = [
        f"/sdk RetrieveServiceContent: {about.full_name or about.name}",
        f"apiType={about.api_type}",
        f"productLineId={about.product_line_id}",
        f"osType={about.os_type}",
    ]
    return PlatformInfo(
        product=product,
        version=about.version,
        build=about.build,
        confidence="high" if product and about.version and about.build else "medium",
        evidence=("; ".join(parts),),
    )


def parse_service_versions(body: bytes) -> tuple[str, ...]:
    """API versions in ``vimServiceVersions.xml`` (current first, then prior ones)."""
    root = _parse(body)
    if root is None or _local(root.tag) != "namespaces":
        return ()
    versions: list[str] = []
    for ns in root:
        if _local(ns.tag) != "namespace":
            continue
        name = ns.findtext("name") or ""
        if name.strip() != "urn:vim25":
            continue
        current = (ns.findtext("version") or "").strip()
        if current:
            versions.append(current)
        prior = ns.find("priorVersions")
        if prior is not None:
            versions.extend((v.text or "").strip() for v in prior if (v.text or "").strip())
    return tuple(versions)


def platform_from_service_versions(versions: tuple[str, ...]) -> PlatformInfo | None:
    """The namespace file says 'vSphere API', not which product: vCenter and ESXi
    publish the same file, so the product stays unknown."""
    if not versions:
        return None
    return PlatformInfo(
        product=None,
        version=None,
        build=None,
        confidence="low",
        evidence=(f"/sdk/vimServiceVersions.xml: vSphere API urn:vim25 {versions[0]}",),
    )
