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


def test_readme_commands_parse() -> None:
    """Every ``chanscan ...`` example in the README is accepted by the parser (parsing
    only: nothing is scanned)."""
    import shlex

    from chanscan.cli import build_parser

    readme = (DOC.parent.parent / "README.md").read_text(encoding="utf-8")
    lines, fenced = [], False
    for line in readme.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced and line.startswith("chanscan "):
            lines.append(line.split("#", 1)[0].strip())
    assert len(lines) >= 8
    parser = build_parser()
    for line in lines:
        argv = shlex.split(line)[1:]
        args = parser.parse_args(argv)
        assert args.command, line


def test_readme_waiver_example_loads() -> None:
    from chanscan.waivers import parse_waivers

    readme = (DOC.parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    (waiver,) = parse_waivers(block, "README.md")
    assert waiver.reason.startswith("hosts reached only through vCenter")
    # Date-proof: judged around its own expiry, not today's date. It waives through
    # that day and turns into a waiver.expired finding the day after.
    from datetime import timedelta

    from chanscan.model import Axis, Endpoint, Finding, Severity
    from chanscan.waivers import EXPIRED_ID, apply_waivers

    ep = Endpoint(host="192.0.2.10", address="192.0.2.10", port=443)
    f = Finding(waiver.finding, "t", Severity.MEDIUM, Axis.MITM)
    (held,) = apply_waivers([f], ep, (waiver,), waiver.expires)
    assert held.waived
    lapsed = apply_waivers([f], ep, (waiver,), waiver.expires + timedelta(days=1))
    assert [x.id for x in lapsed] == [waiver.finding, EXPIRED_ID]
    assert not lapsed[0].waived


def test_readme_images_exist() -> None:
    import re

    root = DOC.parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert "docs/img/estate-page.png" in images
    for image in images:
        data = (root / image).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", image
