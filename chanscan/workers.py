"""Long-lived worker threads for blocking work (sslyze/nassl handshakes).

A fresh ``trio.to_thread`` hop per job costs a thread hand-off each time, and nassl
holds the GIL during handshakes; instead a fixed set of threads pulls jobs from one
queue and hands results back through the trio token (``run_sync_soon``), which
never blocks trio's own thread.
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

_Job = tuple[Callable[..., Any], tuple[Any, ...], trio.lowlevel.TrioToken, Callable[[Any], None]]


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
            fn, args, token, deliver = job
            result = outcome.capture(fn, *args)
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(deliver, result)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a worker. If the caller is cancelled the job still
        finishes on its thread (blocking code cannot be interrupted) and its result is
        dropped; sslyze's own socket timeouts bound how long that takes."""
        self._ensure_started()
        done = trio.Event()
        box: list[outcome.Outcome[T]] = []

        def deliver(result: outcome.Outcome[T]) -> None:
            box.append(result)
            done.set()

        self._queue.put((fn, args, trio.lowlevel.current_trio_token(), deliver))
        await done.wait()
        return box[0].unwrap()

    def close(self, join_timeout: float = 5.0) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for t in threads:
            t.join(join_timeout)
