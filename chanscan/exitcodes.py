"""Exit codes, and the one pure function that picks one from a finished report.

    0  scan complete and the gate passed
    1  the gate failed: a finding at or over --fail-on (not waived), a grade under
       --min-grade, or (``diff`` / ``--baseline``) a regression
    2  usage or configuration error: nothing was scanned
    3  scan incomplete: interrupted (Ctrl-C, SIGTERM), or an endpoint could not be
       probed (filtered, timeout, error, interrupted) and --allow-unreachable was not
       given
    4  internal error: a bug in chanscan

"The gate failed" (1) and "the tool could not do its job" (2, 3, 4) are different
codes so that a pipeline can tell a finding from a broken scan. When the gate fails
*and* the scan is incomplete, 1 wins: what was measured already fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from chanscan.gate import gate_failures, unprobed
from chanscan.model import ScanReport, Severity


class ExitCode(IntEnum):
    OK = 0
    GATE_FAILED = 1
    USAGE = 2
    INCOMPLETE = 3
    INTERNAL = 4


@dataclass(frozen=True)
class Gate:
    fail_on: Severity = Severity.HIGH
    min_grade: str | None = None
    allow_unreachable: bool = False


def exit_code(report: ScanReport, gate: Gate, regressed: bool = False) -> ExitCode:
    if regressed or gate_failures(report, gate.fail_on, gate.min_grade):
        return ExitCode.GATE_FAILED
    if not report.complete:
        return ExitCode.INCOMPLETE
    # Addresses that answered nothing (counted in down_hosts, no rows) are unprobed too.
    if not gate.allow_unreachable and (unprobed(report) or report.down_hosts):
        return ExitCode.INCOMPLETE
    return ExitCode.OK
