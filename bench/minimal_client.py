"""The least a Python load generator can do per request: uvloop, an asyncio Protocol per keep-alive connection,
the request's bytes written once, the answer counted by its Content-Length, nothing parsed, timed or recorded.

    .venv/bin/python bench/minimal_client.py URL_PATH BODY_FILE CONNECTIONS SECONDS PROCESSES

PROCESSES processes share CONNECTIONS between them (as `escli profile --workers` shares -j) and each runs its own
event loop; printed: one JSON line with their requests per second together and their CPU per request (user + system
from rusage). bench_profile_vs_wrk.py uses it as the reference for how a Python client scales with processes on
this machine: whatever the cores lose to three busy processes (two clients and the server) it loses too.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import sys
import time
from typing import cast
from urllib.parse import urlsplit

import orjson
import uvloop


class Connection(asyncio.Protocol):
    """Sends the request again as soon as the whole answer is in; counts answers."""

    def __init__(self, request: bytes, stop: float, done: asyncio.Future[None]) -> None:
        self.request = request
        self.stop = stop
        self.done = done
        self.buffer = bytearray()
        self.count = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCPTransport is not an asyncio.Transport
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        head = buf.find(b"\r\n\r\n")
        if head < 0:
            return
        start = buf.find(b"ontent-Length:", 0, head) + 14
        end = buf.find(b"\r\n", start)
        size = head + 4 + int(buf[start:end])
        if len(buf) < size:
            return
        del buf[:size]
        self.count += 1
        assert self.transport is not None
        if time.perf_counter() < self.stop:
            self.transport.write(self.request)
        elif not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def drive(url: str, body: bytes, connections: int, seconds: float) -> tuple[int, float]:
    """(answers, seconds taken) of this process's connections."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    stop = t0 + seconds
    protocols = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        _, proto = await loop.create_connection(lambda d=done: Connection(request, stop, d), host, port)
        protocols.append(proto)
    await asyncio.gather(*(p.done for p in protocols))
    for p in protocols:
        if p.transport is not None:
            p.transport.close()
    return sum(p.count for p in protocols), time.perf_counter() - t0


def one_process(url: str, body: bytes, connections: int, seconds: float, out: multiprocessing.SimpleQueue) -> None:
    out.put(uvloop.run(drive(url, body, connections, seconds)))


def main() -> int:
    url, body_file, connections, seconds, processes = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        float(sys.argv[4]), int(sys.argv[5])
    with open(body_file, "rb") as f:
        body = f.read()
    out: multiprocessing.SimpleQueue = multiprocessing.SimpleQueue()
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    procs = [multiprocessing.Process(target=one_process, args=(url, body, n, seconds, out)) for n in shares]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    done = [out.get() for _ in procs]
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = sum(n for n, _ in done)
    print(orjson.dumps({"rps": sum(n / took for n, took in done),
                        "cpu_us": (r.ru_utime + r.ru_stime) / max(requests, 1) * 1e6}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
