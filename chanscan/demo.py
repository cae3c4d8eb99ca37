"""``chanscan demo``: start the lab estate, scan it as ``chanscan scan`` would, print
the table, stop every server. Exit 0 when the scan ran; the gate is shown, not
enforced (the estate is weak on purpose)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from chanscan.exitcodes import ExitCode, Gate, exit_code
from chanscan.model import PlatformHint


def run_demo(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from chanscan.assess import AssessOptions, assess, fold_platforms
    from chanscan.commands import emit, run_scan
    from chanscan.config import inventory_from_args, plan
    from chanscan.lab import Lab
    from chanscan.lab.estate import start_estate
    from chanscan.probes.base import ScanOptions

    with tempfile.TemporaryDirectory(prefix="chanscan-demo-") as tmp, Lab() as lab:
        sys.stderr.write("chanscan demo: starting the lab estate on 127.42.0.0/24\n")
        estate = start_estate(lab, Path(tmp))
        for address, what in estate.hosts.items():
            sys.stderr.write(f"  {address:<12} {what}\n")
        planned = plan(inventory_from_args(estate.targets, None, PlatformHint.AUTO, "default"))
        options = ScanOptions(endpoint_deadline=45.0, ca_bundle=estate.ca_bundle)
        raw = fold_platforms(run_scan(planned, options, ["demo", *argv]))
        report = assess(raw, AssessOptions())
        if args.keep_json is not None:
            from chanscan.reports import render
            from chanscan.reports.json_report import write_atomic

            write_atomic(args.keep_json, render(report, "json"))
        emit(report, args)
    sys.stderr.write("chanscan demo: lab stopped\n")
    gate = Gate(args.fail_on, None, allow_unreachable=False)
    code = exit_code(report, gate)
    if code == ExitCode.GATE_FAILED:
        sys.stderr.write(
            f"chanscan demo: a CI gate at --fail-on {args.fail_on.value} would fail on this "
            "estate (exit 1); the demo itself exits 0\n"
        )
        return ExitCode.OK
    return code
