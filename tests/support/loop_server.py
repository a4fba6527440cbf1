"""The life cycle both test proxies share: an asyncio server on 127.0.0.1 in a daemon thread, bounded in time.

A subclass calls `_init_loop_server()` from its constructor and implements `_client(reader, writer)`; handlers that
register themselves in `_handlers` are waited for on stop, and `_writers` are aborted so every handler ends by
itself. The server stops on `stop()` / leaving the `with` block, or by itself after `lifetime` seconds.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self


class LoopServer:
    thread_name = "loop-server"
    lifetime: float
    port: int

    def _init_loop_server(self) -> None:
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"{self.thread_name} did not start: {self._error}")
        return self

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() or visible through the tests' assertions
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, "127.0.0.1", 0, limit=64 * 1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await asyncio.wait_for(self._stop.wait(), self.lifetime)
        except TimeoutError:
            pass
        finally:
            server.close()
            for writer in list(self._writers):  # wake every handler so it ends by itself, not by cancellation
                writer.transport.abort()
            if self._handlers:
                await asyncio.wait(self._handlers, timeout=5)
            await server.wait_closed()
