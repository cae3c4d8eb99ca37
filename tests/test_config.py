"""Targets parsing and expansion, and every bad input as a one-line exit-2 error."""

from __future__ import annotations

from pathlib import Path

import pytest

from chanscan.cli import main
from chanscan.config import (
    PLATFORM_PORTS,
    inventory_from_args,
    load_inventory,
    parse_ports,
    parse_target,
    plan,
)
from chanscan.errors import ConfigError, ScopeError
from chanscan.model import PlatformHint

ROOT = Path(__file__).resolve().parent.parent


def addresses(targets: list[str], exclude: tuple[str, ...] = (), **kw: object) -> list[str]:
    inv = inventory_from_args(targets, (443,), PlatformHint.AUTO, "default", exclude)
    return [p.host.address or p.host.name or "" for p in plan(inv, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.7", ["192.0.2.7"]),
        ("192.0.2.0/30", ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"]),
        ("192.0.2.5-192.0.2.7", ["192.0.2.5", "192.0.2.6", "192.0.2.7"]),
        ("192.0.2.5-6", ["192.0.2.5", "192.0.2.6"]),
        ("2001:db8::1", ["2001:db8::1"]),
        ("2001:db8::/127", ["2001:db8::", "2001:db8::1"]),
        ("esx01.mgmt.example", ["esx01.mgmt.example"]),
        ("ESX01.Mgmt.Example.", ["esx01.mgmt.example"]),
    ],
)
def test_target_forms(text: str, expected: list[str]) -> None:
    assert addresses([text]) == expected


def test_host_port_forms_override_ports() -> None:
    inv = inventory_from_args(
        ["192.0.2.9:8443", "[2001:db8::9]:22", "vc.example:5480"], None, PlatformHint.ESXI, "d"
    )
    got = [(p.host.address or p.host.name, p.ports) for p in plan(inv)]
    assert got == [("192.0.2.9", (8443,)), ("2001:db8::9", (22,)), ("vc.example", (5480,))]


def test_platform_selects_default_ports() -> None:
    inv = inventory_from_args(["192.0.2.1"], None, PlatformHint.HYPERV, "default")
    assert plan(inv)[0].ports == PLATFORM_PORTS[PlatformHint.HYPERV]
    assert 3389 in PLATFORM_PORTS[PlatformHint.HYPERV]
    assert 902 in PLATFORM_PORTS[PlatformHint.ESXI]


def test_exclude_always_wins() -> None:
    got = addresses(["192.0.2.0/29", "192.0.2.3"], exclude=("192.0.2.2-192.0.2.4", "192.0.2.7"))
    assert got == ["192.0.2.0", "192.0.2.1", "192.0.2.5", "192.0.2.6"]
    # A scope that ends up empty is a usage error (exit 2), never an empty pass.
    with pytest.raises(ScopeError, match="nothing to scan"):
        addresses(["198.51.100.0/24"], exclude=("198.51.100.0/23",))


def test_excludes_travel_with_names_to_apply_after_resolution() -> None:
    inv = inventory_from_args(
        ["vc.example", "192.0.2.9"], None, PlatformHint.AUTO, "default", ("192.0.2.0/30",)
    )
    named = next(p for p in plan(inv) if p.host.name == "vc.example")
    assert named.excludes("192.0.2.1") and named.excludes("192.0.2.3")
    assert not named.excludes("192.0.2.4") and not named.excludes("2001:db8::1")


@pytest.mark.parametrize("name", ["3par-01.example", "1password-vault.example", "9-lives.example"])
def test_names_that_start_with_a_digit_are_names(name: str) -> None:
    spec = parse_target(name)
    assert spec.name == name and spec.first is None


@pytest.mark.parametrize("text", ["192.0.2.5-20", "192.0.2.5-192.0.2.9"])
def test_ranges_stay_ranges(text: str) -> None:
    spec = parse_target(text)
    assert spec.name is None and spec.first is not None and spec.last is not None


def test_scope_guard() -> None:
    with pytest.raises(ScopeError, match="more than 65536"):
        addresses(["198.51.0.0/15"])
    assert len(addresses(["203.0.113.0/24"], max_hosts=256)) == 256
    with pytest.raises(ScopeError, match="--max-hosts"):
        addresses(["203.0.113.0/24"], max_hosts=255)


def test_ports_parsing() -> None:
    assert parse_ports("22, 443,900-902", "x") == (22, 443, 900, 901, 902)
    assert parse_ports([443, "80", "5985-5986"], "x") == (80, 443, 5985, 5986)


def test_example_inventory_loads() -> None:
    inv = load_inventory(ROOT / "targets.example.toml")
    names = {g.name: g for g in inv.groups}
    assert set(names) == {"vcenter", "esxi", "xenserver", "hyperv"}
    assert names["vcenter"].policy == "vsphere8-stig"
    planned = plan(inv)
    addrs = {p.host.address for p in planned}
    assert "192.0.2.47" not in addrs  # group exclude
    assert "192.0.2.1" not in addrs  # top-level exclude
    assert "192.0.2.33" in addrs


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


BAD_TOML = {
    "malformed": ("[groups.a\nhosts = [", r"t\.toml: malformed TOML: .*line 1"),
    "unknown_key": (
        '[groups.a]\nhosts = ["192.0.2.1"]\nprots = [22]\n',
        r"t\.toml:3: unknown key 'prots' in group 'a'",
    ),
    "unknown_top_key": ('target = "x"\n', r"t\.toml:1: unknown key 'target'"),
    "bad_cidr": (
        '[groups.a]\nhosts = ["192.0.2.0/33"]\n',
        r"t\.toml:2: .*bad CIDR '192\.0\.2\.0/33'",
    ),
    "port_zero": (
        '[groups.a]\nhosts = ["192.0.2.1"]\nports = [0]\n',
        r"t\.toml:3: .*port 0 is out of range",
    ),
    "port_big": (
        '[groups.a]\nhosts = ["192.0.2.1"]\nports = [65536]\n',
        r"t\.toml:3: .*port 65536 is out of range",
    ),
    "unknown_platform": (
        '[groups.a]\nhosts = ["192.0.2.1"]\nplatform = "proxmox"\n',
        r"unknown platform 'proxmox'",
    ),
    "no_hosts": ("[groups.a]\nports = [22]\n", r"group 'a' has no 'hosts'"),
    "bad_range": ('[groups.a]\nhosts = ["192.0.2.9-192.0.2.1"]\n', r"bad address range"),
    "empty_hosts": ("[groups.a]\nhosts = []\n", r"t\.toml: nothing to scan"),
    "all_excluded": (
        'exclude = ["192.0.2.0/24"]\n[groups.a]\nhosts = ["192.0.2.8/29"]\n',
        r"t\.toml: nothing to scan",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TOML))
def test_bad_targets_file_is_one_line_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, pattern = BAD_TOML[case]
    path = tmp_path / "t.toml"
    path.write_text(text)
    code, err = _run(capsys, "scan", "--targets", str(path))
    assert code == 2
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert err.startswith("chanscan: error: ")
    import re

    assert re.search(pattern, err), err


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["scan", "192.0.2.0/33"], "bad CIDR '192.0.2.0/33'"),
        (["scan", "192.0.2.1", "--ports", "0"], "--ports: port 0 is out of range"),
        (["scan", "192.0.2.1", "--ports", "70000"], "port 70000 is out of range"),
        (["scan", "192.0.2.1", "--ports", "ssh"], "port 'ssh' is not a number"),
        (["scan", "192.0.2.1", "--platform", "vmware"], "unknown platform 'vmware'"),
        (["scan", "192.0.2.1:99999"], "port 99999 is out of range"),
        (["scan", "not_a host!"], "is not an address, network, range or host name"),
        (["scan"], "no targets"),
        (["scan", "198.51.0.0/15"], "more than 65536 addresses"),
        (["scan", "--targets", "/nonexistent/t.toml"], "no such targets file"),
        (["scan", "192.0.2.1", "--timeout", "-1"], "must be between 0 and 3600"),
        (["scan", "192.0.2.1", "--fail-on", "severe"], "unknown severity 'severe'"),
        (["scan", "192.0.2.1", "--min-grade", "Z"], "unknown grade 'Z'"),
        (["report", "/nonexistent/scan.json"], "cannot read"),
        (["frobnicate"], "invalid choice"),
        (["report", "x.json", "--table-format", "fancy"], "unknown table format 'fancy'"),
        (["scan", "192.0.2.1", "--policy", "nist-9000"], "nist-9000"),
        (["scan", "192.0.2.1", "--waivers", "/nonexistent/w.toml"], "w.toml"),
        (["scan", "192.0.2.1", "--ca-bundle", "/nonexistent/ca.pem"], "--ca-bundle"),
    ],
)
def test_bad_command_lines_are_one_line_exit_2(
    argv: list[str], pattern: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, *argv)
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert pattern in err


def test_parse_target_rejects_garbage() -> None:
    for bad in ("", "[2001:db8::1", "192.0.2.1:", "1.2.3", "a..b"):
        with pytest.raises(ConfigError):
            parse_target(bad)
