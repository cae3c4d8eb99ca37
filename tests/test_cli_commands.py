"""The report, diff and pins subcommands through ``chanscan.cli.main``: output and exit
codes are what the README promises. Nothing here touches the network."""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh
import pytest

from chanscan.cli import main

GOLDEN_JSON = Path(__file__).resolve().parent / "golden" / "report.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_renders_a_saved_scan_in_every_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "report", str(GOLDEN_JSON), "--no-color", "--by-host", "-v")
    assert "Per host" in out and "Findings" in out
    # The golden report has high findings and unprobed endpoints: the gate fails.
    assert code == 1
    sarif, junit = tmp_path / "r.sarif", tmp_path / "r.xml"
    code, _, _ = run(
        capsys, "report", str(GOLDEN_JSON), "--sarif", str(sarif), "--junit", str(junit)
    )
    assert json.loads(sarif.read_text())["version"] == "2.1.0"
    assert junit.read_text().startswith("<?xml")
    code, out, _ = run(capsys, "report", str(GOLDEN_JSON), "--format", "json")
    assert json.loads(out) == json.loads(GOLDEN_JSON.read_text())


def test_gate_flags_change_the_exit_code_only(capsys: pytest.CaptureFixture[str]) -> None:
    strict, _, _ = run(capsys, "report", str(GOLDEN_JSON), "--fail-on", "info")
    lax, _, _ = run(
        capsys, "report", str(GOLDEN_JSON), "--fail-on", "critical", "--allow-unreachable"
    )
    assert strict == 1
    # The golden report holds one critical finding, so even --fail-on critical fails.
    assert lax == 1


def test_diff_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = json.loads(GOLDEN_JSON.read_text())
    same, _, _ = run(capsys, "diff", str(GOLDEN_JSON), str(GOLDEN_JSON))
    assert same == 0
    # Drop every finding: the "after" scan is better, never worse.
    for e in data["endpoints"]:
        e["findings"] = []
    better = tmp_path / "better.json"
    better.write_text(json.dumps(data))
    code, out, _ = run(capsys, "diff", str(GOLDEN_JSON), str(better))
    assert code == 0 and "resolved" in out.lower()
    code, out, _ = run(capsys, "diff", str(better), str(GOLDEN_JSON), "--format", "json")
    assert code == 1
    assert json.loads(out)["regressed"] is True


def test_bad_report_file_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other/9"}')
    code, _, err = run(capsys, "report", str(bad))
    assert code == 2
    assert err.count("\n") == 1 and "not a report this version reads" in err


def test_pins_import_list_accept(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    line = key.export_public_key("openssh").decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"esx01.example.com,192.0.2.21 {line}\n")
    db = str(tmp_path / "pins.sqlite")
    code, out, _ = run(capsys, "pins", "import", str(known), "--pins", db)
    assert code == 0 and "imported" in out
    code, out, _ = run(capsys, "pins", "list", "--pins", db)
    assert code == 0
    assert key.get_fingerprint("sha256") in out
    # A known_hosts seed is not a pin: accepting a change there is a usage error.
    code, out, err = run(capsys, "pins", "accept", "esx01.example.com:22", "--pins", db)
    assert code == 2 and "has no pin" in err
    code, _, err = run(capsys, "pins")
    assert code == 2 and "give an action" in err
    code, _, err = run(capsys, "pins", "list")
    assert code == 2 and "--pins" in err


def test_a_bug_after_the_scan_keeps_what_was_measured(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chanscan.assess

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("simulated bug in grading")

    monkeypatch.setattr(chanscan.assess, "assess", broken)
    out = tmp_path / "scan.json"
    # Port 1 on a loopback address nothing listens on: closed, measured at once.
    code, _, err = run(capsys, "scan", "127.10.8.1:1", "--json", str(out))
    assert code == 4
    assert "internal error: RuntimeError: simulated bug in grading" in err
    data = json.loads(out.read_text())
    assert data["complete"] is False
    assert [(e["address"], e["port"], e["status"]) for e in data["endpoints"]] == [
        ("127.10.8.1", 1, "closed")
    ]
