"""Platform-aware remediation text for findings.

The texts live in ``remediation_data.toml`` beside this module, one topic per kind of
fix with a paragraph per platform and the vendor documents it comes from. A finding id
maps to a topic by its longest matching prefix; a platform without its own paragraph
gets the generic one, so every known finding gets some fix.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

from chanscan.model import EndpointResult, Finding, PlatformHint

PLATFORMS = ("esxi", "vcenter", "xenserver", "hyperv", "generic")

# Substrings of PlatformInfo.product (what detection reports) -> platform key. Checked
# in order: "vcenter" before "esxi" because vCenter banners can mention ESXi.
_PRODUCT_WORDS: tuple[tuple[str, str], ...] = (
    ("vcenter", "vcenter"),
    ("vcsa", "vcenter"),
    ("esx", "esxi"),
    ("xcp-ng", "xenserver"),
    ("xenserver", "xenserver"),
    ("citrix hypervisor", "xenserver"),
    ("hyper-v", "hyperv"),
    ("hyperv", "hyperv"),
    ("windows", "hyperv"),
)


@dataclass(frozen=True)
class Topic:
    name: str
    texts: tuple[tuple[str, str], ...]  # (platform, text)
    references: tuple[str, ...]

    def text(self, platform: str) -> str:
        table = dict(self.texts)
        return table.get(platform) or table.get("generic", "")


@dataclass(frozen=True)
class RemediationData:
    prefixes: tuple[tuple[str, str], ...]  # (finding id prefix, topic), longest first
    topics: tuple[Topic, ...]

    def topic(self, name: str) -> Topic | None:
        return next((t for t in self.topics if t.name == name), None)

    def topic_for(self, finding_id: str) -> Topic | None:
        for prefix, name in self.prefixes:
            if finding_id.startswith(prefix):
                return self.topic(name)
        return None


@cache
def data() -> RemediationData:
    raw = tomllib.loads(
        resources.files("chanscan").joinpath("remediation_data.toml").read_text("utf-8")
    )
    prefixes = tuple(
        sorted(((str(k), str(v)) for k, v in raw["prefixes"].items()), key=lambda kv: -len(kv[0]))
    )
    topics = tuple(
        Topic(
            name=name,
            texts=tuple((p, str(body[p])) for p in PLATFORMS if p in body),
            references=tuple(str(r) for r in body.get("references", ())),
        )
        for name, body in raw["topics"].items()
    )
    return RemediationData(prefixes=prefixes, topics=topics)


def normalize_platform(platform: str | PlatformHint | None) -> str:
    """Map a hint, a product name or None to one of PLATFORMS."""
    if platform is None:
        return "generic"
    text = str(platform.value if isinstance(platform, PlatformHint) else platform).lower()
    if text in PLATFORMS:
        return text
    for word, key in _PRODUCT_WORDS:
        if word in text:
            return key
    return "generic"


def platform_of(result: EndpointResult) -> str:
    """The detected product wins over the user's hint; the hint over nothing."""
    if result.platform is not None and result.platform.product:
        detected = normalize_platform(result.platform.product)
        if detected != "generic":
            return detected
    if result.platform_hint is not PlatformHint.AUTO:
        return normalize_platform(result.platform_hint)
    return "generic"


def remediation_for(finding_id: str, platform: str | PlatformHint | None) -> str:
    """The fix for a finding on a platform; empty when the id has no topic."""
    topic = data().topic_for(finding_id)
    return "" if topic is None else topic.text(normalize_platform(platform))


def topic_text(topic: str, platform: str | PlatformHint | None) -> str:
    found = data().topic(topic)
    return "" if found is None else found.text(normalize_platform(platform))


def references_for(finding_id: str) -> tuple[str, ...]:
    topic = data().topic_for(finding_id)
    return () if topic is None else topic.references


def with_remediation(findings: Iterable[Finding], result: EndpointResult) -> list[Finding]:
    """Fill in the platform's fix for findings that do not carry one yet."""
    platform = platform_of(result)
    out: list[Finding] = []
    for f in findings:
        if f.remediation:
            out.append(f)
            continue
        text = remediation_for(f.id, platform)
        out.append(replace(f, remediation=text) if text else f)
    return out
