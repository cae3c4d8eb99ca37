"""Issue 12, classes 1-8: every misbehaving lab server gets a true row (status, channel,
error text), each final within the endpoint deadline, and all of them scanned together
within one deadline plus a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import trio

from chanscan.fingerprint import Fingerprinter
from chanscan.lab import Lab
from chanscan.lab.misbehaving import CLASSES, reset_after_first, ssh_raw_server, start_all
from chanscan.lab.ssh_servers import TERRAPIN_CHACHA, sshd_available
from chanscan.lab.tls_servers import CertSpec, issue, python_tls_server
from chanscan.model import Channel, Endpoint, EndpointResult, ScanOptions, Status
from chanscan.probes import default_probes
from chanscan.probes.ssh import SshProbe
from chanscan.probes.ssh_wire import encode_kexinit, encode_packet
from chanscan.probes.tls import TlsProbe
from chanscan.rows import MAX_TEXT
from chanscan.scheduler import ResultCollector, probe_once, scan_endpoints

NET = "127.112.1"  # this module's loopback block
DEADLINE = 8.0
OPTS = ScanOptions(
    connect_timeout=2.0, sniff_timeout=1.0, network_timeout=1.5, endpoint_deadline=DEADLINE
)


@pytest.fixture(scope="module")
def rows() -> Iterator[tuple[dict[str, EndpointResult], float]]:
    with Lab() as lab:
        eps = start_all(lab, NET, sshd=sshd_available())
        by_addr = {v: k for k, v in eps.items()}
        collector = ResultCollector(len(eps))
        t0 = time.monotonic()
        trio.run(
            scan_endpoints,
            [Endpoint(a, a, p) for a, p in eps.values()],
            OPTS,
            default_probes(),
            collector,
            Fingerprinter(),
        )
        batch = time.monotonic() - t0
        yield {by_addr[(r.address, r.port)]: r for r in collector.results}, batch


def _row(rows: tuple[dict[str, EndpointResult], float], cls: str) -> EndpointResult:
    return rows[0][cls]


def test_batch_within_one_deadline_plus_a_second(
    rows: tuple[dict[str, EndpointResult], float],
) -> None:
    results, batch = rows
    expected = set(CLASSES) if sshd_available() else set(CLASSES) - {"4 non-ASCII SSH id (sshd)"}
    assert set(results) == expected
    assert batch <= DEADLINE + 1.0, batch
    for cls, r in results.items():
        assert r.elapsed_ms <= DEADLINE * 1000 + 250, (cls, r.elapsed_ms)
        assert "internal error" not in (r.error or ""), (cls, r.error)
        assert len(r.error or "") <= MAX_TEXT, cls


@pytest.mark.parametrize("how", ["FIN", "RST"])
def test_closed_after_client_hello_is_an_error(
    rows: tuple[dict[str, EndpointResult], float], how: str
) -> None:
    r = _row(rows, f"1 {how} after ClientHello")
    assert (r.status, r.channel) == (Status.ERROR, Channel.UNKNOWN)
    word = "closed" if how == "FIN" else "reset"
    assert r.error is not None
    assert r.error.startswith(f"{word} by the peer after our TLS ClientHello, before any answer")


def test_trickled_record_header_is_a_timeout(
    rows: tuple[dict[str, EndpointResult], float],
) -> None:
    r = _row(rows, "2 trickle 0x16 byte by byte")
    assert (r.status, r.channel) == (Status.TIMEOUT, Channel.UNKNOWN)
    assert r.error is not None and r.error.startswith("TLS record header incomplete: no more")
    assert "of its 5 bytes (16" in r.error  # what arrived, starting with 0x16


def test_lines_before_the_ssh_identification(
    rows: tuple[dict[str, EndpointResult], float],
) -> None:
    r = _row(rows, "3 10 lines before SSH id")
    assert (r.status, r.channel) == (Status.OK, Channel.SSH), r.error
    assert r.ssh is not None and r.ssh.product == "AsyncSSH" and r.ssh.kexinit is not None
    assert r.ssh.pre_banner[0] == "Notice 0: authorised use only" and len(r.ssh.pre_banner) == 10
    assert r.ssh.host_keys and r.ssh.auth_methods and not r.ssh.not_determined


def test_too_many_lines_before_the_identification(
    rows: tuple[dict[str, EndpointResult], float],
) -> None:
    r = _row(rows, "3 2000 lines before SSH id")
    assert (r.status, r.channel) == (Status.ERROR, Channel.SSH)
    assert r.error is not None and r.error.startswith("SSH protocol error (pre_banner_too_long)")
    assert "within 1024 lines or 64 KiB" in r.error


@pytest.mark.needs_sshd
def test_non_ascii_identification_of_a_real_sshd(
    rows: tuple[dict[str, EndpointResult], float],
) -> None:
    if not sshd_available():
        pytest.skip("OpenSSH sshd not installed")
    r = _row(rows, "4 non-ASCII SSH id (sshd)")
    assert (r.status, r.channel) == (Status.OK, Channel.SSH), r.error
    assert r.ssh is not None and r.ssh.kexinit is not None and r.ssh.product == "OpenSSH"
    assert r.ssh.identification.endswith(r" Debian-\xc3\xa9\xff")
    assert "\ufffd" not in r.ssh.identification
    assert set(r.ssh.not_determined) == {"host_keys", "auth_methods"}
    assert all("not US-ASCII" in e for e in r.ssh.errors)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_oversized_chain_names_the_limit(
    rows: tuple[dict[str, EndpointResult], float], version: str
) -> None:
    r = _row(rows, f"5 1 MiB chain, TLS {version}")
    assert (r.status, r.channel) == (Status.ERROR, Channel.TLS)
    assert r.error is not None and "could not find a TLS version" not in r.error
    assert r.error.startswith("handshake message over the TLS client's size limit (100 KiB")
    assert f"seen before it: TLS {version}, cipher suite 0x" in r.error
    if version == "1.2":  # the Certificate message is in the clear up to TLS 1.2
        assert "a Certificate message of 10" in r.error


def test_one_answer_then_resets_is_a_partial_row(
    rows: tuple[dict[str, EndpointResult], float],
) -> None:
    r = _row(rows, "6 one handshake, then resets")
    assert (r.status, r.channel) == (Status.OK, Channel.TLS), r.error
    assert r.tls is not None and r.tls.accepted_versions() == ("TLS 1.3",)
    assert r.tls.protocols[-1].cipher_suites[0].name == "TLS_AES_256_GCM_SHA384"
    # everything else is not determined, never "not supported"
    assert all(p.accepted is None for p in r.tls.protocols if p.version != "TLS 1.3")
    assert r.tls.not_determined[0].startswith("everything but the first handshake (later")
    assert "retries with backoff failed too" in r.tls.not_determined[0]


def test_busy_worker_row_keeps_what_was_measured(
    rows: tuple[dict[str, EndpointResult], float],
) -> None:
    r = _row(rows, "7 one worker, busy 60 s")
    # Either the deadline ended the probe (its noted partial observation stays on the
    # row) or the probe gave up on the retries first and returned the partial itself:
    # both keep what the first handshake showed, neither is a bare timeout.
    assert r.channel is Channel.TLS and r.status in (Status.TIMEOUT, Status.OK), r.status
    assert r.tls is not None and r.tls.accepted_versions() == ("TLS 1.3",)
    assert all(p.accepted is None for p in r.tls.protocols if p.version != "TLS 1.3")
    assert r.tls.not_determined[0].startswith("everything but the first handshake")
    if r.status is Status.TIMEOUT:
        assert r.error == (
            f"no complete answer within the {DEADLINE:g}s deadline; "
            "the row holds what was measured before it (partial)"
        )


def test_ssh_errors_speak_ssh(rows: tuple[dict[str, EndpointResult], float]) -> None:
    r = _row(rows, "8 SSH packet length 2^31-1")
    assert (r.status, r.channel) == (Status.ERROR, Channel.SSH)
    assert r.error == (
        "SSH protocol error (packet_too_long): packet length 2147483647 exceeds 35000 "
        "(RFC 4253 6.1)"
    )
    long = _row(rows, "8 1 MiB SSH identification")
    assert (long.status, long.channel) == (Status.ERROR, Channel.SSH)
    assert long.error is not None
    assert long.error.startswith("SSH protocol error (id_too_long): identification line longer")
    # a 1 MiB line never reaches the report whole
    texts = [long.error, long.banner or "", *(long.platform.evidence if long.platform else ())]
    assert max(map(len, texts)) <= MAX_TEXT


async def test_long_lines_before_the_identification_are_capped(lab: Lab) -> None:
    addr = f"{NET}.40"
    notice = b"N" * 6000 + b"\r\n"
    ssh_raw_server(
        lab,
        addr,
        22,
        notice + b"SSH-2.0-Lab_1.0\r\n" + encode_packet(encode_kexinit(TERRAPIN_CHACHA)),
    )
    opts = ScanOptions(network_timeout=1.0, endpoint_deadline=5.0)
    r = await probe_once(Endpoint(addr, addr, 22), SshProbe(), opts)
    assert r.status is Status.OK, r.error
    assert r.ssh is not None and r.ssh.kexinit == TERRAPIN_CHACHA
    [line] = r.ssh.pre_banner
    assert len(line) <= MAX_TEXT and line.startswith("NNNN") and "(6000 chars in all)" in line


async def test_first_handshake_certificate_kept_when_the_rest_is_reset(lab: Lab) -> None:
    # Without discovery (probe_once), the probe's own first handshake is the one
    # answered: its version, suite and certificate make the row.
    addr = f"{NET}.41"
    python_tls_server(lab, addr, 4443, issue(CertSpec(names=("flaky.lab",))))
    reset_after_first(lab, addr, 443, 4443, quiet=60.0)
    opts = ScanOptions(network_timeout=1.0, endpoint_deadline=6.0)
    r = await probe_once(Endpoint(addr, addr, 443), TlsProbe(), opts)
    assert r.status is Status.OK, r.error
    assert r.tls is not None and r.tls.accepted_versions() == ("TLS 1.3",)
    assert r.tls.certificate is not None
    assert r.tls.certificate.chain[0].san_dns == ("flaky.lab",)
    assert "certificate chain beyond the leaf" in r.tls.not_determined
    assert r.elapsed_ms <= 6000 + 250


async def test_record_header_cut_by_the_peer_is_an_error(lab: Lab) -> None:
    addr = f"{NET}.42"

    async def half_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"\x16\x03")
        await writer.drain()

    lab.add_stream_server("half-header", addr, 443, half_header)
    collector = ResultCollector(1)
    await scan_endpoints([Endpoint(addr, addr, 443)], OPTS, default_probes(), collector)
    [r] = collector.results
    assert (r.status, r.channel) == (Status.ERROR, Channel.UNKNOWN)
    assert r.error == "TLS record header incomplete: closed after 2 of its 5 bytes (1603)"
