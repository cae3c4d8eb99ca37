"""The JSON report: the canonical format every other view can be rebuilt from."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from chanscan.errors import ReportFormatError, UsageError
from chanscan.model import SCHEMA_ID, ScanReport
from chanscan.reports.options import RenderOptions
from chanscan.serde import from_jsonable, to_jsonable

# mkstemp creates 0600 files; a report should get the mode an ordinary open() would.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def render(report: ScanReport, opts: RenderOptions) -> str:
    del opts  # the JSON format has no presentation knobs
    return json.dumps(to_jsonable(report), indent=2, ensure_ascii=False) + "\n"


def loads_report(text: str, source: str = "report") -> ScanReport:
    """Parse a saved report; every failure is one ReportFormatError line."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportFormatError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ReportFormatError(f"{source}: not a chanscan report (top level is not an object)")
    schema = data.get("schema")
    if schema != SCHEMA_ID:
        raise ReportFormatError(
            f"{source}: schema {schema!r} is not {SCHEMA_ID!r}; not a report this version reads"
        )
    try:
        return from_jsonable(ScanReport, data)
    except ReportFormatError as exc:
        raise ReportFormatError(f"{source}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ReportFormatError(f"{source}: {exc}") from None


def load_report(path: str | os.PathLike[str]) -> ScanReport:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReportFormatError(f"{p}: cannot read ({reason})") from None
    return loads_report(text, str(p))


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temporary file in the same directory and os.replace, so a reader (or a
    crash) never sees half a report and an old report is only replaced by a whole one."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from None
    try:
        try:
            mode = target.stat().st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from None
        raise
