"""HTTP/1.1 on an asyncio Protocol: the one small HTTP client escli owns, for the light transport and profile.

Why our own: a one-shot command must not import aiohttp (~0.28 s) or elastic_transport (~0.35 s), and profile's
load generator must cost the machine it measures as little as possible (aiohttp spends ~300 µs of CPU per
request here; wrk ~30 µs). A request here is one `transport.write` of bytes built once; the answer is parsed in
`data_received` (status line, headers, Content-Length or chunked body) and the moment its last byte arrived is
recorded there, so service time is measured where the bytes move, without hooks.

    conn = await Connection.open(host, port, ssl_context, server_hostname)
    answer = await conn.exchange(payload)       # Answer(status, headers, body, sent_at, done_at)

A connection carries one request at a time (no pipelining). `Pool` keeps idle keep-alive connections per
endpoint and bounds how many are open at once; waiting for a free one is queueing, not service.

Whatever answers is bounded: a body (chunked, Content-Length or until close) larger than `max_answer` bytes, or a
gzip body that would inflate past it, fails the exchange with `TooLarge` as soon as that is known (a
Content-Length above the bound at once, before any of its bytes) and the connection is closed, so memory stays
below the bound whatever the server sends. Chunked bodies keep only the decoded bytes (each piece of the raw
buffer is dropped once decoded); gzip inflates with a `max_length`, so a bomb never materialises. An answer
that breaks HTTP/1.1's framing (a status line, a Content-Length, a chunk header that is not one) fails with
`BrokenAnswer`, which says what came back in a few words; es/answers.py turns both into escli's one line.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from escli.settings import DEFAULT_MAX_ANSWER

if TYPE_CHECKING:
    import ssl

_perf = time.perf_counter
_HEX = b"0123456789abcdefABCDEF"
LINE_LIMIT = 65536  # the header block, one chunk-size line, the trailers


class BrokenAnswer(ValueError):
    """An answer that is not HTTP/1.1 as it must be; the message says what came back (`a bad chunk header`)."""


class TooLarge(BrokenAnswer):
    """A body past the answer bound (`max_answer` bytes, inflated size included)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"an answer larger than the bound of {limit} bytes")
        self.limit = limit


@dataclass(slots=True)
class Answer:
    status: int
    head: bytes  # the header block as sent, parsed only when asked (`headers`): profile never asks
    body: bytes
    sent_at: float  # perf_counter when the request was handed to the socket
    done_at: float  # perf_counter when the answer's last byte arrived
    keep_alive: bool
    warned: bool = False  # the answer carries a Warning header (a deprecation, usually)
    attempts: int = 1  # tries it took (set by the transport's retry loop)
    cluster: str = ""  # several clusters: the member that answered (set by es/routing.py)
    node_url: str = ""  # the node's base URL and the request's target (set by the transport; see `url`)
    target: str = ""

    @property
    def url(self) -> str:
        """Where the answer came from, as escli's messages name it: the node's URL and the path, no query."""
        return self.node_url + self.target.partition("?")[0]

    @property
    def headers(self) -> dict[str, str]:
        """Names lower-cased, values as sent (a repeated header: its last value; see `header_values`)."""
        out: dict[str, str] = {}
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            out[name.strip().lower()] = value.strip()
        return out

    def header(self, name: str) -> str | None:
        """One header's value (name in lower case), without parsing the others."""
        value = _header(self.head.lower(), name.encode("latin-1"), self.head)
        return None if value is None else value.decode("latin-1")

    def header_values(self, name: str) -> list[str]:
        """Every value of a header that may repeat (Warning), in order."""
        out = []
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name:
                out.append(value.strip())
        return out


def _header(head: bytes, name: bytes, original: bytes | None = None) -> bytes | None:
    """One header's value from a lower-cased header block (from `original`, same offsets, when given)."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    end = head.find(b"\r\n", start)
    return (original if original is not None else head)[start:end if end >= 0 else len(head)].strip()


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `exchange` sends a whole request and returns the whole answer."""

    def __init__(self, max_answer: int = DEFAULT_MAX_ANSWER) -> None:
        self.max_answer = max_answer  # bytes a body may have, inflated (settings: max_answer_mb)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[Answer] | None = None
        self._buf = bytearray()
        self._head: tuple[int, bytes, bool] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._need = -1  # body bytes still expected (Content-Length); -2: chunked; -3: until close
        self._body_start = 0
        self._chunks = _Chunks()  # a chunked body, decoded as its pieces arrive
        self._sent_at = 0.0
        self._head_only = False
        self._warned = False
        self._gzip = False
        self.uses = 0  # answers received on this connection (a reused one may have been closed by the server)

    @classmethod
    async def open(cls, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                   max_answer: int = DEFAULT_MAX_ANSWER) -> Connection:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: cls(max_answer), host, port, ssl=ssl_context,
                                                server_hostname=host if ssl_context is not None else None)
        return proto

    # -- asyncio.Protocol ----------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        w = self._waiter
        if w is not None and not w.done():
            if self._need == -3 and self._head is not None and exc is None:
                try:
                    self._finish(bytes(self._buf[self._body_start:]), keep=False)
                except BrokenAnswer as broken:  # a gzip body that does not inflate, or inflates past the bound
                    w.set_exception(broken)
            elif self._head is None and self._buf and exc is None and not self._buf.startswith(b"HTTP/"[:len(
                    self._buf)]):
                # Bytes, then the end, and never a status line: an HTTP/0.9 server or something else on the port.
                w.set_exception(BrokenAnswer(f"something that is not an HTTP answer: {bytes(self._buf[:60])!r}"))
            else:
                w.set_exception(exc or ConnectionResetError("connection closed before the answer"))

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.closed = True  # bytes nobody asked for: this connection cannot be trusted again
            if self.transport is not None:
                self.transport.close()
            return
        self._buf += data
        try:
            self._advance()
        except Exception as exc:  # a broken answer
            # The waiter can be done by now: Ctrl-C's handler runs between any two bytecodes, and cancelling the
            # task cancels the future it awaits, synchronously, in the middle of this callback.
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(exc)
            self.close()

    # -- requests ------------------------------------------------------------------------------------------------
    async def exchange(self, payload: bytes, *, head_only: bool = False, timeout: float | None = None) -> Answer:
        """The answer to `payload`; TimeoutError (and the connection closed) after `timeout` seconds."""
        if self.closed or self.transport is None:
            raise ConnectionResetError("connection closed")
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._buf.clear()
        self._head = None
        self._need = -1
        self._head_only = head_only
        # One timer handle instead of asyncio.timeout's task cancellation: it is on every request of profile.
        self._timer = loop.call_later(timeout, self._time_out) if timeout is not None else None
        self._sent_at = _perf()
        self.transport.write(payload)
        try:
            return await self._waiter
        finally:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _time_out(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(TimeoutError())
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- parsing -------------------------------------------------------------------------------------------------
    def _advance(self) -> None:
        buf = self._buf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0 or end > LINE_LIMIT:
                if len(buf) > LINE_LIMIT:
                    raise BrokenAnswer("headers larger than 64 KiB")
                return
            raw = bytes(buf[:end])
            head = raw.lower()
            first = head[:head.find(b"\r\n")] if b"\r\n" in head else head
            parts = first.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"http/") or not parts[1].isdigit():
                raise BrokenAnswer(f"something that is not an HTTP answer: {bytes(raw[:60])!r}")
            status = int(parts[1])
            keep = parts[0] != b"http/1.0" and _header(head, b"connection") != b"close"
            if 100 <= status < 200:  # an interim answer (100 Continue): skip it
                del buf[:end + 4]
                self._advance()
                return
            self._head = (status, raw, keep)
            self._warned = b"\r\nwarning:" in head
            self._gzip = _header(head, b"content-encoding") == b"gzip"
            self._body_start = end + 4
            self._chunks = _Chunks(end + 4, self.max_answer)
            length = _header(head, b"content-length")
            if self._head_only or status in (204, 304):
                self._need = 0
            elif b"chunked" in (_header(head, b"transfer-encoding") or b""):
                self._need = -2
            elif length is not None:
                if not length.isdigit():
                    raise BrokenAnswer(f"a Content-Length that is not a length: {bytes(length[:30])!r}")
                self._need = int(length)
                if self._need > self.max_answer:
                    raise TooLarge(self.max_answer)  # said before a byte of it came: not one is read
            else:
                self._need = -3
        start, keep = self._body_start, self._head[2]
        if self._need >= 0:
            if len(buf) - start >= self._need:
                # One copy through a view (a bytearray slice would be a second one: three bodies at the peak).
                with memoryview(buf) as view:
                    body = bytes(view[start:start + self._need])
                self._finish(body, keep=keep)
        elif self._need == -3:
            if len(buf) - start > self.max_answer:
                raise TooLarge(self.max_answer)
        elif self._need == -2:
            whole = self._chunks.feed(buf)
            if whole is not None:
                self._finish(whole, keep=keep)

    def _finish(self, body: bytes, keep: bool) -> None:
        assert self._head is not None and self._waiter is not None
        status, head, _ = self._head
        if not keep:
            self.closed = True
        self.uses += 1
        done_at = _perf()
        if self._gzip and body:
            body = inflate(body, self.max_answer)
        if not self._waiter.done():  # cancelled meanwhile (see data_received): the answer is dropped
            self._waiter.set_result(Answer(status, head, body, self._sent_at, done_at, keep, self._warned))


class _Chunks:
    """A chunked body decoded incrementally: each piece of the answer is scanned once (a page of hits arrives in
    dozens of pieces; decoding from the start on each one copied the body over and over), and the raw bytes
    decoded are dropped from the buffer, so an endless answer holds at most the bound, not twice it."""

    __slots__ = ("limit", "out", "pos", "size")

    def __init__(self, pos: int = 0, limit: int = 0) -> None:
        self.pos = pos  # where the next chunk-size line starts in the buffer
        # The decoded pieces, apart until the end: a growing buffer is copied as it grows (twice the bound).
        self.out: list[bytes] = []
        self.size = 0
        self.limit = limit

    def feed(self, buf: bytearray) -> bytes | None:
        """The whole body once its last chunk and trailers are in `buf`, else None (and remember how far)."""
        pos = self.pos
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > LINE_LIMIT:
                    raise BrokenAnswer("a chunk header longer than 64 KiB")
                break
            line = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
            if not line or line.strip(_HEX):
                raise BrokenAnswer(f"a bad chunk header: {bytes(buf[pos:min(eol, pos + 30)])!r}")
            size = int(line, 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", eol)  # trailers (usually none) end with an empty line
                if end >= 0:
                    return b"".join(self.out)
                if len(buf) - eol > LINE_LIMIT:
                    raise BrokenAnswer("trailers larger than 64 KiB")
                break
            if self.size + size > self.limit:
                raise TooLarge(self.limit)  # said by the chunk header: its bytes are not waited for
            if len(buf) < eol + 2 + size + 2:
                break
            self.out.append(bytes(buf[eol + 2:eol + 2 + size]))
            self.size += size
            pos = eol + 2 + size + 2
        # Drop what was decoded (bytearray deletes at the front in place): the buffer holds one piece at most.
        del buf[:pos]
        self.pos = 0
        return None


def inflate(body: bytes, limit: int) -> bytes:
    """A gzip body (one member or several) inflated, never past `limit` bytes: TooLarge instead. The pieces are
    kept apart until the end (a growing buffer would be copied as it grows: twice the bound at its peak)."""
    import zlib

    pieces: list[bytes] = []
    size = 0
    rest = body
    try:
        while rest:
            d = zlib.decompressobj(wbits=31)
            piece = d.decompress(rest, limit + 1 - size)
            size += len(piece)
            if size > limit:
                raise TooLarge(limit)
            if not d.eof:
                raise BrokenAnswer("a gzip body cut short")
            pieces.append(piece)
            rest = d.unused_data.lstrip(b"\0")
    except zlib.error:
        raise BrokenAnswer("a gzip body that does not inflate") from None
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


async def wait_in_line(waiters: deque[asyncio.Future[None]]) -> None:
    """Wait until the holder of a slot wakes us (the first waiter's future set); leave the line if cancelled."""
    fut = asyncio.get_running_loop().create_future()
    waiters.append(fut)
    try:
        await fut
    finally:
        if fut in waiters:
            waiters.remove(fut)


class Pool:
    """Keep-alive connections to one endpoint: at most `limit` open; `acquire` waits (queues) beyond that."""

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None, limit: int,
                 max_idle: int | None = None, max_answer: int = DEFAULT_MAX_ANSWER) -> None:
        self.host, self.port, self.ssl_context = host, port, ssl_context
        self.limit = limit
        self.max_answer = max_answer
        self.max_idle = limit if max_idle is None else max_idle
        self.idle: deque[Connection] = deque()
        self.open_count = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def idle_one(self) -> Connection | None:
        """An idle open connection at once, or None (then `acquire` may connect or wait)."""
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
            self.open_count -= 1
        return None

    async def acquire(self) -> Connection:
        while True:
            while self.idle:
                conn = self.idle.pop()
                if not conn.closed:
                    return conn
                self.open_count -= 1
            if self.open_count < self.limit:
                self.open_count += 1
                try:
                    return await Connection.open(self.host, self.port, self.ssl_context, self.max_answer)
                except BaseException:
                    self.open_count -= 1
                    self._wake()
                    raise
            await wait_in_line(self._waiters)

    def release(self, conn: Connection, reusable: bool) -> None:
        if reusable and not conn.closed and len(self.idle) < self.max_idle:
            self.idle.append(conn)
        else:
            conn.close()
            self.open_count -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()
        self.open_count = 0
