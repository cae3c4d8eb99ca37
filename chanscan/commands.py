"""What each subcommand does, once ``cli`` has parsed the arguments."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from chanscan.config import (
    Inventory,
    PlannedTarget,
    TargetGroup,
    inventory_from_args,
    load_inventory,
    parse_platform,
    parse_ports,
    plan,
)
from chanscan.errors import UsageError
from chanscan.exitcodes import ExitCode, Gate, exit_code
from chanscan.gate import parse_grade
from chanscan.model import Finding, ScanReport
from chanscan.probes.base import ScanOptions
from chanscan.reports import render
from chanscan.reports.json_report import load_report, write_atomic
from chanscan.reports.options import RenderOptions
from chanscan.scheduler import ResultCollector, progress_printer, scan

if TYPE_CHECKING:
    from chanscan.assess import AssessOptions
    from chanscan.pins import PinStore

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
    groups: list[TargetGroup] = []
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
        discovery_connections=args.discovery_concurrency or 0,
        ca_bundle=args.ca_bundle,
    )


def gate_of(args: argparse.Namespace) -> Gate:
    min_grade = parse_grade(args.min_grade) if getattr(args, "min_grade", None) else None
    return Gate(args.fail_on, min_grade, args.allow_unreachable)


def assess_options(args: argparse.Namespace, folded: ScanReport) -> AssessOptions:
    from chanscan.assess import AssessOptions
    from chanscan.waivers import load_waivers

    waivers = load_waivers(args.waivers) if args.waivers else ()
    pin_findings: dict[tuple[str, int], tuple[Finding, ...]] = {}
    if args.pins is not None:
        from chanscan.pins import PinStore

        with PinStore(args.pins) as store:
            # Key consistency across a host's ports is judged in assess, store or not.
            additions = store.check_and_record(folded, consistency=False)
        for add in additions:
            key = (add.host, add.port)
            pin_findings[key] = (*pin_findings.get(key, ()), *add.findings)
    return AssessOptions(
        policy_override=args.policy,
        policy_file=args.policy_file,
        waivers=waivers,
        pin_findings=pin_findings,
    )


def validate_inputs(args: argparse.Namespace) -> None:
    """Read every input file before the scan, so a typo costs no scan time."""
    if args.policy or args.policy_file:
        from chanscan.policies import load_policy

        load_policy(args.policy or "default", args.policy_file)
    if args.waivers:
        from chanscan.waivers import load_waivers

        load_waivers(args.waivers)
    if args.ca_bundle is not None:
        from chanscan.probes.tls_cert import load_anchors

        try:
            load_anchors(args.ca_bundle)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--ca-bundle {args.ca_bundle}: {exc}") from None


def run_scan(
    planned: Sequence[PlannedTarget], options: ScanOptions, argv: Sequence[str]
) -> ScanReport:
    """Run the scan; on Ctrl-C return what was measured with ``complete: false``."""
    from chanscan.fingerprint import Fingerprinter
    from chanscan.probes import default_probes

    collector = ResultCollector()
    collector.progress = progress_printer()
    try:
        trio.run(scan, planned, options, default_probes(), collector, Fingerprinter())
        return collector.report(complete=True, command=argv)
    except (KeyboardInterrupt, BaseExceptionGroup) as exc:
        # trio's nurseries deliver Ctrl-C wrapped in an exception group.
        if isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is None:
            raise
        collector.interrupted = True
        sys.stderr.write("\nchanscan: interrupted; writing what was measured\n")
        return collector.report(complete=False, command=argv)


def cmd_scan(args: argparse.Namespace, argv: Sequence[str]) -> int:
    inventory = build_inventory(args)
    planned = plan(inventory, args.max_hosts)
    options = scan_options(args)
    gate = gate_of(args)
    baseline = load_report(args.baseline) if args.baseline else None
    validate_inputs(args)
    from chanscan.assess import assess, fold_platforms

    measured = run_scan(planned, options, argv)
    try:
        raw = fold_platforms(measured)
        report = assess(raw, assess_options(args, raw))
        return finish(report, args, gate, baseline)
    except Exception:
        # A bug after the scan must not lose what was measured: keep the raw
        # observations in the JSON file the user asked for, then report the bug.
        _save_raw(measured, args)
        raise


def _save_raw(report: ScanReport, args: argparse.Namespace) -> None:
    target = args.json or (args.output if args.format == "json" else None)
    if target is not None:
        with contextlib.suppress(Exception):
            write_atomic(target, render(replace(report, complete=False), "json"))
            sys.stderr.write(f"chanscan: raw scan results saved to {target}\n")


def finish(
    report: ScanReport, args: argparse.Namespace, gate: Gate, baseline: ScanReport | None
) -> int:
    """Write every output, then derive the exit code from the report (and baseline)."""
    code = emit(report, args, exit_on=gate)
    if baseline is not None:
        from chanscan.diff import diff_reports, render_diff

        d = diff_reports(baseline, report)
        sys.stdout.write(render_diff(d, "text", args.table_format))
        return exit_code(report, gate, regressed=d.regressed)
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
    extra = {
        f: getattr(args, f) for f in ("json", "sarif", "junit", "markdown") if getattr(args, f)
    }
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
    text = render_diff(d, args.format, "simple")
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
            if n == 0:
                sys.stdout.write(f"no changed key is pending for {args.host}; nothing accepted\n")
            else:
                sys.stdout.write(f"accepted the new key(s) of {n} endpoint(s) of {args.host}\n")
        elif args.pins_command == "import":
            got = store.import_known_hosts(Path(args.known_hosts))
            sys.stdout.write(
                f"imported {got.imported} key(s) from {args.known_hosts}, "
                f"skipped {len(got.skipped)}\n"
            )
        else:
            sys.stdout.write(_render_pins(store))
    return ExitCode.OK


def _render_pins(store: PinStore) -> str:
    from tabulate import tabulate

    pins = [
        [p.host, p.port, p.kind, p.key_type, p.fingerprint, p.source, p.first_seen, p.last_seen]
        for p in store.pins()
    ]
    out = [
        "Pins",
        tabulate(pins, headers=["host", "port", "kind", "key", "pin", "source", "first", "last"]),
    ]
    pending = store.pending()
    if pending:
        out += ["", "Changed keys not yet accepted (chanscan pins accept HOST[:PORT])"]
        out.append(tabulate(pending, headers=["host", "port", "kind", "key", "seen"]))
    known = store.known_hosts()
    if known:
        out += ["", "Seeded from known_hosts"]
        out.append(tabulate(known, headers=["name", "port", "key", "fingerprint"]))
    return "\n".join(out) + "\n"
