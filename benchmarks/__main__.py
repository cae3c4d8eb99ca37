"""``python -m benchmarks``: fleet, peers, rounds, tarpit, sweep, scaling, report."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import coverage, netns_sweep, report
from benchmarks.fleet import FRONT_NET, Fleet, FleetEndpoint, start_fleet, start_tarpits
from benchmarks.measure import Run, round_order, run_child, summarise
from benchmarks.peers import PEERS, Invocation, ScanSettings, chanscan_cmd, ensure_peers, versions
from benchmarks.scaling import SIZES, SMOKE_SIZES, run_scaling
from benchmarks.sweep import run_sweep
from benchmarks.wan import run_wan
from chanscan.lab import Lab

RESULTS = Path(__file__).resolve().parent / "results"
TOOL_TIMEOUT = 600.0
TARPIT_DEADLINE = 10.0  # chanscan --timeout in the tarpit scenario
SCENARIOS = ("fleet", "tarpit", "sweep", "wan", "netns-sweep", "scaling")
SMOKE_SCENARIOS = ("fleet", "scaling")


def log(msg: str) -> None:
    sys.stderr.write(f"bench: {msg}\n")
    sys.stderr.flush()


def _measure(inv: Invocation, fleet: Fleet, timeout: float) -> Run:
    fleet.counter.reset()
    wall, cpu, rss, rc, timed_out = run_child(inv.argv, timeout=timeout, stdout=_stdout_of(inv))
    time.sleep(0.2)  # let the relays see the last connections close
    conns = fleet.connections(list(inv.endpoints))
    return Run(wall, cpu, rss, rc, timed_out, conns)


def _stdout_of(inv: Invocation) -> Path:
    # ssh-audit and nmap's console output go next to the JSON/XML for later reading;
    # ssh-audit -j writes its JSON to stdout.
    if inv.tool.startswith("ssh-audit"):
        return inv.output
    return inv.output.with_suffix(".log")


def _per_kind(runs: Sequence[Run], eps: Sequence[FleetEndpoint], kind: str) -> float | None:
    names = [e.name for e in eps if e.kind == kind]
    if not names:
        return None
    return statistics.median(sum(r.connections.get(n, 0) for n in names) / len(names) for r in runs)


def _claimed(path: Path) -> dict[str, int]:
    """What chanscan's own JSON says it opened, to set beside the relays' count."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {f"{e['address']}:{e['port']}": e["connections"] for e in doc.get("endpoints", [])}


def _per_endpoint(path: Path) -> list[dict[str, Any]]:
    """chanscan's own view of each live endpoint (elapsed, status, fingerprint notes):
    where its time went, beside the relays' counts."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    rows = []
    for e in doc.get("endpoints", []):
        if e["status"] == "closed":
            continue
        platform = e.get("platform") or {}
        rows.append(
            {
                "endpoint": f"{e['address']}:{e['port']}",
                "channel": e["channel"],
                "status": e["status"],
                "elapsed_ms": e["elapsed_ms"],
                "connections": e["connections"],
                "notes": [n for n in platform.get("evidence", []) if "no answer" in n],
            }
        )
    return rows


def run_fleet(fleet: Fleet, work: Path, rounds: int, settings: ScanSettings) -> dict[str, Any]:
    runs: dict[str, list[Run]] = {}
    invs: dict[str, Invocation] = {}
    for r in range(rounds):
        names = [p.name for p in PEERS]
        for name in round_order(names, r):
            peer = next(p for p in PEERS if p.name == name)
            out = work / f"{name.replace(' ', '_')}-r{r}.json"
            inv = peer.build(fleet.endpoints, out, settings)
            if inv is None:
                continue
            log(f"round {r + 1}/{rounds}: {name}")
            run = _measure(inv, fleet, TOOL_TIMEOUT)
            log(
                f"  {run.wall_s:.1f}s wall, {run.cpu_s:.1f}s cpu, "
                f"{run.max_rss_mib:.0f} MiB, rc {run.returncode}"
            )
            runs.setdefault(name, []).append(run)
            invs[name] = inv
    tools: dict[str, Any] = {}
    for name, rs in runs.items():
        inv = invs[name]
        s = summarise(rs, len(inv.endpoints))
        tools[name] = {
            **asdict(s),
            "spread_s": s.spread_s,
            "endpoints": [e.name for e in inv.endpoints],
            "tls_conns_per_endpoint": _per_kind(rs, inv.endpoints, "tls"),
            "ssh_conns_per_endpoint": _per_kind(rs, inv.endpoints, "ssh"),
            "returncodes": [r.returncode for r in rs],
            "measurements": [asdict(r) for r in rs],
        }
        if name == "chanscan":
            tools[name]["claimed_connections"] = _claimed(inv.output)
            tools[name]["per_endpoint"] = _per_endpoint(inv.output)
    last = {name: invs[name].output for name in invs}
    cov = (
        coverage.compare(
            last["chanscan"],
            last.get("sslyze"),
            last.get("ssh-audit --skip-rate-test") or last.get("ssh-audit"),
        )
        if "chanscan" in last
        else {}
    )
    return {
        "endpoints": [asdict(e) for e in fleet.endpoints],
        "scan_range": fleet.scan_range,
        "tools": tools,
        "coverage": cov,
    }


def run_tarpit(lab: Lab, fleet: Fleet, work: Path) -> dict[str, Any]:
    """Each tool against a tarpit on 443 and 22, once; chanscan with a 10 s deadline.
    The chanscan baseline (a scan of a closed port) is its start-up cost."""
    tarpits = start_tarpits(lab, fleet.counter)
    closed = ScanSettings(timeout=TARPIT_DEADLINE, scan_hosts=("127.60.3.2",))
    base_inv = chanscan_cmd([], work / "chanscan-closed.json", closed)
    base = _measure(base_inv, fleet, 120)
    tp_fleet = Fleet(lab, fleet.counter, tarpits, [], 0)
    settings = ScanSettings(timeout=TARPIT_DEADLINE, scan_hosts=(tarpits[0].address,))
    rows: dict[str, Any] = {}
    for peer in PEERS:
        out = work / f"tarpit-{peer.name.replace(' ', '_')}.json"
        inv = peer.build(tarpits, out, settings)
        if inv is None:
            continue
        log(f"tarpit: {peer.name}")
        run = _measure(inv, tp_fleet, 180)
        log(f"  {run.wall_s:.1f}s wall")
        rows[peer.name] = {**asdict(run), "endpoints": [e.name for e in inv.endpoints]}
    return {
        "deadline_s": TARPIT_DEADLINE,
        "chanscan_startup_s": base.wall_s,
        "tools": rows,
    }


def machine() -> dict[str, Any]:
    import os
    import platform

    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "versions": versions(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--rounds", type=int, default=3, help="rounds of the fleet scenario")
    p.add_argument("--smoke", action="store_true", help="few endpoints, one round (CI)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where latest.json/.md go (default benchmarks/results, smoke: results/smoke)",
    )
    p.add_argument("--no-install", action="store_true", help="skip missing peers")
    p.add_argument(
        "--scenarios",
        default=None,
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all; smoke: "
        f"{','.join(SMOKE_SCENARIOS)})",
    )
    p.add_argument("--wan-rounds", type=int, default=1, help="rounds of each WAN RTT (default 1)")
    args = p.parse_args(argv)
    rounds = 1 if args.smoke else max(1, args.rounds)
    chosen = SMOKE_SCENARIOS if args.smoke else SCENARIOS
    if args.scenarios:
        chosen = tuple(x.strip() for x in args.scenarios.split(",") if x.strip())
        unknown = sorted(set(chosen) - set(SCENARIOS))
        if unknown:
            p.error(f"--scenarios: unknown {', '.join(unknown)}")
    if args.out is None:
        # A smoke run (CI) must never overwrite the published full-run table.
        args.out = RESULTS / "smoke" if args.smoke else RESULTS
    t0 = time.monotonic()
    skipped = ensure_peers(log, install=not args.no_install)
    for line in skipped:
        log(f"skipped: {line}")
    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "smoke" if args.smoke else "full",
        "rounds": rounds,
        "scenarios": list(chosen),
        "machine": machine(),
        "skipped": list(skipped),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chanscan-bench-") as tmp, Lab() as lab:
        work = Path(tmp)
        fleet = start_fleet(lab, smoke=args.smoke)
        doc["skipped"] += fleet.skipped
        hosts = tuple(f"{FRONT_NET}{i}" for i in range(1, fleet.host_count + 1))
        settings = ScanSettings(scan_hosts=hosts)
        if "fleet" in chosen:
            doc["fleet"] = run_fleet(fleet, work, rounds, settings)
        if "tarpit" in chosen:
            doc["tarpit"] = run_tarpit(lab, fleet, work)
        if "sweep" in chosen:
            log("sweep of 127.61.0.0/24")
            doc["sweep"] = run_sweep(lab, work)
        if "wan" in chosen:
            log("WAN: the fleet behind delaying relays")
            doc["wan"] = run_wan(lab, fleet, work, max(1, args.wan_rounds), run_fleet)
        if "netns-sweep" in chosen:
            log(f"sparse sweep of {netns_sweep.NETWORK} in a network namespace")
            doc["netns_sweep"] = netns_sweep.run(work / "netns", rounds=1)
            if "skipped" in doc["netns_sweep"]:
                log(f"skipped: sparse sweep: {doc['netns_sweep']['skipped']}")
        if "scaling" in chosen:
            log("scaling")
            doc["scaling"] = run_scaling(lab, work, SMOKE_SIZES if args.smoke else SIZES)
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    doc["targets"] = report.targets(doc)
    paths = report.write(doc, args.out)
    log(f"wrote {', '.join(str(x) for x in paths)} in {doc['elapsed_s']}s")
    sys.stdout.write(report.markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
