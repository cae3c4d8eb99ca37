"""What each subcommand does, once ``cli`` has parsed the arguments."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
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
from chanscan.model import Finding, ScanOptions, ScanReport
from chanscan.reports import render
from chanscan.reports.fit import MIN_COLUMNS
from chanscan.reports.json_report import load_report, write_atomic
from chanscan.reports.options import RenderOptions
from chanscan.scheduler import ResultCollector, progress_printer, scan

if TYPE_CHECKING:
    from chanscan.assess import AssessOptions
    from chanscan.pins import PinStore

_EXT_FORMATS = {
    ".json": "json",
    ".sarif": "sarif",
    ".xml": "junit",
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
}
_FILE_FORMATS = ("json", "sarif", "junit", "markdown", "html")  # --json FILE, ...


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
        return cmd_demo(args, argv)
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


def assess_options(args: argparse.Namespace, measured: ScanReport) -> AssessOptions:
    from chanscan.assess import AssessOptions
    from chanscan.waivers import load_waivers

    waivers = load_waivers(args.waivers) if args.waivers else ()
    pin_findings: dict[tuple[str, int], tuple[Finding, ...]] = {}
    if args.pins is not None:
        from chanscan.pins import PinStore

        with PinStore(args.pins) as store:
            # Key consistency across a host's ports is judged in assess, store or not.
            additions = store.check_and_record(measured, consistency=False)
        for add in additions:
            key = (add.address, add.port)
            pin_findings[key] = (*pin_findings.get(key, ()), *add.findings)
    return AssessOptions(
        policy_override=args.policy,
        policy_file=args.policy_file,
        waivers=waivers,
        pin_findings=pin_findings,
    )


def validate_inputs(args: argparse.Namespace, inventory: Inventory | None = None) -> None:
    """Read every input file before the scan, so a typo costs no scan time."""
    from chanscan.errors import ConfigError
    from chanscan.policies import load_policy

    if args.policy or args.policy_file:
        load_policy(args.policy or "default", args.policy_file)
    if not args.policy and inventory is not None:
        # --policy overrides every group's; otherwise each group's name must exist,
        # and the message points at the line in the targets file that names it.
        for group in inventory.groups:
            try:
                load_policy(group.policy, args.policy_file)
            except ConfigError as exc:
                where = group.policy_at or inventory.source
                raise ConfigError(f"{where}: group {group.name!r}: {exc}") from None
    if args.waivers:
        from chanscan.waivers import load_waivers

        load_waivers(args.waivers)
    if args.ca_bundle is not None:
        from chanscan.probes.tls_cert import load_anchors

        try:
            load_anchors(args.ca_bundle)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--ca-bundle {args.ca_bundle}: {exc}") from None


def _note(text: str) -> None:
    sys.stderr.write(f"chanscan: {text}\n")


def run_scan(
    planned: Sequence[PlannedTarget], options: ScanOptions, argv: Sequence[str]
) -> ScanReport:
    """Run the scan; on Ctrl-C return what was measured with ``complete: false``."""
    from chanscan.fingerprint import Fingerprinter
    from chanscan.probes import default_probes

    collector = ResultCollector()
    collector.progress = progress_printer()
    lead = "\n" if collector.progress is not None else ""  # off the progress line

    def say(text: str) -> None:
        sys.stderr.write(f"{lead}chanscan: {text}\n")
        sys.stderr.flush()

    # The scheduler catches SIGINT and SIGTERM during the scan and says so at once;
    # endpoints in flight come back as "interrupted" rows.
    collector.on_interrupt = say
    collector.on_note = say
    try:
        trio.run(scan, planned, options, default_probes(), collector, Fingerprinter())
        return collector.report(complete=True, command=argv)
    except (KeyboardInterrupt, BaseExceptionGroup) as exc:
        # Ctrl-C outside the scan proper (resolving names; a second Ctrl-C while
        # stopping): trio's nurseries deliver it wrapped in an exception group.
        if isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is None:
            raise
        if not collector.interrupted:
            say("stopping; writing what was measured")
        collector.interrupted = True
        return collector.report(complete=False, command=argv)


def run_dask(
    planned: Sequence[PlannedTarget],
    options: ScanOptions,
    argv: Sequence[str],
    args: argparse.Namespace,
) -> ScanReport:
    """The same measurements on Dask workers (imported only here: the plain install
    has no Dask). Everything after the measurement stays in this process."""
    from chanscan.distributed.shards import parse_dask_target

    target = parse_dask_target(args.dask)
    from chanscan.distributed.runner import DaskSettings, run_dask_scan

    settings = DaskSettings(
        target, args.dask_insecure, args.dask_tls_ca, args.dask_tls_cert, args.dask_tls_key
    )
    return run_dask_scan(planned, options, argv, settings)


def cmd_scan(args: argparse.Namespace, argv: Sequence[str]) -> int:
    inventory = build_inventory(args)
    planned = plan(inventory, args.max_hosts)
    options = scan_options(args)
    gate = gate_of(args)
    baseline = load_report(args.baseline) if args.baseline else None
    validate_inputs(args, inventory)
    _outputs(args)  # two outputs claiming stdout is a usage error before, not after, a scan
    from chanscan.assess import assess

    if args.dask is not None:
        measured = run_dask(planned, options, argv, args)
    else:
        measured = run_scan(planned, options, argv)
    try:
        # assess folds the host platforms (once); the pin store needs none of them.
        report = assess(measured, assess_options(args, measured))
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
            write_output(target, render(replace(report, complete=False), "json"))
            if target != STDOUT:
                sys.stderr.write(f"chanscan: raw scan results saved to {target}\n")


def finish(
    report: ScanReport, args: argparse.Namespace, gate: Gate, baseline: ScanReport | None
) -> int:
    """Write every output, then derive the exit code from the report (and baseline)."""
    code = emit(report, args, exit_on=gate, explain=baseline is None)
    if baseline is not None:
        from chanscan.diff import diff_reports, render_diff

        d = diff_reports(baseline, report)
        # When "-" gave stdout to a machine format, the human diff goes to stderr.
        taken = STDOUT in (args.output, *(getattr(args, f) for f in _FILE_FORMATS))
        (sys.stderr if taken else sys.stdout).write(render_diff(d, "text", args.table_format))
        code = exit_code(report, gate, regressed=d.regressed)
        if code == ExitCode.INCOMPLETE:
            sys.stderr.write(explain_incomplete(report) + "\n")
    return code


def cmd_demo(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from chanscan.assess import AssessOptions, assess
    from chanscan.demo import demo_estate, demo_exit

    with demo_estate() as demo:
        measured = run_scan(demo.planned, demo.options, ["demo", *argv])
        report = assess(measured, AssessOptions())
        if args.keep_json is not None:
            write_output(args.keep_json, render(report, "json"))
        emit(report, args, legend=True)
    return demo_exit(report, args.fail_on)


# -- output ------------------------------------------------------------------------------
STDOUT = Path("-")  # "-o -", "--json -": write to standard output, as Unix tools do


def terminal_columns(stream: object = None) -> int | None:
    """The width to fit the table to: the terminal's when ``stream`` is one (COLUMNS,
    then the tty size, as ``shutil.get_terminal_size`` reads them), or an explicit
    ``COLUMNS`` even on a pipe (the user asked for that width); otherwise None, and
    pipes and files keep the full table. Never under 80 columns."""
    stream = stream or sys.stdout
    explicit = os.environ.get("COLUMNS", "")
    if bool(getattr(stream, "isatty", lambda: False)()):
        columns = shutil.get_terminal_size().columns
    elif explicit.strip().isdigit():
        columns = int(explicit)
    else:
        return None
    return max(columns, MIN_COLUMNS)


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
        columns=terminal_columns(stream),
        fail_on=args.fail_on,
        min_grade=min_grade,
    )


def _outputs(args: argparse.Namespace) -> tuple[str, dict[str, Path]]:
    """The format for stdout or -o, and every --json/--sarif/... file; at most one of
    them may be "-" (standard output)."""
    fmt = args.format
    if fmt is None and args.output is not None:
        fmt = _EXT_FORMATS.get(args.output.suffix.lower(), "table")
    extra = {f: getattr(args, f) for f in _FILE_FORMATS if getattr(args, f)}
    dashes = [f"--{f} -" for f, p in extra.items() if p == STDOUT]
    if args.output == STDOUT:
        dashes.append("-o -")
    if len(dashes) > 1:
        raise UsageError(f"only one output can go to stdout, got {' and '.join(dashes)}")
    return fmt or "table", extra


def write_output(path: Path, text: str) -> None:
    if path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(path, text)


def emit(
    report: ScanReport,
    args: argparse.Namespace,
    exit_on: Gate | None = None,
    legend: bool = False,
    explain: bool = True,
) -> int:
    """Write every requested format; the exit code comes from the report alone.
    The table goes to stdout unless another output claimed it with "-"."""
    opts = replace(render_options(args), legend=legend)
    file_opts = replace(opts, color=False, columns=None, legend=False)
    fmt, extra = _outputs(args)
    stdout_taken = args.output == STDOUT or STDOUT in extra.values()
    for name, path in extra.items():
        write_output(path, render(report, name, file_opts))
    if args.output is not None:
        chosen = opts if (args.output == STDOUT and fmt == "table") else file_opts
        write_output(args.output, render(report, fmt, chosen))
        if fmt != "table" and not stdout_taken:
            sys.stdout.write(render(report, "table", opts))
    elif not stdout_taken:
        sys.stdout.write(render(report, fmt, opts if fmt == "table" else file_opts))
    gate = exit_on or Gate(opts.fail_on, opts.min_grade, args.allow_unreachable)
    code = exit_code(report, gate)
    if explain and code == ExitCode.INCOMPLETE:
        sys.stderr.write(explain_incomplete(report) + "\n")
    return code


_NAMED = 3  # endpoints named in the exit-3 explanation; the rest are counted


def explain_incomplete(report: ScanReport) -> str:
    """Why the exit code is 3, in one line: the first few endpoints that were not
    probed (with why) and how many in all, and the flag that accepts them."""
    from chanscan.gate import unprobed
    from chanscan.reports.common import host_port

    missing = unprobed(report)
    named = ", ".join(f"{host_port(r)} ({r.status.value})" for r in missing[:_NAMED])
    more = f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else ""
    if not missing:
        return "chanscan: exit 3: the scan was interrupted before it finished"
    head = "the scan was interrupted; " if not report.complete else ""
    return (
        f"chanscan: exit 3: {head}{len(missing)} endpoint{'s' * (len(missing) != 1)} "
        f"not probed: {named}{more}; --allow-unreachable accepts unreachable endpoints"
    )


# -- diff / pins --------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace) -> int:
    from chanscan.diff import diff_reports, render_diff

    before, after = load_report(args.before), load_report(args.after)
    d = diff_reports(before, after)
    text = render_diff(d, args.format, "simple")
    if args.output is not None:
        write_output(args.output, text)
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
            if n == 0 and not [p for p in store.pins(host) if port in (None, p.port)]:
                # A typo must not look like "nothing to do".
                raise UsageError(
                    f"pins accept: {args.host} has no pin in {args.pins} "
                    "('chanscan pins list' shows the pinned endpoints)"
                )
            if n == 0:
                sys.stdout.write(f"no changed key is pending for {args.host}; nothing accepted\n")
            else:
                sys.stdout.write(f"accepted the new key(s) of {n} endpoint(s) of {args.host}\n")
        elif args.pins_command == "import":
            got = store.import_known_hosts(Path(args.known_hosts))
            if got.imported == 0 and got.found == 0:
                why = f" (first skipped: {got.skipped[0]})" if got.skipped else ""
                raise UsageError(f"pins import: {args.known_hosts} has no known_hosts lines{why}")
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
        # A hashed entry (HashKnownHosts) hides its name and its port alike: the port
        # is inside the HMAC, so "0" would be a lie; it matches when a scan meets it.
        rows = [
            [name, "(hashed)" if name == "(hashed)" else port, key, fp]
            for name, port, key, fp in known
        ]
        out += ["", "Seeded from known_hosts"]
        out.append(tabulate(rows, headers=["name", "port", "key", "fingerprint"]))
        if any(name == "(hashed)" for name, *_ in known):
            out.append("(hashed): name and port are inside the hash; matched when scanned")
    return "\n".join(out) + "\n"
