"""Values that cross module boundaries: endpoints, findings, grades, results, the report.

Every class here is a frozen dataclass of plain types, tuples and enums so that
``chanscan.serde`` can turn it into the versioned JSON format and back, and
``chanscan.schema`` can derive the JSON Schema from the same definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from chanscan.obs.http import HttpObservation
from chanscan.obs.rdp import RdpObservation
from chanscan.obs.ssh import SshObservation
from chanscan.obs.tls import TlsObservation

SCHEMA_ID = "chanscan/1"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)


_SEVERITY_ORDER = (
    Severity.INFO,
    Severity.LOW,
    Severity.MEDIUM,
    Severity.HIGH,
    Severity.CRITICAL,
)


class Axis(StrEnum):
    """What a finding weighs on: exactly the channel axes it caps (docs/grading.md).

    ``host`` findings are about the machine (patch level, end of support): they fail
    the gate and show per host, but a channel's grade describes only the channel.
    ``none`` findings cap nothing (reminders, what could not be measured)."""

    MITM = "mitm"
    EAVESDROPPING = "eavesdropping"
    BOTH = "both"
    HOST = "host"
    NONE = "none"


class Channel(StrEnum):
    TLS = "tls"
    SSH = "ssh"
    RDP = "rdp"
    AUTHD = "authd"
    HTTP = "http"
    UNKNOWN = "unknown"


class Status(StrEnum):
    OK = "ok"
    CLOSED = "closed"
    FILTERED = "filtered"
    TIMEOUT = "timeout"
    ERROR = "error"
    INTERRUPTED = "interrupted"  # in flight when Ctrl-C / SIGTERM stopped the scan


class PlatformHint(StrEnum):
    AUTO = "auto"
    VCENTER = "vcenter"
    ESXI = "esxi"
    XENSERVER = "xenserver"
    HYPERV = "hyperv"


@dataclass(frozen=True)
class ScanOptions:
    """Tunables of one scan, every probe may read them. Times are seconds. A value that
    crosses modules (cli -> scheduler -> probes, and to Dask workers as plain data)."""

    connect_timeout: float = 3.0  # one TCP connect during discovery
    sniff_timeout: float = 1.5  # wait for a server-first banner (SSH, authd)
    endpoint_deadline: float = 30.0  # the whole probe of one endpoint
    network_timeout: float = 5.0  # one read/handshake inside a probe (sslyze's)
    # One fingerprinting request: best effort, and short, because a one-worker
    # appliance serves nothing else while it sits on a request it will not answer.
    fingerprint_timeout: float = 2.0
    per_host_connections: int = 5  # an ESXi hostd survives this
    global_connections: int = 64
    # Discovery connects at once, apart from the probes' budget (a sparse sweep waits
    # on silent addresses, not on servers). 0: sized from the file-descriptor limit.
    discovery_connections: int = 0
    worker_threads: int = 8  # long-lived threads for blocking work (sslyze/nassl)
    ca_bundle: Path | None = None
    ssh_user: str = "chanscan-probe"  # neutral user name for the 'none' auth query


@dataclass(frozen=True)
class Endpoint:
    """One address and port to scan, with what the user told us about it."""

    host: str  # the name the user gave (hostname or address literal)
    address: str  # the resolved IP address connections go to
    port: int
    platform_hint: PlatformHint = PlatformHint.AUTO
    policy: str = "default"
    group: str | None = None

    @property
    def server_name(self) -> str | None:
        """The name to send as SNI and match certificates against; None when scanned
        by address (RFC 6066 3: literal IP addresses are not permitted in SNI)."""
        return None if self.host == self.address else self.host


@dataclass(frozen=True)
class Finding:
    id: str  # stable, dotted: "tls.protocol.tls1_0"
    title: str
    severity: Severity
    axis: Axis
    evidence: tuple[str, ...] = ()
    remediation: str = ""
    references: tuple[str, ...] = ()
    waived: bool = False
    waiver_reason: str | None = None
    policy: str | None = None  # set when the finding is a policy violation


@dataclass(frozen=True)
class GradeCaps:
    eavesdropping: str | None = None
    mitm: str | None = None


@dataclass(frozen=True)
class Grade:
    eavesdropping: str
    mitm: str
    overall: str
    capped_by: GradeCaps = field(default_factory=GradeCaps)


@dataclass(frozen=True)
class PlatformInfo:
    product: str | None = None
    version: str | None = None
    build: str | None = None
    confidence: str = "none"  # none/low/medium/high
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vantage:
    """Where an endpoint was measured from, in a scan sent to Dask workers."""

    site: str | None  # the targets group's ``site``; None for groups without one
    worker: str | None  # the Dask worker's name or address; None when no worker ran it


@dataclass(frozen=True)
class EndpointResult:
    host: str
    address: str
    port: int
    channel: Channel
    status: Status
    error: str | None = None
    group: str | None = None
    policy: str = "default"
    platform_hint: PlatformHint = PlatformHint.AUTO
    banner: str | None = None  # first line the server sent unprompted, if any
    connections: int = 0  # TCP connections chanscan opened to this endpoint
    elapsed_ms: int = 0
    vantage: Vantage | None = None  # None for a scan run by this process alone
    tls: TlsObservation | None = None
    ssh: SshObservation | None = None
    rdp: RdpObservation | None = None
    http: HttpObservation | None = None
    platform: PlatformInfo | None = None
    findings: tuple[Finding, ...] = ()
    grade: Grade | None = None

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(
            host=self.host,
            address=self.address,
            port=self.port,
            platform_hint=self.platform_hint,
            policy=self.policy,
            group=self.group,
        )

    @property
    def reachable(self) -> bool:
        return self.status in (Status.OK, Status.CLOSED)


@dataclass(frozen=True)
class HostResult:
    """One machine (one address) as assess sees it across its endpoints: its platform,
    the findings about the host itself (patch level, end of support), and its grade:
    the worst of its channels, with the cleartext-beside-TLS cap. Computed once in
    assess and written to the report, so the gate and every format use the same one."""

    address: str
    names: tuple[str, ...] = ()  # the names the user gave that resolved here
    platform: PlatformInfo | None = None
    findings: tuple[Finding, ...] = ()
    grade: Grade | None = None


@dataclass(frozen=True)
class DownHosts:
    """Hosts of one network that answered nothing (no SYN-ACK, no RST) on their first
    ports: counted here instead of one "filtered" row per port."""

    network: str  # the /24 (IPv4) or /64 (IPv6) the hosts are in
    hosts: int
    ports: int  # their endpoints: tried without an answer, or not tried once down


@dataclass(frozen=True)
class ScanReport:
    schema: str
    tool_version: str
    complete: bool
    started_at: str  # RFC 3339, UTC
    finished_at: str
    endpoints: tuple[EndpointResult, ...]
    command: tuple[str, ...] = ()
    down_hosts: tuple[DownHosts, ...] = ()
    hosts: tuple[HostResult, ...] = ()  # filled by assess; empty in a raw scan
