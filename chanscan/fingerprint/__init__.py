"""Which platform answers on an endpoint, without credentials, and how sure we are.

The scheduler runs the requests concurrently with the channel probe, then folds them
with the free signals once the observation is in. Free signals come first (the banner
discovery read, the SSH identification, the certificate the TLS probe saw); then at
most two small requests, each on its own connection from ``ctx.connection()`` so the
per-host budget holds:

- HTTPS (443 and other web ports): ``POST /sdk`` RetrieveServiceContent; if that is
  not a vSphere answer, ``GET /sdk/vimServiceVersions.xml`` when the answer smelled
  of vSphere, else ``GET /`` (XAPI front page, BMC pages).
- WinRM (5985/5986): WS-Man ``Identify``, then an NTLM NEGOTIATE whose 401 answer
  carries the CHALLENGE ([MS-WSMV] 3.1.4; [MS-NLMP] 2.2.1.2).
- RDP (3389): one CredSSP exchange up to the NTLM CHALLENGE ([MS-CSSP] 3.1.5).

Nothing sent carries a user name, password or hash. Each request is bounded by
``options.fingerprint_timeout`` (2 s), so a server that stalls here costs this signal,
not the endpoint's TLS or SSH result, and a one-worker appliance is not held up for
long while the probe waits for it.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, replace

import trio
from cryptography import x509

from chanscan.discovery_wire import parse_server_flight
from chanscan.errors import ProbeError, ProtocolError
from chanscan.fingerprint import banners, credssp, ntlm, vim, wsman, xapi
from chanscan.fingerprint.fold import merge
from chanscan.fingerprint.http import (
    HttpResponse,
    build_request,
    client_context,
    exchange,
    failure_reason,
    legacy_https,
    needs_legacy_client,
)
from chanscan.model import Channel, PlatformInfo
from chanscan.obs.rdp import RdpObservation
from chanscan.obs.ssh import SshObservation
from chanscan.obs.tls import TlsObservation
from chanscan.probes.base import Observation, ProbeContext

__all__ = [
    "MAX_REQUESTS",
    "Fingerprinter",
    "Gathered",
    "fingerprint_endpoint",
    "fingerprint_requests",
    "fingerprint_result",
]

MAX_REQUESTS = 2
HTTPS_PORTS = frozenset({443, 8443, 9443, 5480})
WSMAN_PORTS = frozenset({5985, 5986})
RDP_PORTS = frozenset({3389})


def _client_context(ctx: ProbeContext | None = None) -> ssl.SSLContext:
    # We only read public identification; the TLS probe judges the certificate. The
    # version discovery's handshake got is what the server accepts (legacy included).
    flight = parse_server_flight(ctx.first_reply) if ctx is not None else None
    return client_context(flight.version if flight is not None else None)


def _host_header(ctx: ProbeContext) -> str:
    ep = ctx.endpoint
    host = ep.server_name or (f"[{ep.address}]" if ":" in ep.address else ep.address)
    default = 443 if ep.port in (443,) else None
    return host if ep.port == default else f"{host}:{ep.port}"


class _Session:
    """Counts requests so no path can exceed MAX_REQUESTS, and keeps the peer's
    certificate seen on the way."""

    def __init__(self, ctx: ProbeContext) -> None:
        self.ctx = ctx
        self.sent = 0
        self.peer_cert: bytes | None = None
        self.failures: list[str] = []

    def _spend(self) -> None:
        if self.sent >= MAX_REQUESTS:
            raise AssertionError("fingerprinting request budget exceeded")
        self.sent += 1

    async def http(
        self,
        method: str,
        path: str,
        *,
        tls: bool,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
    ) -> HttpResponse | None:
        self._spend()
        request = build_request(method, path, _host_header(self.ctx), headers, body)
        flight = parse_server_flight(self.ctx.first_reply)
        if tls and flight is not None and needs_legacy_client(flight.version, flight.cipher_suite):
            assert flight.version is not None
            return await self._legacy(f"{method} {path}", flight.version, request)
        try:
            with trio.move_on_after(self.ctx.options.fingerprint_timeout) as scope:
                async with self.ctx.connection() as raw:
                    stream: trio.abc.Stream = raw
                    if tls:
                        ssl_stream = trio.SSLStream(
                            raw,
                            _client_context(self.ctx),
                            server_hostname=self.ctx.endpoint.server_name,
                            https_compatible=True,
                        )
                        try:
                            await ssl_stream.do_handshake()
                        except trio.BrokenResourceError as exc:
                            if not isinstance(exc.__cause__, ssl.SSLError):
                                raise
                            refused = exc  # Python's OpenSSL and the server share no TLS
                        else:
                            if self.peer_cert is None:
                                self.peer_cert = ssl_stream.getpeercert(binary_form=True)
                            return await exchange(ssl_stream, request)
                    else:
                        return await exchange(stream, request)
            if scope.cancelled_caught:
                self.failures.append(f"{method} {path}: no answer in time")
                return None
        except (ProbeError, OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            self.failures.append(f"{method} {path}: {failure_reason(exc)}")
            return None
        # No request reached the server: once more with nassl's legacy OpenSSL, which
        # still speaks SSL 3.0, RC4 and 3DES (discovery's hello got no ServerHello to
        # say which, e.g. an SSL 3.0-only server alerts on a TLS 1.3-style hello).
        got = await self._legacy(f"{method} {path}", "any", request)
        if got is None:
            self.failures[-1] += f" (and with Python's OpenSSL: {failure_reason(refused)})"
        return got

    async def _legacy(self, what: str, version: str, request: bytes) -> HttpResponse | None:
        """The request through nassl's legacy OpenSSL, with the version (and so the
        suites) discovery's handshake showed the server accepts."""
        ep = self.ctx.endpoint
        timeout = self.ctx.options.fingerprint_timeout
        try:
            async with self.ctx.budget():
                self.ctx.count_connections()
                resp, leaf = await self.ctx.run_in_thread(
                    legacy_https, ep.address, ep.port, ep.server_name, version, request, timeout
                )
        except (ProbeError, OSError, ValueError, RuntimeError) as exc:
            self.failures.append(f"{what} over {version}: {failure_reason(exc)}")
            return None
        except Exception as exc:  # nassl's OpenSSLError and kin: data, not a crash
            self.failures.append(f"{what} over {version}: {failure_reason(exc)}")
            return None
        if self.peer_cert is None:
            self.peer_cert = leaf
        return resp

    async def credssp(self) -> ntlm.NtlmChallenge | None:
        self._spend()
        try:
            with trio.move_on_after(self.ctx.options.fingerprint_timeout) as scope:
                async with self.ctx.connection() as raw:
                    return await _credssp_exchange(self, raw)
            if scope.cancelled_caught:
                self.failures.append("CredSSP: no answer in time")
        except (ProbeError, OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            self.failures.append(f"CredSSP: {failure_reason(exc)}")
        return None


async def _receive_exactly(stream: trio.abc.Stream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise ProtocolError("connection closed mid-message")
        buf += chunk
    return bytes(buf)


async def _credssp_exchange(session: _Session, raw: trio.SocketStream) -> ntlm.NtlmChallenge | None:
    await raw.send_all(credssp.connection_request())
    head = await _receive_exactly(raw, 4)
    tpkt = head + await _receive_exactly(raw, credssp.tpkt_length(head) - 4)
    selected = credssp.parse_confirm(tpkt)
    if not selected & (credssp.PROTOCOL_HYBRID | credssp.PROTOCOL_HYBRID_EX):
        session.failures.append(f"RDP server selected protocol {selected}: no CredSSP")
        return None
    tls = trio.SSLStream(raw, _client_context(), server_hostname=session.ctx.endpoint.server_name)
    await tls.do_handshake()
    if session.peer_cert is None:
        session.peer_cert = tls.getpeercert(binary_form=True)
    await tls.send_all(credssp.encode_ts_request(ntlm.build_negotiate()))
    buf = bytearray()
    total: int | None = None
    while total is None or len(buf) < total:  # bounded by the DER length (<= 64 KiB)
        chunk = await tls.receive_some(65536)
        if not chunk:
            raise ProtocolError("CredSSP peer closed before the challenge")
        buf += chunk
        total = credssp.der_total_length(bytes(buf))
        if total is not None and total > 65536:
            raise ProtocolError("CredSSP answer too large")
    _version, token, error = credssp.decode_ts_request(bytes(buf[:total]))
    if token is None:
        raise ProtocolError(f"CredSSP answer without a token (errorCode={error})")
    return ntlm.parse_challenge(token)


def _cert_signal(der: bytes | None) -> PlatformInfo | None:
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    return banners.cert_hints(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string())


def _free_signals(ctx: ProbeContext, observation: Observation | None) -> list[PlatformInfo | None]:
    out: list[PlatformInfo | None] = []
    banner = ctx.banner.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if banner:
        out.append(banners.parse_authd(banner) or banners.parse_ssh_banner(banner))
    if (
        isinstance(observation, SshObservation)
        and observation.identification
        and observation.identification.strip() != banner
    ):
        out.append(banners.parse_ssh_banner(observation.identification))
    tls = observation.tls if isinstance(observation, RdpObservation) else observation
    if isinstance(tls, TlsObservation):
        if tls.preface:
            out.append(banners.parse_authd(tls.preface))
        if tls.certificate and tls.certificate.chain:
            leaf = tls.certificate.chain[0]
            out.append(banners.cert_hints(leaf.subject, leaf.issuer))
    return out


def _tls_obs(observation: Observation | None) -> TlsObservation | None:
    if isinstance(observation, TlsObservation):
        return observation
    if isinstance(observation, RdpObservation):
        return observation.tls
    return None


def _smells_of_vsphere(resp: HttpResponse | None) -> bool:
    if resp is None:
        return False
    text = resp.body[:4096]
    return b"urn:vim25" in text or b"vim25" in text or b"ServiceFault" in text


async def _https_path(session: _Session, tls: bool) -> list[PlatformInfo | None]:
    out: list[PlatformInfo | None] = []
    sdk = await session.http(
        "POST",
        "/sdk",
        tls=tls,
        headers=(("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", vim.SOAP_ACTION)),
        body=vim.RETRIEVE_SERVICE_CONTENT,
    )
    about = vim.parse_service_content(sdk.body) if sdk is not None else None
    if about is not None:
        out.append(vim.platform_from_about(about))
        return out
    if _smells_of_vsphere(sdk):
        versions = await session.http("GET", "/sdk/vimServiceVersions.xml", tls=tls)
        if versions is not None:
            out.append(
                vim.platform_from_service_versions(vim.parse_service_versions(versions.body))
            )
        return out
    if sdk is not None and (fault := xapi.parse_xmlrpc_fault(sdk.body)) is not None:
        out.append(xapi.platform_from_fault(fault))
    front = await session.http("GET", "/", tls=tls)
    if front is not None:
        out.append(
            xapi.parse_front_page(front.body, front.header("server"))
            or banners.web_hints(front.body, front.header("server"))
        )
        if (fault := xapi.parse_xmlrpc_fault(front.body)) is not None:
            out.append(xapi.platform_from_fault(fault))
    return out


def _negotiate_challenge(resp: HttpResponse) -> ntlm.NtlmChallenge | None:
    for value in resp.header_all("www-authenticate"):
        for part in value.split(","):
            scheme, _, token = part.strip().partition(" ")
            if scheme.lower() in ("negotiate", "ntlm") and token:
                try:
                    return ntlm.parse_challenge(base64.b64decode(token.strip(), validate=False))
                except (ProtocolError, ValueError):
                    continue
    return None


async def _wsman_path(session: _Session, tls: bool) -> list[PlatformInfo | None]:
    out: list[PlatformInfo | None] = []
    ctype = ("Content-Type", "application/soap+xml;charset=UTF-8")
    ident = await session.http(
        "POST", "/wsman", tls=tls, headers=(ctype,), body=wsman.IDENTIFY_REQUEST
    )
    if ident is not None:
        parsed = wsman.parse_identify(ident.body)
        if parsed is not None:
            out.append(wsman.platform_from_identify(parsed, "WinRM"))
    token = base64.b64encode(ntlm.build_negotiate()).decode()
    resp = await session.http(
        "POST",
        "/wsman",
        tls=tls,
        headers=(ctype, ("Authorization", f"Negotiate {token}")),
    )
    if resp is not None and (challenge := _negotiate_challenge(resp)) is not None:
        out.append(ntlm.platform_from_challenge(challenge, "WinRM 401"))
    return out


@dataclass(frozen=True)
class Gathered:
    """What the requests of one endpoint learned, before the probe's observation is
    known: the scheduler runs the requests beside the channel probe."""

    signals: tuple[PlatformInfo | None, ...]
    failures: tuple[str, ...]
    peer_cert: bytes | None


async def fingerprint_requests(ctx: ProbeContext, channel: Channel) -> Gathered:
    """The (at most :data:`MAX_REQUESTS`) requests for this channel and port. They need
    nothing from the probe, so they run concurrently with it."""
    session = _Session(ctx)
    signals: list[PlatformInfo | None] = []
    port = ctx.endpoint.port
    if channel is Channel.RDP or (port in RDP_PORTS and channel is Channel.UNKNOWN):
        challenge = await session.credssp()
        if challenge is not None:
            signals.append(ntlm.platform_from_challenge(challenge, "RDP CredSSP"))
    elif port in WSMAN_PORTS and channel in (Channel.HTTP, Channel.TLS):
        signals += await _wsman_path(session, tls=channel is Channel.TLS)
    elif channel is Channel.TLS and port in HTTPS_PORTS:
        signals += await _https_path(session, tls=True)
    return Gathered(tuple(signals), tuple(session.failures), session.peer_cert)


def fingerprint_result(
    ctx: ProbeContext, observation: Observation | None, gathered: Gathered
) -> PlatformInfo | None:
    """Fold the free signals (banner, SSH identification, certificate) with what the
    requests learned; None when nothing at all was learned."""
    signals = [*_free_signals(ctx, observation), *gathered.signals]
    tls_obs = _tls_obs(observation)
    if tls_obs is None or tls_obs.certificate is None:
        signals.append(_cert_signal(gathered.peer_cert))
    merged = merge(signals)
    failures = tuple(f"not answered: {f}" for f in gathered.failures)
    if merged is None:
        return PlatformInfo(evidence=failures) if failures else None
    if failures:
        merged = replace(merged, evidence=(*merged.evidence, *failures))
    return merged


async def fingerprint_endpoint(
    ctx: ProbeContext, channel: Channel, observation: Observation | None
) -> PlatformInfo | None:
    """Requests then folding, one after the other (the scheduler overlaps the requests
    with the probe instead)."""
    return fingerprint_result(ctx, observation, await fingerprint_requests(ctx, channel))


class Fingerprinter:
    """The two halves the scheduler calls: ``requests`` beside the probe, ``result``
    after it."""

    async def requests(self, ctx: ProbeContext, channel: Channel) -> Gathered:
        return await fingerprint_requests(ctx, channel)

    def result(
        self, ctx: ProbeContext, observation: Observation | None, gathered: Gathered
    ) -> PlatformInfo | None:
        return fingerprint_result(ctx, observation, gathered)
