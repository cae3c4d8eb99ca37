"""Merge platform signals: several per endpoint, several endpoints per address.

A disagreement is reported, never resolved silently: when two signals of at least
'medium' confidence name different products (or different versions of one product),
the merged platform keeps the strongest signal's product, drops to 'low' confidence
and carries a ``conflict:`` line in its evidence naming both sides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from chanscan.model import EndpointResult, PlatformInfo

CONFIDENCE = ("none", "low", "medium", "high")
CONFLICT_PREFIX = "conflict: "

# Products that coexist with a more specific one on the same box: a Linux banner on
# an XCP-ng dom0 or a vCenter appliance is no contradiction.
_GENERIC = frozenset({"Linux"})


def rank(confidence: str) -> int:
    return CONFIDENCE.index(confidence) if confidence in CONFIDENCE else 0


def is_conflicted(info: PlatformInfo | None) -> bool:
    return info is not None and any(e.startswith(CONFLICT_PREFIX) for e in info.evidence)


def _detail(info: PlatformInfo) -> int:
    return (info.version is not None) + (info.build is not None)


def _label(info: PlatformInfo) -> str:
    ver = " ".join(x for x in (info.version, info.build) if x)
    return f"{info.product}{' ' + ver if ver else ''} ({info.confidence})"


def _disagree(a: PlatformInfo, b: PlatformInfo) -> bool:
    if a.product != b.product:
        return True
    if a.version and b.version and a.version != b.version:
        return True
    return bool(a.build and b.build and a.build != b.build)


def merge(infos: Iterable[PlatformInfo | None]) -> PlatformInfo | None:
    signals = [i for i in infos if i is not None]
    if not signals:
        return None
    evidence: list[str] = []
    for s in signals:
        for e in s.evidence:
            if e not in evidence:
                evidence.append(e)
    named = [s for s in signals if s.product is not None and rank(s.confidence) > 0]
    if not named:
        best_none = max(signals, key=lambda s: rank(s.confidence))
        return PlatformInfo(
            product=None,
            confidence="low" if rank(best_none.confidence) > 0 else "none",
            evidence=tuple(evidence),
        )
    specific = [s for s in named if s.product not in _GENERIC] or named
    best = max(specific, key=lambda s: (rank(s.confidence), _detail(s)))
    strong = [s for s in specific if rank(s.confidence) >= rank("medium")]
    conflicts: list[str] = []
    for s in strong:
        if s is best:
            continue
        if _disagree(best, s):
            conflicts.append(f"{_label(best)} vs {_label(s)}")
    version, build = best.version, best.build
    # Fill gaps from agreeing signals (e.g. the product from authd, the build from /sdk).
    for s in sorted(specific, key=lambda s: -rank(s.confidence)):
        if s.product == best.product:
            version = version or s.version
            build = build or s.build
    confidence = best.confidence
    if conflicts:
        confidence = "low"
        for c in conflicts:
            line = CONFLICT_PREFIX + c
            if line not in evidence:
                evidence.insert(0, line)
    elif len({s.product for s in strong}) == 1 and len(strong) >= 2 and confidence == "medium":
        # Two independent medium signals agreeing make a strong identification.
        confidence = "high"
    return PlatformInfo(
        product=best.product,
        version=version,
        build=build,
        confidence=confidence,
        evidence=tuple(evidence),
    )


_LOCATED = re.compile(r"^\d+/[a-z]+: ")


def _located(evidence: str, r: EndpointResult) -> str:
    """Prefix evidence with the endpoint it came from, once: folding an already
    folded report must give the same report."""
    if evidence.startswith(CONFLICT_PREFIX) or _LOCATED.match(evidence):
        return evidence
    return f"{r.port}/{r.channel.value}: {evidence}"


def fold_host(results: Sequence[EndpointResult]) -> dict[str, PlatformInfo]:
    """One platform per address from all its endpoints' platforms."""
    by_addr: dict[str, list[PlatformInfo | None]] = {}
    for r in results:
        platform = r.platform
        if platform is not None:
            platform = PlatformInfo(
                product=platform.product,
                version=platform.version,
                build=platform.build,
                confidence=platform.confidence,
                evidence=tuple(_located(e, r) for e in platform.evidence),
            )
        infos = by_addr.setdefault(r.address, [])
        # A host's endpoints carry the same folded platform after one fold; counting it
        # once per endpoint would turn one medium signal into "two agreeing" ones.
        if platform not in infos:
            infos.append(platform)
    out: dict[str, PlatformInfo] = {}
    for addr, infos in by_addr.items():
        merged = merge(infos)
        if merged is not None:
            out[addr] = merged
    return out
