"""Fit a table to a terminal width by a declared priority: shorten the wordy columns
first, then drop the least useful ones; columns without a priority (the grades, the
host, the finding id) are never touched.

Pure: cells in, text out. The width is measured on the rendered text with ANSI
colour codes stripped, so any tabulate format (with its own borders) fits.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tabulate import tabulate

from chanscan.reports.common import shorten

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MIN_COLUMNS = 80  # narrower terminals get the 80-column layout and wrap


def visible_width(text: str) -> int:
    return max((len(_ANSI.sub("", line)) for line in text.splitlines()), default=0)


@dataclass(frozen=True)
class Column:
    header: str
    shrink_to: int | None = None  # narrowest width it may be shortened to; None: never
    shrink_rank: int = 0  # lower shrinks first
    drop_rank: int | None = None  # lower drops first; None: never dropped
    # How a cell is shortened; the default keeps one line and marks the cut with "…".
    shrink: Callable[[str, int], str] = shorten


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    table_format: str,
    width: int | None,
) -> str:
    """Render ``rows`` under ``columns``; when ``width`` is set, shorten then drop
    columns in their declared order until every line fits (or nothing is left to
    give up: the never-touched columns are wider than the terminal)."""

    def draw(keep: list[int], limits: dict[int, int]) -> str:
        def cell(i: int, text: str) -> str:
            limit = limits.get(i)
            return columns[i].shrink(text, limit) if limit is not None else text

        body = [[cell(i, row[i]) for i in keep] for row in rows]
        heads = [columns[i].header for i in keep]
        return tabulate(body, headers=heads, tablefmt=table_format, disable_numparse=True)

    keep = list(range(len(columns)))
    text = draw(keep, {})
    if width is None or visible_width(text) <= width:
        return text
    shrinkable = sorted(
        (i for i, c in enumerate(columns) if c.shrink_to is not None),
        key=lambda i: columns[i].shrink_rank,
    )
    # A droppable column with nothing in it goes at once (e.g. "waived" with no waivers).
    droppable = sorted(
        (i for i, c in enumerate(columns) if c.drop_rank is not None),
        key=lambda i: columns[i].drop_rank or 0,
    )
    empty = [i for i in droppable if not any(r[i] for r in rows)]
    droppable = empty + [i for i in droppable if i not in empty]
    # Drop as few columns as it takes for the rest to fit at their narrowest...
    floors = {i: columns[i].shrink_to or 0 for i in shrinkable}
    for dropped in range(len(empty), len(droppable) + 1):
        keep = [i for i in range(len(columns)) if i not in droppable[:dropped]]
        if visible_width(draw(keep, floors)) <= width:
            break
    # ...then shorten the kept columns in their order, each only as far as needed.
    limits: dict[int, int] = {}
    text = draw(keep, limits)
    for i in (i for i in shrinkable if i in keep):
        full = max((visible_width(r[i]) for r in rows), default=0)
        # A few passes: a header wider than the cells can hide the first cut.
        for _ in range(4):
            excess = visible_width(text) - width
            if excess <= 0:
                return text
            limits[i] = max(floors[i], limits.get(i, full) - excess)
            text = draw(keep, limits)
            if limits[i] == floors[i]:
                break
    return text


def wrap(text: str, width: int | None) -> str:
    """Wrap prose (a headline, a legend) to ``width``; unchanged when it is None."""
    if width is None:
        return text
    out: list[str] = []
    for line in text.splitlines():
        if visible_width(line) <= width:
            out.append(line)
        else:
            indent = " " * (len(line) - len(line.lstrip()))
            out.append(
                textwrap.fill(
                    line.strip(),
                    width,
                    initial_indent=indent,
                    subsequent_indent=indent + "  ",
                    break_on_hyphens=False,
                )
            )
    return "\n".join(out)
