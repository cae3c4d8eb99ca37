"""The sparse sweep: 127.1.0.0/22 x 10 management ports, where 94 % of the addresses
drop every SYN (an nftables rule), as on a /16 of management VLANs that is mostly
empty. Root only: it needs its own network namespace.

The harness creates ``chanscan-speed-<pid>``, brings its ``lo`` up, and runs itself
again inside it (``ip netns exec``): there the live hosts' listeners (an SSH server on
22 and plaintext HTTP on 80, RST on the other ports), the nftables drop rule, and
chanscan and nmap alternately, each as a measured child process. Nothing leaves the
namespace; it is deleted afterwards, always.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.measure import run_child

NETWORK = "127.1.0.0/22"
PORTS = (22, 80, 443, 902, 3389, 5480, 5985, 5986, 8443, 9443)
LIVE_EVERY = 16  # 1 address in 16 answers (6.25 %); the rest are silently dropped
TOOL_TIMEOUT = 400.0
_NFT_TABLE = "chanscan_speed"


def skip_reason() -> str | None:
    """Why the scenario cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (its own network namespace and an nftables rule)"
    for tool in ("ip", "nft", "nmap"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install iproute2 nftables nmap)"
    return None


def live_addresses(network: str = NETWORK) -> list[str]:
    hosts = list(ipaddress.ip_network(network).hosts())
    return [str(a) for i, a in enumerate(hosts) if i % LIVE_EVERY == 0]


def _run(argv: Sequence[str], stdin: str | None = None) -> None:
    subprocess.run(list(argv), input=stdin, text=True, check=True, timeout=30)


def run(
    out_dir: Path, rounds: int = 1, network: str = NETWORK, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Outside: make the namespace, run the inside half in it, delete it."""
    reason = skip_reason()
    if reason is not None:
        return {"skipped": reason}
    ns = f"chanscan-speed-{os.getpid()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    result_file = out_dir / "netns-sweep.json"
    _run(["ip", "netns", "add", ns])
    try:
        _run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        # lo's 127.0.0.1/8 already makes every address of the network local to the
        # namespace (an extra /22 address would add a broadcast route that refuses .255).
        argv = [
            "ip",
            "netns",
            "exec",
            ns,
            sys.executable,
            "-m",
            "benchmarks.netns_sweep",
            "--inside",
            "--out",
            str(out_dir),
            "--rounds",
            str(rounds),
            "--network",
            network,
            *extra,
        ]
        subprocess.run(argv, check=True, timeout=TOOL_TIMEOUT * 2 * rounds + 120)
        data: dict[str, Any] = json.loads(result_file.read_text())
        return data
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False, timeout=30)


def _nft_rules(live: Sequence[str], network: str) -> str:
    elements = ", ".join(live)
    return (
        f"table inet {_NFT_TABLE} {{\n"
        f"  set live {{ type ipv4_addr; elements = {{ {elements} }} }}\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"    ip daddr {network} ip daddr != @live drop\n"
        "  }\n"
        "}\n"
    )


def _chanscan_argv(network: str, json_out: Path) -> list[str]:
    """chanscan with its default options (no concurrency or timeout tuning)."""
    ports = ",".join(map(str, PORTS))
    return [sys.executable, "-m", "chanscan", "scan", network, "-p", ports, "--json", str(json_out)]


def _inside(
    out_dir: Path, rounds: int, network: str, before: Path | None, before_args: Sequence[str]
) -> None:
    from chanscan.lab import Lab
    from chanscan.lab.ssh_servers import start_asyncssh
    from chanscan.lab.tls_servers import plaintext_http_server

    live = live_addresses(network)
    _run(["nft", "-f", "-"], stdin=_nft_rules(live, network))
    tools = ["chanscan", "nmap"] + (["chanscan-before"] if before is not None else [])
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    found: dict[str, Any] = {}
    with Lab() as lab:
        for addr in live:
            start_asyncssh(lab, addr, 22, name=f"ssh-{addr}")
            plaintext_http_server(lab, addr, 80)
        time.sleep(0.5)
        ports = ",".join(map(str, PORTS))
        for r in range(rounds):
            order = tools if r % 2 == 0 else tools[::-1]
            for tool in order:
                env = None
                out = out_dir / f"netns-{tool}-{r}.{'xml' if tool == 'nmap' else 'json'}"
                if tool == "chanscan":
                    argv = _chanscan_argv(network, out)
                elif tool == "chanscan-before":
                    # The same command from another source tree (the code before a change).
                    # -P: the working directory's chanscan must not shadow PYTHONPATH's.
                    argv = [*_chanscan_argv(network, out), *before_args]
                    argv.insert(1, "-P")
                    env = {**os.environ, "PYTHONPATH": str(before)}
                else:
                    argv = ["nmap", "-sT", "-T4", "--min-rate", "2000", "-n", "-p", ports]
                    argv += ["-oX", str(out), network]
                wall, cpu, rss, rc, timed_out = run_child(argv, timeout=TOOL_TIMEOUT, env=env)
                runs[tool].append(
                    {"wall_s": wall, "cpu_s": cpu, "rss_mib": rss, "rc": rc, "timed_out": timed_out}
                )
                if timed_out:
                    continue
                found[tool] = _nmap_found(out) if tool == "nmap" else _chanscan_found(out)
    expected = sorted(f"{a}:{p}" for a in live for p in (22, 80))
    result = {
        "network": network,
        "ports": list(PORTS),
        "addresses": len(list(ipaddress.ip_network(network).hosts())),
        "live_addresses": len(live),
        "expected_open": len(expected),
        "runs": runs,
        "found": {k: {kk: vv for kk, vv in v.items() if kk != "open"} for k, v in found.items()},
        "missed": {
            tool: sorted(set(expected) - set(v.get("open", [])))[:10] for tool, v in found.items()
        },
    }
    (out_dir / "netns-sweep.json").write_text(json.dumps(result, indent=2))


def _chanscan_found(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"open": []}
    eps = doc.get("endpoints", [])
    probed = [e for e in eps if e["status"] == "ok" and e["channel"] != "unknown"]
    return {
        "open": [f"{e['address']}:{e['port']}" for e in eps if e["status"] == "ok"],
        "rows": len(eps),
        "probed": len(probed),
        "json_bytes": path.stat().st_size,
        "down_hosts": sum(d["hosts"] for d in doc.get("down_hosts", [])),
    }


def _nmap_found(path: Path) -> dict[str, Any]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {"open": []}
    open_ports = []
    for host in root.iter("host"):
        addr = host.find("address")
        if addr is None:
            continue
        for port in host.iter("port"):
            state = port.find("state")
            if state is not None and state.get("state") == "open":
                open_ports.append(f"{addr.get('addr')}:{port.get('portid')}")
    return {"open": open_ports}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.netns_sweep")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=Path("/tmp/chanscan-netns-sweep"))
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--network", default=NETWORK)
    p.add_argument(
        "--before",
        type=Path,
        help="also run chanscan from this source tree (e.g. a git archive of main)",
    )
    p.add_argument("--before-args", default="", help="extra options for that run, space-separated")
    args = p.parse_args(argv)
    if args.inside:
        _inside(args.out, args.rounds, args.network, args.before, args.before_args.split())
        return 0
    extra = []
    if args.before is not None:
        extra = ["--before", str(args.before), "--before-args", args.before_args]
    print(json.dumps(run(args.out, args.rounds, args.network, extra), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
