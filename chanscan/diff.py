"""Change-window diff: what got worse and what got better between two scans.

Endpoints are matched by the host name the user gave and the port, so a re-addressed
host is still the same endpoint. Waived findings are ignored on both sides: a waiver is
an accepted risk, neither a regression nor an improvement.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from tabulate import tabulate

from chanscan.errors import UsageError
from chanscan.gate import UNPROBED, grade_rank
from chanscan.model import EndpointResult, ScanReport, Status
from chanscan.obs.tls import Certificate
from chanscan.serde import to_jsonable


class ChangeKind(StrEnum):
    FINDING_NEW = "finding_new"
    FINDING_RESOLVED = "finding_resolved"
    GRADE_WORSE = "grade_worse"
    GRADE_BETTER = "grade_better"
    ENDPOINT_GONE = "endpoint_gone"
    ENDPOINT_APPEARED = "endpoint_appeared"
    ENDPOINT_UNPROBED = "endpoint_unprobed"  # was assessed, now could not be
    ENDPOINT_PROBED = "endpoint_probed"  # could not be assessed, now is
    TLS_KEY_CHANGED = "tls_key_changed"
    TLS_CERT_CHANGED = "tls_cert_changed"  # same key, new certificate
    SSH_HOST_KEY_CHANGED = "ssh_host_key_changed"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    host: str
    port: int
    channel: str
    subject: str  # finding id, grade axis, key type, or "" for the endpoint itself
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class ReportDiff:
    before_started_at: str
    after_started_at: str
    regressions: tuple[Change, ...] = ()
    improvements: tuple[Change, ...] = ()

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


_UNPROBED = UNPROBED  # timeout, filtered, error, interrupted


def _leaf(result: EndpointResult) -> Certificate | None:
    tls = result.tls
    if tls is None and result.rdp is not None:
        tls = result.rdp.tls
    if tls is None or tls.certificate is None or not tls.certificate.chain:
        return None
    return tls.certificate.chain[0]


def _ssh_keys(result: EndpointResult) -> dict[str, str]:
    if result.ssh is None:
        return {}
    return {k.key_type: k.fingerprint for k in result.ssh.host_keys if k.fingerprint}


def _open_ids(result: EndpointResult) -> Counter[str]:
    return Counter(f.id for f in result.findings if not f.waived)


def _compare(b: EndpointResult, a: EndpointResult) -> tuple[list[Change], list[Change]]:
    worse: list[Change] = []
    better: list[Change] = []

    def change(kind: ChangeKind, subject: str, before: str | None, after: str | None) -> Change:
        return Change(kind, a.host, a.port, a.channel.value, subject, before, after)

    if b.status is Status.OK and a.status in _UNPROBED:
        worse.append(change(ChangeKind.ENDPOINT_UNPROBED, "", b.status.value, a.status.value))
    elif b.status in _UNPROBED and a.status is Status.OK:
        better.append(change(ChangeKind.ENDPOINT_PROBED, "", b.status.value, a.status.value))
    if b.status is not Status.OK or a.status is not Status.OK:
        return worse, better

    before_ids, after_ids = _open_ids(b), _open_ids(a)
    titles = {f.id: f.title for f in (*b.findings, *a.findings)}
    for fid in sorted(after_ids - before_ids):
        worse.append(change(ChangeKind.FINDING_NEW, fid, None, titles[fid]))
    for fid in sorted(before_ids - after_ids):
        better.append(change(ChangeKind.FINDING_RESOLVED, fid, titles[fid], None))

    if b.grade is not None and a.grade is not None:
        for axis in ("overall", "eavesdropping", "mitm"):
            gb, ga = getattr(b.grade, axis), getattr(a.grade, axis)
            if grade_rank(ga) > grade_rank(gb):
                worse.append(change(ChangeKind.GRADE_WORSE, axis, gb, ga))
            elif grade_rank(ga) < grade_rank(gb):
                better.append(change(ChangeKind.GRADE_BETTER, axis, gb, ga))

    lb, la = _leaf(b), _leaf(a)
    if lb is not None and la is not None:
        if lb.spki_sha256 != la.spki_sha256:
            worse.append(change(ChangeKind.TLS_KEY_CHANGED, "spki", lb.spki_sha256, la.spki_sha256))
        elif lb.sha256_fingerprint != la.sha256_fingerprint:
            worse.append(
                change(
                    ChangeKind.TLS_CERT_CHANGED,
                    "certificate",
                    lb.sha256_fingerprint,
                    la.sha256_fingerprint,
                )
            )

    kb, ka = _ssh_keys(b), _ssh_keys(a)
    for key_type in sorted(kb.keys() & ka.keys()):
        if kb[key_type] != ka[key_type]:
            worse.append(
                change(ChangeKind.SSH_HOST_KEY_CHANGED, key_type, kb[key_type], ka[key_type])
            )
    return worse, better


def _present(r: EndpointResult) -> bool:
    """Something accepted the connection (even if it could not be fully probed); a
    closed or filtered port exposes nothing."""
    return r.status not in (Status.CLOSED, Status.FILTERED)


def diff_reports(before: ScanReport, after: ScanReport) -> ReportDiff:
    def index(report: ScanReport) -> dict[tuple[str, int], EndpointResult]:
        return {(r.host.lower(), r.port): r for r in report.endpoints}

    ib, ia = index(before), index(after)
    worse: list[Change] = []
    better: list[Change] = []
    for key, b in ib.items():
        a = ia.get(key)
        if a is None and not _present(b):
            continue
        if a is None or (_present(b) and not _present(a)):
            gone_status = "absent" if a is None else a.status.value
            worse.append(
                Change(
                    ChangeKind.ENDPOINT_GONE,
                    b.host,
                    b.port,
                    b.channel.value,
                    "",
                    b.status.value,
                    gone_status,
                )
            )
            continue
        if not _present(b) and _present(a):
            worse.append(
                Change(
                    ChangeKind.ENDPOINT_APPEARED,
                    a.host,
                    a.port,
                    a.channel.value,
                    "",
                    b.status.value,
                    a.status.value,
                )
            )
            continue
        w, g = _compare(b, a)
        worse += w
        better += g
    for key, a in ia.items():
        if key not in ib and _present(a):
            worse.append(
                Change(
                    ChangeKind.ENDPOINT_APPEARED,
                    a.host,
                    a.port,
                    a.channel.value,
                    "",
                    None,
                    a.status.value,
                )
            )
    return ReportDiff(
        before_started_at=before.started_at,
        after_started_at=after.started_at,
        regressions=tuple(worse),
        improvements=tuple(better),
    )


DIFF_FORMATS = ("text", "json")


def _rows(changes: tuple[Change, ...]) -> list[list[str]]:
    return [
        [f"{c.host}:{c.port}", c.channel, c.kind.value, c.subject, c.before or "", c.after or ""]
        for c in changes
    ]


def render_diff(diff: ReportDiff, fmt: str = "text", table_format: str = "simple") -> str:
    if fmt == "json":
        data = to_jsonable(diff)
        data["regressed"] = diff.regressed
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt != "text":
        raise UsageError(f"unknown diff format {fmt!r}; expected one of {', '.join(DIFF_FORMATS)}")
    headers = ["endpoint", "channel", "change", "what", "before", "after"]
    out = [
        f"Comparing {diff.before_started_at} -> {diff.after_started_at}: "
        f"{len(diff.regressions)} regression(s), {len(diff.improvements)} improvement(s)"
    ]
    if diff.regressions:
        out += [
            "",
            "Got worse",
            "",
            tabulate(
                _rows(diff.regressions), headers, tablefmt=table_format, disable_numparse=True
            ),
        ]
    if diff.improvements:
        out += [
            "",
            "Got better",
            "",
            tabulate(
                _rows(diff.improvements), headers, tablefmt=table_format, disable_numparse=True
            ),
        ]
    if not diff.regressions and not diff.improvements:
        out += ["", "No changes."]
    return "\n".join(out) + "\n"


def exit_code(diff: ReportDiff) -> int:
    """``chanscan diff`` / ``scan --baseline``: 1 on any regression, else 0."""
    return 1 if diff.regressed else 0
