"""The endpoint deadline is a promise to the host: once it cancels an endpoint, that
endpoint's blocking sslyze/nassl jobs open no further connection (counted on the
server side by a relay), and queued jobs never start."""

from __future__ import annotations

import threading
import time

import pytest
import trio

from benchmarks.fleet import Counter, counting_proxy
from chanscan.lab.core import Lab, free_port
from chanscan.lab.tls_servers import CertSpec
from chanscan.model import Endpoint, ScanOptions, Status
from chanscan.probes.tls import TlsProbe
from chanscan.scheduler import probe_once
from chanscan.workers import JobCancelled, ThreadWorkers, check_cancelled
from tests._tls_lab import NAME, start_openssl

FRONT = "127.83.1.1"
BACK = "127.83.1.2"
# A connection the worker thread had already begun when the flag was set may still
# arrive, and a busy relay loop records an accept late; anything later than this after
# the deadline is a broken promise.
GRACE = 0.5


@pytest.mark.needs_openssl
async def test_no_connection_after_the_endpoint_deadline(lab: Lab) -> None:
    # Every suite OpenSSL has, behind a 10 ms link: well over a hundred handshakes,
    # several seconds of work, cut by a 0.8 s deadline.
    served = start_openssl(
        lab,
        BACK,
        "s_server-all",
        CertSpec(names=(NAME,), key="rsa"),
        ["-cipher", "ALL:@SECLEVEL=0"],
    )
    counter = Counter()
    port = free_port(FRONT)
    counting_proxy(lab, counter, FRONT, port, (BACK, served.port), delay=0.005)
    deadline = 0.8
    started = time.monotonic()
    result = await probe_once(
        Endpoint(FRONT, FRONT, port), TlsProbe(), ScanOptions(endpoint_deadline=deadline)
    )
    assert result.status is Status.TIMEOUT, result
    await trio.sleep(1.5)  # what a job that kept going would connect meanwhile
    before = counter.accepted_after(FRONT, port, 0.0) - counter.accepted_after(
        FRONT, port, started + deadline
    )
    assert before >= 5  # the scan really was under way when the deadline came
    assert counter.accepted_after(FRONT, port, started + deadline + GRACE) == 0


async def test_a_cancelled_caller_stops_its_job_at_the_next_check() -> None:
    workers = ThreadWorkers(1)
    entered = threading.Event()
    checks: list[str] = []

    def job() -> None:
        entered.set()
        for _ in range(200):  # bounded: 200 x 10 ms
            check_cancelled()
            checks.append("connected")
            time.sleep(0.01)

    try:
        with trio.move_on_after(0.1):
            await workers.run(job)
        await trio.to_thread.run_sync(entered.wait, 5)
        await trio.sleep(0.1)
        seen = len(checks)
        await trio.sleep(0.2)
        assert len(checks) == seen < 50
    finally:
        workers.close()


async def test_a_job_queued_behind_a_cancelled_caller_never_starts() -> None:
    workers = ThreadWorkers(1)
    release = threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        release.wait(5)

    def queued() -> None:
        ran.append("queued job ran")

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(workers.run, blocker)
            await trio.sleep(0.05)
            with trio.move_on_after(0.05):
                await workers.run(queued)  # waits behind the blocker, then gives up
            release.set()
        await workers.run(lambda: None)  # the worker has passed the queued job by now
        assert ran == []
    finally:
        workers.close()


def test_check_cancelled_outside_a_job_does_nothing() -> None:
    check_cancelled()  # no worker job on this thread: no flag to see
    assert issubclass(JobCancelled, BaseException) and not issubclass(JobCancelled, Exception)
