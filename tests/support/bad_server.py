"""A small HTTP server that misbehaves on purpose: what escli meets when what answers is not a healthy engine.

    with BadServer("html") as server:                       # every request gets the misbehaviour
        escli("--url", server.url, "search", "products", "x")
    with BadServer() as server:                             # or chosen by path: /MODE/... (the URL's prefix)
        escli("--url", server.url + "/gzip_bomb", ...)

Modes (MODES): the answers escli must bound or refuse (endless_chunks, huge_length, gzip_bomb, empty_object,
html, array, redirect, bad_chunk) and the ones it already held well and must go on holding (garbage_status,
big_headers, endless_headers, short_body, negative_length, trickle, reset, http09). FaultProxy's `misbehave` rule
answers chosen requests to the real engine in the same ways (`misbehave` below), the others are forwarded.

It reuses LoopServer's life cycle (a daemon thread, stopped on leaving the block or after `lifetime`), reads each
request's head and body, and counts them (`requests`, with the Authorization header each carried), so a test can
show that a redirect's target was never asked. Endless answers stop when the client closes its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import zlib
from dataclasses import dataclass, field

from tests.support.loop_server import LoopServer

MODES = ("endless_chunks", "huge_length", "gzip_bomb", "empty_object", "html", "array", "redirect", "bad_chunk",
         "garbage_status", "big_headers", "endless_headers", "short_body", "negative_length", "trickle", "reset",
         "http09")
TRICKLED = (b'{"took":1,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},'
               b'"hits":{"total":{"value":0,"relation":"eq"},"max_score":null,"hits":[]}}')
HTML = (b"<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n<h1>Welcome to "
        b"nginx!</h1>\n</body>\n</html>\n")
PIECE = b"x" * 65536
ELSEWHERE = "http://127.0.0.1:9/elsewhere"
BOMB_MEMBER_ZEROS = 16 * 2**20  # each gzip member inflates to 16 MiB of zeros (~16 KB compressed)
BOMB_MEMBERS = 256  # 256 members: ~4 MB on the wire, 4 GiB inflated


@functools.cache
def gzip_bomb() -> bytes:
    """~4 MB of gzip that inflates to 4 GiB: one member compressed block by block (the zeros are never held
    whole), repeated; gzip allows members one after another, and each inflates on its own."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(2**20)
    member = b"".join([*(packer.compress(block) for _ in range(BOMB_MEMBER_ZEROS // len(block))), packer.flush()])
    return member * BOMB_MEMBERS


def _answer(status: str, headers: list[str], body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{h}\r\n" for h in headers) + f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


@dataclass
class Seen:
    target: str
    authorization: str | None


@dataclass
class BadServer(LoopServer):
    thread_name = "bad-server"

    mode: str | None = None  # None: the first path segment chooses
    redirect_to: str = ELSEWHERE  # another origin; tests point it at a second BadServer
    lifetime: float = 120.0
    port: int = 0
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}")
        if self.mode == "gzip_bomb":
            gzip_bomb()  # built before the server listens: the first request is not kept waiting
        self._init_loop_server()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                self.requests.append(Seen(target, headers.get("authorization")))
                mode = self.mode or target.lstrip("/").split("/", 1)[0].split("?", 1)[0]
                if not await misbehave(mode, writer, self.redirect_to):
                    return
        except (ConnectionError, OSError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


async def misbehave(mode: str, writer: asyncio.StreamWriter, redirect_to: str = ELSEWHERE) -> bool:
    """Answer one request in `mode` (also FaultProxy's `misbehave` rule); True when the connection may carry
    another request."""
    json = ["Content-Type: application/json"]
    if mode == "endless_chunks":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % len(PIECE) + PIECE + b"\r\n"
        while not writer.is_closing():
            writer.write(chunk)
            await writer.drain()
        return False
    if mode == "huge_length":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000000"
                     b"0\r\n\r\n")
        while not writer.is_closing():
            writer.write(PIECE)
            await writer.drain()
        return False
    if mode == "gzip_bomb":
        writer.write(_answer("200 OK", [*json, "Content-Encoding: gzip"], gzip_bomb()))
    elif mode == "empty_object":
        writer.write(_answer("200 OK", json, b"{}"))
    elif mode == "html":
        writer.write(_answer("200 OK", ["Content-Type: text/html"], HTML))
    elif mode == "array":
        writer.write(_answer("200 OK", json, b'[{"took":1},{"hits":[]}]'))
    elif mode == "redirect":
        writer.write(_answer("302 Found", [f"Location: {redirect_to}"], b""))
    elif mode == "bad_chunk":
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    elif mode == "garbage_status":
        writer.write(b"HTTP/1.1 abc Nonsense\r\nContent-Length: 2\r\n\r\n{}")
    elif mode == "big_headers":
        writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\n{}")
    elif mode == "endless_headers":
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while not writer.is_closing():
            writer.write(b"X-More: " + b"m" * 1000 + b"\r\n")
            await writer.drain()
        return False
    elif mode == "short_body":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"took\":")
        await writer.drain()
        return False
    elif mode == "negative_length":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}")
    elif mode == "trickle":
        answer = _answer("200 OK", json, TRICKLED)
        for i in range(len(answer)):
            if writer.is_closing():
                return False
            writer.write(answer[i:i + 1])
            await writer.drain()
            await asyncio.sleep(0.5)
    elif mode == "reset":
        writer.transport.abort()
        return False
    elif mode == "http09":
        writer.write(b'{"took":1,"hits":{"hits":[]}}')  # no status line, no headers: the body, then close
        await writer.drain()
        return False
    else:
        writer.write(_answer("404 Not Found", json, b'{"error":"no such mode"}'))
    await writer.drain()
    return True
