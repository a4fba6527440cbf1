"""A small delaying HTTP/1.1 proxy in front of the real engine: it stalls traffic for a while, like a server pause.

    with DelayProxy(ES_URL, stall_at=100, stall_seconds=1.0) as proxy:
        cli("--url", proxy.url, "profile", ...)
        assert proxy.stalled >= 1

Every request is forwarded unchanged, in order, on its own upstream connection (one per client connection).
When request number `stall_at` arrives (counting from 1 over all connections), the proxy holds it for
`stall_seconds`, and holds every other request that arrives meanwhile until the stall ends: from the client's side
the engine stopped answering for that long. Responses are piped back byte for byte.

`serial_delay=D`: every request waits its turn at one gate and is held there D seconds before it goes on, so the
proxy passes at most 1/D requests per second whatever the machine: a capacity the test sets (profile --find-max).

Unlike FaultProxy (which answers in the engine's place), this one changes only *when* requests reach the engine.
It listens on 127.0.0.1 on a free port, runs its own event loop in a daemon thread, and is bounded: at most
`max_connections` clients, request bodies up to `max_body` bytes, and it stops by itself after `lifetime` seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import urlsplit

from tests.support.loop_server import LoopServer


class DelayProxy(LoopServer):
    thread_name = "delay-proxy"

    def __init__(self, upstream: str, *, stall_at: int | None = None, stall_seconds: float = 0.0,
                 serial_delay: float = 0.0, lifetime: float = 180.0, max_connections: int = 128,
                 max_body: int = 16 * 1024 * 1024) -> None:
        parts = urlsplit(upstream)
        self.host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.stall_at = stall_at
        self.stall_seconds = stall_seconds
        self.serial_delay = serial_delay
        self._serial: asyncio.Lock | None = None  # made on the proxy's own loop, at the first request
        self.lifetime = lifetime
        self.max_connections = max_connections
        self.max_body = max_body
        self.port = 0
        self.requests = 0
        self.stalled = 0
        self.stall_started: float | None = None  # time.monotonic() when the stall began
        self._stall_until = 0.0
        self._connections = 0
        self._lock = threading.Lock()
        self._init_loop_server()

    async def _gate(self) -> None:
        """Count the request; start the stall on request `stall_at`; hold the request while a stall lasts."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self.requests += 1
            if self.stall_at is not None and self.requests == self.stall_at:
                self._stall_until = loop.time() + self.stall_seconds
                self.stall_started = time.monotonic()
            wait = self._stall_until - loop.time()
            if wait > 0:
                self.stalled += 1
        if wait > 0:
            await asyncio.sleep(wait)
        if self.serial_delay:
            if self._serial is None:
                self._serial = asyncio.Lock()
            async with self._serial:  # one request at a time, D seconds each: at most 1/D per second
                await asyncio.sleep(self.serial_delay)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= self.max_connections:
            writer.close()
            return
        self._connections += 1
        self._writers.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        pipe: asyncio.Task[None] | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
            self._writers.add(up_writer)
            pipe = asyncio.create_task(_pipe(up_reader, writer))
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length > self.max_body:
                    return
                body = await reader.readexactly(length) if length else b""
                await self._gate()
                up_writer.write(head + body)
                await up_writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError):
            return
        finally:
            self._connections -= 1
            self._writers.discard(writer)
            if up_writer is not None:
                self._writers.discard(up_writer)
                up_writer.close()
            if pipe is not None:
                pipe.cancel()
            writer.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        dst.close()
