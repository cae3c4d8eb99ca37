"""Lab-side encoders: the answers real servers give, built for the lab's imitations and
the parser tests, so the product's fingerprint modules hold only what the scanner sends
and parses (lab-only code lives in ``chanscan.lab``).
"""

from __future__ import annotations

import struct

from chanscan.errors import ProtocolError
from chanscan.fingerprint.ntlm import (
    AV_DNS_COMPUTER,
    AV_DNS_DOMAIN,
    AV_DNS_TREE,
    AV_EOL,
    AV_NB_COMPUTER,
    AV_NB_DOMAIN,
    AV_TIMESTAMP,
    CHALLENGE,
    FLAG_56,
    FLAG_128,
    FLAG_ALWAYS_SIGN,
    FLAG_EXTENDED_SESSIONSECURITY,
    FLAG_NTLM,
    FLAG_REQUEST_TARGET,
    FLAG_TARGET_INFO,
    FLAG_TARGET_TYPE_DOMAIN,
    FLAG_UNICODE,
    FLAG_VERSION,
    NEGOTIATE,
    SIGNATURE,
)
from chanscan.fingerprint.vim import VimAbout
from chanscan.fingerprint.wsman import IDENTITY_NS, SOAP12_NS
from chanscan.probes import rdp_wire as w

PROTOCOL_RDP = w.PROTOCOL_RDP


# -- vim -----------------------------------------------------------------------
def service_content_xml(about: VimAbout, instance_uuid: str | None = None) -> bytes:
    """A RetrieveServiceContentResponse shaped like the real one (for the lab)."""
    is_vc = about.api_type == "VirtualCenter"
    root_folder = "group-d1" if is_vc else "ha-folder-root"
    prop = "propertyCollector" if is_vc else "ha-property-collector"
    about_xml = "".join(
        f"<{tag}>{value}</{tag}>"
        for tag, value in (
            ("name", about.name),
            ("fullName", about.full_name),
            ("vendor", about.vendor),
            ("version", about.version),
            ("build", about.build),
            ("localeVersion", "INTL"),
            ("localeBuild", "000"),
            ("osType", about.os_type),
            ("productLineId", about.product_line_id),
            ("apiType", about.api_type),
            ("apiVersion", about.api_version),
            ("instanceUuid", instance_uuid),
            ("licenseProductName", "VMware VirtualCenter Server" if is_vc else "VMware ESX Server"),
            ("licenseProductVersion", (about.version or "").rsplit(".", 1)[0] or None),
        )
        if value is not None
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/"\n'
        ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"\n'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"\n'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "<soapenv:Body>\n"
        '<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval>'
        f'<rootFolder type="Folder">{root_folder}</rootFolder>'
        f'<propertyCollector type="PropertyCollector">{prop}</propertyCollector>'
        f"<about>{about_xml}</about>"
        '<sessionManager type="SessionManager">'
        f"{'SessionManager' if is_vc else 'ha-sessionmgr'}</sessionManager>"
        "</returnval></RetrieveServiceContentResponse>\n"
        "</soapenv:Body>\n</soapenv:Envelope>"
    ).encode()


def service_versions_xml(current: str, prior: tuple[str, ...]) -> bytes:
    prior_xml = "".join(f"<version>{v}</version>" for v in prior)
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n<namespaces version="1.0">\n'
        f"<namespace><name>urn:vim25</name><version>{current}</version>"
        f"<priorVersions>{prior_xml}</priorVersions></namespace>\n</namespaces>\n"
    ).encode()


# -- xapi ----------------------------------------------------------------------
def front_page_html(product: str, version: str) -> bytes:
    """A welcome page in the shape XAPI serves on ``/`` (for the lab)."""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{product} {version}</title></head>\n<body>"
        f"<h1>Welcome to {product} {version}</h1>"
        "<p>Manage this host with XO Lite or the XenAPI.</p></body></html>\n"
    ).encode()


def fault_xml(*description: str) -> bytes:
    values = "".join(f"<value>{d}</value>" for d in description)
    return (
        '<?xml version="1.0"?><methodResponse><params><param><value><struct>'
        "<member><name>Status</name><value>Failure</value></member>"
        f"<member><name>ErrorDescription</name><value><array><data>{values}</data>"
        "</array></value></member></struct></value></param></params></methodResponse>"
    ).encode()


# -- wsman ---------------------------------------------------------------------
def identify_response_xml(vendor: str, product_version: str) -> bytes:
    """An IdentifyResponse as Windows Remote Management sends it (for the lab)."""
    return (
        f'<s:Envelope xmlns:s="{SOAP12_NS}" xml:lang="en-US"><s:Header/><s:Body>'
        f'<wsmid:IdentifyResponse xmlns:wsmid="{IDENTITY_NS}">'
        "<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
        "</wsmid:ProtocolVersion>"
        f"<wsmid:ProductVendor>{vendor}</wsmid:ProductVendor>"
        f"<wsmid:ProductVersion>{product_version}</wsmid:ProductVersion>"
        "<wsmid:SecurityProfiles><wsmid:SecurityProfileName>"
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos"
        "</wsmid:SecurityProfileName></wsmid:SecurityProfiles>"
        "</wsmid:IdentifyResponse></s:Body></s:Envelope>"
    ).encode()


# -- ntlm ----------------------------------------------------------------------
def is_negotiate(data: bytes) -> bool:
    return (
        len(data) >= 12
        and data[:8] == SIGNATURE
        and struct.unpack_from("<I", data, 8)[0] == NEGOTIATE
    )


def build_challenge(
    *,
    netbios_computer: str,
    netbios_domain: str,
    dns_computer: str,
    dns_domain: str,
    os_version: tuple[int, int, int],
    server_challenge: bytes = b"\x01\x23\x45\x67\x89\xab\xcd\xef",
) -> bytes:
    """A CHALLENGE_MESSAGE as Windows sends it (for the lab and parser tests)."""
    pairs = b""
    for av_id, value in (
        (AV_NB_DOMAIN, netbios_domain),
        (AV_NB_COMPUTER, netbios_computer),
        (AV_DNS_DOMAIN, dns_domain),
        (AV_DNS_COMPUTER, dns_computer),
        (AV_DNS_TREE, dns_domain),
    ):
        raw = value.encode("utf-16-le")
        pairs += struct.pack("<HH", av_id, len(raw)) + raw
    pairs += struct.pack("<HHQ", AV_TIMESTAMP, 8, 0) + struct.pack("<HH", AV_EOL, 0)
    target = netbios_domain.encode("utf-16-le")
    flags = (
        FLAG_UNICODE
        | FLAG_REQUEST_TARGET
        | FLAG_NTLM
        | FLAG_ALWAYS_SIGN
        | FLAG_TARGET_TYPE_DOMAIN
        | FLAG_EXTENDED_SESSIONSECURITY
        | FLAG_TARGET_INFO
        | FLAG_VERSION
        | FLAG_128
        | FLAG_56
    )
    header_len = 56
    target_off = header_len
    info_off = target_off + len(target)
    major, minor, build = os_version
    version = struct.pack("<BBH3xB", major, minor, build, 15)  # NTLMSSP_REVISION_W2K3
    return (
        SIGNATURE
        + struct.pack("<I", CHALLENGE)
        + struct.pack("<HHI", len(target), len(target), target_off)
        + struct.pack("<I", flags)
        + server_challenge
        + bytes(8)  # Reserved
        + struct.pack("<HHI", len(pairs), len(pairs), info_off)
        + version
        + target
        + pairs
    )


# -- credssp -------------------------------------------------------------------
def connection_confirm(selected: int) -> bytes:
    return w.encode_connection_confirm(selected=selected)


def parse_request(tpkt: bytes) -> int:
    """The requested protocols of an X.224 Connection Request (for the lab)."""
    try:
        request = w.decode_connection_request(tpkt)
    except w.RdpWireError as exc:
        raise ProtocolError(f"no X.224 Connection Request: {exc}") from exc
    return PROTOCOL_RDP if request.requested is None else request.requested
