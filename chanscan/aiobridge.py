"""Await asyncio coroutines (asyncssh) from trio without a second scheduler in charge.

One asyncio ``SelectorEventLoop`` runs on a dedicated thread for the whole scan. A
trio task submits a coroutine factory and sleeps on a ``trio.Event`` that the asyncio
side sets through the trio token when the task ends. When the trio caller is
cancelled (the scheduler's deadline), the asyncio task is cancelled too and we wait,
shielded and bounded, for it to unwind so that no socket or task outlives the probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import trio

T = TypeVar("T")

# How long a cancelled asyncio task may take to close its transport.
_UNWIND_SECONDS = 2.0


def start_loop_thread(name: str) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """An asyncio ``SelectorEventLoop`` running forever on a daemon thread of its own
    (the scanner's asyncssh bridge, and the lab's servers)."""
    loop = asyncio.SelectorEventLoop()
    ready = threading.Event()

    def runner() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=runner, name=name, daemon=True)
    thread.start()
    if not ready.wait(5.0):
        raise RuntimeError(f"{name}: event loop did not start")
    return loop, thread


def stop_loop_thread(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread | None, timeout: float
) -> None:
    """Cancel every task on ``loop`` (waiting up to ``timeout`` for them to unwind), stop
    it and join its thread."""

    async def cancel_all() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout)
    loop.call_soon_threadsafe(loop.stop)
    if thread is not None:
        thread.join(5.0)
    if not loop.is_running():
        loop.close()


class AsyncioBridge:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop, self._thread = start_loop_thread("chanscan-asyncio")
            return self._loop

    async def run(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        loop = self._ensure_loop()
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: dict[str, Any] = {}

        def wake(task: asyncio.Future[T]) -> None:
            box["task"] = task
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        def start() -> None:
            task = loop.create_task(factory())
            box["pending"] = task
            task.add_done_callback(wake)

        loop.call_soon_threadsafe(start)
        try:
            await done.wait()
        except trio.Cancelled:
            # Cancel on the asyncio side and wait (shielded, bounded) until the task has
            # really finished, so its transport is closed before we return.
            # start() was queued first on the same loop, so the task exists by now.
            loop.call_soon_threadsafe(lambda: box["pending"].cancel())
            with trio.CancelScope(shield=True), trio.move_on_after(_UNWIND_SECONDS):
                await done.wait()
            raise
        task: asyncio.Future[T] = box["task"]
        if task.cancelled():
            raise trio.TooSlowError("asyncio task was cancelled")
        return task.result()

    def pending_tasks(self) -> int:
        """Asyncio tasks still alive on the bridge loop (tests assert zero)."""
        loop = self._loop
        if loop is None:
            return 0

        async def count() -> int:
            return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

        return asyncio.run_coroutine_threadsafe(count(), loop).result(5.0)

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None:
            stop_loop_thread(loop, thread, _UNWIND_SECONDS + 1)
