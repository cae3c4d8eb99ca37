"""Probes, one per channel, behind the :class:`chanscan.probes.base.Probe` protocol."""

from __future__ import annotations

import threading
from collections.abc import Callable

from chanscan.model import Channel
from chanscan.probes.base import Observation, Probe, ProbeContext


def _tls(channel: Channel) -> Callable[[], Probe]:
    def build() -> Probe:
        from chanscan.probes.tls import TlsProbe

        return TlsProbe(channel)

    return build


def _ssh() -> Probe:
    from chanscan.probes.ssh import SshProbe

    return SshProbe()


def _rdp() -> Probe:
    from sslyze.connection_helpers.opportunistic_tls_helpers import (
        ProtocolWithOpportunisticTlsEnum,
    )

    from chanscan.probes.rdp import RdpProbe
    from chanscan.probes.tls import TlsProbe

    rdp_tls = TlsProbe(Channel.RDP, opportunistic=ProtocolWithOpportunisticTlsEnum.RDP)
    return RdpProbe(tls_probe=rdp_tls)


# One lock for every probe's build, not one per probe: the TLS and RDP probes import
# the same sslyze modules, and two threads importing them at once can meet in
# Python's per-module import locks the other way round, which the import system
# reports as "_DeadlockError: deadlock detected by _ModuleLock(...)" (issue 12).
_BUILD_LOCK = threading.Lock()


class LazyProbe:
    """A probe whose module (sslyze, asyncssh: about 0.4 s of imports each) is imported
    on a worker thread when the first endpoint of its channel is probed, so a scan
    pays only for the channels it finds and the trio loop is never blocked by it.
    Builds run one at a time (:data:`_BUILD_LOCK`)."""

    def __init__(self, channel: Channel, build: Callable[[], Probe]) -> None:
        self.channel = channel
        self._build = build
        self._probe: Probe | None = None

    def get(self) -> Probe:
        """Blocking: the real probe, built once (thread-safe)."""
        with _BUILD_LOCK:
            if self._probe is None:
                self._probe = self._build()
            return self._probe

    async def run(self, ctx: ProbeContext) -> Observation:
        probe = self._probe
        if probe is None:
            probe = await ctx.run_in_thread(self.get)
        return await probe.run(ctx)


def default_probes() -> dict[Channel, Probe]:
    """Every channel chanscan knows how to probe, each imported on first use: sslyze
    and asyncssh are heavy, and ``chanscan report`` / ``diff`` need neither."""
    return {
        Channel.TLS: LazyProbe(Channel.TLS, _tls(Channel.TLS)),
        Channel.AUTHD: LazyProbe(Channel.AUTHD, _tls(Channel.AUTHD)),
        Channel.SSH: LazyProbe(Channel.SSH, _ssh),
        Channel.RDP: LazyProbe(Channel.RDP, _rdp),
    }
