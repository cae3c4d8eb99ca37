"""Report formats. Each module exposes ``render(report, opts) -> str``."""

from __future__ import annotations

from collections.abc import Callable

from chanscan.errors import UsageError
from chanscan.model import ScanReport
from chanscan.reports import json_report, junit, markdown, sarif, table
from chanscan.reports.options import RenderOptions

Renderer = Callable[[ScanReport, RenderOptions], str]

FORMATS: dict[str, Renderer] = {
    "table": table.render,
    "json": json_report.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "markdown": markdown.render,
}


def renderer(name: str) -> Renderer:
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}") from None


def render(report: ScanReport, fmt: str, opts: RenderOptions | None = None) -> str:
    return renderer(fmt)(report, opts or RenderOptions())


__all__ = ["FORMATS", "RenderOptions", "render", "renderer"]
