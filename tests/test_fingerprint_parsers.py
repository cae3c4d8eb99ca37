"""Pure fingerprint parsers on captured-shaped samples (no network)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chanscan.errors import ProtocolError
from chanscan.fingerprint import banners, credssp, ntlm, vim, wsman, xapi
from chanscan.fingerprint.fold import CONFLICT_PREFIX, fold_host, is_conflicted, merge
from chanscan.fingerprint.http import _dechunk, parse_head
from chanscan.lab import encoders
from chanscan.lab.imitations import ESXI_67, VCENTER_80
from chanscan.model import Channel, EndpointResult, PlatformInfo, Status

# -- vSphere /sdk ------------------------------------------------------------------------
ESXI_70_CAPTURE = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/"
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>
<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval>
<rootFolder type="Folder">ha-folder-root</rootFolder>
<about><name>VMware ESXi</name><fullName>VMware ESXi 7.0.1 build-17325551</fullName>
<vendor>VMware, Inc.</vendor><version>7.0.1</version><build>17325551</build>
<localeVersion>INTL</localeVersion><localeBuild>000</localeBuild>
<osType>vmnix-x86</osType><productLineId>embeddedEsx</productLineId>
<apiType>HostAgent</apiType><apiVersion>7.0.1.1</apiVersion></about>
</returnval></RetrieveServiceContentResponse>
</soapenv:Body>
</soapenv:Envelope>"""


def test_service_content_capture_names_esxi() -> None:
    about = vim.parse_service_content(ESXI_70_CAPTURE)
    assert about is not None
    assert (about.api_type, about.version, about.build) == ("HostAgent", "7.0.1", "17325551")
    p = vim.platform_from_about(about)
    assert (p.product, p.version, p.build, p.confidence) == ("ESXi", "7.0.1", "17325551", "high")
    assert "productLineId=embeddedEsx" in p.evidence[0]


@pytest.mark.parametrize(("about", "product"), [(ESXI_67, "ESXi"), (VCENTER_80, "vCenter Server")])
def test_service_content_roundtrip(about: vim.VimAbout, product: str) -> None:
    parsed = vim.parse_service_content(encoders.service_content_xml(about))
    assert parsed == about
    assert vim.platform_from_about(parsed).product == product


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><title>Not VMware</title></html>",
        b"<soapenv:Envelope><soapenv:Body><x/></soapenv:Body></soapenv:Envelope>",
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
        b"<about><name>x</name></about>",  # neither apiType nor fullName
    ],
)
def test_service_content_rejects_other_answers(body: bytes) -> None:
    assert vim.parse_service_content(body) is None


def test_service_versions() -> None:
    body = encoders.service_versions_xml("8.0.2.0", ("8.0.1.0", "7.0.3.0"))
    assert vim.parse_service_versions(body) == ("8.0.2.0", "8.0.1.0", "7.0.3.0")
    p = vim.platform_from_service_versions(vim.parse_service_versions(body))
    assert p is not None and p.product is None and "8.0.2.0" in p.evidence[0]
    assert vim.parse_service_versions(b"<html/>") == ()


# -- NTLM -----------------------------------------------------------------------------------
def test_negotiate_carries_no_names() -> None:
    msg = ntlm.build_negotiate()
    assert encoders.is_negotiate(msg)
    assert len(msg) == 40  # header, flags, two empty fields, zero VERSION: nothing else
    assert msg[16:40] == bytes(24)


def test_challenge_roundtrip_names_and_build() -> None:
    raw = encoders.build_challenge(
        netbios_computer="HV01",
        netbios_domain="LAB",
        dns_computer="hv01.lab.example",
        dns_domain="lab.example",
        os_version=(6, 3, 9600),
    )
    ch = ntlm.parse_challenge(raw)
    assert ch.os_version == "6.3.9600"
    assert ch.windows_release == "Windows Server 2012 R2"
    assert (ch.netbios_computer, ch.netbios_domain, ch.dns_computer) == (
        "HV01",
        "LAB",
        "hv01.lab.example",
    )
    assert ch.target_name == "LAB"
    p = ntlm.platform_from_challenge(ch, "RDP CredSSP")
    assert (p.product, p.version, p.build, p.confidence) == (
        "Hyper-V",
        "Windows Server 2012 R2",
        "6.3.9600",
        "medium",
    )


# A challenge laid out field by field as [MS-NLMP] 2.2.1.2 and published captures show
# it (Windows Server 2019, flags 0xe28a8215, no DNS tree or timestamp pairs), written
# as hex rather than through build_challenge so the parser is checked independently.
_CAPTURE_2019 = bytes.fromhex(
    "4e544c4d5353500002000000060006003800000015828ae21122334455667788"
    "0000000000000000580058003e0000000a0063450000000f4c00410042000200"
    "06004c0041004200010008004800560030003100040016006c00610062002e00"
    "6500780061006d0070006c0065000300200068007600300031002e006c006100"
    "62002e006500780061006d0070006c00650000000000"
)


def test_challenge_capture_shape() -> None:
    ch = ntlm.parse_challenge(_CAPTURE_2019)
    assert ch.os_version == "10.0.17763"
    assert ch.windows_release == "Windows Server 2019"
    assert ch.netbios_domain == "LAB"
    assert ch.netbios_computer == "HV01"
    assert ch.dns_computer == "hv01.lab.example"


@pytest.mark.parametrize(
    "data",
    [b"", b"NTLMSSP\x00\x01\x00\x00\x00" + bytes(30), b"HTTP/1.1 401\r\n" + bytes(40)],
)
def test_challenge_rejects_non_challenges(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        ntlm.parse_challenge(data)


@given(st.binary(max_size=200))
def test_challenge_parser_never_crashes(data: bytes) -> None:
    """Junk after a CHALLENGE header is a ProtocolError or a parsed message, never
    an IndexError/struct.error escaping to the scheduler."""
    try:
        ch = ntlm.parse_challenge(ntlm.SIGNATURE + b"\x02\x00\x00\x00" + data)
    except ProtocolError:
        return
    assert isinstance(ch, ntlm.NtlmChallenge)


# -- CredSSP ----------------------------------------------------------------------------
def test_ts_request_roundtrip() -> None:
    token = ntlm.build_negotiate()
    der = credssp.encode_ts_request(token)
    assert credssp.der_total_length(der[:3]) == len(der)
    assert credssp.decode_ts_request(der) == (credssp.TS_REQUEST_VERSION, token, None)
    big = credssp.encode_ts_request(bytes(300))  # long-form lengths
    assert credssp.decode_ts_request(big)[1] == bytes(300)


def test_x224_confirm_and_request() -> None:
    cr = credssp.connection_request()
    assert credssp.tpkt_length(cr[:4]) == len(cr) == 19
    assert encoders.parse_request(cr) == credssp.PROTOCOL_SSL | credssp.PROTOCOL_HYBRID
    cc = encoders.connection_confirm(credssp.PROTOCOL_HYBRID)
    assert credssp.parse_confirm(cc) == credssp.PROTOCOL_HYBRID
    failure = cc[:11] + bytes([credssp.TYPE_RDP_NEG_FAILURE, 0, 8, 0, 5, 0, 0, 0])
    with pytest.raises(ProtocolError, match="failure code 5"):
        credssp.parse_confirm(failure)


# -- WS-Man -----------------------------------------------------------------------------
def test_wsman_identify_anonymous_windows() -> None:
    body = encoders.identify_response_xml("Microsoft Corporation", "OS: 0.0.0 SP: 0.0 Stack: 3.0")
    ident = wsman.parse_identify(body)
    assert ident is not None and ident.os_version is None  # anonymous: no OS build
    p = wsman.platform_from_identify(ident, "WinRM")
    assert (p.product, p.confidence, p.build) == ("Hyper-V", "low", None)


def test_wsman_identify_authenticated_and_bmc() -> None:
    win = wsman.parse_identify(
        encoders.identify_response_xml("Microsoft Corporation", "OS: 10.0.20348 SP: 0.0 Stack: 3.0")
    )
    assert win is not None and win.os_version == "10.0.20348"
    dell = wsman.parse_identify(encoders.identify_response_xml("Dell Inc.", "1.0"))
    assert dell is not None and wsman.platform_from_identify(dell, "x").product == "BMC"
    assert wsman.parse_identify(b"<html/>") is None


# -- XAPI -------------------------------------------------------------------------------
def test_xapi_front_page_and_fault() -> None:
    p = xapi.parse_front_page(encoders.front_page_html("XCP-ng", "8.2.1"))
    assert p is not None and (p.product, p.version) == ("XCP-ng", "8.2.1")
    citrix = xapi.parse_front_page(b"<title>Citrix Hypervisor 8.2</title>")
    assert citrix is not None and (citrix.product, citrix.version) == ("XenServer", "8.2")
    assert xapi.parse_front_page(b"<title>iDRAC9</title>") is None
    assert xapi.parse_xmlrpc_fault(encoders.fault_xml("SESSION_INVALID", "x")) == (
        "SESSION_INVALID",
        "x",
    )
    ok = encoders.fault_xml().replace(b"Failure", b"Success")
    assert xapi.parse_xmlrpc_fault(ok) is None


# -- banners and certificates -----------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "product", "confidence"),
    [
        ("SSH-2.0-OpenSSH_for_Windows_8.1", "Hyper-V", "low"),
        ("SSH-2.0-dropbear_2020.81", "Linux", "low"),
        ("SSH-2.0-mpSSH_0.2.1", "BMC", "medium"),
        ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", "Linux", "low"),
        ("SSH-2.0-OpenSSH_8.8", None, "none"),
    ],
)
def test_ssh_banners(line: str, product: str | None, confidence: str) -> None:
    p = banners.parse_ssh_banner(line)
    assert p is not None and (p.product, p.confidence) == (product, confidence)
    assert p.version is None and p.build is None  # banner versions are evidence only


def test_authd_banner() -> None:
    line = (
        "220 VMware Authentication Daemon Version 1.10: SSL Required, "
        "ServerDaemonProtocol:SOAP, MKSDisplayProtocol:VNC , VMXARGS supported"
    )
    p = banners.parse_authd(line)
    assert p is not None and (p.product, p.confidence) == ("ESXi", "medium")
    assert banners.parse_authd("220 ProFTPD Server ready") is None


@pytest.mark.parametrize(
    ("subject", "issuer", "product", "evidence_part"),
    [
        (
            "CN=esx01.example,OU=VMware ESX Server Default Certificate,O=VMware\\, Inc.",
            "CN=esx01.example,OU=VMware ESX Server Default Certificate,O=VMware\\, Inc.",
            "ESXi",
            "ESXi default",
        ),
        ("CN=vc.example", "OU=VMware Engineering,CN=CA,DC=vsphere,DC=local,C=US", None, "VMCA"),
        (
            "CN=idrac-ABC,OU=Remote Access Group,O=Dell Inc.",
            "CN=idrac-ABC,OU=Remote Access Group,O=Dell Inc.",
            "BMC",
            "iDRAC",
        ),
    ],
)
def test_cert_hints(subject: str, issuer: str, product: str | None, evidence_part: str) -> None:
    p = banners.cert_hints(subject, issuer)
    assert p is not None and p.product == product and evidence_part in p.evidence[0]


def test_cert_hints_ignore_ordinary_certs() -> None:
    assert banners.cert_hints("CN=www.example.com", "CN=R11,O=Let's Encrypt,C=US") is None


# -- HTTP helpers ----------------------------------------------------------------------
def test_http_head_and_chunks() -> None:
    status, reason, headers = parse_head(
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate"
    )
    assert (status, reason, headers) == (401, "Unauthorized", (("www-authenticate", "Negotiate"),))
    assert _dechunk(b"4\r\nabcd\r\n2;x=y\r\nef\r\n0\r\n\r\n") == b"abcdef"
    assert _dechunk(b"4\r\nab") is None
    with pytest.raises(ProtocolError):
        parse_head(b"SSH-2.0-OpenSSH_9.6")


# -- merging and folding ----------------------------------------------------------------
ESXI_HIGH = PlatformInfo("ESXi", "8.0.2", "22380479", "high", ("sdk",))
AUTHD_MED = PlatformInfo("ESXi", None, None, "medium", ("authd",))
WIN_MED = PlatformInfo("Hyper-V", "Windows Server 2019", "10.0.17763", "medium", ("ntlm",))


def test_merge_agreeing_signals_fill_gaps() -> None:
    m = merge([AUTHD_MED, ESXI_HIGH, None])
    assert m is not None
    assert (m.product, m.version, m.build, m.confidence) == ("ESXi", "8.0.2", "22380479", "high")
    assert m.evidence == ("authd", "sdk")
    assert not is_conflicted(m)


def test_two_medium_signals_agreeing_make_high() -> None:
    cert = PlatformInfo("ESXi", None, None, "medium", ("cert",))
    m = merge([AUTHD_MED, cert])
    assert m is not None and m.confidence == "high"


def test_merge_reports_conflicts() -> None:
    m = merge([ESXI_HIGH, WIN_MED])
    assert m is not None and m.product == "ESXi" and m.confidence == "low"
    assert is_conflicted(m)
    assert m.evidence[0].startswith(CONFLICT_PREFIX)
    assert "Hyper-V" in m.evidence[0] and "ESXi" in m.evidence[0]
    versions = merge([ESXI_HIGH, PlatformInfo("ESXi", "6.7.0", "14320388", "high", ("old",))])
    assert versions is not None and is_conflicted(versions)


def test_generic_and_weak_signals_do_not_conflict() -> None:
    linux = PlatformInfo("Linux", None, None, "low", ("dropbear",))
    weak_win = PlatformInfo("Hyper-V", None, None, "low", ("ssh windows",))
    m = merge([ESXI_HIGH, linux, weak_win])
    assert m is not None and not is_conflicted(m) and m.confidence == "high"
    assert merge([]) is None
    none_only = merge([PlatformInfo(None, None, None, "low", ("vmca",))])
    assert none_only is not None and none_only.product is None


def _result(address: str, port: int, platform: PlatformInfo | None) -> EndpointResult:
    return EndpointResult(address, address, port, Channel.TLS, Status.OK, platform=platform)


def test_fold_host_groups_by_address_and_shows_conflicts() -> None:
    folded = fold_host(
        [
            _result("192.0.2.10", 443, ESXI_HIGH),
            _result("192.0.2.10", 902, AUTHD_MED),
            _result("192.0.2.11", 443, ESXI_HIGH),
            _result("192.0.2.11", 3389, WIN_MED),
            _result("192.0.2.12", 22, None),
        ]
    )
    assert set(folded) == {"192.0.2.10", "192.0.2.11"}
    good = folded["192.0.2.10"]
    assert (good.product, good.build, good.confidence) == ("ESXi", "22380479", "high")
    assert "443/tls: sdk" in good.evidence and "902/tls: authd" in good.evidence
    bad = folded["192.0.2.11"]
    assert is_conflicted(bad) and bad.confidence == "low"


@pytest.mark.parametrize(
    ("body", "server", "product", "confidence"),
    [
        (b"<title>iDRAC9 - Login</title>", None, "BMC", "medium"),
        (b"<TITLE>HPE iLO 5</TITLE>", None, "BMC", "medium"),
        (b"<title>VMware Appliance Management</title>", None, "vCenter Server", "low"),
        (b"<title>IIS Windows Server</title>", "Microsoft-HTTPAPI/2.0", "Hyper-V", "low"),
    ],
)
def test_web_hints(body: bytes, server: str | None, product: str, confidence: str) -> None:
    p = banners.web_hints(body, server)
    assert p is not None and (p.product, p.confidence) == (product, confidence)


def test_web_hints_ignore_other_pages() -> None:
    assert banners.web_hints(b"<title>Welcome to nginx!</title>", "nginx") is None
    assert banners.page_title(b"no title here") is None
