"""``chanscan demo``: start the lab estate, scan it as ``chanscan scan`` would, print
the table with a legend, stop every server. Exit 0 when the scan ran; the gate is
shown, not enforced (the estate is weak on purpose).

This module knows the estate and the words around it; ``commands.cmd_demo`` runs the
scan with the same code path as ``chanscan scan``. It imports nothing from
``commands`` (the dependency goes one way).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chanscan.config import PlannedTarget, inventory_from_args, plan
from chanscan.exitcodes import ExitCode, Gate, exit_code
from chanscan.model import PlatformHint, ScanOptions, ScanReport, Severity


@dataclass(frozen=True)
class DemoPlan:
    planned: tuple[PlannedTarget, ...]
    options: ScanOptions


@contextlib.contextmanager
def demo_estate() -> Iterator[DemoPlan]:
    """Start the estate on 127.42.0.0/24 and yield what to scan; every server is
    stopped on the way out, whatever happened inside."""
    from chanscan.lab import Lab
    from chanscan.lab.estate import start_estate

    with tempfile.TemporaryDirectory(prefix="chanscan-demo-") as tmp, Lab() as lab:
        sys.stderr.write("chanscan demo: starting the lab estate on 127.42.0.0/24\n")
        estate = start_estate(lab, Path(tmp))
        for address, what in estate.hosts.items():
            sys.stderr.write(f"  {address:<12} {what}\n")
        planned = plan(inventory_from_args(estate.targets, None, PlatformHint.AUTO, "default"))
        options = ScanOptions(endpoint_deadline=45.0, ca_bundle=estate.ca_bundle)
        yield DemoPlan(tuple(planned), options)
    sys.stderr.write("chanscan demo: lab stopped\n")


def demo_exit(report: ScanReport, fail_on: Severity) -> int:
    """0 when the scan ran: a failed gate is explained, not enforced."""
    code = exit_code(report, Gate(fail_on, None, allow_unreachable=False))
    if code == ExitCode.GATE_FAILED:
        sys.stderr.write(
            f"chanscan demo: a CI gate at --fail-on {fail_on.value} would fail on this "
            "estate (exit 1); the demo itself exits 0\n"
        )
        return ExitCode.OK
    return code
