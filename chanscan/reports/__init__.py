"""Report formats. Each module exposes ``render(report, opts) -> str``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from chanscan.errors import UsageError
from chanscan.model import ScanReport
from chanscan.reports import html, json_report, junit, markdown, sarif, table
from chanscan.reports.json_report import load_report, write_atomic
from chanscan.reports.options import RenderOptions

Renderer = Callable[[ScanReport, RenderOptions], str]

FORMATS: dict[str, Renderer] = {
    "table": table.render,
    "json": json_report.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "markdown": markdown.render,
    "html": html.render,
}


def renderer(name: str) -> Renderer:
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}") from None


def render(report: ScanReport, fmt: str, opts: RenderOptions | None = None) -> str:
    return renderer(fmt)(report, opts or RenderOptions())


def write_outputs(
    report: ScanReport, outputs: Mapping[str, str | os.PathLike[str]], opts: RenderOptions
) -> None:
    """Write several formats at once (``--json F --sarif F ...``), each file atomically.
    Every format is rendered before the first file is written, so a rendering bug
    cannot leave a mix of new and old files behind."""
    texts = {fmt: renderer(fmt)(report, opts) for fmt in outputs}
    for fmt, path in outputs.items():
        write_atomic(path, texts[fmt])


__all__ = [
    "FORMATS",
    "RenderOptions",
    "load_report",
    "render",
    "renderer",
    "write_atomic",
    "write_outputs",
]
