"""The client side of a Dask scan: connect, submit shards, collect, handle faults.

Faults and what they become:

- a worker dies mid-shard: the Dask scheduler runs the shard again on another
  eligible worker, up to ``distributed.scheduler.allowed-failures`` times (3 by
  default); after that the shard's endpoints are error rows saying so;
- a task raises (a bug on the worker): retried ``TASK_RETRIES`` times, then error rows;
- a site with no worker (at the start, or all of its workers gone for
  ``ORPHAN_GRACE`` seconds): error rows "no worker for site NAME"; the scan goes on;
- Ctrl-C or SIGTERM: the cancel Event is set (running shards stop themselves), the
  futures are cancelled, and what came back is the report, with ``complete: false``;
- the scheduler is unreachable: :class:`UsageError` (exit 2) before anything is sent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from chanscan.config import PlannedTarget
from chanscan.distributed.shards import (
    DaskTarget,
    Shard,
    ShardTask,
    check_transport,
    decode_results,
    make_shards,
    no_worker_message,
    progress_line,
    site_resource,
    unscanned_rows,
)
from chanscan.errors import ReportFormatError, UsageError
from chanscan.model import ScanOptions, ScanReport
from chanscan.scheduler import ResultCollector

TASK_RETRIES = 2
ORPHAN_GRACE = 10.0  # seconds a site may have no worker mid-scan before its shards give up
POLL = 0.1
WORKER_CHECK_EVERY = 2.0


@dataclass(frozen=True)
class DaskSettings:
    target: DaskTarget
    insecure: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    connect_timeout: float = 10.0


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageError("--dask needs Dask distributed: pip install 'chanscan[dask]'") from None
    return distributed


def security_for(settings: DaskSettings) -> Any:
    """Dask's ``Security`` from the ``--dask-tls-*`` files, else from the Dask config."""
    distributed = _import_distributed()
    files = {"--dask-tls-ca": settings.tls_ca, "--dask-tls-cert": settings.tls_cert}
    files["--dask-tls-key"] = settings.tls_key
    given = {flag: path for flag, path in files.items() if path is not None}
    if given:
        if settings.target.scheme != "tls":
            raise UsageError("--dask-tls-* files need a tls:// scheduler address")
        missing = [flag for flag in files if flag not in given]
        if missing:
            raise UsageError(f"--dask {settings.target.address}: also give {', '.join(missing)}")
        for flag, path in given.items():
            if not path.is_file():
                raise UsageError(f"{flag} {path}: no such file")
        return distributed.Security(
            tls_ca_file=str(settings.tls_ca),
            tls_client_cert=str(settings.tls_cert),
            tls_client_key=str(settings.tls_key),
            require_encryption=True,
        )
    security = distributed.Security()
    if settings.target.scheme == "tls" and not security.tls_ca_file:
        raise UsageError(
            f"--dask {settings.target.address}: give --dask-tls-ca, --dask-tls-cert and "
            "--dask-tls-key (or set distributed.comm.tls in the Dask configuration)"
        )
    return security


@contextlib.contextmanager
def connect(settings: DaskSettings) -> Iterator[Any]:
    """A Dask ``Client`` (and the ``LocalCluster`` behind ``--dask local``), closed on exit.
    An unreachable scheduler is a :class:`UsageError`: one line, exit 2, nothing sent."""
    target = settings.target
    check_transport(target, settings.insecure)
    distributed = _import_distributed()
    security = security_for(settings)
    # chanscan reports what went wrong itself, in one line; Dask's own log records of a
    # failed connection would add a screenful.
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    cluster = None
    try:
        if target.is_local:
            n = target.local_workers or os.cpu_count() or 1
            cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
                preload=["chanscan.distributed.worker"],
            )
            client = distributed.Client(cluster, set_as_default=False)
        else:
            client = distributed.Client(
                target.address,
                security=security,
                timeout=settings.connect_timeout,
                set_as_default=False,
            )
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        where = "start a local Dask cluster" if target.is_local else "reach the Dask scheduler"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--dask {target.address or 'local'}: cannot {where}: {detail}") from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=10)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)


def workers_by_site(client: Any) -> tuple[int, set[str]]:
    """How many workers there are, and the site resources they offer."""
    info = client.scheduler_info(n_workers=-1)
    workers: Mapping[str, Any] = info.get("workers", {})
    resources: set[str] = set()
    for w in workers.values():
        resources.update(k for k, v in (w.get("resources") or {}).items() if v)
    return len(workers), resources


def _eligible(site: str | None, count: int, resources: set[str]) -> bool:
    return count > 0 if site is None else site_resource(site) in resources


class _Progress:
    """Endpoints done per site, one line on stderr when it is a terminal."""

    def __init__(self, shards: Sequence[Shard], stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.sites: dict[str | None, list[int]] = {}
        for s in shards:
            self.sites.setdefault(s.site, [0, 0])[1] += s.planned_endpoints
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())

    def shard_done(self, shard: Shard, rows: int) -> None:
        done_total = self.sites[shard.site]
        done_total[0] += rows
        # A name may resolve to several addresses: the total grows with what came back.
        done_total[1] += max(0, rows - shard.planned_endpoints)
        if self.enabled:
            self.stream.write("\r" + progress_line({k: (d, t) for k, (d, t) in self.sites.items()}))
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a Dask scan as Ctrl-C does (what came back is written)."""

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_dask_scan(
    planned: Sequence[PlannedTarget],
    options: ScanOptions,
    argv: Sequence[str],
    settings: DaskSettings,
) -> ScanReport:
    with connect(settings) as client:
        return collect(client, planned, options, argv)


def collect(
    client: Any,
    planned: Sequence[PlannedTarget],
    options: ScanOptions,
    argv: Sequence[str],
    clock: Callable[[], float] = time.monotonic,
) -> ScanReport:
    """Submit every shard, gather what comes back into one report."""
    from distributed import Event

    from chanscan.distributed.worker import run_shard

    collector = ResultCollector()
    count, resources = workers_by_site(client)
    shards = make_shards(planned, count)
    progress = _Progress(shards)
    collector.total = sum(s.planned_endpoints for s in shards)
    scan_id = uuid.uuid4().hex[:12]
    event = Event(f"chanscan-cancel-{scan_id}", client=client)
    ca_pem = options.ca_bundle.read_bytes() if options.ca_bundle is not None else None
    task_options = replace(options, ca_bundle=None)

    def give_up(shard: Shard, error: str) -> None:
        rows = unscanned_rows(shard, error)
        for r in rows:
            collector.add(r)
        progress.shard_done(shard, len(rows))

    pending: dict[Any, Shard] = {}
    for shard in shards:
        if not _eligible(shard.site, count, resources):
            give_up(shard, no_worker_message(shard.site))
            continue
        task = ShardTask(shard.targets, task_options, ca_pem, event.name)
        future = client.submit(
            run_shard,
            task,
            key=f"chanscan-{scan_id}-shard-{shard.index}",
            resources=shard.resources or None,
            retries=TASK_RETRIES,
            pure=False,
        )
        pending[future] = shard
    orphaned: dict[Any, float] = {}
    last_check = clock()
    try:
        with _sigterm_as_interrupt():
            while pending:
                time.sleep(POLL)  # interruptible by Ctrl-C, unlike a wait inside Dask
                for future in [f for f in pending if f.done()]:
                    shard = pending.pop(future)
                    _land(future, shard, collector, progress, give_up)
                if pending and clock() - last_check >= WORKER_CHECK_EVERY:
                    last_check = clock()
                    count, resources = workers_by_site(client)
                    for future, shard in list(pending.items()):
                        if _eligible(shard.site, count, resources):
                            orphaned.pop(future, None)
                        elif last_check - orphaned.setdefault(future, last_check) > ORPHAN_GRACE:
                            client.cancel([future], force=True)
                            del pending[future]
                            give_up(shard, no_worker_message(shard.site))
    except KeyboardInterrupt:
        collector.interrupted = True
        sys.stderr.write(
            f"\nchanscan: interrupted; cancelling {len(pending)} Dask shard(s), "
            "writing what came back\n"
        )
        with contextlib.suppress(Exception):
            event.set()
        with contextlib.suppress(Exception):
            client.cancel(list(pending), force=True)
    finally:
        progress.close()
    return collector.report(complete=True, command=argv)


def _land(
    future: Any,
    shard: Shard,
    collector: ResultCollector,
    progress: _Progress,
    give_up: Callable[[Shard, str], None],
) -> None:
    """One finished future: its rows, or error rows for the shard it lost."""
    from distributed import KilledWorker

    try:
        answer = future.result()
        rows = decode_results(answer, shard.site)
    except KilledWorker:
        give_up(shard, "shard lost: every worker that ran it died (Dask allowed-failures)")
        return
    except ReportFormatError as exc:
        give_up(shard, f"unreadable answer from the worker (another chanscan version?): {exc}")
        return
    except Exception as exc:
        give_up(shard, f"shard failed on the worker: {type(exc).__name__}: {exc}")
        return
    for r in rows:
        collector.add(r)
    progress.shard_done(shard, len(rows))
