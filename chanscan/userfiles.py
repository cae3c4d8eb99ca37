"""Reading the files a user hands chanscan (targets, policies, waivers): every failure
is one :class:`ConfigError` line naming the file, never a traceback."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from chanscan.errors import ConfigError


def read_text(path: str | Path, what: str) -> str:
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such {what}") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: {what} is not UTF-8 text") from None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """tomllib's message already carries the line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: malformed TOML: {exc}") from None
