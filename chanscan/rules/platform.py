"""Currency of the identified platform: end of general support and missing VMware
security patches.

Only platforms identified with at least 'medium' confidence are judged, and never one
whose signals conflict: a finding about the wrong product would send the user to the
wrong vendor. Build comparisons use the build VMware's own API reports (/sdk
AboutInfo.build); SSH banner versions never feed CVE findings because distributions
backport fixes without changing them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from chanscan.fingerprint.fold import is_conflicted, rank
from chanscan.model import Axis, EndpointResult, Finding, PlatformInfo, Severity


@dataclass(frozen=True)
class Lifecycle:
    product: str
    version: str
    end_of_support: date
    reference: str
    source: str


@dataclass(frozen=True)
class FixedLine:
    version: str
    fixed_build: int
    fixed_release: str


@dataclass(frozen=True)
class Advisory:
    id: str
    title: str
    cves: tuple[str, ...]
    product: str
    severity: Severity
    references: tuple[str, ...]
    fixed: tuple[FixedLine, ...]


@dataclass(frozen=True)
class KnownBuild:
    product: str
    build: int
    version: str
    release: str


def _load(name: str) -> dict[str, Any]:
    text = resources.files("chanscan.rules.data").joinpath(name).read_text("utf-8")
    return tomllib.loads(text)


@cache
def lifecycle_table() -> tuple[Lifecycle, ...]:
    return tuple(
        Lifecycle(
            product=r["product"],
            version=r["version"],
            end_of_support=date.fromisoformat(r["end_of_support"]),
            reference=r["reference"],
            source=r["source"],
        )
        for r in _load("platform_lifecycle.toml")["release"]
    )


@cache
def advisories() -> tuple[Advisory, ...]:
    return tuple(
        Advisory(
            id=a["id"],
            title=a["title"],
            cves=tuple(a["cves"]),
            product=a["product"],
            severity=Severity(a["severity"]),
            references=tuple(a["references"]),
            fixed=tuple(
                FixedLine(f["version"], int(f["fixed_build"]), f["fixed_release"])
                for f in a["fixed"]
            ),
        )
        for a in _load("vmware_advisories.toml")["advisory"]
    )


@cache
def build_table() -> tuple[KnownBuild, ...]:
    rows = (
        KnownBuild(b["product"], int(b["build"]), b["version"], b["release"])
        for b in _load("vmware_builds.toml")["build"]
    )
    return tuple(sorted(rows, key=lambda b: (b.product, b.build)))


def release_for(product: str, build: int, version: str | None = None) -> str | None:
    """The release a build belongs to: exact when listed, otherwise 'X or a later
    patch' for the nearest lower listed build on the same version line."""
    candidates = [b for b in build_table() if b.product == product]
    for b in candidates:
        if b.build == build:
            return b.release
    lower = [b for b in candidates if b.build < build and (version is None or b.version == version)]
    if not lower:
        return None
    return f"{lower[-1].release} or a later patch"


def _major_minor(version: str) -> str:
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and parts[0].isdigit() else version


def lifecycle_for(platform: PlatformInfo) -> Lifecycle | None:
    if platform.product is None or platform.version is None:
        return None
    key = _major_minor(platform.version)
    for row in lifecycle_table():
        if row.product == platform.product and row.version in (key, platform.version):
            return row
    return None


def _judged(subject: EndpointResult | PlatformInfo | None) -> PlatformInfo | None:
    p = subject.platform if isinstance(subject, EndpointResult) else subject
    if p is None or p.product is None or rank(p.confidence) < rank("medium") or is_conflicted(p):
        return None
    return p


def end_of_support(result: EndpointResult | PlatformInfo | None, today: date) -> list[Finding]:
    p = _judged(result)
    if p is None:
        return []
    row = lifecycle_for(p)
    if row is None or row.end_of_support > today:
        return []
    shown = " ".join(x for x in (p.product, p.version, f"build {p.build}" if p.build else "") if x)
    return [
        Finding(
            id="platform.end_of_support",
            title=f"{p.product} {row.version} is past the vendor's end of general support",
            severity=Severity.HIGH,
            axis=Axis.HOST,
            evidence=(
                f"{shown} identified ({p.confidence} confidence)",
                f"end of general support: {row.end_of_support.isoformat()}",
                f"lifecycle: {row.reference}",
            ),
            remediation=f"Upgrade {p.product} to a release in general support: no security "
            "fixes, including for the management interfaces, ship after this date.",
            references=(row.reference,),
        )
    ]


def missing_advisories(platform: PlatformInfo) -> list[tuple[Advisory, FixedLine]]:
    """Advisories whose fixed build on this platform's version line is above its build."""
    if platform.version is None or platform.build is None or not platform.build.isdigit():
        return []
    build = int(platform.build)
    out: list[tuple[Advisory, FixedLine]] = []
    for adv in advisories():
        if adv.product != platform.product:
            continue
        for line in adv.fixed:
            if line.version == platform.version and build < line.fixed_build:
                out.append((adv, line))
                break
    return out


def missing_patches(result: EndpointResult | PlatformInfo | None) -> list[Finding]:
    """One finding listing every missing advisory (finding ids are unique per endpoint)."""
    p = _judged(result)
    if p is None:
        return []
    missing = missing_advisories(p)
    if not missing:
        return []
    build = int(p.build or 0)
    release = release_for(p.product or "", build, p.version)
    evidence = [f"{p.product} {p.version} build {build}" + (f" ({release})" if release else "")]
    references: list[str] = []
    for adv, line in missing:
        evidence.append(
            f"{adv.id} ({', '.join(adv.cves)}): {adv.title}; "
            f"fixed in {line.fixed_release} (build {line.fixed_build})"
        )
        for ref in (adv.id, *adv.cves, *adv.references):
            if ref not in references:
                references.append(ref)
    target = max(missing, key=lambda m: m[1].fixed_build)[1].fixed_release
    ids = ", ".join(adv.id for adv, _ in missing)
    return [
        Finding(
            id="platform.missing_security_patch",
            title=f"{p.product} build {build} lacks security fixes: {ids}",
            severity=max((adv.severity for adv, _ in missing), key=lambda s: s.rank),
            axis=Axis.HOST,
            evidence=tuple(evidence),
            remediation=f"Update {p.product} to {target} or later.",
            references=tuple(references),
        )
    ]


def host_findings(platform: PlatformInfo | None, *, now: datetime) -> list[Finding]:
    """The host's currency findings from its folded platform (called once per address
    by ``chanscan.rules.evaluate_host``)."""
    return [*end_of_support(platform, now.date()), *missing_patches(platform)]


def findings(result: EndpointResult, *, now: datetime) -> list[Finding]:
    """The same, from one endpoint's platform (kept for single-endpoint callers)."""
    return host_findings(result.platform, now=now)
