"""LightTransport: the seam's transport for commands that make one or a few requests.

Why not the pooled client: `import elastic_transport` costs ~0.35 s here (it imports aiohttp and urllib3) and
httpx ~0.15 s, while a one-shot `escli search` or `escli health` is over in less than that. This transport sends
on `es.wire` (HTTP/1.1 on an asyncio Protocol, standard library only): a few keep-alive connections per node,
TLS with the configured CA (or none with --insecure), and the next URL when a node cannot be reached. It never
resends a request that reached the server, except once on a reused keep-alive connection that the server had
already closed (as urllib3 does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from escli.es.transport import JSON, Endpoint, Response, Target, refused, request_target, unreachable
from escli.es.wire import Pool

if TYPE_CHECKING:
    import ssl

MAX_IDLE_PER_NODE = 4
MAX_OPEN_PER_NODE = 32


def ssl_context(target: Target) -> ssl.SSLContext:
    import ssl

    ctx = ssl.create_default_context(cafile=target.ca_certs)
    if not target.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def head_prefix(target: Target, e: Endpoint) -> bytes:
    """The header lines every request to `e` carries (Host, Accept, auth, user agent), encoded once."""
    default = 443 if e.scheme == "https" else 80
    host = e.host if e.port == default else f"{e.host}:{e.port}"
    lines = [f"Host: {host}", "Accept: application/json", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in target.headers.items()]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def request_bytes(prefix: bytes, head: bytes, method: str, target: str, body: bytes | None, ctype: str) -> bytes:
    first = f"{method} {prefix.decode()}{target} HTTP/1.1\r\n".encode()
    if body is not None:
        return first + head + f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    if method in ("POST", "PUT"):
        return first + head + b"Content-Length: 0\r\n\r\n"
    return first + head + b"\r\n"


class LightTransport:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._pools: dict[Endpoint, Pool] = {}
        self._heads = {e: head_prefix(target, e) for e in target.endpoints}
        self._next = 0

    def _pool(self, e: Endpoint) -> Pool:
        pool = self._pools.get(e)
        if pool is None:
            tls = ssl_context(self.target) if e.scheme == "https" else None
            pool = self._pools[e] = Pool(e.host, e.port, tls, MAX_OPEN_PER_NODE, MAX_IDLE_PER_NODE)
        return pool

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
            payload = request_bytes(e.prefix.encode(), self._heads[e], method, target, body, content_type)
            try:
                async with asyncio.timeout(left):  # connecting and waiting for a free connection included
                    resp = await self._send(e, payload, method == "HEAD")
            except TimeoutError:
                raise unreachable(e.url, f"no answer within {limit:g}s", timed_out=True) from None
            except (OSError, ValueError) as exc:
                # Connection refused, reset, TLS failure, or a broken answer: this node is out; try the next.
                last = exc
                continue
            if resp.status >= 400 and resp.status not in ignore:
                raise refused(resp.status, resp.body, resp.headers)
            return resp
        reason = _reason(last) if last is not None else f"no answer within {limit:g}s"
        raise unreachable(", ".join(x.url for x in self.target.endpoints), reason, timed_out=last is None)

    async def _send(self, e: Endpoint, payload: bytes, head_only: bool) -> Response:
        pool = self._pool(e)
        for _ in range(2):
            conn = await pool.acquire()
            reused = conn.uses > 0
            try:
                answer = await conn.exchange(payload, head_only=head_only)
            except ConnectionResetError:
                pool.release(conn, reusable=False)
                if reused:
                    continue  # the server had closed this idle connection: send once more on a new one
                raise
            except BaseException:
                pool.release(conn, reusable=False)
                raise
            pool.release(conn, reusable=answer.keep_alive)
            return Response(answer.status, answer.headers, answer.body)
        raise ConnectionResetError("connection closed before the answer")

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        await asyncio.sleep(0)  # let the transports see their close (TLS ones say goodbye) before the loop ends


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
