"""The pure half of ``--dask``: the address and its transport guard, cutting the plan
into shards, rows for shards nobody ran, decoding answers, the progress line; and the
promise that the plain install never imports Dask. No cluster here (test_dask.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from chanscan.config import inventory_from_dict, plan
from chanscan.distributed.shards import (
    MAX_HOSTS_PER_SHARD,
    Shard,
    check_transport,
    decode_results,
    hosts_per_shard,
    make_shards,
    parse_dask_target,
    progress_line,
    unscanned_rows,
)
from chanscan.errors import ConfigError, ReportFormatError, UsageError
from chanscan.lab import Lab
from chanscan.model import Channel, EndpointResult, Status, Vantage
from chanscan.serde import to_jsonable


@pytest.mark.parametrize(
    ("text", "local", "address"),
    [
        ("local", 0, None),
        ("local:3", 3, None),
        ("tcp://127.0.0.1:8786", None, "tcp://127.0.0.1:8786"),
        ("tls://sched.mgmt.example", None, "tls://sched.mgmt.example:8786"),
        ("tcp://[::1]:9000", None, "tcp://[::1]:9000"),
    ],
)
def test_parse_dask_target(text: str, local: int | None, address: str | None) -> None:
    t = parse_dask_target(text)
    assert (t.local_workers, t.address) == (local, address)


@pytest.mark.parametrize(
    "text", ["local:0", "local:x", "http://192.0.2.1:8786", "192.0.2.1:8786", "tcp://"]
)
def test_parse_dask_target_rejects(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--dask "):
        parse_dask_target(text)


@pytest.mark.parametrize(
    ("address", "insecure", "refused"),
    [
        ("tcp://127.0.0.1:8786", False, False),
        ("tcp://[::1]:8786", False, False),
        ("tcp://localhost:8786", False, False),
        ("tcp://192.0.2.10:8786", False, True),
        ("tcp://sched.mgmt.example:8786", False, True),  # a name is not proof of loopback
        ("tcp://192.0.2.10:8786", True, False),
        ("tls://192.0.2.10:8786", False, False),
    ],
)
def test_clear_text_only_to_loopback(address: str, insecure: bool, refused: bool) -> None:
    target = parse_dask_target(address)
    if refused:
        with pytest.raises(UsageError, match=r"not on loopback.*--dask-insecure"):
            check_transport(target, insecure)
    else:
        check_transport(target, insecure)


def test_cli_refuses_remote_clear_text_before_connecting() -> None:
    from chanscan.cli import main

    # 192.0.2.0/24 is TEST-NET-1: nothing is sent; the guard fires before any connect.
    assert main(["scan", "192.0.2.5:443", "--dask", "tcp://192.0.2.10:8786"]) == 2


def _plan(toml: str, workers: int = 4) -> list[Shard]:
    import tomllib

    inv = inventory_from_dict(tomllib.loads(textwrap.dedent(toml)), "t.toml")
    return make_shards(plan(inv), workers)


def test_shards_keep_sites_apart_and_never_split_a_host() -> None:
    shards = _plan(
        """
        [groups.a]
        hosts = ["192.0.2.0/28", "192.0.2.3:8443"]
        ports = [22, 443]
        site = "a"
        [groups.b]
        hosts = ["198.51.100.1", "esx01.mgmt.example"]
        site = "b"
        [groups.any]
        hosts = ["203.0.113.7"]
        ports = [443]
        """
    )
    assert {s.site for s in shards} == {"a", "b", None}
    assert hosts_per_shard(16 + 2 + 1, 4) == 5
    homes: dict[tuple[str | None, str], set[int]] = {}
    for s in shards:
        hosts = {t.host.address or t.host.name or "" for t in s.targets}
        assert 1 <= len(hosts) <= 5
        assert {t.site for t in s.targets} == {s.site}
        for h in hosts:
            homes.setdefault((s.site, h), set()).add(s.index)
    # Every host of a site lives in exactly one shard: 192.0.2.3's two entries too (a
    # host in two groups is refused by config, so one group lists it twice).
    assert all(len(idx) == 1 for idx in homes.values())
    (home,) = [s for s in shards if any(t.host.address == "192.0.2.3" for t in s.targets)]
    ports = sorted(p for t in home.targets if t.host.address == "192.0.2.3" for p in t.ports)
    assert ports == [22, 443, 8443]
    assert sum(s.planned_endpoints for s in shards) == 16 * 2 + 1 + 12 * 2 + 1
    assert [s.index for s in shards] == list(range(len(shards)))
    assert next(s for s in shards if s.site == "b").resources == {"site-b": 1}


def test_shard_size_is_bounded() -> None:
    assert hosts_per_shard(1, 8) == 1
    assert hosts_per_shard(16, 2) == 8
    assert hosts_per_shard(100, 0) == MAX_HOSTS_PER_SHARD
    assert hosts_per_shard(65_536, 2) == MAX_HOSTS_PER_SHARD


def test_site_names_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"t.toml:3: group 'a': 'site' must be"):
        inventory_from_dict(
            {"groups": {"a": {"hosts": ["192.0.2.1"], "site": "a b"}}},
            "t.toml",
            '[groups.a]\nhosts = ["192.0.2.1"]\nsite = "a b"\n',
        )


def test_unscanned_rows_say_why_and_where() -> None:
    shards = _plan(
        """
        [groups.dc2]
        hosts = ["192.0.2.9", "esx02.mgmt.example"]
        ports = [22, 443]
        site = "dc2"
        """
    )
    rows = [r for s in shards for r in unscanned_rows(s, "no worker for site dc2")]
    assert [(r.host, r.address, r.port) for r in rows] == [
        ("192.0.2.9", "192.0.2.9", 22),
        ("192.0.2.9", "192.0.2.9", 443),
        ("esx02.mgmt.example", "", 22),
        ("esx02.mgmt.example", "", 443),
    ]
    assert {(r.status, r.error, r.group) for r in rows} == {
        (Status.ERROR, "no worker for site dc2", "dc2")
    }
    assert {r.vantage for r in rows} == {Vantage("dc2", None)}


def test_decode_results_sets_the_vantage() -> None:
    row = EndpointResult("192.0.2.9", "192.0.2.9", 443, Channel.TLS, Status.OK, group="dc2")
    answer = {"worker": "dc2-w1", "results": [to_jsonable(row)]}
    (back,) = decode_results(answer, "dc2")
    assert back == EndpointResult(
        "192.0.2.9",
        "192.0.2.9",
        443,
        Channel.TLS,
        Status.OK,
        group="dc2",
        vantage=Vantage("dc2", "dc2-w1"),
    )
    with pytest.raises(ReportFormatError, match=r"worker dc2-w1: result\[0\]"):
        decode_results({"worker": "dc2-w1", "results": [{"host": "x"}]}, "dc2")


@pytest.mark.parametrize(
    ("sites", "line"),
    [
        ({None: (3, 10)}, "chanscan: 3/10 endpoints"),
        ({"a": (10, 10), "b": (2, 8)}, "chanscan: 12/18 endpoints; slowest site: b 2/8"),
        # Equal fractions: the site with more left to do is the slower one.
        (
            {"a": (1, 2), "b": (5, 10), None: (0, 0)},
            "chanscan: 6/12 endpoints; slowest site: b 5/10",
        ),
        ({"a": (4, 4), None: (1, 5)}, "chanscan: 5/9 endpoints; slowest site: (none) 1/5"),
        ({"a": (4, 4), "b": (8, 8)}, "chanscan: 12/12 endpoints"),
    ],
)
def test_progress_line(sites: dict[str | None, tuple[int, int]], line: str) -> None:
    assert progress_line(sites) == line


def test_plain_install_does_not_import_dask() -> None:
    code = (
        "import sys\n"
        "import chanscan.cli, chanscan.commands, chanscan.distributed.shards\n"
        "import chanscan.distributed.worker\n"
        "from chanscan.cli import build_parser\n"
        "build_parser().parse_args(['scan', '192.0.2.1', '--dask', 'local'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_dask_installed_the_flag_says_how_to_get_it() -> None:
    # ``sys.modules[name] = None`` makes ``import name`` fail as if it were not installed.
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None\n"
        "from chanscan.cli import main\n"
        "sys.exit(main(['scan', '127.77.9.1:1', '--dask', 'local:1']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr == (
        "chanscan: error: --dask needs Dask distributed: pip install 'chanscan[dask]'\n"
    )


def test_example_inventory_site_reaches_the_plan() -> None:
    from pathlib import Path

    from chanscan.config import load_inventory

    inv = load_inventory(Path(__file__).resolve().parent.parent / "targets.example.toml")
    assert {g.name: g.site for g in inv.groups} == {
        "vcenter": None,
        "esxi": "dc1",
        "xenserver": None,
        "hyperv": None,
    }
    assert {t.site for t in plan(inv) if t.group == "esxi"} == {"dc1"}


def test_a_shard_scan_stops_when_the_client_cancels(lab: Lab) -> None:
    """The worker side without Dask: a shard stuck on a tarpit (deadline 60 s) ends
    within a poll or two of ``cancelled()`` turning true, keeping what it measured."""
    import time

    from chanscan.config import inventory_from_args
    from chanscan.distributed.shards import ShardTask
    from chanscan.distributed.worker import scan_until_cancelled
    from chanscan.model import PlatformHint, ScanOptions
    from chanscan.scheduler import ResultCollector

    lab.tarpit("127.77.10.1", 443)
    planned = plan(
        inventory_from_args(
            ["127.77.10.1:443", "127.77.10.2:1"], None, PlatformHint.AUTO, "default"
        )
    )
    options = ScanOptions(endpoint_deadline=60)
    collector = ResultCollector()
    t0 = time.monotonic()
    asked: list[float] = []

    def cancelled() -> bool:
        asked.append(time.monotonic() - t0)
        return asked[-1] > 1.0

    task = ShardTask(tuple(planned), options, None, "unused")
    assert scan_until_cancelled(task, options, collector, cancelled, poll=0.1) is True
    assert time.monotonic() - t0 < 10
    assert [(r.address, r.status) for r in collector.results] == [("127.77.10.2", Status.CLOSED)]
    assert len(asked) >= 2
