"""Probes, one per channel, behind the :class:`chanscan.probes.base.Probe` protocol."""

from __future__ import annotations

from chanscan.model import Channel
from chanscan.probes.base import Probe


def default_probes() -> dict[Channel, Probe]:
    """Every channel chanscan knows how to probe. Imported lazily: sslyze and asyncssh
    are heavy, and ``chanscan report`` / ``diff`` need neither."""
    from sslyze.connection_helpers.opportunistic_tls_helpers import (
        ProtocolWithOpportunisticTlsEnum,
    )

    from chanscan.probes.rdp import RdpProbe
    from chanscan.probes.ssh import SshProbe
    from chanscan.probes.tls import TlsProbe

    rdp_tls = TlsProbe(Channel.RDP, opportunistic=ProtocolWithOpportunisticTlsEnum.RDP)
    return {
        Channel.TLS: TlsProbe(Channel.TLS),
        Channel.AUTHD: TlsProbe(Channel.AUTHD),
        Channel.SSH: SshProbe(),
        Channel.RDP: RdpProbe(tls_probe=rdp_tls),
    }
