"""The results: targets evaluated from the measurements, ``latest.json`` and a Markdown
page with one table per scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabulate import tabulate

RSS_LIMIT_MIB = 150.0
WALL_FACTOR = 5.0  # chanscan <= 1/5 of sslyze + ssh-audit
CONN_FACTOR = 8.0  # chanscan <= 1/8 of sslyze's connections per TLS endpoint
SWEEP_FACTOR = 1.5  # sweep <= 1.5 x connect deadline
WAN_FACTOR = 0.15  # at 20 ms RTT chanscan <= 0.15 x (sslyze + ssh-audit)


def _target(tid: str, text: str, met: bool | None, detail: str) -> dict[str, Any]:
    status = "NOT MEASURED" if met is None else ("MET" if met else "MISSED")
    return {"id": tid, "target": text, "status": status, "detail": detail}


def _tool(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    tool: dict[str, Any] | None = doc.get("fleet", {}).get("tools", {}).get(name)
    return tool


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    cs, sy = _tool(doc, "chanscan"), _tool(doc, "sslyze")
    sa = _tool(doc, "ssh-audit")
    sa_skip = _tool(doc, "ssh-audit --skip-rate-test")
    cov = doc.get("fleet", {}).get("coverage", {})
    if cs and sy and sa:
        peers = sy["wall_median_s"] + sa["wall_median_s"]
        ratio = peers / cs["wall_median_s"]
        detail = (
            f"chanscan {cs['wall_median_s']:.2f}s vs sslyze {sy['wall_median_s']:.2f}s + "
            f"ssh-audit {sa['wall_median_s']:.2f}s = {peers:.2f}s: {ratio:.1f}x faster "
            f"(needs >= {WALL_FACTOR:g}x)"
        )
        if sa_skip:
            alt = (sy["wall_median_s"] + sa_skip["wall_median_s"]) / cs["wall_median_s"]
            detail += f"; {alt:.1f}x against ssh-audit --skip-rate-test"
        if cov:
            detail += "; coverage " + ("equal" if cov.get("equal") else "NOT equal (see coverage)")
        out.append(
            _target(
                "wall",
                "fleet scan in at most 1/5 of sslyze + ssh-audit's wall time, same coverage",
                ratio >= WALL_FACTOR and bool(cov.get("equal")),
                detail,
            )
        )
    else:
        out.append(
            _target(
                "wall", "fleet scan in at most 1/5 of sslyze + ssh-audit", None, "a tool is missing"
            )
        )
    if cs and sy and cs.get("tls_conns_per_endpoint") and sy.get("tls_conns_per_endpoint"):
        a, b = cs["tls_conns_per_endpoint"], sy["tls_conns_per_endpoint"]
        out.append(
            _target(
                "connections",
                "at most 1/8 of sslyze's connections per TLS endpoint",
                a * CONN_FACTOR <= b,
                f"chanscan {a:.1f} vs sslyze {b:.1f} per TLS endpoint (server side): "
                f"1/{b / a:.1f} (needs <= 1/{CONN_FACTOR:g})",
            )
        )
    else:
        out.append(
            _target("connections", "at most 1/8 of sslyze's connections", None, "not measured")
        )
    tp = doc.get("tarpit")
    if tp and "chanscan" in tp.get("tools", {}):
        run = tp["tools"]["chanscan"]
        cost = run["wall_s"] - tp["chanscan_startup_s"]
        others = ", ".join(
            f"{n} {r['wall_s']:.1f}s" for n, r in tp["tools"].items() if n != "chanscan"
        )
        out.append(
            _target(
                "tarpit",
                "a tarpit costs no more than the configured deadline",
                cost <= tp["deadline_s"] and not run["timed_out"],
                f"chanscan {run['wall_s']:.1f}s wall - {tp['chanscan_startup_s']:.1f}s start-up = "
                f"{cost:.1f}s for a {tp['deadline_s']:g}s deadline; {others}",
            )
        )
    else:
        out.append(
            _target("tarpit", "a tarpit costs no more than the deadline", None, "not run (smoke)")
        )
    sw = doc.get("sweep")
    if sw and "scan_wall_s" in sw:
        limit = SWEEP_FACTOR * sw["connect_timeout_s"]
        out.append(
            _target(
                "sweep",
                "/24 discovery sweep with tarpits within 1.5 x the connect deadline",
                sw["scan_wall_s"] <= limit,
                f"{sw['endpoints']} endpoints in {sw['scan_wall_s']:.2f}s (process "
                f"{sw['wall_s']:.2f}s) vs {limit:g}s; slowest: "
                + ", ".join(
                    f"{s['endpoint']} {s['status']} {s['ms']}ms" for s in sw["slowest"][:3]
                ),
            )
        )
    else:
        out.append(
            _target("sweep", "/24 sweep within 1.5 x connect deadline", None, "not run (smoke)")
        )
    if cs:
        out.append(
            _target(
                "rss",
                "peak RSS under 150 MiB for the fleet scan",
                cs["rss_max_mib"] < RSS_LIMIT_MIB,
                f"chanscan max {cs['rss_max_mib']:.0f} MiB over {cs['runs']} run(s)",
            )
        )
    rows = {r["endpoints"]: r for r in doc.get("scaling", [])}
    if 100 in rows and 1000 in rows:
        a, b = rows[100]["max_rss_mib"], rows[1000]["max_rss_mib"]
        out.append(
            _target(
                "scaling",
                "memory grows sub-linearly from 100 to 1,000 SSH endpoints",
                b < 10 * a,
                f"{a:.1f} MiB at 100 -> {b:.1f} MiB at 1,000 (x{b / a:.2f} for x10 endpoints; "
                f"{(b - a) * 1024 / 900:.1f} KiB per added endpoint); RSS growth during the "
                f"scan itself: {rows[100].get('scan_rss_growth_mib', '-')} MiB at 100, "
                f"{rows[1000].get('scan_rss_growth_mib', '-')} MiB at 1,000",
            )
        )
    else:
        out.append(_target("scaling", "memory sub-linear 100 -> 1,000", None, "not run (smoke)"))
    out.append(_wan_target(doc))
    out.append(_netns_target(doc))
    return out


def _wan_target(doc: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.wan import ratio

    text = "fleet scan at 20 ms RTT in at most 0.15 x sslyze + ssh-audit's wall time"
    runs = doc.get("wan", {})
    got = {rtt: ratio(r) for rtt, r in runs.items()}
    if got.get("20") is None:
        return _target("wan", text, None, "not run")
    detail = "; ".join(
        f"{rtt} ms: chanscan {r[0]:.2f}s vs {r[1]:.2f}s = {r[2]:.2f}x"
        for rtt, r in got.items()
        if r is not None
    )
    r20 = got["20"]
    assert r20 is not None
    return _target("wan", text, r20[2] <= WAN_FACTOR, detail + f" (needs <= {WAN_FACTOR:g}x)")


def _netns_target(doc: dict[str, Any]) -> dict[str, Any]:
    text = (
        "sparse /22 x 10 sweep (94 % dropped) with default options no slower than "
        "nmap -sT -T4 --min-rate 2000, every live port found and probed, RSS <= 150 MiB"
    )
    ns = doc.get("netns_sweep")
    if not ns:
        return _target("netns-sweep", text, None, "not run")
    if "skipped" in ns:
        return _target("netns-sweep", text, None, f"skipped: {ns['skipped']}")
    cs, nm = ns["runs"]["chanscan"], ns["runs"]["nmap"]
    wall_cs = sorted(r["wall_s"] for r in cs)[len(cs) // 2]
    wall_nm = sorted(r["wall_s"] for r in nm)[len(nm) // 2]
    rss = max(r["rss_mib"] for r in cs)
    found = ns["found"].get("chanscan", {})
    missed = ns["missed"].get("chanscan", ["not measured"])
    probed = found.get("probed", 0)
    met = wall_cs <= wall_nm and rss <= RSS_LIMIT_MIB and not missed
    met = met and probed >= ns["expected_open"]
    detail = (
        f"chanscan {wall_cs:.1f}s vs nmap {wall_nm:.1f}s ({wall_cs / wall_nm:.2f}x); "
        f"{probed}/{ns['expected_open']} live ports probed, {len(missed)} missed; "
        f"{rss:.0f} MiB; {found.get('rows', '-')} rows + {found.get('down_hosts', '-')} "
        f"down hosts counted; JSON {found.get('json_bytes', 0) / 1e6:.2f} MB"
    )
    return _target("netns-sweep", text, met, detail)


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def fleet_table(doc: dict[str, Any]) -> str:
    tools = doc.get("fleet", {}).get("tools", {})
    cs = tools.get("chanscan")
    rows = []
    for name, t in tools.items():
        ratio = t["wall_median_s"] / cs["wall_median_s"] if cs else None
        rows.append(
            [
                name,
                _f(t["wall_median_s"]),
                f"{_f(t['wall_min_s'])}-{_f(t['wall_max_s'])}",
                _f(t["cpu_median_s"]),
                _f(t["rss_median_mib"], ".0f"),
                _f(t["tls_conns_per_endpoint"], ".1f"),
                _f(t["ssh_conns_per_endpoint"], ".1f"),
                _f(ratio, ".1f") + "x" if ratio is not None else "-",
                ",".join(str(c) for c in t["returncodes"]),
            ]
        )
    head = [
        "tool",
        "wall median s",
        "wall min-max s",
        "CPU median s",
        "peak RSS MiB",
        "conns/TLS ep",
        "conns/SSH ep",
        "wall vs chanscan",
        "exit codes",
    ]
    return tabulate(rows, head, tablefmt="github")


def endpoint_table(doc: dict[str, Any]) -> str:
    """Per live endpoint: chanscan's elapsed time and connections beside each peer's
    connections, all from the last round, connections from the relays."""
    tools = doc.get("fleet", {}).get("tools", {})
    cs = tools.get("chanscan")
    if not cs:
        return "_chanscan did not run_"
    names = {f"{e['address']}:{e['port']}": e["name"] for e in doc["fleet"]["endpoints"]}
    peers = [n for n in tools if n != "chanscan"]
    rows = []
    for r in cs.get("per_endpoint", []):
        name = names.get(r["endpoint"], "")
        row = [f"{name} {r['endpoint']}", r["status"], r["elapsed_ms"]]
        for tool in ["chanscan", *peers]:
            conns = tools[tool]["measurements"][-1]["connections"]
            row.append(conns.get(name, "-") if name in conns else "-")
        row.append("; ".join(r["notes"]) or "-")
        rows.append(row)
    head = [
        "endpoint",
        "chanscan status",
        "chanscan ms",
        *(f"conns {t}" for t in ["chanscan", *peers]),
    ]
    return tabulate(rows, [*head, "chanscan waited on"], tablefmt="github")


def coverage_table(doc: dict[str, Any]) -> str:
    cov = doc.get("fleet", {}).get("coverage", {})
    rows = []
    for key, label in (("tls_vs_sslyze", "sslyze"), ("ssh_vs_ssh_audit", "ssh-audit")):
        for r in cov.get(key, []):
            rows.append(
                [
                    r["endpoint"],
                    label,
                    r["chanscan"],
                    r["peer"],
                    "; ".join(r["only_peer"]) or "-",
                    "; ".join(r["only_chanscan"]) or "-",
                ]
            )
    head = [
        "endpoint",
        "peer",
        "chanscan items",
        "peer items",
        "only the peer saw",
        "only chanscan saw",
    ]
    return tabulate(rows, head, tablefmt="github")


def tarpit_table(doc: dict[str, Any]) -> str:
    tp = doc.get("tarpit")
    if not tp:
        return "_not run in smoke mode_"
    rows = [
        [n, _f(r["wall_s"], ".1f"), _f(r["cpu_s"]), sum(r["connections"].values()), r["timed_out"]]
        for n, r in tp["tools"].items()
    ]
    return tabulate(rows, ["tool", "wall s", "CPU s", "connections", "killed"], tablefmt="github")


def scaling_table(doc: dict[str, Any]) -> str:
    rows = [
        [
            r["endpoints"],
            _f(r["wall_s"]),
            _f(r.get("scan_wall_s")),
            _f(r["cpu_s"]),
            _f(r["max_rss_mib"], ".1f"),
            _f(r.get("scan_rss_growth_mib"), ".1f"),
            r.get("with_kexinit", "-"),
            r.get("connections", "-"),
        ]
        for r in doc.get("scaling", [])
    ]
    head = [
        "SSH endpoints",
        "process wall s",
        "scan wall s",
        "CPU s",
        "peak RSS MiB",
        "RSS growth during scan MiB",
        "KEXINITs read",
        "connections",
    ]
    return tabulate(rows, head, tablefmt="github")


def sweep_table(doc: dict[str, Any]) -> str:
    sw = doc.get("sweep")
    if not sw:
        return "_not run in smoke mode_"
    rows = [
        [
            sw["network"],
            sw.get("endpoints", "-"),
            len(sw["tarpits"]),
            len(sw["filtered"]),
            sw["connect_timeout_s"],
            _f(sw.get("scan_wall_s")),
            _f(sw["wall_s"]),
            _f(sw["max_rss_mib"], ".0f"),
            json.dumps(sw.get("statuses", {})),
        ]
    ]
    head = [
        "network",
        "endpoints",
        "tarpits",
        "filtered",
        "connect s",
        "scan wall s",
        "process wall s",
        "RSS MiB",
        "statuses",
    ]
    return tabulate(rows, head, tablefmt="github")


def wan_table(doc: dict[str, Any]) -> str:
    rows = []
    for rtt, run in doc.get("wan", {}).items():
        for name, t in run.get("tools", {}).items():
            rows.append(
                [
                    rtt,
                    name,
                    _f(t["wall_median_s"]),
                    _f(t.get("tls_conns_per_endpoint"), ".1f"),
                    _f(t.get("ssh_conns_per_endpoint"), ".1f"),
                    ",".join(map(str, t["returncodes"])),
                ]
            )
    if not rows:
        return "not run"
    head = ["RTT ms", "tool", "wall median s", "conns/TLS ep", "conns/SSH ep", "exit codes"]
    return tabulate(rows, head, tablefmt="github")


def netns_table(doc: dict[str, Any]) -> str:
    ns = doc.get("netns_sweep")
    if not ns:
        return "not run"
    if "skipped" in ns:
        return f"skipped: {ns['skipped']}"
    rows = []
    for tool, runs in ns["runs"].items():
        found = ns["found"].get(tool, {})
        for r in runs:
            rows.append(
                [
                    tool,
                    _f(r["wall_s"]),
                    _f(r["cpu_s"]),
                    f"{r['rss_mib']:.0f}",
                    r["rc"],
                    found.get("rows", "-"),
                    found.get("down_hosts", "-"),
                    len(ns["missed"].get(tool, [])),
                ]
            )
    head = ["tool", "wall s", "CPU s", "RSS MiB", "rc", "rows", "down hosts", "live missed"]
    return tabulate(rows, head, tablefmt="github")


def machine_line(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    v = m["versions"]
    parts = [f"{m['cores']} cores", f"{m['memory_mib']} MiB", f"load {m['loadavg_at_start']}"]
    parts += [f"{k} {val}" for k, val in v.items()]
    return f"{doc['date']} · " + " · ".join(parts)


def markdown(doc: dict[str, Any]) -> str:
    fleet = doc.get("fleet", {})
    eps = ", ".join(f"{e['name']} ({e['address']}:{e['port']})" for e in fleet.get("endpoints", []))
    lines = [
        "# chanscan benchmarks",
        "",
        f"Machine: {machine_line(doc)}",
        "",
        f"Mode: {doc['mode']}, {doc['rounds']} round(s), tools alternated A/B/A/B then B/A/B/A; "
        f"whole run {doc.get('elapsed_s', 0)} s. Reproduce: `python -m benchmarks --rounds "
        f"{doc['rounds']}`.",
        "",
        "## Targets",
        "",
        tabulate(
            [[t["status"], t["target"], t["detail"]] for t in doc.get("targets", [])],
            ["status", "target", "measured"],
            tablefmt="github",
        ),
        "",
        f"## Fleet scan ({fleet.get('scan_range', '')}, ports 22,443; closed ports included)",
        "",
        f"Endpoints: {eps}. Connections are counted by the relay in front of each server.",
        "",
        fleet_table(doc),
        "",
        "Per endpoint (last round; chanscan's elapsed time from its JSON, connections from the "
        "relays):",
        "",
        endpoint_table(doc),
        "",
        "## Coverage (last round): accepted suites per TLS version / SSH algorithms",
        "",
        coverage_table(doc),
        "",
        "## Tarpit (accepts, never answers)",
        "",
        tarpit_table(doc),
        "",
        "## Discovery sweep",
        "",
        sweep_table(doc),
        "",
        "## Scaling: synthetic SSH KEXINIT endpoints",
        "",
        scaling_table(doc),
        "",
        "## WAN: the fleet behind relays that delay each chunk (one run, tools alternated)",
        "",
        wan_table(doc),
        "",
        "## Sparse sweep in a network namespace (127.1.0.0/22 x 10 ports, 94 % dropped)",
        "",
        netns_table(doc),
        "",
    ]
    if doc.get("skipped"):
        lines += ["## Skipped", "", *(f"- {s}" for s in doc["skipped"]), ""]
    return "\n".join(lines)


def write(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    j, m = out_dir / "latest.json", out_dir / "latest.md"
    j.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    m.write_text(markdown(doc))
    return [j, m]
