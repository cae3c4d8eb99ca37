"""The risk table fits the terminal (issue 15 item 1): at 80 and 120 columns every line
fits, the grade columns are never dropped, and pipes and files keep the full table."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sample_report import sample_report

from chanscan.model import ScanReport
from chanscan.reports import RenderOptions, render, write_atomic
from chanscan.reports.fit import Column, fit_table, visible_width

# Both the generic renders and the subprocess runs; 48 is the default longest cell.
WIDTHS = (80, 120)


def _wide_report() -> ScanReport:
    """The sample report with long names, so that the full table is far too wide."""
    base = sample_report()
    long_host = "esx-management-cluster-07.datacenter-north.example.com"
    endpoints = tuple(replace(r, host=long_host) for r in base.endpoints)
    return replace(base, endpoints=endpoints)


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _summary_header(text: str) -> str:
    """The first table header (the headline above it may wrap)."""
    return next(line for line in _lines(text) if "overall" in line)


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("fmt", ["simple", "grid", "github"])
def test_every_line_fits(columns: int, fmt: str) -> None:
    report = _wide_report()
    full = render(report, "table", RenderOptions(verbose=True, by_host=True, table_format=fmt))
    assert visible_width(full) > columns  # otherwise the test proves nothing
    opts = RenderOptions(verbose=True, by_host=True, table_format=fmt, columns=columns)
    fitted = render(report, "table", opts)
    too_long = [line for line in _lines(fitted) if visible_width(line) > columns]
    assert too_long == []


@pytest.mark.parametrize("columns", WIDTHS)
def test_grade_columns_stay(columns: int) -> None:
    opts = RenderOptions(verbose=True, by_host=True, columns=columns, color=True)
    text = render(_wide_report(), "table", opts)
    assert visible_width(text) <= columns
    summary_header = _summary_header(text)
    for name in ("host", "port", "eavesdrop", "MITM", "overall"):
        assert name in summary_header
    assert "\x1b[" in text  # colour codes do not count toward the width


def test_priority_order_at_80() -> None:
    """Narrow: the platform goes before the findings text; wide: everything stays."""
    narrow = _summary_header(render(_wide_report(), "table", RenderOptions(columns=80)))
    assert "platform" not in narrow
    assert "findings" in narrow
    wide = _summary_header(render(sample_report(), "table", RenderOptions(columns=200)))
    for name in ("channel", "platform", "findings"):
        assert name in wide


def test_fit_table_drops_empty_column_first_and_never_the_fixed_ones() -> None:
    cols = (
        Column("id"),
        Column("note", shrink_to=4, shrink_rank=0, drop_rank=1),
        Column("empty", drop_rank=2),
    )
    rows = [["x" * 30, "n" * 40, ""], ["y" * 30, "m" * 40, ""]]
    text = fit_table(cols, rows, "simple", 60)
    assert "empty" not in text and "note" in text and visible_width(text) <= 60
    # Only the fixed column is left and it is wider than asked: it is kept whole.
    text = fit_table(cols, rows, "simple", 20)
    assert "x" * 30 in text and "note" not in text


def _cli(tmp_path: Path, columns: str | None, *args: str) -> str:
    path = tmp_path / "scan.json"
    write_atomic(path, render(_wide_report(), "json"))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.run(
        [sys.executable, "-m", "chanscan", "report", str(path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode in (0, 1, 3), proc.stderr
    return proc.stdout


@pytest.mark.parametrize("columns", WIDTHS)
def test_cli_honours_columns(tmp_path: Path, columns: int) -> None:
    out = _cli(tmp_path, str(columns), "-v", "--by-host")
    assert max(len(line) for line in _lines(out)) <= columns


def test_cli_never_narrower_than_80(tmp_path: Path) -> None:
    out = _cli(tmp_path, "40")
    assert 40 < max(len(line) for line in _lines(out)) <= 80


def test_pipe_keeps_the_full_table(tmp_path: Path) -> None:
    out = _cli(tmp_path, None, "-v", "--by-host")
    assert max(len(line) for line in _lines(out)) > 120
    assert "platform" in _summary_header(out) and "channel" in _summary_header(out)
