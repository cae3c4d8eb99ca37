"""One round of the start-up stress test (run in a fresh interpreter by
tests/test_startup_race.py): every probe kind starts at once, in a scan whose probe
modules are not imported yet, against real lab servers. Prints one line per row,
``status|channel|error``; exit status 0 unless the round itself broke."""

from __future__ import annotations

import sys

import trio

from chanscan.fingerprint import Fingerprinter
from chanscan.lab import Lab
from chanscan.lab.authd_server import add_authd_server
from chanscan.lab.rdp_server import add_rdp_server
from chanscan.lab.ssh_servers import start_asyncssh
from chanscan.lab.tls_servers import CertSpec, issue, python_tls_server
from chanscan.model import Endpoint
from chanscan.probes import default_probes
from chanscan.probes.base import ScanOptions
from chanscan.scheduler import ResultCollector, scan_endpoints


def main(net: str) -> int:
    # Not imported yet: the probes' own modules are what the race is about.
    assert "sslyze" not in sys.modules, "sslyze imported before the scan"
    opts = ScanOptions(connect_timeout=2.0, sniff_timeout=0.5, network_timeout=3.0,
                       endpoint_deadline=20.0)  # fmt: skip
    with Lab() as lab:
        cert = issue(CertSpec(names=("race.lab",)))
        eps: list[tuple[str, int]] = []
        for i in range(1, 4):
            python_tls_server(lab, f"{net}.{i}", 443, cert)
            eps.append((f"{net}.{i}", 443))
        for i in range(4, 7):
            add_rdp_server(lab, f"{net}.{i}", 3389, accept=("ssl", "hybrid"))
            eps.append((f"{net}.{i}", 3389))
        for i in range(7, 9):
            start_asyncssh(lab, f"{net}.{i}", 22)
            eps.append((f"{net}.{i}", 22))
        add_authd_server(lab, f"{net}.9", 902)
        eps.append((f"{net}.9", 902))
        collector = ResultCollector(len(eps))
        endpoints = [Endpoint(a, a, p) for a, p in eps]
        trio.run(scan_endpoints, endpoints, opts, default_probes(), collector, Fingerprinter())
    for r in collector.results:
        print(f"{r.address}:{r.port}|{r.status.value}|{r.channel.value}|{r.error or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
