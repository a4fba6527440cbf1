"""LightTransport: HTTP/1.1 on asyncio streams, for commands that make one or a few requests.

Why not the pooled client: `import elastic_transport` costs ~0.35 s here (it imports aiohttp and urllib3) and
httpx ~0.15 s, while a one-shot `escli search` or `escli health` is over in less than that. This transport
imports nothing beyond the standard library and orjson: it keeps a few keep-alive connections per node, reads
Content-Length and chunked bodies, speaks TLS with the configured CA (or none with --insecure), and moves to the
next URL when a node cannot be reached. It never retries a request that reached the server, except once on a
reused keep-alive connection that the server had already closed (as urllib3 does).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from escli.es.transport import JSON, Endpoint, Response, Target, refused, request_target, unreachable

if TYPE_CHECKING:
    import ssl

MAX_IDLE_PER_NODE = 4


class _Stale(Exception):
    """A reused connection was closed by the server before it answered: safe to send again once."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class LightTransport:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._idle: dict[Endpoint, list[_Conn]] = {e: [] for e in target.endpoints}
        self._next = 0
        self._ssl: ssl.SSLContext | None = None
        self._host_headers = {e: self._head_prefix(e) for e in target.endpoints}
        self.last_endpoint: Endpoint = target.endpoints[0]

    def _head_prefix(self, e: Endpoint) -> bytes:
        default = 443 if e.scheme == "https" else 80
        host = e.host if e.port == default else f"{e.host}:{e.port}"
        lines = [f"Host: {host}", "Accept: application/json", "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in self.target.headers.items()]
        return ("\r\n".join(lines) + "\r\n").encode("latin-1")

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import ssl

            ctx = ssl.create_default_context(cafile=self.target.ca_certs)
            if not self.target.verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx
        return self._ssl

    async def _connect(self, e: Endpoint) -> _Conn:
        tls = self._ssl_context() if e.scheme == "https" else None
        reader, writer = await asyncio.open_connection(e.host, e.port, ssl=tls,
                                                       server_hostname=e.host if tls else None,
                                                       limit=2 ** 20)
        return _Conn(reader, writer)

    def _order(self) -> list[Endpoint]:
        """Round robin over the URLs: each request starts at the next one and falls back to the others."""
        eps = list(self.target.endpoints)
        start = self._next % len(eps)
        self._next += 1
        return eps[start:] + eps[:start]

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: bytes | None = None, content_type: str = JSON, timeout: float | None = None,
                      ignore: Collection[int] = ()) -> Response:
        limit = self.target.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        target = request_target(path, params)
        last: Exception | None = None
        for e in self._order():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left):
                    resp = await self._send(e, method, target, body, content_type)
            except TimeoutError:
                raise unreachable(e.url, f"no answer within {limit:g}s", timed_out=True) from None
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                # Connection refused, reset, TLS failure, or a broken answer: this node is out; try the next.
                last = exc
                continue
            self.last_endpoint = e
            if resp.status >= 400 and resp.status not in ignore:
                raise refused(resp.status, resp.body, resp.headers)
            return resp
        reason = _reason(last) if last is not None else f"no answer within {limit:g}s"
        raise unreachable(", ".join(x.url for x in self.target.endpoints), reason, timed_out=last is None)

    async def _send(self, e: Endpoint, method: str, target: str, body: bytes | None, ctype: str) -> Response:
        head = f"{method} {e.prefix}{target} HTTP/1.1\r\n".encode() + self._host_headers[e]
        if body is not None:
            head += f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n".encode()
        elif method in ("POST", "PUT"):
            head += b"Content-Length: 0\r\n"
        payload = head + b"\r\n" + (body or b"")
        idle = self._idle[e]
        while idle:
            conn = idle.pop()
            try:
                return await self._exchange(e, conn, method, payload, reused=True)
            except _Stale:
                conn.close()
        conn = await self._connect(e)
        try:
            return await self._exchange(e, conn, method, payload, reused=False)
        except _Stale as exc:
            raise ConnectionResetError("connection closed before the answer") from exc

    async def _exchange(self, e: Endpoint, conn: _Conn, method: str, payload: bytes, reused: bool) -> Response:
        try:
            conn.writer.write(payload)
            await conn.writer.drain()
            status_line = await conn.reader.readline()
            if not status_line:
                raise _Stale()
        except (ConnectionResetError, BrokenPipeError) as exc:
            if reused:
                raise _Stale() from exc
            conn.close()
            raise
        except BaseException:
            conn.close()
            raise
        try:
            resp, keep = await _read_rest(conn.reader, status_line, method)
        except BaseException:
            conn.close()
            raise
        if keep and len(self._idle[e]) < MAX_IDLE_PER_NODE:
            self._idle[e].append(conn)
        else:
            conn.close()
        return resp

    async def close(self) -> None:
        conns = [c for idle in self._idle.values() for c in idle]
        for idle in self._idle.values():
            idle.clear()
        for c in conns:
            c.close()
        for c in conns:
            with contextlib.suppress(OSError):
                await c.writer.wait_closed()


async def _read_rest(reader: asyncio.StreamReader, status_line: bytes, method: str) -> tuple[Response, bool]:
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    keep = parts[0] != b"HTTP/1.0" and headers.get("connection", "").lower() != "close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size_line = await reader.readline()
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return Response(status, headers, b"".join(chunks)), keep
    if "content-length" in headers:
        return Response(status, headers, await reader.readexactly(int(headers["content-length"]))), keep
    return Response(status, headers, await reader.read()), False


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
