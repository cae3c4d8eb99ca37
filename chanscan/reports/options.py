"""How a report is rendered; the CLI builds one of these from its flags."""

from __future__ import annotations

from dataclasses import dataclass

from chanscan import __version__
from chanscan.model import Severity


@dataclass(frozen=True)
class RenderOptions:
    table_format: str = "simple"  # any tabulate format name
    verbose: bool = False  # add the per-finding table
    by_host: bool = False  # add the per-host rollup
    color: bool = False  # ANSI colour; the CLI sets it only on a TTY without NO_COLOR
    width: int = 48  # longest text cell before it is shortened with an ellipsis
    # Terminal columns to fit the table into (shortening, then dropping columns by a
    # declared priority); None keeps the full table (pipes and files).
    columns: int | None = None
    legend: bool = False  # explain the grade columns and the gate under the table
    top_findings: int = 2  # findings named in the summary row
    fail_on: Severity = Severity.HIGH
    min_grade: str | None = None
    tool_name: str = "chanscan"
    tool_version: str = __version__
    information_uri: str | None = None  # SARIF tool.driver.informationUri, when known
