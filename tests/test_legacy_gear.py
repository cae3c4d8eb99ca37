"""Issue 12, items 9-11: legacy gear probed as deeply as modern gear, live.

- an ancient BMC's SSH (diffie-hellman-group1-sha1, ssh-dss, 3des-cbc, hmac-md5 only):
  host keys with proof of possession and auth methods, never a credential;
- an ESXi 5.5-like host (tlslite-ng serving SSL 3.0 / TLS 1.0 with RC4 and 3DES in
  front of the vSphere /sdk imitation): SSLv3, RC4 and SWEET32 findings end to end,
  and fingerprinting over its legacy TLS (version, build, end of support);
- a reason is never empty when a fingerprinting request cannot be made.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import datetime

import pytest
import trio

from chanscan.fingerprint import Fingerprinter
from chanscan.lab import Lab
from chanscan.lab.certs import new_key, self_signed
from chanscan.lab.core import free_port
from chanscan.lab.imitations import ESXI_55, vsphere_sdk, xapi_host
from chanscan.lab.legacy_tls import LegacyProfile, esxi55_host, tlslite_server
from chanscan.lab.ssh_servers import start_bmc_asyncssh
from chanscan.lab.tls_context import context_for
from chanscan.model import Channel, Endpoint, EndpointResult, ScanOptions, Status
from chanscan.probes import default_probes
from chanscan.probes.ssh import SshProbe
from chanscan.rules import evaluate, evaluate_host
from chanscan.scheduler import ResultCollector, probe_once, scan_endpoints

NET = "127.112.3"  # this module's loopback block
BMC, ESXI55, SSL3_ONLY, DES_ONLY, NO_BACKEND, XEN71 = (f"{NET}.{i}" for i in range(1, 7))
OPTS = ScanOptions(network_timeout=3.0, endpoint_deadline=60.0)


def _now(collector: ResultCollector) -> datetime:
    # rules judge time at the scan's own clock
    return datetime.fromisoformat(collector.started_at.replace("Z", "+00:00"))


async def test_bmc_ssh_host_keys_and_auth_methods(lab: Lab) -> None:
    start_bmc_asyncssh(lab, BMC, 22)
    r = await probe_once(Endpoint(BMC, BMC, 22), SshProbe(), OPTS)
    assert r.status is Status.OK, r.error
    assert r.ssh is not None and r.ssh.kexinit is not None
    assert r.ssh.kexinit.kex[0] == "diffie-hellman-group1-sha1"
    assert r.ssh.kexinit.host_key == ("ssh-dss",)
    assert not r.ssh.not_determined, r.ssh.errors
    [key] = r.ssh.host_keys
    assert (key.algorithm, key.key_type, key.bits, key.verified) == (
        "ssh-dss",
        "ssh-dss",
        1024,
        True,
    )
    assert set(r.ssh.auth_methods) == {"publickey", "password"}


@pytest.fixture(scope="module")
def legacy_scan() -> Iterator[tuple[dict[str, EndpointResult], ResultCollector, list[object]]]:
    with Lab() as lab:
        _, sdk_requests = esxi55_host(lab, ESXI55, 443)
        # SSL 3.0 only: Python's OpenSSL 3 cannot speak to it at all
        vsphere_sdk(lab, SSL3_ONLY, 8055, ESXI_55, tls=False)
        tlslite_server(lab, SSL3_ONLY, 443, 8055, profile=LegacyProfile(max_version=(3, 0)))
        # TLS 1.0 with 3DES alone
        vsphere_sdk(lab, DES_ONLY, 8055, ESXI_55, tls=False)
        tlslite_server(
            lab, DES_ONLY, 443, 8055, profile=LegacyProfile(min_version=(3, 1), ciphers=("3des",))
        )
        # TLS works, but nothing answers behind it: the connection closes after the
        # handshake
        tlslite_server(lab, NO_BACKEND, 443, free_port(NO_BACKEND))
        # XenServer 7.1's stunnel: TLS 1.0 only, a self-signed RSA-1024 SHA-1 certificate
        xen_cert = self_signed("xen71.lab.invalid", key=new_key("rsa", 1024), hash_name="sha1")
        xapi_host(
            lab,
            XEN71,
            443,
            "XenServer",
            "7.1.0",
            context=context_for(xen_cert, legacy=True, maximum=ssl.TLSVersion.TLSv1),
        )
        hosts = (ESXI55, SSL3_ONLY, DES_ONLY, NO_BACKEND, XEN71)
        collector = ResultCollector(len(hosts))
        eps = [Endpoint(a, a, 443) for a in hosts]
        trio.run(scan_endpoints, eps, OPTS, default_probes(), collector, Fingerprinter())
        yield {r.address: r for r in collector.results}, collector, sdk_requests


def test_esxi55_sslv3_rc4_sweet32_end_to_end(
    legacy_scan: tuple[dict[str, EndpointResult], ResultCollector, list[object]],
) -> None:
    rows, collector, _ = legacy_scan
    r = rows[ESXI55]
    assert (r.status, r.channel) == (Status.OK, Channel.TLS), r.error
    assert r.tls is not None and r.tls.accepted_versions() == ("SSL 3.0", "TLS 1.0")
    suites = {s.name for p in r.tls.protocols if p.accepted for s in p.cipher_suites}
    assert {"TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"} <= suites
    ids = {f.id for f in evaluate(r, now=_now(collector))}
    for fid in ("tls.protocol.sslv3", "tls.protocol.tls1_0", "tls.cipher.rc4", "tls.cipher.3des"):
        assert fid in ids, (fid, sorted(ids))


def test_esxi55_fingerprinted_over_legacy_tls(
    legacy_scan: tuple[dict[str, EndpointResult], ResultCollector, list[object]],
) -> None:
    rows, collector, sdk_requests = legacy_scan
    r = rows[ESXI55]
    assert r.platform is not None
    assert (r.platform.product, r.platform.version, r.platform.build) == (
        "ESXi",
        "5.5.0",
        "1331820",
    ), r.platform.evidence
    assert not any(e.startswith("not answered") for e in r.platform.evidence)
    assert any(getattr(q, "path", None) == "/sdk" for q in sdk_requests)
    # End of support is a host finding (about the machine, capping no channel).
    host = {f.id for f in evaluate_host(r.platform, now=_now(collector))}
    assert "platform.end_of_support" in host


@pytest.mark.parametrize("address", [DES_ONLY, SSL3_ONLY])
def test_hosts_beyond_python_openssl_are_fingerprinted(
    legacy_scan: tuple[dict[str, EndpointResult], ResultCollector, list[object]], address: str
) -> None:
    rows, _, _ = legacy_scan
    r = rows[address]
    expected = ("TLS 1.0",) if address == DES_ONLY else ("SSL 3.0",)
    assert r.tls is not None and r.tls.accepted_versions() == expected
    assert r.platform is not None and r.platform.build == "1331820", r.platform


def test_xenserver71_fingerprinted_over_tls10(
    legacy_scan: tuple[dict[str, EndpointResult], ResultCollector, list[object]],
) -> None:
    rows, _, _ = legacy_scan
    r = rows[XEN71]
    assert r.tls is not None and r.tls.accepted_versions() == ("TLS 1.0",)
    assert r.platform is not None, r
    assert (r.platform.product, r.platform.version) == ("XenServer", "7.1.0"), r.platform
    assert not any(e.startswith("not answered") for e in r.platform.evidence), r.platform


def test_a_failed_request_names_its_reason(
    legacy_scan: tuple[dict[str, EndpointResult], ResultCollector, list[object]],
) -> None:
    rows, _, _ = legacy_scan
    r = rows[NO_BACKEND]
    assert r.platform is not None
    failures = [e for e in r.platform.evidence if e.startswith("not answered: ")]
    assert [f.split(": ", 2)[1] for f in failures] == ["POST /sdk", "GET /"], failures
    for text in failures:
        reason = text.split(": ", 2)[2]
        assert reason.strip() and ("closed" in reason or "reset" in reason), text
