"""The task a Dask worker runs: the ordinary trio scan of one shard.

The worker resolves the shard's names (inside its site, where the management DNS is)
and runs :func:`chanscan.scheduler.scan` with the usual probes, budgets and deadlines.
It sends back plain data (the serde form of the frozen results), never judgements:
rules, pins and grades are the client's job.

Dask cannot interrupt a running task, so the scan watches a Dask ``Event`` named by
the client from a small thread and cancels itself when the client sets it (Ctrl-C):
a cancelled scan must not keep a site's only worker busy for minutes.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from chanscan import __version__
from chanscan.distributed.shards import ShardTask
from chanscan.model import ScanOptions
from chanscan.scheduler import ResultCollector, scan
from chanscan.serde import to_jsonable

POLL_SECONDS = 0.5


def dask_setup(worker: Any) -> None:
    """``dask worker --preload chanscan.distributed.worker`` calls this at start-up:
    import the probes (sslyze, nassl, asyncssh) then, not on the first shard, so the
    first scan sent to a fresh worker does not pay for them."""
    import chanscan.fingerprint  # noqa: F401
    from chanscan.probes import LazyProbe, default_probes

    for probe in default_probes().values():
        if isinstance(probe, LazyProbe):
            probe.get()  # imports the probe's module; the instance is thrown away


def run_shard(task: ShardTask) -> dict[str, Any]:
    """Scan one shard on this worker; results as plain data (see ``shards.decode_results``)."""
    from distributed import Event, get_client, get_worker

    worker = get_worker()
    name = worker.name if isinstance(worker.name, str) and worker.name else worker.address
    # Bound here, on the task's thread: the watcher thread asks through this client.
    event = Event(task.cancel_event, client=get_client())

    def cancelled() -> bool:
        try:
            return bool(event.is_set())
        except Exception:  # scheduler briefly unreachable: keep scanning
            return False

    collector = ResultCollector()
    with tempfile.TemporaryDirectory(prefix="chanscan-shard-") as tmp:
        options = task.options
        if task.ca_bundle_pem is not None:
            bundle = Path(tmp) / "ca-bundle.pem"
            bundle.write_bytes(task.ca_bundle_pem)
            options = replace(options, ca_bundle=bundle)
        interrupted = scan_until_cancelled(task, options, collector, cancelled)
    return {
        "chanscan": __version__,
        "worker": name,
        "interrupted": interrupted,
        "results": [to_jsonable(r) for r in collector.results],
    }


def scan_until_cancelled(
    task: ShardTask,
    options: ScanOptions,
    collector: ResultCollector,
    cancelled: Callable[[], bool],
    poll: float = POLL_SECONDS,
) -> bool:
    """``trio.run`` the shard's scan; a watcher thread polls ``cancelled`` and cancels
    the scan from outside through the trio token. True when it was cancelled."""
    from chanscan.fingerprint import Fingerprinter
    from chanscan.probes import default_probes

    ready = threading.Event()
    finished = threading.Event()
    hold: dict[str, Any] = {}

    async def main() -> None:
        with trio.CancelScope() as scope:
            hold["scope"] = scope
            hold["token"] = trio.lowlevel.current_trio_token()
            ready.set()
            await scan(task.targets, options, default_probes(), collector, Fingerprinter())

    def watch() -> None:
        if not ready.wait(30):
            return
        # A plain sleep, not a timed Event.wait: a timed wait sleeps until an absolute
        # monotonic deadline, which a shifted clock (libfaketime in the date-proof test
        # runs) can push past the scan; a relative sleep cannot be.
        while not finished.is_set():  # bounded: the scan ends within its deadlines
            time.sleep(poll)
            if finished.is_set():
                return
            if cancelled():
                hold["cancelled"] = True
                with contextlib.suppress(trio.RunFinishedError):
                    trio.from_thread.run_sync(hold["scope"].cancel, trio_token=hold["token"])
                return

    watcher = threading.Thread(target=watch, name="chanscan-shard-cancel", daemon=True)
    watcher.start()
    try:
        trio.run(main)
    finally:
        finished.set()
        watcher.join(5)
    return bool(hold.get("cancelled"))
