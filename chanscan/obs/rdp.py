"""What the RDP probe records per endpoint (the JSON ``rdp`` object).

Protocols follow [MS-RDPBCGR] 2.2.1.2.1 (RDP_NEG_RSP selectedProtocol):
``rdp`` (standard RDP security, no TLS), ``ssl`` (TLS), ``hybrid`` (CredSSP/NLA),
``hybrid_ex`` (CredSSP with Early User Authorization Result).
"""

from __future__ import annotations

from dataclasses import dataclass

from chanscan.obs.tls import TlsObservation


@dataclass(frozen=True)
class RdpNegotiation:
    """One X.224 Connection Request and what the server answered."""

    requested: str  # the protocol asked for alone: rdp, ssl, hybrid, hybrid_ex
    requested_mask: int  # requestedProtocols as sent ([MS-RDPBCGR] 2.2.1.1.1)
    selected: str | None = None  # what RDP_NEG_RSP selected (None on failure)
    failure: str | None = None  # RDP_NEG_FAILURE code name
    legacy: bool = False  # Connection Confirm without negotiation data (pre-RDP 5.2)
    error: str | None = None  # no usable answer (closed, garbage)


@dataclass(frozen=True)
class RdpEncryption:
    """Standard RDP security's settings, from the Server Security Data of the MCS
    Connect Response ([MS-RDPBCGR] 2.2.1.4.3); asked only when standard security was
    accepted. ``None`` fields were not determined."""

    level: str | None = None  # none, low, client_compatible, high, fips
    method: str | None = None  # chosen when offered every method: 40bit, 56bit, 128bit, fips
    # Every method the server settled on when offered one method at a time: what a
    # client can end up with (a server may also ignore the offer and impose its own).
    methods: tuple[str, ...] = ()
    error: str | None = None  # why the exchange gave no answer


@dataclass(frozen=True)
class RdpObservation:
    protocols_accepted: tuple[str, ...] = ()  # what the server agreed to when asked alone
    protocols_refused: tuple[str, ...] = ()
    negotiation_failure: str | None = None  # RDP_NEG_FAILURE code name, if any
    tls: TlsObservation | None = None  # the TLS layer after negotiation, when offered
    negotiations: tuple[RdpNegotiation, ...] = ()  # every request, in the order sent
    tls_not_probed: str | None = None  # why ``tls`` is None although TLS was accepted
    encryption: RdpEncryption | None = None  # standard RDP security's level and methods
