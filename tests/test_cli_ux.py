"""Operator habits (issue 15 items 6 and 7): "-" is stdout, bad pins/waiver/targets
input is exit 2 with one line naming the file (and line) at fault. Through
``chanscan.cli.main``. Nothing here is scanned: every scan case stops at a usage
error before the first packet; its targets sit on loopback (127.15.0.0/24, this
file's block) so that even a regression would send nothing off the machine."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import asyncssh
import pytest
from obs_builders import at

from chanscan.cli import main

GOLDEN_JSON = Path(__file__).resolve().parent / "golden" / "report.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("chanscan: error: "), err
    assert "Traceback" not in err
    return err


# -- "-" is stdout ----------------------------------------------------------------
def test_dash_output_writes_to_stdout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "report", str(GOLDEN_JSON), "--json", "-")
    assert code == 1  # the golden report fails the gate
    assert json.loads(out) == json.loads(GOLDEN_JSON.read_text())  # JSON only, no table
    code, out, _ = run(capsys, "report", str(GOLDEN_JSON), "-o", "-", "-f", "sarif")
    assert json.loads(out)["version"] == "2.1.0"
    code, out, _ = run(capsys, "report", str(GOLDEN_JSON), "-o", "-", "--no-color")
    assert "eavesdrop" in out  # -o - with no format: the table
    code, out, _ = run(capsys, "report", str(GOLDEN_JSON), "--markdown", "-")
    assert out.startswith("#")
    assert not (tmp_path / "-").exists()


def test_two_outputs_on_stdout_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "report", str(GOLDEN_JSON), "--json", "-", "--sarif", "-")
    assert code == 2 and out == ""
    assert "--json -" in _one_line_error(err) and "--sarif -" in err


def test_dash_with_a_file_beside_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sarif = tmp_path / "r.sarif"
    code, out, _ = run(capsys, "report", str(GOLDEN_JSON), "--json", "-", "--sarif", str(sarif))
    assert code == 1
    assert json.loads(out)["schema"] and json.loads(sarif.read_text())["version"] == "2.1.0"


# -- pins ---------------------------------------------------------------------------
def _key_line() -> tuple[str, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return key.export_public_key("openssh").decode().strip(), key.get_fingerprint("sha256")


def test_pins_accept_unknown_host_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "pins.sqlite")
    code, out, err = run(capsys, "pins", "accept", "192.0.2.99:22", "--pins", db)
    assert code == 2 and out == ""
    assert "192.0.2.99:22 has no pin" in _one_line_error(err)


def test_pins_import_of_a_file_without_host_keys_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "pins.sqlite")
    notes = tmp_path / "notes.txt"
    notes.write_text("# my hosts\nthis is not a known_hosts file\n")
    code, _, err = run(capsys, "pins", "import", str(notes), "--pins", db)
    assert code == 2
    assert f"{notes} has no known_hosts lines" in _one_line_error(err)
    assert "line 2" in err  # why the line was skipped
    empty = tmp_path / "empty"
    empty.write_text("")
    code, _, err = run(capsys, "pins", "import", str(empty), "--pins", db)
    assert code == 2 and "no known_hosts lines" in _one_line_error(err)


def test_hashed_entries_list_as_hashed_without_a_made_up_port(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line, fp = _key_line()
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, b"[esx01.example.com]:2222", hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    known = tmp_path / "known_hosts"
    known.write_text(f"{hashed} {line}\n192.0.2.21 {line}\n")
    db = str(tmp_path / "pins.sqlite")
    code, out, _ = run(capsys, "pins", "import", str(known), "--pins", db)
    assert code == 0 and "imported 2" in out
    code, out, _ = run(capsys, "pins", "list", "--pins", db)
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if fp in ln}
    assert rows["(hashed)"][1] == "(hashed)"  # the port is inside the hash, not 0
    assert rows["192.0.2.21"][1] == "22"
    assert "name and port are inside the hash" in out


# -- targets file -------------------------------------------------------------------
def test_unknown_policy_in_targets_file_names_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    targets = tmp_path / "t.toml"
    targets.write_text(
        '[groups.vc]\nhosts = ["127.15.0.10"]\n\n'
        '[groups.esx]\nhosts = ["127.15.0.20"]\nplatform = "esxi"\npolicy = "vsphere8-stgi"\n'
    )
    code, _, err = run(capsys, "scan", "--targets", str(targets))
    assert code == 2
    assert _one_line_error(err).startswith(f"chanscan: error: {targets}:7: group 'esx'")
    assert "vsphere8-stig" in err  # the known names are listed


def test_host_in_two_groups_names_both(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    targets = tmp_path / "t.toml"
    targets.write_text(
        '[groups.vc]\nhosts = ["127.15.0.10"]\n\n[groups.mgmt]\nhosts = ["127.15.0.8/29"]\n'
    )
    code, _, err = run(capsys, "scan", "--targets", str(targets))
    assert code == 2
    msg = _one_line_error(err)
    assert "127.15.0.10" in msg and "'vc'" in msg and "'mgmt'" in msg and str(targets) in msg


# -- waivers ------------------------------------------------------------------------
# The waivers below are refused for their finding ids; their expiry is a month after
# the fixed test time, so no date ever makes them read as expired instead.
EXPIRES = at(30)[:10]


def test_unknown_waiver_finding_is_exit_2_with_line_and_nearest_id(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    waivers = tmp_path / "w.toml"
    waivers.write_text(
        '[[waiver]]\nfinding = "tls.cert.self_signed"\nhost = "*"\nreason = "r"\n'
        f"expires = {EXPIRES}\n\n"
        '[[waiver]]\nhost = "*"\nreason = "r"\nfinding = "tls.cert.self_sigend"\n'
        f"expires = {EXPIRES}\n"
    )
    code, _, err = run(capsys, "report", str(GOLDEN_JSON), "--no-color")
    assert code == 1  # (the report itself renders; waivers are a scan option)
    code, _, err = run(capsys, "scan", "127.15.0.10", "--waivers", str(waivers))
    assert code == 2
    msg = _one_line_error(err)
    assert f"{waivers}:10: unknown finding id 'tls.cert.self_sigend'" in msg
    assert "did you mean 'tls.cert.self_signed'" in msg


def test_waiver_pattern_matching_nothing_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    waivers = tmp_path / "w.toml"
    waivers.write_text(
        f'[[waiver]]\nfinding = "tsl.*"\nhost = "*"\nreason = "r"\nexpires = {EXPIRES}\n'
    )
    code, _, err = run(capsys, "scan", "127.15.0.10", "--waivers", str(waivers))
    assert code == 2 and f"{waivers}:2: pattern 'tsl.*'" in _one_line_error(err)
