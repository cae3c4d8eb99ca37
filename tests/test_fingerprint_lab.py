"""Fingerprinting against lab imitations of each platform, over real sockets.

Every server here listens on 127.40.0.0/16 (this module's block) and is stopped by
the ``lab`` fixture. Requests are counted on the server side.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import trio
from obs_builders import SCAN_TIME

from chanscan.fingerprint import MAX_REQUESTS, Fingerprinter, fingerprint_endpoint
from chanscan.fingerprint.fold import fold_host, is_conflicted
from chanscan.lab import Lab, encoders
from chanscan.lab import imitations as im
from chanscan.lab.authd_server import AUTHD_BANNER
from chanscan.model import Channel, Endpoint, EndpointResult, PlatformInfo, ScanOptions, Status
from chanscan.rules import platform as platform_rules
from chanscan.scheduler import EndpointContext, ResultCollector, Scheduler, scan_endpoints

OPTIONS = ScanOptions(fingerprint_timeout=5.0)


@pytest.fixture
async def sched() -> AsyncIterator[Scheduler]:
    s = Scheduler(OPTIONS, {})
    try:
        yield s
    finally:
        s.close()


async def _fingerprint(
    sched: Scheduler, imit: im.Imitation, channel: Channel, banner: bytes = b""
) -> tuple[PlatformInfo | None, int]:
    ep = Endpoint(imit.address, imit.address, imit.port)
    ctx = EndpointContext(sched, ep, banner)
    with trio.fail_after(20):
        platform = await fingerprint_endpoint(ctx, channel, None)
    return platform, ctx.connections


def _result(imit: im.Imitation, channel: Channel, platform: PlatformInfo | None) -> EndpointResult:
    return EndpointResult(
        imit.address, imit.address, imit.port, channel, Status.OK, platform=platform
    )


def _no_credentials(requests: list[im.Request]) -> None:
    for req in requests:
        auth = req.header("authorization")
        if auth is None:
            continue
        scheme, _, token = auth.partition(" ")
        assert scheme == "Negotiate"
        raw = base64.b64decode(token)
        # Only a NEGOTIATE, whose domain and workstation fields are empty.
        assert encoders.is_negotiate(raw) and raw[16:32] == bytes(16)


@pytest.mark.parametrize(
    ("address", "about", "product", "eos"),
    [
        ("127.40.1.1", im.ESXI_67, "ESXi", True),
        ("127.40.1.2", im.ESXI_80, "ESXi", False),
        ("127.40.1.3", im.VCENTER_80, "vCenter Server", False),
    ],
)
async def test_vsphere_sdk_identified(
    lab: Lab,
    sched: Scheduler,
    address: str,
    about: im.vim.VimAbout,
    product: str,
    eos: bool,
) -> None:
    imit = im.vsphere_sdk(lab, address, 443, about)
    platform, connections = await _fingerprint(sched, imit, Channel.TLS)
    assert platform is not None
    assert (platform.product, platform.version, platform.build) == (
        product,
        about.version,
        about.build,
    )
    assert platform.confidence == "high"
    assert [(r.method, r.path) for r in imit.requests] == [("POST", "/sdk")]
    assert connections == len(imit.requests) <= MAX_REQUESTS
    _no_credentials(imit.requests)
    if product == "ESXi":  # the imitation wears ESXi's default certificate OU
        assert any("ESXi default" in e for e in platform.evidence)
    ids = {
        f.id for f in platform_rules.findings(_result(imit, Channel.TLS, platform), now=SCAN_TIME)
    }
    assert ("platform.end_of_support" in ids) is eos


async def test_vcenter_80_missing_patch_reported(lab: Lab, sched: Scheduler) -> None:
    imit = im.vsphere_sdk(lab, "127.40.1.4", 443, im.VCENTER_80)
    platform, _ = await _fingerprint(sched, imit, Channel.TLS)
    found = platform_rules.findings(_result(imit, Channel.TLS, platform), now=SCAN_TIME)
    assert [f.id for f in found] == ["platform.missing_security_patch"]
    assert "VMSA-2024-0019" in found[0].title
    assert any("vCenter Server 8.0 U2d" in e for e in found[0].evidence)


async def test_xapi_identified(lab: Lab, sched: Scheduler) -> None:
    imit = im.xapi_host(lab, "127.40.2.1", 443, product="XCP-ng", version="8.2.1")
    platform, connections = await _fingerprint(sched, imit, Channel.TLS)
    assert platform is not None
    assert (platform.product, platform.version, platform.confidence) == (
        "XCP-ng",
        "8.2.1",
        "medium",
    )
    assert [(r.method, r.path) for r in imit.requests] == [("POST", "/sdk"), ("GET", "/")]
    assert connections == 2 == MAX_REQUESTS


@pytest.mark.parametrize(("port", "tls"), [(5985, False), (5986, True)])
async def test_winrm_identified_by_ntlm(lab: Lab, sched: Scheduler, port: int, tls: bool) -> None:
    identity = im.WindowsIdentity(os_version=(10, 0, 20348), netbios_computer="HV22")
    imit = im.winrm(lab, "127.40.3.1", port, tls=tls, identity=identity)
    platform, connections = await _fingerprint(sched, imit, Channel.TLS if tls else Channel.HTTP)
    assert platform is not None
    assert (platform.product, platform.version, platform.build) == (
        "Hyper-V",
        "Windows Server 2022",
        "10.0.20348",
    )
    assert platform.confidence == "medium"
    assert any("netbios=HV22" in e for e in platform.evidence)
    assert any("OS: 0.0.0" in e for e in platform.evidence)  # anonymous Identify
    assert len(imit.requests) == connections == 2
    _no_credentials(imit.requests)


async def test_rdp_credssp_identified(lab: Lab, sched: Scheduler) -> None:
    identity = im.WindowsIdentity(os_version=(6, 3, 9600), netbios_computer="OLDHV")
    imit = im.rdp(lab, "127.40.4.1", 3389, identity=identity)
    platform, connections = await _fingerprint(sched, imit, Channel.RDP)
    assert platform is not None
    assert (platform.product, platform.version, platform.build) == (
        "Hyper-V",
        "Windows Server 2012 R2",
        "6.3.9600",
    )
    assert [r.method for r in imit.requests] == ["X224", "CredSSP"]
    assert connections == 1
    ids = {
        f.id for f in platform_rules.findings(_result(imit, Channel.RDP, platform), now=SCAN_TIME)
    }
    assert ids == {"platform.end_of_support"}


@pytest.mark.parametrize(
    ("address", "port", "line", "channel", "product", "confidence"),
    [
        ("127.40.5.1", 902, AUTHD_BANNER, Channel.AUTHD, "ESXi", "medium"),
        ("127.40.5.2", 2222, b"SSH-2.0-OpenSSH_for_Windows_8.1\r\n", Channel.SSH, "Hyper-V", "low"),
        ("127.40.5.3", 2222, b"SSH-2.0-mpSSH_0.2.1\r\n", Channel.SSH, "BMC", "medium"),
    ],
)
async def test_greetings_identified_without_requests(
    lab: Lab,
    sched: Scheduler,
    address: str,
    port: int,
    line: bytes,
    channel: Channel,
    product: str,
    confidence: str,
) -> None:
    imit = im.greeting(lab, address, port, line)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(imit.address, imit.port)
        async with stream:
            banner = await stream.receive_some(4096)
    platform, connections = await _fingerprint(sched, imit, channel, banner)
    assert platform is not None
    assert (platform.product, platform.confidence) == (product, confidence)
    assert platform.version is None and platform.build is None  # banners give no build
    assert connections == 0 and len(imit.requests) == 1  # only our own banner read


async def test_refused_sdk_falls_back_to_namespace_file(lab: Lab, sched: Scheduler) -> None:
    imit = im.vsphere_sdk(lab, "127.40.1.5", 443, im.ESXI_80, refuse_sdk=True)
    platform, connections = await _fingerprint(sched, imit, Channel.TLS)
    assert [(r.method, r.path) for r in imit.requests] == [
        ("POST", "/sdk"),
        ("GET", "/sdk/vimServiceVersions.xml"),
    ]
    assert connections == 2
    assert platform is not None
    # The namespace file names the API, the certificate names ESXi: no build claimed.
    assert platform.product == "ESXi" and platform.build is None
    assert any("urn:vim25 8.0.2.0" in e for e in platform.evidence)


async def test_bmc_front_page_recorded_as_bmc(lab: Lab, sched: Scheduler) -> None:
    imit = im.web_page(lab, "127.40.2.2", 443, "iDRAC9 - Login", server="Apache")
    platform, connections = await _fingerprint(sched, imit, Channel.TLS)
    assert platform is not None and (platform.product, platform.confidence) == ("BMC", "medium")
    assert connections == 2


async def test_host_with_disagreeing_signals_is_reported(lab: Lab, sched: Scheduler) -> None:
    address = "127.40.6.1"
    sdk = im.vsphere_sdk(lab, address, 443, im.ESXI_67)
    win = im.winrm(lab, address, 5985)
    esxi, _ = await _fingerprint(sched, sdk, Channel.TLS)
    windows, _ = await _fingerprint(sched, win, Channel.HTTP)
    folded = fold_host([_result(sdk, Channel.TLS, esxi), _result(win, Channel.HTTP, windows)])
    host = folded[address]
    assert is_conflicted(host)
    assert host.confidence == "low"
    assert "ESXi" in host.evidence[0] and "Hyper-V" in host.evidence[0]
    # The per-endpoint rows keep their own identification; a conflicted host platform
    # is not judged for currency.
    merged = _result(sdk, Channel.TLS, host)
    assert platform_rules.findings(merged, now=SCAN_TIME) == []


async def test_per_host_budget_holds(lab: Lab) -> None:
    """With one connection per host, two endpoints fingerprinted at once never have
    two connections open on the host at the same time."""
    address = "127.40.7.1"
    xapi = im.xapi_host(lab, address, 443)
    win = im.winrm(lab, address, 5985)
    sched = Scheduler(replace(OPTIONS, per_host_connections=1), {})
    try:
        results: list[PlatformInfo | None] = [None, None]

        async def run(i: int, imit: im.Imitation, channel: Channel) -> None:
            results[i], _ = await _fingerprint(sched, imit, channel)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, 0, xapi, Channel.TLS)
            nursery.start_soon(run, 1, win, Channel.HTTP)
    finally:
        sched.close()
    assert results[0] is not None and results[0].product == "XCP-ng"
    assert results[1] is not None and results[1].product == "Hyper-V"
    assert xapi.load.peak == 1 and win.load.peak == 1
    assert len(xapi.requests) + len(win.requests) == 4


async def test_silent_server_costs_the_signal_not_the_endpoint(lab: Lab) -> None:
    handle = lab.tarpit("127.40.8.1", 443)
    sched = Scheduler(replace(OPTIONS, fingerprint_timeout=0.3), {})
    try:
        ctx = EndpointContext(sched, Endpoint(handle.address, handle.address, handle.port))
        with trio.fail_after(10):
            platform = await fingerprint_endpoint(ctx, Channel.TLS, None)
    finally:
        sched.close()
    assert platform is not None and platform.product is None
    assert any(e.startswith("not answered: POST /sdk") for e in platform.evidence)
    assert ctx.connections == 2


async def test_end_to_end_through_the_scheduler(lab: Lab) -> None:
    imit = im.vsphere_sdk(lab, "127.40.9.1", 443, im.VCENTER_80)
    collector = ResultCollector(total=1)
    with trio.fail_after(30):
        await scan_endpoints(
            [Endpoint(imit.address, imit.address, 443)],
            OPTIONS,
            {},
            collector,
            Fingerprinter(),
        )
    [result] = collector.report(complete=True).endpoints
    assert result.status is Status.OK and result.channel is Channel.TLS
    assert result.platform is not None
    assert (result.platform.product, result.platform.build) == ("vCenter Server", "23929136")
    # discovery's own connection plus one fingerprint request
    assert result.connections == 2
    assert [(r.method, r.path) for r in imit.requests] == [("POST", "/sdk")]
