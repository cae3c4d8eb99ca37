"""Layering fixes of issue 15 item 9 (the small parts): ``demo`` does not import
``commands`` (the cycle is gone, lazy imports included), and host platforms are folded
in one place, inside ``assess``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "chanscan"


def _imports(module: Path) -> set[str]:
    """Every chanscan module a file imports, at the top or inside a function."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("chanscan")}


def _calls(module: Path, name: str) -> int:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    )


def test_demo_does_not_import_commands() -> None:
    assert "chanscan.commands" not in _imports(ROOT / "demo.py")
    assert "chanscan.demo" in _imports(ROOT / "commands.py")  # one way only


def test_platforms_are_folded_once_inside_assess() -> None:
    callers = {
        str(p.relative_to(ROOT)): _calls(p, "fold_platforms")
        for p in ROOT.rglob("*.py")
        if _calls(p, "fold_platforms")
    }
    assert callers == {"assess.py": 1}
