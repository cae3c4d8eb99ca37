"""The command line: a thin shell over config -> scheduler -> assess -> reports.

Every user error ends as one line on stderr and exit 2; a bug ends as one line and
exit 4 (``CHANSCAN_DEBUG=1`` shows the traceback). The exit code of a scan comes from
:func:`chanscan.exitcodes.exit_code`, never from what was printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from chanscan import __version__
from chanscan.errors import ChanscanError, UsageError
from chanscan.exitcodes import ExitCode
from chanscan.model import PlatformHint, Severity


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"chanscan: error: {message} (see 'chanscan --help')\n")
        raise SystemExit(ExitCode.USAGE)


def _severity(text: str) -> Severity:
    try:
        return Severity(text.lower())
    except ValueError:
        allowed = ", ".join(s.value for s in Severity)
        raise argparse.ArgumentTypeError(f"unknown severity {text!r} (one of {allowed})") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 3600 seconds")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _table_format(text: str) -> str:
    from tabulate import tabulate_formats

    if text not in tabulate_formats:
        raise argparse.ArgumentTypeError(
            f"unknown table format {text!r} (one of {', '.join(sorted(tabulate_formats))})"
        )
    return text


def _add_output_args(p: argparse.ArgumentParser) -> None:
    out = p.add_argument_group("output")
    out.add_argument(
        "--format",
        "-f",
        default=None,
        choices=("table", "json", "sarif", "junit", "markdown", "html"),
        help="format written to -o (or stdout); default: table",
    )
    out.add_argument(
        "-o", "--output", type=Path, help="write --format output to this file ('-': stdout)"
    )
    for fmt in ("json", "sarif", "junit", "markdown", "html"):
        out.add_argument(
            f"--{fmt}",
            type=Path,
            metavar="FILE",
            help=f"also write {fmt} here ('-': stdout, then no table)",
        )
    out.add_argument("-v", "--verbose", action="store_true", help="add the findings table")
    out.add_argument("--by-host", action="store_true", help="add a per-host rollup table")
    out.add_argument(
        "--table-format",
        type=_table_format,
        default="simple",
        help="tabulate format: plain, simple, github, grid...",
    )
    out.add_argument("--no-color", action="store_true", help="never colour (NO_COLOR also works)")
    gate = p.add_argument_group("gate")
    gate.add_argument(
        "--fail-on",
        type=_severity,
        default=Severity.HIGH,
        metavar="SEVERITY",
        help="exit 1 on a finding at or above this (info..critical; default high)",
    )
    gate.add_argument("--min-grade", metavar="GRADE", help="exit 1 on an overall grade below it")
    gate.add_argument(
        "--allow-unreachable",
        action="store_true",
        help="do not exit 3 when an endpoint could not be probed",
    )


def _add_dask_args(p: argparse.ArgumentParser) -> None:
    dask = p.add_argument_group("distributed (pip install 'chanscan[dask]'; docs/deployment.md)")
    dask.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="send the scan to Dask: tcp://HOST:8786, tls://HOST:8786, local or local:N "
        "(a local cluster of N processes, default one per core)",
    )
    dask.add_argument(
        "--dask-insecure",
        action="store_true",
        help="allow a tcp:// scheduler that is not on loopback (results travel in clear)",
    )
    dask.add_argument("--dask-tls-ca", type=Path, metavar="FILE", help="CA of the Dask cluster")
    dask.add_argument("--dask-tls-cert", type=Path, metavar="FILE", help="client certificate")
    dask.add_argument("--dask-tls-key", type=Path, metavar="FILE", help="client private key")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chanscan",
        description="Grade the management channels (TLS, SSH, RDP, ESXi authd) of vCenter, "
        "ESXi, XenServer and Hyper-V hosts for MITM and eavesdropping exposure.",
        epilog="Exit codes: 0 ok, 1 gate failed, 2 usage/config error, 3 scan incomplete, "
        "4 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"chanscan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    scan = sub.add_parser("scan", help="discover and probe targets")
    scan.add_argument(
        "targets",
        nargs="*",
        help="address, host name, CIDR, range (a-b), host:port or [v6]:port",
    )
    scan.add_argument("--targets", dest="targets_file", type=Path, help="targets TOML inventory")
    scan.add_argument("--ports", "-p", help="ports to scan, e.g. 22,443,900-902")
    scan.add_argument("--exclude", action="append", default=[], help="never scan this target")
    scan.add_argument(
        "--platform",
        default="auto",
        help="platform hint for positional targets: auto, vcenter, esxi, xenserver, hyperv",
    )
    scan.add_argument("--policy", help="grading policy (overrides the targets file's)")
    scan.add_argument("--policy-file", type=Path, help="a custom policy TOML file")
    scan.add_argument("--waivers", type=Path, help="TOML file of accepted risks")
    scan.add_argument("--pins", type=Path, help="host-key pin store (SQLite), created on first use")
    scan.add_argument("--baseline", type=Path, help="earlier JSON scan: exit 1 on regressions")
    scan.add_argument("--ca-bundle", type=Path, help="extra trusted CA certificates (PEM)")
    scan.add_argument(
        "--max-hosts", type=_positive_int, default=65_536, help="scope guard (default 65536)"
    )
    scan.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help="deadline per endpoint in seconds (default 30)",
    )
    scan.add_argument(
        "--connect-timeout",
        type=_positive_float,
        default=3.0,
        help="TCP connect deadline (default 3)",
    )
    scan.add_argument(
        "--per-host", type=_positive_int, default=5, help="connections per host (default 5)"
    )
    scan.add_argument(
        "--concurrency",
        type=_positive_int,
        default=64,
        help="probe connections in all (default 64)",
    )
    scan.add_argument(
        "--discovery-concurrency",
        type=_positive_int,
        default=None,
        metavar="N",
        help="discovery connects at once (default: sized from the open-files limit, at most 2048)",
    )
    _add_dask_args(scan)
    _add_output_args(scan)

    report = sub.add_parser("report", help="render a saved JSON scan")
    report.add_argument("report", type=Path)
    _add_output_args(report)

    diff = sub.add_parser("diff", help="what got worse between two JSON scans (exit 1 if any)")
    diff.add_argument("before", type=Path)
    diff.add_argument("after", type=Path)
    diff.add_argument("--format", "-f", choices=("text", "json"), default="text")
    diff.add_argument("-o", "--output", type=Path)

    pins = sub.add_parser("pins", help="manage the host-key pin store")
    pins_sub = pins.add_subparsers(dest="pins_command", metavar="ACTION", parser_class=_Parser)
    accept = pins_sub.add_parser("accept", help="accept the key change seen for HOST[:PORT]")
    accept.add_argument("host")
    imp = pins_sub.add_parser("import", help="seed the store from an OpenSSH known_hosts file")
    imp.add_argument("known_hosts", type=Path)
    shown = pins_sub.add_parser("list", help="show the pins, pending changes and seeds")
    for action in (accept, imp, shown):
        action.add_argument("--pins", type=Path, required=True, help="pin store (SQLite)")

    demo = sub.add_parser("demo", help="start the built-in lab estate, scan it, stop it")
    demo.add_argument("--keep-json", type=Path, help="also write the demo scan as JSON here")
    _add_output_args(demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code) if isinstance(exc.code, int) else ExitCode.USAGE
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    try:
        from chanscan import commands

        return int(commands.dispatch(args, list(argv if argv is not None else sys.argv[1:])))
    except UsageError as exc:
        sys.stderr.write(f"chanscan: error: {exc}\n")
        return ExitCode.USAGE
    except ChanscanError as exc:
        sys.stderr.write(f"chanscan: error: {exc}\n")
        return ExitCode.INTERNAL
    except KeyboardInterrupt:
        sys.stderr.write("chanscan: interrupted\n")
        return ExitCode.INCOMPLETE
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # a bug: one line, unless asked for more
        if os.environ.get("CHANSCAN_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(f"chanscan: internal error: {type(exc).__name__}: {exc}\n")
        return ExitCode.INTERNAL


__all__ = ["PlatformHint", "build_parser", "main"]
