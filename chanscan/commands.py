"""What each subcommand does, once ``cli`` has parsed the arguments."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from chanscan.config import (
    Inventory,
    inventory_from_args,
    load_inventory,
    parse_platform,
    parse_ports,
    plan,
)
from chanscan.errors import UsageError
from chanscan.exitcodes import ExitCode, Gate, exit_code
from chanscan.gate import parse_grade
from chanscan.model import ScanReport
from chanscan.probes.base import ScanOptions
from chanscan.reports import render
from chanscan.reports.json_report import load_report, write_atomic
from chanscan.reports.options import RenderOptions
from chanscan.scheduler import ResultCollector, progress_printer, scan

if TYPE_CHECKING:
    from chanscan.assess import AssessOptions

_EXT_FORMATS = {".json": "json", ".sarif": "sarif", ".xml": "junit", ".md": "markdown"}


def dispatch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.command == "scan":
        return cmd_scan(args, argv)
    if args.command == "report":
        report = load_report(args.report)
        return emit(report, args)
    if args.command == "diff":
        return cmd_diff(args)
    if args.command == "pins":
        return cmd_pins(args)
    if args.command == "demo":
        from chanscan.demo import run_demo

        return run_demo(args, argv)
    raise UsageError(f"unknown command {args.command!r}")


# -- scan -------------------------------------------------------------------------------
def build_inventory(args: argparse.Namespace) -> Inventory:
    ports = parse_ports(args.ports, "--ports") if args.ports else None
    platform = parse_platform(args.platform, "--platform")
    policy = args.policy or "default"
    groups = []
    exclude: tuple[str, ...] = ()
    if args.targets_file is not None:
        inv = load_inventory(args.targets_file)
        groups.extend(inv.groups)
        exclude = inv.exclude
    if args.targets:
        groups.extend(inventory_from_args(args.targets, ports, platform, policy).groups)
    if not groups:
        raise UsageError("no targets: give addresses, networks or names, or --targets FILE")
    if ports is not None:
        groups = [replace(g, ports=ports) for g in groups]
    return Inventory(tuple(groups), (*exclude, *args.exclude), str(args.targets_file or "args"))


def scan_options(args: argparse.Namespace) -> ScanOptions:
    if args.ca_bundle is not None and not args.ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    return ScanOptions(
        connect_timeout=args.connect_timeout,
        endpoint_deadline=args.timeout,
        per_host_connections=args.per_host,
        global_connections=args.concurrency,
        ca_bundle=args.ca_bundle,
    )


def gate_of(args: argparse.Namespace) -> Gate:
    min_grade = parse_grade(args.min_grade) if getattr(args, "min_grade", None) else None
    return Gate(args.fail_on, min_grade, args.allow_unreachable)


def assess_options(args: argparse.Namespace, raw: ScanReport) -> AssessOptions:
    from chanscan.assess import AssessOptions
    from chanscan.policies import load_policy
    from chanscan.waivers import load_waivers

    if args.policy:
        load_policy(args.policy, args.policy_file)  # fail before anything is written
    waivers = tuple(load_waivers(args.waivers)) if args.waivers else ()
    pin_findings = {}
    if args.pins is not None:
        from chanscan.pins import PinStore

        with PinStore(args.pins) as store:
            pin_findings = store.check_and_record(raw)
    return AssessOptions(
        policy_override=args.policy,
        policy_file=args.policy_file,
        waivers=waivers,
        pin_findings=pin_findings,
    )


def run_scan(
    planned: Sequence[object], options: ScanOptions, argv: Sequence[str]
) -> ScanReport:
    """Run the scan; on Ctrl-C return what was measured with ``complete: false``."""
    from chanscan.fingerprint import fingerprint_endpoint
    from chanscan.probes import default_probes

    collector = ResultCollector()
    collector.progress = progress_printer()
    try:
        trio.run(scan, planned, options, default_probes(), collector, fingerprint_endpoint)
        return collector.report(complete=True, command=argv)
    except KeyboardInterrupt:
        collector.interrupted = True
        sys.stderr.write("\nchanscan: interrupted; writing what was measured\n")
        return collector.report(complete=False, command=argv)


def cmd_scan(args: argparse.Namespace, argv: Sequence[str]) -> int:
    inventory = build_inventory(args)
    planned = plan(inventory, args.max_hosts)
    options = scan_options(args)
    gate = gate_of(args)
    baseline = load_report(args.baseline) if args.baseline else None
    if args.policy:
        from chanscan.policies import load_policy

        load_policy(args.policy, args.policy_file)
    if args.waivers:
        from chanscan.waivers import load_waivers

        load_waivers(args.waivers)
    from chanscan.assess import assess

    raw = run_scan(planned, options, argv)
    report = assess(raw, assess_options(args, raw))
    code = emit(report, args, exit_on=gate)
    if baseline is not None:
        from chanscan.diff import diff_reports, render_diff

        d = diff_reports(baseline, report)
        sys.stdout.write(render_diff(d, "table"))
        if d.regressed:
            return ExitCode.GATE_FAILED
    if not raw.complete:
        return ExitCode.INCOMPLETE if code == ExitCode.OK else code
    return code


# -- output ------------------------------------------------------------------------------
def render_options(args: argparse.Namespace, color_stream: object = None) -> RenderOptions:
    stream = color_stream or sys.stdout
    color = (
        not args.no_color
        and "NO_COLOR" not in os.environ
        and bool(getattr(stream, "isatty", lambda: False)())
    )
    min_grade = parse_grade(args.min_grade) if args.min_grade else None
    return RenderOptions(
        table_format=args.table_format,
        verbose=args.verbose,
        by_host=args.by_host,
        color=color,
        fail_on=args.fail_on,
        min_grade=min_grade,
    )


def emit(report: ScanReport, args: argparse.Namespace, exit_on: Gate | None = None) -> int:
    """Write every requested format; the exit code comes from the report alone."""
    opts = render_options(args)
    file_opts = replace(opts, color=False)
    fmt = args.format
    if fmt is None and args.output is not None:
        fmt = _EXT_FORMATS.get(args.output.suffix.lower(), "table")
    fmt = fmt or "table"
    extra = {f: getattr(args, f) for f in ("json", "sarif", "junit", "markdown") if getattr(args, f)}
    for name, path in extra.items():
        write_atomic(path, render(report, name, file_opts))
    if args.output is not None:
        write_atomic(args.output, render(report, fmt, file_opts))
        if fmt != "table":
            sys.stdout.write(render(report, "table", opts))
    else:
        sys.stdout.write(render(report, fmt, opts if fmt == "table" else file_opts))
    gate = exit_on or Gate(opts.fail_on, opts.min_grade, args.allow_unreachable)
    return exit_code(report, gate)


# -- diff / pins --------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace) -> int:
    from chanscan.diff import diff_reports, render_diff

    before, after = load_report(args.before), load_report(args.after)
    d = diff_reports(before, after)
    text = render_diff(d, args.format)
    if args.output is not None:
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return ExitCode.GATE_FAILED if d.regressed else ExitCode.OK


def _host_port(text: str) -> tuple[str, int | None]:
    from chanscan.config import parse_port

    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, parse_port(rest[1:], text) if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, parse_port(port, text)
    return text, None


def cmd_pins(args: argparse.Namespace) -> int:
    from chanscan.pins import PinStore

    if args.pins_command is None:
        raise UsageError("pins: give an action: accept, import or list")
    with PinStore(args.pins) as store:
        if args.pins_command == "accept":
            host, port = _host_port(args.host)
            n = store.accept(host, port)
            sys.stdout.write(f"accepted {n} changed pin(s) for {args.host}\n")
        elif args.pins_command == "import":
            n = store.import_known_hosts(Path(args.known_hosts))
            sys.stdout.write(f"imported {n} key(s) from {args.known_hosts}\n")
        else:
            sys.stdout.write(store.render())
    return ExitCode.OK
