"""Grades from findings: pure functions, no I/O, nothing about probes or reports.

An endpoint gets an eavesdropping and a MITM letter (A+ best, F worst) and the worse of
the two as its overall grade. Each axis starts at A (or at the SSL Labs score letter
for TLS), every matching cap in ``caps.py`` / ``ssh.py`` can only lower it, and an
uncapped axis is raised to A+ when the channel meets the A+ conditions. ``capped_by``
names the rule that set the final letter when it is below A.

Waived findings still cap: a grade describes the channel as it is, and a waiver only
changes what counts toward the CI gate (see docs/grading.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chanscan.grading import caps, ssh, tls_score
from chanscan.grading.caps import CapRule, strictly_worse, worse
from chanscan.model import Axis, Channel, EndpointResult, Finding, Grade, GradeCaps, Status
from chanscan.obs.tls import TlsObservation

__all__ = ["ALL_CAPS", "grade_endpoint", "host_grades", "rule_ids", "worst"]

ALL_CAPS: tuple[CapRule, ...] = (
    caps.TLS_CAPS + caps.DERIVED_TLS_CAPS + ssh.SSH_CAPS + caps.OTHER_CAPS
)

_BY_RULE: dict[str, tuple[CapRule, ...]] = {}
for _rule in ALL_CAPS:
    _BY_RULE[_rule.rule] = (*_BY_RULE.get(_rule.rule, ()), _rule)

# A certificate trusted through --ca-bundle is trusted: these two do not cap then.
_TRUST_RULES = frozenset({"tls.cert.self_signed", "tls.cert.untrusted"})

SCORE_RULE = "grade.tls.score"


def rule_ids() -> frozenset[str]:
    """Every rule id grading knows, for the documentation cross-check."""
    return frozenset({r.rule for r in ALL_CAPS} | {SCORE_RULE, caps.HOST_CLEARTEXT_RULE})


@dataclass
class _Axis:
    letter: str = "A"
    capped_by: str | None = None

    def cap(self, letter: str, rule: str) -> None:
        if strictly_worse(letter, self.letter):
            self.letter = letter
            self.capped_by = rule


def _tls_of(result: EndpointResult) -> TlsObservation | None:
    if result.tls is not None:
        return result.tls
    if result.rdp is not None:
        return result.rdp.tls
    return None


def _gradable(result: EndpointResult, findings: Sequence[Finding]) -> bool:
    if result.status is not Status.OK:
        return False
    if result.tls or result.ssh or result.rdp or result.channel is Channel.HTTP:
        return True
    return any(f.id in _BY_RULE for f in findings)


def grade_endpoint(result: EndpointResult, findings: Sequence[Finding]) -> Grade | None:
    """The endpoint's grades, or None when it was not probed (closed, filtered, timed
    out, failed) or nothing gradable was observed on it."""
    if not _gradable(result, findings):
        return None
    axes = {Axis.EAVESDROPPING: _Axis(), Axis.MITM: _Axis()}
    tls = _tls_of(result)
    custom_trust = (
        tls is not None and tls.certificate is not None and tls.certificate.trusted_custom is True
    )
    if tls is not None:
        s = tls_score.score(tls)
        if s is not None:
            axes[Axis.EAVESDROPPING].cap(s.letter, SCORE_RULE)
        for rule_id, _evidence in tls_score.derived_rules(tls):
            for rule in _BY_RULE[rule_id]:
                axes[rule.axis].cap(rule.cap, rule_id)
    for finding in findings:
        if custom_trust and finding.id in _TRUST_RULES:
            continue
        for rule in _BY_RULE.get(finding.id, ()):
            axes[rule.axis].cap(rule.cap, finding.id)

    eav, mitm = axes[Axis.EAVESDROPPING], axes[Axis.MITM]
    if eav.letter == "A" and eav.capped_by is None and _eavesdropping_plus(result, tls):
        eav.letter = "A+"
    if mitm.letter == "A" and mitm.capped_by is None and _mitm_plus(result, tls):
        mitm.letter = "A+"
    return Grade(
        eavesdropping=eav.letter,
        mitm=mitm.letter,
        overall=worse(eav.letter, mitm.letter),
        capped_by=GradeCaps(eavesdropping=eav.capped_by, mitm=mitm.capped_by),
    )


def _eavesdropping_plus(result: EndpointResult, tls: TlsObservation | None) -> bool:
    if result.ssh is not None:
        return ssh.eavesdropping_plus(result.ssh)
    if tls is not None:
        return tls_score.eavesdropping_plus(tls)
    return False  # cleartext HTTP or RDP without a TLS layer observed


def _mitm_plus(result: EndpointResult, tls: TlsObservation | None) -> bool:
    if result.ssh is not None:
        return ssh.mitm_plus(result.ssh)
    if tls is not None:
        return tls_score.mitm_plus(tls)
    return False


def worst(grades: Iterable[Grade | None]) -> Grade | None:
    """Per axis the worst letter (and its cause) over the given grades; None if none."""
    eav: _Axis | None = None
    mitm: _Axis | None = None
    for g in grades:
        if g is None:
            continue
        if eav is None or mitm is None:
            eav = _Axis(g.eavesdropping, g.capped_by.eavesdropping)
            mitm = _Axis(g.mitm, g.capped_by.mitm)
            continue
        eav.cap(g.eavesdropping, g.capped_by.eavesdropping or "")
        mitm.cap(g.mitm, g.capped_by.mitm or "")
    if eav is None or mitm is None:
        return None
    return Grade(
        eavesdropping=eav.letter,
        mitm=mitm.letter,
        overall=worse(eav.letter, mitm.letter),
        capped_by=GradeCaps(eavesdropping=eav.capped_by or None, mitm=mitm.capped_by or None),
    )


def host_grades(results: Iterable[EndpointResult]) -> dict[str, Grade | None]:
    """Grade per address: the worst of its endpoints, and a cleartext management port
    beside a TLS channel on the same host caps the host's eavesdropping grade."""
    by_address: dict[str, list[EndpointResult]] = {}
    for r in results:
        by_address.setdefault(r.address, []).append(r)
    out: dict[str, Grade | None] = {}
    for address, endpoints in by_address.items():
        grades = [
            r.grade if r.grade is not None else grade_endpoint(r, r.findings) for r in endpoints
        ]
        host = worst(grades)
        cleartext = any(f.id == "cleartext.management_port" for r in endpoints for f in r.findings)
        has_tls = any(_tls_of(r) is not None for r in endpoints if r.status is Status.OK)
        if host is not None and cleartext and has_tls:
            host = _cap_host_eavesdropping(host)
        out[address] = host
    return out


def _cap_host_eavesdropping(g: Grade) -> Grade:
    eav = _Axis(g.eavesdropping, g.capped_by.eavesdropping)
    eav.cap(caps.HOST_CLEARTEXT_CAP, caps.HOST_CLEARTEXT_RULE)
    return Grade(
        eavesdropping=eav.letter,
        mitm=g.mitm,
        overall=worse(eav.letter, g.mitm),
        capped_by=GradeCaps(eavesdropping=eav.capped_by, mitm=g.capped_by.mitm),
    )
