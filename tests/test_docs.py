"""The JSON format document names every key the report can carry."""

from __future__ import annotations

import re
from pathlib import Path

from chanscan.schema import build_schema

DOC = Path(__file__).resolve().parent.parent / "docs" / "json-format.md"


def test_every_report_key_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_0-9]+)(?:\[\])?`", text))
    keys = {k for d in build_schema()["$defs"].values() for k in d["properties"]}
    missing = sorted(keys - documented)
    assert not missing, f"docs/json-format.md does not mention: {missing}"
