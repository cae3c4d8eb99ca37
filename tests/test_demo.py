"""``chanscan demo`` end to end: the estate starts, is scanned and graded as each
platform's weaknesses say, and every server is stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema

from chanscan.grading.scale import grade_rank
from chanscan.lab.core import port_accepts
from chanscan.schema import shipped_schema


def test_demo_scans_the_estate(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "chanscan", "demo", "--keep-json", str(out), "--no-color"],
        capture_output=True,
        timeout=180,
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 60
    assert b"Traceback" not in proc.stderr
    data = json.loads(out.read_text())
    jsonschema.validate(data, shipped_schema())
    by = {(e["address"], e["port"]): e for e in data["endpoints"]}
    assert all(e["status"] == "ok" for e in data["endpoints"]), [
        (k, e["status"], e["error"]) for k, e in by.items() if e["status"] != "ok"
    ]

    def ids(addr: str, port: int) -> set[str]:
        return {f["id"] for f in by[(addr, port)]["findings"]}

    vcenter, esxi, xen, hyperv = "127.42.0.10", "127.42.0.20", "127.42.0.30", "127.42.0.40"
    # vCenter: its VMCA certificate is trusted through the demo's --ca-bundle.
    assert by[(vcenter, 443)]["platform"]["product"] == "vCenter Server"
    assert not ids(vcenter, 443) & {"tls.cert.untrusted", "tls.protocol.tls1_0"}
    # ESXi 6.7: end of support, TLS 1.0 on 443 and authd 902, legacy SSH, HTTP on 80.
    assert by[(esxi, 902)]["channel"] == "authd"
    assert "tls.protocol.tls1_0" in ids(esxi, 443)
    # End of support is about the machine: a host finding that caps no channel.
    hosts = {h["address"]: h for h in data["hosts"]}
    assert {f["id"] for f in hosts[esxi]["findings"]} == {"platform.end_of_support"}
    assert not any(
        f["id"].startswith("platform.") for e in data["endpoints"] for f in e["findings"]
    )
    assert hosts[esxi]["grade"]["overall"] == "F"  # the cleartext port 80 and legacy SSH
    assert "tls.protocol.tls1_0" in ids(esxi, 902)
    assert {"ssh.cipher.broken", "ssh.auth.password"} <= ids(esxi, 22)
    assert "cleartext.management_port" in ids(esxi, 80)
    # XenServer: the expired, self-signed RSA-1024 SHA-1 certificate.
    assert {
        "tls.cert.expired",
        "tls.cert.weak_key",
        "tls.cert.sha1_signature",
        "tls.cert.self_signed",
    } <= ids(xen, 443)
    # Hyper-V: WinRM in cleartext, RDP with NLA, identified from the NTLM challenge.
    assert "cleartext.management_port" in ids(hyperv, 5985)
    assert "rdp.no_nla" not in ids(hyperv, 3389)
    assert "Hyper-V" in (by[(hyperv, 3389)]["platform"]["product"] or "")
    # Worst first: the legacy ESXi is graded below the hardened vCenter.
    grade = {k: e["grade"]["overall"] for k, e in by.items()}
    assert grade_rank(grade[(esxi, 22)]) > grade_rank(grade[(vcenter, 22)])
    # The lab is gone.
    assert not port_accepts(vcenter, 443, timeout=0.3)


def test_demo_explains_itself_and_the_readme_tells_its_grades(tmp_path: Path) -> None:
    """The demo prints a legend (the two axes, what the gate count counts, where -v and
    --by-host lead), and the README's table of the estate gives the host grades the
    demo prints."""
    import re

    from chanscan.grading import host_grades
    from chanscan.reports.json_report import load_report

    out = tmp_path / "demo.json"
    proc = subprocess.run(
        [sys.executable, "-m", "chanscan", "demo", "--keep-json", str(out), "--no-color"],
        capture_output=True,
        text=True,
        timeout=180,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    failed = re.search(r"gate FAILED \((\d+)\)", text)
    assert failed is not None, text
    legend = text[text.index("How to read this") :]
    assert "eavesdrop" in legend and "MITM" in legend and "overall" in legend
    # The count in the headline is the one the legend explains.
    assert re.search(rf"FAILED \({failed.group(1)}\) counts {failed.group(1)} open", legend)
    assert "-v" in legend and "--by-host" in legend

    grades = {address: g.overall for address, g in host_grades(load_report(out).endpoints).items()}
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (127\.42\.0\.\d+) \|.*\| ([A-F][+-]?) \|$", readme, re.MULTILINE)
    assert len(rows) == len(grades) == 4
    assert dict(rows) == grades
