"""Serial appliances (BMC-class stacks, ``openssl s_server``): one connection at a time.
One accepted client-initiated renegotiation is the finding, and a host with one slot
never has its slot held by an idle fingerprint request while the probe waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from sslyze.plugins.scan_commands import ScanCommand

from chanscan.lab.core import Lab, free_port
from chanscan.lab.tls_servers import CertSpec, issue, python_tls_server
from chanscan.model import Channel, Endpoint, PlatformInfo, ScanOptions, Status
from chanscan.obs.tls import TlsObservation
from chanscan.probes.base import Observation, ProbeContext
from chanscan.probes.tls import TlsProbe
from chanscan.probes.tls_jobs import CLIENT_RENEGOTIATIONS, run_command
from chanscan.scheduler import ResultCollector, probe_once, scan_endpoints
from tests._tls_lab import NAME, server_info, start_openssl

ADDR = "127.83.0.1"


@pytest.mark.needs_openssl
def test_one_accepted_client_renegotiation_is_the_finding(lab: Lab) -> None:
    served = start_openssl(
        lab, ADDR, "s_server-reneg", CertSpec(names=(NAME,)), ["-client_renegotiation"]
    )
    outcome = run_command(server_info(served.endpoint()), ScanCommand.SESSION_RENEGOTIATION)
    assert outcome.error is None, outcome.error
    assert outcome.result.is_vulnerable_to_client_renegotiation_dos is True
    # sslyze's default is ten in a row; s_server stalls about a second after each.
    assert outcome.result.client_renegotiations_success_count == CLIENT_RENEGOTIATIONS == 1


@pytest.mark.needs_openssl
async def test_serial_server_with_client_renegotiation_is_probed_quickly(lab: Lab) -> None:
    served = start_openssl(
        lab, ADDR, "s_server-bmc", CertSpec(names=(NAME,)), ["-client_renegotiation"]
    )
    result = await probe_once(served.endpoint(), TlsProbe())
    assert result.status is Status.OK, result.error
    assert result.tls is not None
    assert result.tls.vulns.client_renegotiation is True
    # Ten renegotiations cost this server ~9 s; one costs at most about a second.
    assert result.elapsed_ms < 5000, result.elapsed_ms


@dataclass
class _Timeline:
    events: list[tuple[str, float]] = field(default_factory=list)

    def mark(self, what: str) -> None:
        self.events.append((what, trio.current_time()))

    def at(self, what: str) -> float:
        return next(t for w, t in self.events if w == what)


@dataclass
class _TwoConnectionProbe:
    """Two connections one after the other, as a probe's steps are: between them the
    host's one slot is free for whoever waits."""

    timeline: _Timeline
    channel: Channel = Channel.TLS

    async def run(self, ctx: ProbeContext) -> TlsObservation:
        self.timeline.mark("probe start")
        for _ in range(2):
            async with ctx.connection():
                await trio.sleep(0.2)
        self.timeline.mark("probe end")
        return TlsObservation()


@dataclass
class _IdleFingerprinter:
    """A fingerprint request the server never answers: it holds its connection idle."""

    timeline: _Timeline

    async def requests(self, ctx: ProbeContext, channel: Channel) -> Any:
        self.timeline.mark("fingerprint start")
        async with ctx.connection():
            await trio.sleep(0.5)
        return None

    def result(
        self, ctx: ProbeContext, observation: Observation | None, gathered: Any
    ) -> PlatformInfo | None:
        return PlatformInfo(evidence=("not answered: test request",))


@pytest.mark.parametrize("per_host", [1, 5])
async def test_one_slot_host_gets_fingerprint_requests_after_the_probe(
    lab: Lab, per_host: int
) -> None:
    port = free_port(ADDR)
    python_tls_server(lab, ADDR, port, issue(CertSpec(names=(NAME,))), name=f"tls-{per_host}")
    timeline = _Timeline()
    collector = ResultCollector()
    await scan_endpoints(
        [Endpoint(ADDR, ADDR, port)],
        ScanOptions(per_host_connections=per_host),
        {Channel.TLS: _TwoConnectionProbe(timeline)},
        collector,
        _IdleFingerprinter(timeline),
    )
    (row,) = collector.results
    assert row.status is Status.OK and row.platform is not None
    if per_host == 1:
        # Never behind an idle request: the probe's two connections come first.
        assert timeline.at("fingerprint start") >= timeline.at("probe end")
    else:
        # With slots to spare the requests run beside the probe.
        assert timeline.at("fingerprint start") < timeline.at("probe end")
