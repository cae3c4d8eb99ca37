"""Layering of issue 15 item 9: ``demo`` does not import ``commands`` (the cycle is
gone, lazy imports included), host platforms are folded in one place (``assess``), the
grade scale belongs to grading, the lab's encoders live in the lab, and ``ScanOptions``
is a value of the model."""

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


def test_the_grade_scale_belongs_to_grading() -> None:
    """Grading makes the letters; the gate consumes them, never the other way round."""
    for module in (ROOT / "grading").rglob("*.py"):
        assert not any(m.startswith("chanscan.gate") for m in _imports(module)), module
    assert "chanscan.grading.scale" in _imports(ROOT / "gate.py")


def test_lab_encoders_live_in_the_lab() -> None:
    """The product's fingerprint modules send and parse; the servers' answers the lab
    imitates are built in ``chanscan.lab.encoders``."""
    lab_only = {
        "service_content_xml",
        "service_versions_xml",
        "front_page_html",
        "fault_xml",
        "identify_response_xml",
        "build_challenge",
        "is_negotiate",
        "connection_confirm",
        "parse_request",
    }
    for module in (ROOT / "fingerprint").glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert not defined & lab_only, (module, defined & lab_only)
        assert not any(m.startswith("chanscan.lab") for m in _imports(module)), module
    encoders = ast.parse((ROOT / "lab" / "encoders.py").read_text(encoding="utf-8"))
    assert lab_only <= {n.name for n in encoders.body if isinstance(n, ast.FunctionDef)}


def test_scan_options_are_a_value_of_the_model() -> None:
    model = ast.parse((ROOT / "model.py").read_text(encoding="utf-8"))
    assert "ScanOptions" in {n.name for n in model.body if isinstance(n, ast.ClassDef)}
    tests = Path(__file__).resolve().parent
    for module in [*ROOT.rglob("*.py"), *tests.glob("*.py")]:
        assert "chanscan.probes.base.ScanOptions" not in _imports(module), module
