"""Cipher-suite and group enumeration by elimination, sparing fragile appliances.

sslyze tests every suite it knows in its own handshake (533 per endpoint with 6.3.1).
Here, per TLS version and per OpenSSL build sslyze would use for a suite (nassl's
legacy 1.0.2 client or its modern 1.1.1 one; TLS 1.2 needs both, split exactly as
sslyze's ``WorkaroundForTls12ForCipherSuites`` does), we offer every remaining suite,
record the server's pick, remove it and repeat until the handshake fails: one
handshake per accepted suite plus one per chain. Same for the key-exchange groups.

A server that breaks on a long ClientHello (the F5 bug sslyze's connectivity test also
works around, https://support.f5.com/csp/article/K14758) is detected by retrying a
silently dropped first hello with a short one, and then enumerated one suite per
handshake with sslyze's own ``connect_with_cipher_suite``. A server whose pick cannot
be read (it requires a client certificate, so nassl stops before the suite is known)
is enumerated by halving accepted offers instead.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nassl.ephemeral_key_info import EcDhEphemeralKeyInfo, EphemeralKeyInfo, OpenSslEcNidEnum
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import (
    BaseSslClient,
    ClientCertificateRequested,
    OpenSslVerifyEnum,
    OpenSslVersionEnum,
    SslClient,
)
from sslyze.connection_helpers.tls_connection import NoCiphersAvailableBugInSSlyze
from sslyze.errors import (
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite, CipherSuitesRepository
from sslyze.server_connectivity import (
    ServerConnectivityInfo,
    TlsVersionEnum,
    enable_ecdh_cipher_suites,
)

from chanscan.obs.tls import CipherSuite as ObsCipherSuite
from chanscan.probes.sslyze_adapter import (
    GROUP_REJECTION_TEXTS,
    SILENT_DROP_TEXTS,
    CipherSuiteAcceptedByServer,
    OpenSSLError,
    connect_with_cipher_suite,
)

# The first phase of a chain stops after this many picks; a version that accepts more
# has the rest of its candidates enumerated by a few chains in parallel (each costs one
# extra failing handshake, so small versions are not split at all).
FIRST_PICKS = 10
# Candidates per parallel chain in the second phase (at most three chains).
SPLIT_ABOVE = 60
# A "short" ClientHello for the hello-intolerance check: well under 256 bytes.
_SHORT_HELLO_SUITES = 8

# The errors that mean "no connection at all" rather than a TLS answer: a server that
# drops a long hello shows these, a server that does not speak a version sends an alert.
_SILENT_DROPS = SILENT_DROP_TEXTS


@dataclass(frozen=True)
class Chain:
    """One elimination run: a TLS version, a client build and its candidate suites."""

    version: TlsVersionEnum
    legacy: bool
    suites: tuple[CipherSuite, ...]

    @property
    def label(self) -> str:
        return f"{self.version.name}/{'legacy' if self.legacy else 'modern'}"


@dataclass(frozen=True)
class ChainResult:
    chain: Chain
    accepted: tuple[CipherSuiteAcceptedByServer, ...]  # in the order the server picked
    remaining: tuple[CipherSuite, ...]  # candidates not yet tried away
    handshakes: int
    finished: bool  # the last handshake failed: nothing in ``remaining`` is accepted
    per_suite: bool = False  # fell back to one suite per handshake
    end_error: str | None = None  # why the last handshake failed
    # From the third round's reversed offer: True when the server picked its first pick
    # again (its own order), False when it picked another (the client's order).
    own_order: bool | None = None
    # The certificate chain (PEM) the first handshake received, when it was accepted.
    received_chain: tuple[str, ...] = ()

    @property
    def silent_end(self) -> bool:
        """Ended by a dropped connection rather than a TLS alert: a rejection by some
        stacks, or an appliance that drops parallel connections."""
        return self.end_error is not None and any(m in self.end_error for m in _SILENT_DROPS)


@functools.cache
def _legacy_tls12_names() -> frozenset[str]:
    client = LegacySslClient(
        ssl_version=OpenSslVersionEnum.TLSV1_2, ssl_verify=OpenSslVerifyEnum.NONE
    )
    client.set_cipher_list("ALL:COMPLEMENTOFALL")
    return frozenset(client.get_cipher_list())


def preference_from_picks(result: ChainResult) -> bool | None:
    """The server's own order (True) or the client's (False), when the elimination
    itself showed it: from the third round's reversed offer, or True when the server
    picked a suite while one it picked next stood earlier in the same offer. None:
    not shown, ask with a handshake."""
    if result.per_suite:
        return None  # accepted suites were not picks from one offer
    if result.own_order is not None:
        return result.own_order
    position = {s: i for i, s in enumerate(result.chain.suites)}
    picks = [position[a.cipher_suite] for a in result.accepted if a.cipher_suite in position]
    if any(later < earlier for earlier, later in itertools.pairwise(picks)):
        return True
    return None


def plan_chains() -> list[Chain]:
    """The first-phase chains: one per version and client build, in a stable order."""
    chains: list[Chain] = []
    for version in TlsVersionEnum:
        suites = sorted(CipherSuitesRepository.get_all_cipher_suites(version), key=lambda s: s.name)
        if version is TlsVersionEnum.TLS_1_2:
            legacy = _legacy_tls12_names()
            chains.append(
                Chain(version, True, tuple(s for s in suites if s.openssl_name in legacy))
            )
            chains.append(
                Chain(version, False, tuple(s for s in suites if s.openssl_name not in legacy))
            )
        else:
            chains.append(Chain(version, version is not TlsVersionEnum.TLS_1_3, tuple(suites)))
    return chains


def split(result: ChainResult) -> list[Chain]:
    """Second phase: the rest of a version that accepted something, in a few chains."""
    rest = result.remaining
    if not rest or result.finished:
        return []
    parts = max(1, min(3, math.ceil(len(rest) / SPLIT_ABOVE)))
    c = result.chain
    return [Chain(c.version, c.legacy, rest[i::parts]) for i in range(parts)]


def _configure(client: BaseSslClient, version: TlsVersionEnum, names: Sequence[str]) -> None:
    joined = ":".join(names)
    if isinstance(client, SslClient) and version is TlsVersionEnum.TLS_1_3:
        client.set_ciphersuites(joined)
    else:
        client.set_cipher_list(joined)


def _lookup(
    version: TlsVersionEnum, openssl_name: str, offered: Sequence[CipherSuite]
) -> CipherSuite | None:
    for s in offered:
        if s.openssl_name == openssl_name:
            return s
    # OpenSSL 1.0.2 spells one suite two ways (sslyze drops the EDH- alias).
    alias = openssl_name.replace("EDH-", "DHE-", 1)
    return next((s for s in offered if s.openssl_name == alias), None)


# Widely deployed suites first, so that a short hello is likely to be accepted by a
# server that supports the version at all (a silent close then means "not supported").
_COMMON = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES128-SHA",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
    "RC4-SHA",
)


def _short_offer(
    info: ServerConnectivityInfo, remaining: Sequence[CipherSuite]
) -> list[CipherSuite]:
    known = info.tls_probing_result.cipher_suite_supported
    rank = {name: i for i, name in enumerate((known, *_COMMON))}
    ordered = sorted(remaining, key=lambda s: rank.get(s.openssl_name, len(rank)))
    return ordered[:_SHORT_HELLO_SUITES]


@dataclass(frozen=True)
class _Pick:
    suite: CipherSuite | None  # None: handshake failed (no suite of the offer accepted)
    ephemeral: EphemeralKeyInfo | None
    error: str | None
    # The server accepted one of the offer but the client cannot say which (a server
    # that requires a client certificate stops the handshake before nassl knows).
    unnamed: bool = False
    received_chain: tuple[str, ...] = ()  # PEM, as sent; only when asked for


def _received_chain(client: BaseSslClient) -> tuple[str, ...]:
    try:
        return tuple(client.get_received_chain())
    except (OpenSSLError, ValueError):
        return ()  # no chain to read: the certificate is then fetched on its own


def _handshake(
    info: ServerConnectivityInfo,
    chain: Chain,
    offer: Sequence[CipherSuite],
    keep_chain: bool = False,
) -> _Pick:
    conn = info.get_preconfigured_tls_connection(
        override_tls_version=chain.version, should_use_legacy_openssl=chain.legacy
    )
    try:
        _configure(conn.ssl_client, chain.version, [s.openssl_name for s in offer])
        try:
            conn.connect(should_retry_connection=False)
        except ClientCertificateRequested:
            pass  # the server chose a suite before asking for a certificate
        except ServerTlsConfigurationNotSupported:
            pass  # nassl refused the server's tiny DH group: the suite IS accepted
        received = _received_chain(conn.ssl_client) if keep_chain else ()
        name = conn.ssl_client.get_current_cipher_name()
        if not name:
            eph = conn.ssl_client.get_ephemeral_key()
            return _Pick(None, eph, None, unnamed=True, received_chain=received)
        suite = _lookup(chain.version, name, offer)
        if suite is None:
            return _Pick(None, None, f"server picked {name!r}, which was not offered")
        return _Pick(suite, conn.ssl_client.get_ephemeral_key(), None, received_chain=received)
    except (ServerRejectedTlsHandshake, TlsHandshakeTimedOut) as exc:
        return _Pick(None, None, exc.error_message)
    except NoCiphersAvailableBugInSSlyze:
        return _Pick(None, None, "no suite of the offer is usable by this client build")
    finally:
        conn.close()


def _per_suite(
    info: ServerConnectivityInfo, chain: Chain, suites: Sequence[CipherSuite]
) -> tuple[list[CipherSuiteAcceptedByServer], int]:
    accepted: list[CipherSuiteAcceptedByServer] = []
    for s in suites:
        try:
            r = connect_with_cipher_suite(info, chain.version, s)
        except NoCiphersAvailableBugInSSlyze:
            continue  # sslyze skips these too (not a handshake the build can make)
        if isinstance(r, CipherSuiteAcceptedByServer):
            accepted.append(r)
    return accepted, len(suites)


def _bisect(
    info: ServerConnectivityInfo,
    chain: Chain,
    offer: list[CipherSuite],
    found: list[CipherSuiteAcceptedByServer],
    known_accepted: bool = False,
) -> int:
    """Group testing for servers whose choice cannot be read: halve an offer that was
    accepted until single suites remain (about 2 log2(n) handshakes per accepted suite
    instead of n). Returns the handshakes spent; depth is bounded by log2(len(offer))."""
    if not offer:
        return 0
    spent = 0
    if not known_accepted:
        pick = _handshake(info, chain, offer)
        spent += 1
        if pick.suite is not None:  # readable after all: eliminate it, test the rest
            found.append(CipherSuiteAcceptedByServer(pick.suite, pick.ephemeral))
            rest = [s for s in offer if s != pick.suite]
            return spent + _bisect(info, chain, rest, found)
        if not pick.unnamed:
            return spent
        if len(offer) == 1:
            found.append(CipherSuiteAcceptedByServer(offer[0], pick.ephemeral))
            return spent
    half = len(offer) // 2
    if half == 0:  # a single suite known to be accepted
        found.append(CipherSuiteAcceptedByServer(offer[0], None))
        return spent
    spent += _bisect(info, chain, offer[:half], found)
    spent += _bisect(info, chain, offer[half:], found)
    return spent


def eliminate(
    info: ServerConnectivityInfo,
    chain: Chain,
    max_picks: int | None = None,
    on_pick: Callable[[CipherSuite], None] | None = None,
) -> ChainResult:
    """Blocking. Run ``chain`` until its handshake fails, or stop after ``max_picks``
    accepted suites (the first phase stops at ``FIRST_PICKS`` to decide on splitting).
    ``on_pick`` hears of each accepted suite as it is picked (on this thread)."""
    remaining = list(chain.suites)
    accepted: list[CipherSuiteAcceptedByServer] = []
    handshakes = 0
    # After two picks in offer order, the third round offers the rest reversed, then the
    # second pick, then the first: a client-order server names a new suite (or the
    # second pick), a server-order one its first pick again. Whose order counts is then
    # known at no cost, or for the one handshake a separate check would spend.
    again: tuple[CipherSuite, CipherSuite] | None = None
    own_order: bool | None = None
    received: tuple[str, ...] = ()
    for _ in range(len(chain.suites) + 2):  # each round removes a suite or ends (+ again)
        if not remaining:
            return ChainResult(
                chain,
                tuple(accepted),
                (),
                handshakes,
                True,
                own_order=own_order,
                received_chain=received,
            )
        if max_picks is not None and len(accepted) >= max_picks:
            return ChainResult(
                chain,
                tuple(accepted),
                tuple(remaining),
                handshakes,
                False,
                own_order=own_order,
                received_chain=received,
            )
        offer = remaining if again is None else [*reversed(remaining), again[1], again[0]]
        pick = _handshake(info, chain, offer, keep_chain=handshakes == 0)
        handshakes += 1
        received = received or pick.received_chain
        if again is not None and pick.suite is not None:
            own_order = pick.suite == again[0]
            if pick.suite in again:
                again = None
                continue  # nothing new; the rest is offered as usual from here
        again = None
        if pick.unnamed:
            found: list[CipherSuiteAcceptedByServer] = []
            n = _bisect(info, chain, remaining, found, known_accepted=True)
            return ChainResult(
                chain,
                (*accepted, *found),
                (),
                handshakes + n,
                True,
                per_suite=True,
                received_chain=received,
            )
        if pick.suite is None:
            if (
                handshakes == 1
                and len(remaining) > _SHORT_HELLO_SUITES
                and pick.error
                and any(m in pick.error for m in _SILENT_DROPS)
            ):
                short = _handshake(info, chain, _short_offer(info, remaining))
                handshakes += 1
                if short.suite is not None or (
                    short.error and not any(m in short.error for m in _SILENT_DROPS)
                ):
                    # A short hello got an answer where the long one was dropped.
                    alone, n = _per_suite(info, chain, remaining)
                    return ChainResult(
                        chain, tuple(alone), (), handshakes + n, True, per_suite=True
                    )
            if pick.error and "not offered" in pick.error:
                alone, n = _per_suite(info, chain, remaining)
                return ChainResult(
                    chain, (*accepted, *alone), (), handshakes + n, True, per_suite=True
                )
            return ChainResult(
                chain,
                tuple(accepted),
                tuple(remaining),
                handshakes,
                True,
                end_error=pick.error,
                own_order=own_order,
                received_chain=received,
            )
        accepted.append(
            CipherSuiteAcceptedByServer(cipher_suite=pick.suite, ephemeral_key=pick.ephemeral)
        )
        if on_pick is not None:
            on_pick(pick.suite)
        remaining.remove(pick.suite)
        if handshakes == 2 and len(accepted) == 2 and remaining:
            first, second = (a.cipher_suite for a in accepted)
            if chain.suites.index(first) < chain.suites.index(second):
                again = (first, second)  # else the picks already show the server's order
    raise AssertionError("unreachable: every round removes a suite")


def any_accepted(info: ServerConnectivityInfo, chains: Sequence[Chain]) -> bool:
    """Blocking, sequential: does any of ``chains`` accept a suite when asked alone?"""
    return any(eliminate(info, c, max_picks=1).accepted for c in chains)


def server_prefers_own_order(
    info: ServerConnectivityInfo, chain: Chain, first: CipherSuite, second: CipherSuite
) -> tuple[bool | None, int]:
    """Blocking, one handshake: offer two accepted suites in the order the server did
    not pick them; a server that still picks ``first`` enforces its own order."""
    pick = _handshake(info, chain, [second, first])
    if pick.suite is None:
        return None, 1
    return pick.suite == first, 1


# -- supported groups ---------------------------------------------------------------------


_GROUP_REJECTIONS = GROUP_REJECTION_TEXTS


@dataclass(frozen=True)
class GroupsResult:
    groups: tuple[OpenSslEcNidEnum, ...]  # in the order the server picked them
    handshakes: int
    finished: bool


# OpenSSL's default group order (ssl/t1_lib.c, supported_groups_default, 1.1.1 and 3.x).
# The client sends a TLS 1.3 key share for its first group only (RFC 8446 4.2.8); any
# other pick costs a HelloRetryRequest round trip, and stalls one-connection-at-a-time
# servers such as ``openssl s_server`` for a second when it arrives late. Listing the
# common groups first makes the key share usually right; the set found is the same.
_COMMON_GROUPS = ("X25519", "SECP256R1", "X448", "SECP521R1", "SECP384R1")


def _group_rank(nid: OpenSslEcNidEnum) -> tuple[int, int]:
    common = _COMMON_GROUPS.index(nid.name) if nid.name in _COMMON_GROUPS else len(_COMMON_GROUPS)
    return common, int(nid)


def eliminate_groups(info: ServerConnectivityInfo) -> GroupsResult:
    """Blocking: the (EC)DH groups the server accepts, by elimination over the groups
    sslyze's elliptic-curves command tests, at the highest version, like sslyze."""
    if not info.tls_probing_result.supports_ecdh_key_exchange:
        return GroupsResult((), 0, True)
    version = info.tls_probing_result.highest_tls_version_supported
    remaining = sorted(OpenSslEcNidEnum.get_supported_by_ssl_client(), key=_group_rank)
    found: list[OpenSslEcNidEnum] = []
    handshakes = 0
    for _ in range(len(remaining) + 1):  # each round removes a group or ends
        if not remaining:
            break
        conn = info.get_preconfigured_tls_connection(
            override_tls_version=version, should_use_legacy_openssl=False
        )
        handshakes += 1
        try:
            if not isinstance(conn.ssl_client, SslClient):
                raise RuntimeError("sslyze gave a legacy client for a modern-only check")
            enable_ecdh_cipher_suites(version, conn.ssl_client)
            conn.ssl_client.set_groups(remaining)
            with contextlib.suppress(ClientCertificateRequested):
                conn.connect(should_retry_connection=False)
            key = conn.ssl_client.get_ephemeral_key()
        except (ServerRejectedTlsHandshake, TlsHandshakeTimedOut):
            key = None
        except OpenSSLError as exc:
            # sslyze's curve test treats these as "group rejected" (its issues 466/490/579).
            if not any(m in str(exc.args[0]) for m in _GROUP_REJECTIONS):
                raise
            key = None
        finally:
            conn.close()
        if not isinstance(key, EcDhEphemeralKeyInfo) or key.curve not in remaining:
            return GroupsResult(tuple(found), handshakes, True)
        nid = OpenSslEcNidEnum(key.curve)
        found.append(nid)
        remaining.remove(nid)
    return GroupsResult(tuple(found), handshakes, True)


# -- describing what was found (obs.tls types) ----------------------------------------------

_MACS = ("SHA", "SHA256", "SHA384", "MD5")
_BLOCK_CIPHERS = ("AES", "CAMELLIA", "ARIA", "SEED", "IDEA", "DES", "3DES", "RC2", "DES40")
_KX_FIRST = ("DHE", "DH", "ECDHE", "ECDH")
# SSL 2.0 cipher kinds spelled the way the TLS registry names the same algorithms, so
# the rules match 3DES, RC4 and DES alike across versions.
_SSL2_CIPHERS = {
    "DES_192_EDE3_CBC": "3DES_EDE_CBC",
    "DES_64_CBC": "DES_CBC",
    "RC4_128": "RC4_128",
    "RC4_128_EXPORT40": "RC4_40",
    "RC2_128_CBC": "RC2_CBC_128",
    "RC2_128_CBC_EXPORT40": "RC2_CBC_40",
    "IDEA_128_CBC": "IDEA_CBC",
    "RC4_64": "RC4_64",
}
_PKEY_NAMES = {"EC": "ECDH", "DH": "DH", "X25519": "X25519", "X448": "X448"}


def group_name(nid: OpenSslEcNidEnum) -> str:
    """IANA TLS Supported Groups spelling: secp256r1, X25519, brainpoolP256r1."""
    name = nid.name
    if name.startswith("BRAINPOOL"):
        return "brainpool" + name[len("BRAINPOOL") :].replace("R1", "r1").replace("T1", "t1")
    return name if name.startswith("X") else name.lower()


def describe_suite(accepted: CipherSuiteAcceptedByServer) -> ObsCipherSuite:
    """Split an IANA suite name into what the rules judge. Names follow the IANA TLS
    Cipher Suites registry (TLS_<kx>_<auth>_WITH_<cipher>_<mac>), SSL 2.0 ones
    SSL_CK_<cipher>_WITH_MD5 (draft-hickman-netscape-ssl-00), TLS 1.3 ones
    TLS_<AEAD>_<hash> (RFC 8446 B.4)."""
    suite = accepted.cipher_suite
    name = suite.name
    if name.startswith("SSL_CK_"):
        kx, auth = "RSA", "RSA"
        cipher = name[len("SSL_CK_") :].removesuffix("_WITH_MD5")
        enc_tokens = _SSL2_CIPHERS.get(cipher, cipher).split("_")
    elif "_WITH_" not in name:  # TLS 1.3: the key exchange is always (EC)DHE
        kx, auth = "TLS13", "TLS13"
        enc_tokens = name[len("TLS_") :].split("_")[:-1]
    else:
        left, right = name[len("TLS_") :].split("_WITH_", 1)
        parts = left.split("_")
        kx = parts[0]
        auth = parts[1] if kx in _KX_FIRST and len(parts) > 1 else kx
        if auth.startswith("EXPORT"):
            auth = kx
        enc_tokens = right.split("_")
        if enc_tokens[-1] in _MACS:  # the MAC (or, for AEAD suites, the PRF hash)
            enc_tokens = enc_tokens[:-1]
    encryption = "_".join(enc_tokens)
    aead = any(t in ("GCM", "CCM", "POLY1305") for t in enc_tokens)
    # Block ciphers in TLS 1.2 and below are CBC unless AEAD; IANA names say _CBC_
    # for most, but not for the SSL 2.0 and a few legacy spellings.
    cbc = not aead and ("CBC" in enc_tokens or enc_tokens[0] in _BLOCK_CIPHERS)
    if suite.is_anonymous:
        auth = "anon"
    eph = accepted.ephemeral_key
    eph_type = eph_bits = curve = None
    if eph is not None:
        eph_type = _PKEY_NAMES.get(eph.type_name, eph.type_name)
        eph_bits = eph.size
        if isinstance(eph, EcDhEphemeralKeyInfo):
            curve = group_name(OpenSslEcNidEnum(eph.curve))
    return ObsCipherSuite(
        name=name,
        openssl_name=suite.openssl_name,
        key_exchange=kx,
        authentication=auth,
        encryption=encryption,
        forward_secrecy=kx in ("DHE", "ECDHE", "TLS13"),
        aead=aead,
        cbc=bool(cbc),
        key_bits=suite.key_size,
        export="EXPORT" in name,
        ephemeral_key_type=eph_type,
        ephemeral_key_bits=eph_bits,
        ephemeral_curve=curve,
    )
