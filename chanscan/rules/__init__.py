"""Rules: pure functions from an endpoint's observations to findings.

Each rule module exposes ``findings(result: EndpointResult, *, now: datetime) ->
list[Finding]``; this package calls the ones that apply to the endpoint's channel. Rule
modules never do I/O, never grade and never read the wall clock: ``now`` is the scan's
own clock (the report's ``started_at``), so ``chanscan report old.json`` next month
gives the verdicts of the day it was scanned.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from functools import cache
from typing import Protocol

from chanscan.model import Channel, EndpointResult, Finding, PlatformInfo, Status


class RuleFn(Protocol):
    def __call__(self, result: EndpointResult, *, now: datetime) -> list[Finding]: ...


# Channel -> rule modules (under chanscan.rules) that apply to it.
_BY_CHANNEL: dict[Channel, tuple[str, ...]] = {
    Channel.TLS: ("tls",),
    Channel.AUTHD: ("tls",),
    Channel.SSH: ("ssh",),
    Channel.RDP: ("rdp",),
    Channel.HTTP: ("cleartext",),
    Channel.UNKNOWN: (),
}
# Modules that look at every probed endpoint whatever its channel. Platform currency
# is not here: it is about the host, judged once per address (``evaluate_host``).
_ALWAYS: tuple[str, ...] = ()


@cache
def _load(name: str) -> RuleFn:
    module = importlib.import_module(f"chanscan.rules.{name}")
    fn: RuleFn = module.findings
    return fn


def evaluate_host(platform: PlatformInfo | None, *, now: datetime) -> list[Finding]:
    """Findings about a host itself (patch level, end of support) from its folded
    platform: they fail the gate and show per host, and cap no channel grade."""
    from chanscan.rules import platform as platform_rules

    return platform_rules.host_findings(platform, now=now)


def evaluate(result: EndpointResult, *, now: datetime) -> list[Finding]:
    """All findings for one endpoint at scan time ``now``, de-duplicated by id (first wins)."""
    if result.status != Status.OK:
        return []
    out: list[Finding] = []
    seen: set[str] = set()
    for name in (*_BY_CHANNEL[result.channel], *_ALWAYS):
        for f in _load(name)(result, now=now):
            if f.id not in seen:
                seen.add(f.id)
                out.append(f)
    return out
