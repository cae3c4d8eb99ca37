"""Change-window diff: what got worse and what got better between two scans.

Endpoints are matched by address and port: identity is the address, so each address
behind a dual-stack or round-robin name is compared with itself (the name is a label;
a name that did not resolve is matched by name). An endpoint scanned in only one of the
two runs is "not compared", never gone, resolved or better: a narrower second scan
must not read as an improvement. A certificate renewed on the same key is a change to
note, not a regression. Waived findings are ignored on both sides: a waiver is an
accepted risk, neither a regression nor an improvement.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from tabulate import tabulate

from chanscan.errors import UsageError
from chanscan.gate import UNPROBED
from chanscan.grading.scale import grade_rank
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
    TLS_CERT_CHANGED = "tls_cert_changed"  # same key, new certificate: noted, not worse
    SSH_HOST_KEY_CHANGED = "ssh_host_key_changed"
    NOT_COMPARED = "not_compared"  # scanned in only one of the two runs


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    host: str
    port: int
    channel: str
    subject: str  # finding id, grade axis, key type, or "" for the endpoint itself
    before: str | None = None
    after: str | None = None
    address: str = ""  # the identity; ``host`` is the name the user gave


@dataclass(frozen=True)
class ReportDiff:
    before_started_at: str
    after_started_at: str
    regressions: tuple[Change, ...] = ()
    improvements: tuple[Change, ...] = ()
    # Neither worse nor better: renewed certificates on the same key.
    notes: tuple[Change, ...] = ()
    # Endpoints scanned in only one run ("before" or "after" says which).
    not_compared: tuple[Change, ...] = ()

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


def _change(
    r: EndpointResult, kind: ChangeKind, subject: str, before: str | None, after: str | None
) -> Change:
    return Change(kind, r.host, r.port, r.channel.value, subject, before, after, r.address)


def _compare(
    b: EndpointResult, a: EndpointResult
) -> tuple[list[Change], list[Change], list[Change]]:
    worse: list[Change] = []
    better: list[Change] = []
    notes: list[Change] = []

    def change(kind: ChangeKind, subject: str, before: str | None, after: str | None) -> Change:
        return _change(a, kind, subject, before, after)

    if b.status is Status.OK and a.status in _UNPROBED:
        worse.append(change(ChangeKind.ENDPOINT_UNPROBED, "", b.status.value, a.status.value))
    elif b.status in _UNPROBED and a.status is Status.OK:
        better.append(change(ChangeKind.ENDPOINT_PROBED, "", b.status.value, a.status.value))
    if b.status is not Status.OK or a.status is not Status.OK:
        return worse, better, notes

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
            notes.append(
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
    return worse, better, notes


def _present(r: EndpointResult) -> bool:
    """Something accepted the connection (even if it could not be fully probed); a
    closed or filtered port exposes nothing."""
    return r.status not in (Status.CLOSED, Status.FILTERED)


def _compare_hosts(before: ScanReport, after: ScanReport) -> tuple[list[Change], list[Change]]:
    """Host findings (patch level, end of support) of machines assessed in both runs."""
    hb = {h.address: h for h in before.hosts}
    worse: list[Change] = []
    better: list[Change] = []
    for a in after.hosts:
        b = hb.get(a.address)
        if b is None:
            continue
        name = a.names[0] if a.names else a.address
        ids_b = {f.id: f.title for f in b.findings if not f.waived}
        ids_a = {f.id: f.title for f in a.findings if not f.waived}
        for fid in sorted(ids_a.keys() - ids_b.keys()):
            worse.append(
                Change(ChangeKind.FINDING_NEW, name, 0, "host", fid, None, ids_a[fid], a.address)
            )
        for fid in sorted(ids_b.keys() - ids_a.keys()):
            better.append(
                Change(
                    ChangeKind.FINDING_RESOLVED, name, 0, "host", fid, ids_b[fid], None, a.address
                )
            )
    return worse, better


def _identity(r: EndpointResult) -> tuple[str, int]:
    return ((r.address or r.host).lower(), r.port)


def diff_reports(before: ScanReport, after: ScanReport) -> ReportDiff:
    def index(report: ScanReport) -> dict[tuple[str, int], EndpointResult]:
        return {_identity(r): r for r in report.endpoints}

    ib, ia = index(before), index(after)
    worse: list[Change] = []
    better: list[Change] = []
    notes: list[Change] = []
    unmatched: list[Change] = []
    for key, b in ib.items():
        a = ia.get(key)
        if a is None:
            if _present(b):
                unmatched.append(
                    _change(b, ChangeKind.NOT_COMPARED, "", b.status.value, "not scanned")
                )
            continue
        if _present(b) and not _present(a):
            worse.append(_change(b, ChangeKind.ENDPOINT_GONE, "", b.status.value, a.status.value))
            continue
        if not _present(b) and _present(a):
            worse.append(
                _change(a, ChangeKind.ENDPOINT_APPEARED, "", b.status.value, a.status.value)
            )
            continue
        w, g, n = _compare(b, a)
        worse += w
        better += g
        notes += n
    for key, a in ia.items():
        if key not in ib and _present(a):
            unmatched.append(_change(a, ChangeKind.NOT_COMPARED, "", "not scanned", a.status.value))
    w, g = _compare_hosts(before, after)
    worse += w
    better += g
    return ReportDiff(
        before_started_at=before.started_at,
        after_started_at=after.started_at,
        regressions=tuple(worse),
        improvements=tuple(better),
        notes=tuple(notes),
        not_compared=tuple(unmatched),
    )


DIFF_FORMATS = ("text", "json")


def _label(c: Change) -> str:
    where = f"{c.host}:{c.port}" if c.port else c.host
    return where if c.address in ("", c.host) else f"{where} ({c.address})"


def _rows(changes: tuple[Change, ...]) -> list[list[str]]:
    return [
        [_label(c), c.channel, c.kind.value, c.subject, c.before or "", c.after or ""]
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
    for title, changes in (
        ("Got better", diff.improvements),
        ("Changed (neither worse nor better)", diff.notes),
        ("Not compared (scanned in only one run)", diff.not_compared),
    ):
        if changes:
            out += [
                "",
                title,
                "",
                tabulate(_rows(changes), headers, tablefmt=table_format, disable_numparse=True),
            ]
    if not (diff.regressions or diff.improvements or diff.notes or diff.not_compared):
        out += ["", "No changes."]
    return "\n".join(out) + "\n"


def exit_code(diff: ReportDiff) -> int:
    """``chanscan diff`` / ``scan --baseline``: 1 on any regression, else 0."""
    return 1 if diff.regressed else 0
