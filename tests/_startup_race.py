"""One round of the start-up stress test (run in a fresh interpreter by
tests/test_startup_race.py).

``scan NET``: every probe kind starts at once, in a scan whose probe modules are not
imported yet, against real lab servers; prints one line per row,
``address:port|status|channel|error``.

``build``: every probe kind is built by its own thread, all released at the same
instant by a barrier (the worst case of the scheduler's workers starting together);
prints one line per failed build (none expected). Exit status 0 unless the round
itself broke."""

from __future__ import annotations

import sys
import threading

from chanscan.model import Channel
from chanscan.probes import default_probes


def build_at_once() -> int:
    assert "sslyze" not in sys.modules, "sslyze imported before the builds"
    probes = default_probes()
    kinds = list(probes)
    barrier = threading.Barrier(len(kinds))
    failed: list[str] = []

    def build(channel: Channel) -> None:
        barrier.wait(timeout=30)
        try:
            probes[channel].get()  # type: ignore[attr-defined]
        except Exception as exc:
            failed.append(f"{channel.value}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=build, args=(k,)) for k in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for line in failed:
        print(line)
    return 0


def main(net: str) -> int:
    # Imported here, not at the top: "build" must start from a bare interpreter, as
    # a scan's first worker threads do.
    import trio

    from chanscan.fingerprint import Fingerprinter
    from chanscan.lab import Lab
    from chanscan.lab.authd_server import add_authd_server
    from chanscan.lab.rdp_server import add_rdp_server
    from chanscan.lab.ssh_servers import start_asyncssh
    from chanscan.lab.tls_servers import CertSpec, issue, python_tls_server
    from chanscan.model import Endpoint, ScanOptions
    from chanscan.scheduler import ResultCollector, scan_endpoints

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
    if sys.argv[1] == "build":
        sys.exit(build_at_once())
    sys.exit(main(sys.argv[2]))
