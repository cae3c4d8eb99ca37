"""What the RDP probe records per endpoint (the JSON ``rdp`` object).

Protocols follow [MS-RDPBCGR] 2.2.1.2.1 (RDP_NEG_RSP selectedProtocol):
``rdp`` (standard RDP security, no TLS), ``ssl`` (TLS), ``hybrid`` (CredSSP/NLA),
``hybrid_ex`` (CredSSP with Early User Authorization Result).
"""

from __future__ import annotations

from dataclasses import dataclass

from chanscan.obs.tls import TlsObservation


@dataclass(frozen=True)
class RdpObservation:
    protocols_accepted: tuple[str, ...] = ()  # what the server agreed to when asked alone
    protocols_refused: tuple[str, ...] = ()
    negotiation_failure: str | None = None  # RDP_NEG_FAILURE code name, if any
    tls: TlsObservation | None = None  # the TLS layer after negotiation, when offered
