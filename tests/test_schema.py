"""The JSON format: shipped schema == model, real output validates, round trips."""

from __future__ import annotations

import json

import jsonschema
import pytest

from chanscan.config import inventory_from_args, plan
from chanscan.errors import ReportFormatError
from chanscan.lab import Lab
from chanscan.lab.core import free_port
from chanscan.model import SCHEMA_ID, PlatformHint, ScanOptions, ScanReport
from chanscan.scheduler import scan
from chanscan.schema import build_schema, shipped_schema
from chanscan.serde import from_jsonable, to_jsonable

NET = "127.10.2"


def test_shipped_schema_matches_the_model() -> None:
    assert shipped_schema() == build_schema(), "run: python -m chanscan.schema"


async def test_real_scan_output_validates_and_round_trips(lab: Lab) -> None:
    lab.tarpit(f"{NET}.1", 443)
    closed = free_port(f"{NET}.2")
    inv = inventory_from_args(
        [f"{NET}.1:443", f"{NET}.2:{closed}"], None, PlatformHint.AUTO, "default"
    )
    opts = ScanOptions(connect_timeout=1, sniff_timeout=0.2, network_timeout=0.5)
    report = await scan(plan(inv), opts, {})
    data = json.loads(json.dumps(to_jsonable(report)))
    jsonschema.validate(data, shipped_schema())
    assert data["schema"] == SCHEMA_ID
    assert {e["status"] for e in data["endpoints"]} == {"timeout", "closed"}
    assert from_jsonable(ScanReport, data) == report


def test_decoder_rejects_wrong_types_with_a_path() -> None:
    bad = {
        "schema": SCHEMA_ID,
        "tool_version": "x",
        "complete": True,
        "started_at": "a",
        "finished_at": "b",
        "endpoints": [
            {"host": "h", "address": "a", "port": "443", "channel": "tls", "status": "ok"}
        ],
    }
    with pytest.raises(ReportFormatError, match=r"\$\.endpoints\[0\]\.port: expected int"):
        from_jsonable(ScanReport, bad)
    bad["endpoints"][0]["port"] = 443  # type: ignore[index]
    bad["endpoints"][0]["channel"] = "telnet"  # type: ignore[index]
    with pytest.raises(ReportFormatError, match="'telnet' is not a valid Channel"):
        from_jsonable(ScanReport, bad)
