"""Long-lived worker threads for blocking work (sslyze/nassl handshakes).

A fresh ``trio.to_thread`` hop per job costs a thread hand-off each time, and nassl
holds the GIL during handshakes; instead a fixed set of threads pulls jobs from one
queue and hands results back through the trio token (``run_sync_soon``), which
never blocks trio's own thread.

Blocking code cannot be interrupted, but it can be told to stop: each job carries a
cancel flag that the trio side sets when its caller is cancelled (an endpoint's deadline),
and job code calls :func:`check_cancelled` before each connection it opens, so a job
whose endpoint is out of time makes no further connection to that host.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")

_Job = tuple[
    Callable[..., Any],
    tuple[Any, ...],
    trio.lowlevel.TrioToken,
    Callable[[Any], None],
    threading.Event,
]


class JobCancelled(BaseException):
    """Raised inside a worker job by :func:`check_cancelled` once the job's trio caller
    has been cancelled. A BaseException, so the broad ``except Exception`` of sslyze's
    and our job code (which turns errors into results and moves to the next
    connection) lets it through and the whole job ends."""


class _Current(threading.local):
    cancel: threading.Event | None = None


_current = _Current()


def check_cancelled() -> None:
    """For blocking job code, before it opens a connection: raise :class:`JobCancelled`
    when the caller of the job running on this thread has gone. Outside a worker job
    (or before cancellation) it does nothing."""
    flag = _current.cancel
    if flag is not None and flag.is_set():
        raise JobCancelled()


class ThreadWorkers:
    def __init__(self, count: int) -> None:
        self._count = max(1, count)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _ensure_started(self) -> None:
        with self._lock:
            if self._threads:
                return
            for i in range(self._count):
                t = threading.Thread(target=self._loop, name=f"chanscan-worker-{i}", daemon=True)
                t.start()
                self._threads.append(t)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            fn, args, token, deliver, cancel = job
            if cancel.is_set():  # its caller left while it waited in the queue
                continue
            _current.cancel = cancel
            try:
                result = outcome.capture(fn, *args)
            finally:
                _current.cancel = None
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(deliver, result)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a worker. If the caller is cancelled the job's cancel
        flag is set: a job still queued never starts, a running one stops at its next
        :func:`check_cancelled` (before its next connection); the connection under way
        is bounded by sslyze's own socket timeout. Its result is dropped."""
        self._ensure_started()
        done = trio.Event()
        box: list[outcome.Outcome[T]] = []

        def deliver(result: outcome.Outcome[T]) -> None:
            box.append(result)
            done.set()

        cancel = threading.Event()
        self._queue.put((fn, args, trio.lowlevel.current_trio_token(), deliver, cancel))
        try:
            await done.wait()
        finally:
            if not box:
                cancel.set()
        return box[0].unwrap()

    def close(self, join_timeout: float = 5.0) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for t in threads:
            t.join(join_timeout)
