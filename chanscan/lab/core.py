"""Lab plumbing: the asyncio thread, child processes, tarpits, filtered and closed ports."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from chanscan.aiobridge import start_loop_thread, stop_loop_thread

T = TypeVar("T")

_STOP_TIMEOUT = 5.0


class LabError(RuntimeError):
    """A lab server could not be started."""


def require_loopback(address: str) -> str:
    """The lab only ever listens on loopback; refuse anything else loudly."""
    if not ipaddress.ip_address(address).is_loopback:
        raise LabError(f"lab address {address} is not loopback; refusing")
    return address


@dataclass
class Handle:
    """One running lab server; ``stop()`` is idempotent."""

    name: str
    address: str
    port: int
    _stop: Callable[[], None] = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._stop()


class Lab:
    """Owns every lab server it starts. Use as a context manager."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._handles: list[Handle] = []
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop, self._thread = start_loop_thread("chanscan-lab")
        return self._loop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the lab loop and wait for its result."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def register(self, handle: Handle) -> Handle:
        with self._lock:
            self._handles.append(handle)
        return handle

    @property
    def handles(self) -> tuple[Handle, ...]:
        return tuple(self._handles)

    def stop(self) -> None:
        """Stop every server (newest first), then the lab loop."""
        with self._lock:
            handles, self._handles = self._handles[::-1], []
        for h in handles:
            with contextlib.suppress(Exception):
                h.stop()
        if self._loop is not None:
            loop, self._loop = self._loop, None
            stop_loop_thread(loop, self._thread, _STOP_TIMEOUT)

    # -- asyncio servers -------------------------------------------------------------
    def add_server(
        self,
        name: str,
        address: str,
        port: int,
        start: Callable[[], Coroutine[Any, Any, Any]],
    ) -> Handle:
        """Start an asyncio server; ``start()`` returns an object with ``close()`` and
        (optionally) ``wait_closed()`` (``asyncio.Server``, asyncssh's acceptor)."""
        require_loopback(address)
        server = self.call(start())

        def stop() -> None:
            async def close() -> None:
                server.close()
                waiter = getattr(server, "wait_closed", None)
                if waiter is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(waiter(), _STOP_TIMEOUT)

            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self.call(close(), timeout=_STOP_TIMEOUT + 1)

        return self.register(Handle(name, address, port, stop))

    def add_stream_server(
        self,
        name: str,
        address: str,
        port: int,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]],
        **kwargs: Any,
    ) -> Handle:
        """An ``asyncio.start_server`` server whose open connections are closed on stop
        (``Server.close`` alone leaves accepted connections open)."""
        writers: set[asyncio.StreamWriter] = set()

        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.add(writer)
            try:
                await handler(reader, writer)
            except (Exception, asyncio.CancelledError):
                # A scanner sends lab servers odd bytes on purpose; a handler that gives
                # up on a connection is normal, not an error worth a traceback.
                pass
            finally:
                writers.discard(writer)
                writer.close()

        async def start() -> asyncio.Server:
            server = await asyncio.start_server(
                tracked, address, port, reuse_address=True, **kwargs
            )

            orig_close = server.close

            def close_all() -> None:
                orig_close()
                for w in list(writers):
                    w.close()

            server.close = close_all  # type: ignore[method-assign]
            return server

        return self.add_server(name, address, port, start)

    # -- special ports ----------------------------------------------------------------
    def tarpit(self, address: str, port: int) -> Handle:
        """Accepts TCP connections and never sends a byte."""

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(4096):
                pass

        return self.add_stream_server("tarpit", address, port, hold)

    def filtered(self, address: str, port: int) -> Handle:
        """A port that never completes the TCP handshake: a listening socket with a full
        backlog that never accepts, so the kernel drops further SYNs (what a firewall's
        DROP looks like from the scanner)."""
        require_loopback(address)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((address, port))
        lsock.listen(0)
        fillers: list[socket.socket] = []
        # Linux admits backlog+1 connections; a few more non-blocking connects fill the
        # SYN queue for good measure. Bounded: at most 8 attempts.
        for _ in range(8):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                s.connect((address, port))
            fillers.append(s)
        time.sleep(0.05)

        def stop() -> None:
            for s in fillers:
                s.close()
            lsock.close()

        return self.register(Handle("filtered", address, port, stop))

    def add_process(
        self,
        name: str,
        address: str,
        port: int,
        argv: Sequence[str],
        *,
        ready_timeout: float = 10.0,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> Handle:
        """Start a child process and wait until ``address:port`` accepts connections."""
        require_loopback(address)
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

        def stop() -> None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(_STOP_TIMEOUT)
            if proc.stderr is not None:
                proc.stderr.close()

        handle = Handle(name, address, port, stop)
        deadline = time.monotonic() + ready_timeout
        while True:  # bounded by ready_timeout
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                stop()
                raise LabError(f"{name} exited with {proc.returncode}: {err.strip()[:500]}")
            if port_accepts(address, port):
                return self.register(handle)
            if time.monotonic() > deadline:
                stop()
                raise LabError(f"{name} did not listen on {address}:{port} in {ready_timeout}s")
            time.sleep(0.05)


def port_accepts(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(address: str) -> int:
    """A port with nothing listening on ``address`` right now (for 'closed' endpoints)."""
    require_loopback(address)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port
