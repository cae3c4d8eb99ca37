"""Regenerate the shipped JSON Schema: ``python -m chanscan.schema``."""

from pathlib import Path

from chanscan.schema import SCHEMA_FILE, render_schema

Path(__file__).with_name(SCHEMA_FILE).write_text(render_schema(), encoding="utf-8")
