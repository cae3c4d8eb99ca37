"""An endpoint's result row from what was measured: pure helpers the scheduler and the
collector share. Every free text a server can fill is capped here, so a 1 MiB
identification line never becomes a 1 MiB report."""

from __future__ import annotations

from dataclasses import replace

from chanscan.config import PlannedTarget
from chanscan.model import Channel, Endpoint, EndpointResult, Status
from chanscan.obs.rdp import RdpObservation
from chanscan.obs.ssh import SshObservation
from chanscan.obs.tls import TlsObservation
from chanscan.probes.base import Observation

__all__ = [
    "MAX_TEXT",
    "banner_text",
    "base_result",
    "cap_text",
    "capped",
    "planned_error",
    "with_observation",
]


def with_observation(result: EndpointResult, obs: Observation | None) -> EndpointResult:
    if isinstance(obs, TlsObservation):
        return replace(result, tls=obs)
    if isinstance(obs, SshObservation):
        return replace(result, ssh=obs)
    if isinstance(obs, RdpObservation):
        return replace(result, rdp=obs)
    return result


def base_result(
    ep: Endpoint, channel: Channel, status: Status, error: str | None
) -> EndpointResult:
    return EndpointResult(
        host=ep.host,
        address=ep.address,
        port=ep.port,
        channel=channel,
        status=status,
        error=error,
        group=ep.group,
        policy=ep.policy,
        platform_hint=ep.platform_hint,
    )


#: The longest text a server can put into a report field (errors, evidence): a 1 MiB
#: identification line must not become a 1 MiB report.
MAX_TEXT = 512


def cap_text(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else f"{text[: limit - 30]}... ({len(text)} chars in all)"


def _cap_all(texts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(map(cap_text, texts))


def _too_long(texts: tuple[str, ...]) -> bool:
    return any(len(t) > MAX_TEXT for t in texts)


def capped(result: EndpointResult) -> EndpointResult:
    """Every free text a server can fill, capped at :data:`MAX_TEXT` per entry."""
    if result.error is not None and len(result.error) > MAX_TEXT:
        result = replace(result, error=cap_text(result.error))
    p = result.platform
    if p is not None and _too_long(p.evidence):
        result = replace(result, platform=replace(p, evidence=_cap_all(p.evidence)))
    ssh = result.ssh
    if ssh is not None and (_too_long(ssh.errors) or _too_long(ssh.pre_banner)):
        ssh = replace(ssh, errors=_cap_all(ssh.errors), pre_banner=_cap_all(ssh.pre_banner))
        result = replace(result, ssh=ssh)
    tls = result.tls
    if tls is not None and _too_long(tls.not_determined):
        result = replace(result, tls=replace(tls, not_determined=_cap_all(tls.not_determined)))
    return result


def banner_text(banner: bytes) -> str | None:
    if not banner:
        return None
    return banner.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")[:255] or None


def planned_error(
    target: PlannedTarget, port: int, error: str, host: str, address: str = ""
) -> EndpointResult:
    """The error row of a planned target's port that was never scanned (a name that did
    not resolve, a shard no worker ran)."""
    return EndpointResult(
        host=host,
        address=address,
        port=port,
        channel=Channel.UNKNOWN,
        status=Status.ERROR,
        error=error,
        group=target.group,
        policy=target.policy,
        platform_hint=target.platform,
    )
