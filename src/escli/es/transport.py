"""The one request path: every request escli makes goes through a Transport, and one loop owns its life.

    t = HttpTransport(target, connections=8, policy=RetryPolicy(retries=3), on_warning=print)
    resp = await t.request("POST", "/products/_search", body=b"{...}")     # Response, or an escli error
    p = t.prepare("POST", "/products/_search", body=b"{...}")               # encoded once per node
    answer = await t.send(p)                 # batch: any status back, retried by the policy
    answer = await t.send_once(p, timeout)   # profile: one try, timed where the bytes move, never retried

The loop (`send`): pick a node (es/nodes.py: round robin, dead nodes backed off), send on one of its keep-alive
connections (es/wire.py), classify the outcome (an answer, or no answer: UnreachableError), retry what the policy
retries (es/retry.py) or give up, mark the node. A connection that could not be made moves on to the next live
node at once, inside the same try (nothing reached a server, so nothing can be applied twice). `request` adds the one
error map (es/answers.py): a status of 400 or more that the caller did not `ignore` becomes a RefusedError.
Warning headers (deprecations) are handed to `on_warning` once per distinct text. Nothing above es/ imports an
HTTP library or touches nodes or connections: they call these methods (through `Es`, es/api.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from escli.errors import UnreachableError
from escli.es.answers import broken, connection_reason, redirect, refused, too_large, unreachable
from escli.es.nodes import Node, NodeSet, Prepared, nodes_from_info, prepare
from escli.es.pace import Pace
from escli.es.retry import NO_RETRY, OnRetry, RetryPolicy, retrying
from escli.es.target import JSON, NDJSON, Target
from escli.es.wire import Answer, BrokenAnswer, Connection, Pool, TooLarge

__all__ = ["JSON", "NDJSON", "Answer", "HttpTransport", "Prepared", "Response", "Transport", "TransportStats"]

SNIFF_MIN_INTERVAL = 10.0  # seconds between two sniffs after node failures
_WARNING_TEXT = re.compile(r'^\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"', re.ASCII)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names lower-cased, values as sent
    body: bytes
    url: str = ""  # where it came from: the node's URL and the path (escli's messages name it)

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass(slots=True)
class TransportStats:
    requests: int = 0  # tries sent (retries included)
    retries: int = 0
    warnings: int = 0  # distinct Warning texts seen


class Transport(Protocol):
    stats: TransportStats
    policy: RetryPolicy
    pace: Pace | None

    def prepare(self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: bytes | None = None,
                content_type: str = JSON) -> Prepared: ...

    async def send(self, p: Prepared, *, timeout: float | None = None, retry: bool = True,
                   stop: Callable[[], bool] | None = None) -> Answer: ...

    async def send_once(self, p: Prepared, timeout: float | None = None) -> Answer: ...

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: bytes | None = None, content_type: str = JSON, timeout: float | None = None,
                      ignore: Collection[int] = ()) -> Response: ...

    async def close(self) -> None: ...


def response(answer: Answer, ignore: Collection[int] = ()) -> Response:
    """The answer as a Response, or the RefusedError its status means (a redirect: the BadAnswerError that says
    it was not followed)."""
    headers = answer.headers
    if answer.status >= 400 and answer.status not in ignore:
        raise refused(answer.status, answer.body, headers)
    if 300 <= answer.status < 400 and answer.status not in ignore:
        raise redirect(answer.url, answer.status, headers.get("location"))
    return Response(answer.status, headers, answer.body, answer.url)


def bad_answer(url: str, exc: BrokenAnswer) -> UnreachableError:
    return too_large(url, exc.limit) if isinstance(exc, TooLarge) else broken(url, exc)


def failure_kind(exc: BaseException) -> str:
    """connection_error, timeout or tls_error: how a try got no answer."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    import ssl  # only on a failure: a plain-HTTP search never loads it (~10 ms of start-up)

    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls_error"
    return "connection_error"


def warning_texts(values: list[str]) -> list[str]:
    """The texts of Warning header values (`299 Elasticsearch-9.5.4-abc "text" "date"`), as sent."""
    out = []
    for value in values:
        m = _WARNING_TEXT.match(value)
        out.append(m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else value)
    return out


class HttpTransport:
    """One cluster's nodes over es/wire.py, under one retry policy (see the module doc)."""

    def __init__(self, target: Target, *, connections: int = 8, policy: RetryPolicy = NO_RETRY,
                 sniff: bool = False, on_warning: Callable[[str], None] | None = None,
                 on_retry: OnRetry | None = None, pace: Pace | None = None) -> None:
        self.target = target
        self.policy = policy
        self.pace = pace  # requests in flight, adapted to the cluster's answers (es/pace.py); None: as sent
        self.nodes = NodeSet(target, connections)
        self.stats = TransportStats()
        self.on_warning = on_warning
        self.on_retry = on_retry
        self._warned: set[str] = set()
        self._sniff = sniff
        self._sniff_due = sniff  # on start
        self._sniffed_at = -SNIFF_MIN_INTERVAL
        self._sniff_lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return ", ".join(e.url for e in self.target.endpoints)

    def prepare(self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: bytes | None = None,
                content_type: str = JSON) -> Prepared:
        return prepare(method, path, params, body, content_type)

    # -- the loop ------------------------------------------------------------------------------------------------
    async def send(self, p: Prepared, *, timeout: float | None = None, retry: bool = True,
                   stop: Callable[[], bool] | None = None) -> Answer:
        """The answer, whatever its status, after the policy's retries; UnreachableError when none came.
        `timeout` bounds the whole call, retries and pauses included (default: the target's --timeout)."""
        if self._sniff_due:
            await self._sniff_nodes()
        limit = self.target.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        tries = 0

        pace = self.pace

        async def attempt(left: float) -> Answer:
            nonlocal tries
            tries += 1
            if pace is None:
                return await self._attempt(p, left, limit)
            # Each try takes a slot of the pace, and gives it back before the policy's pause: a refused request
            # waits for room under the lowered limit instead of racing the requests still in flight.
            started = time.monotonic()
            async with pace:
                return await self._attempt(p, left - (time.monotonic() - started), limit)

        def counted(n: int, reason: str, wait: float) -> None:
            self.stats.retries += 1
            if self.on_retry is not None:
                self.on_retry(n, reason, wait)

        answer = await retrying(attempt, self.policy if retry else NO_RETRY, deadline, on_retry=counted, stop=stop)
        answer.attempts = tries
        return answer

    async def _attempt(self, p: Prepared, left: float, limit: float) -> Answer:
        """One try: the next live node, or the one after it when a connection cannot even be made."""
        last: BaseException | None = None
        started = time.monotonic()
        for node in self.nodes.order():
            remaining = left - (time.monotonic() - started)
            if remaining <= 0:
                break
            try:
                return await self._on_node(node, p, remaining)
            except _NotConnected as exc:
                last = exc.cause  # nothing reached this node: the next one may take the same request
                continue
            except TimeoutError:
                raise unreachable(node.url, f"no answer within {limit:g}s", timed_out=True) from None
        if last is None:
            raise unreachable(self.where, f"no answer within {limit:g}s", timed_out=True)
        err = unreachable(self.where, connection_reason(last))
        err.kind = failure_kind(last)
        raise err from last

    async def _on_node(self, node: Node, p: Prepared, left: float) -> Answer:
        self.stats.requests += 1
        try:
            answer = await self._exchange(node, p, left)
        except (_NotConnected, TimeoutError):
            self._node_failed(node)
            raise
        except BrokenAnswer as exc:  # past the answer bound, or not HTTP: said as what came back, not retried
            self._node_failed(node)
            raise bad_answer(node.url + p.target.partition("?")[0], exc) from exc
        except (OSError, ValueError) as exc:  # reset, TLS, or a broken answer, after the request went out
            self._node_failed(node)
            err = unreachable(node.url, connection_reason(exc))
            err.kind = failure_kind(exc)
            raise err from exc
        if answer.status in (502, 503, 504):
            self._node_failed(node)  # the node (or what is in front of it) is in trouble: try another next
        else:
            self.nodes.succeeded(node)
        if self.pace is not None:
            if answer.status == 429 or (answer.status == 503 and b"es_rejected_execution" in answer.body):
                self.pace.refused(f"{answer.status} from the server")
            elif answer.status < 400:
                self.pace.answered(answer.done_at - answer.sent_at)
        if answer.warned:
            self._warnings(answer)
        answer.node_url, answer.target = node.url, p.target
        return answer

    async def _exchange(self, node: Node, p: Prepared, left: float) -> Answer:
        pool = node.pool
        payload = node.payload(p)
        conn = pool.idle_one()  # idle connections the server closed are skipped (connection_lost)
        if conn is not None:
            # The common case under load: a kept-alive connection at once. The connection's own timer bounds the
            # exchange (one timer handle; asyncio.timeout's task machinery costs more, on every request).
            return await self._on(pool, conn, payload, p.head_only, left)
        started = time.monotonic()
        async with asyncio.timeout(left):  # waiting for a free connection, or connecting
            try:
                conn = await pool.acquire()
            except (OSError, ValueError) as exc:
                raise _NotConnected(exc) from exc
        return await self._on(pool, conn, payload, p.head_only, left - (time.monotonic() - started))

    @staticmethod
    async def _on(pool: Pool, conn: Connection, payload: bytes, head_only: bool, left: float) -> Answer:
        try:
            answer = await conn.exchange(payload, head_only=head_only, timeout=max(left, 0.001))
        except BaseException:
            # A reset is a failed try like any other, counted and paused by the policy: resending at once on a
            # reused connection would hide a real drop from --max-retries.
            pool.release(conn, reusable=False)
            raise
        pool.release(conn, reusable=answer.keep_alive)
        return answer

    def _node_failed(self, node: Node) -> None:
        self.nodes.failed(node)
        if self._sniff:
            self._sniff_due = True

    # -- profile's timed send ------------------------------------------------------------------------------------
    async def send_once(self, p: Prepared, timeout: float | None = None) -> Answer:
        """One try on the next node, never retried, never failed over: profile counts every failure. Raises
        UnreachableError with `kind` connection_error, timeout or tls_error. Service time is the answer's
        done_at - sent_at (from the bytes handed to the socket to the last byte in); waiting for a connection of
        the pool is queueing, outside it."""
        node = self.nodes.pick()
        self.stats.requests += 1
        pool = node.pool
        conn = await pool.acquire()
        try:
            answer = await conn.exchange(node.payload(p), timeout=self.target.timeout if timeout is None else timeout)
        except BaseException as exc:
            pool.release(conn, reusable=False)
            if isinstance(exc, BrokenAnswer):
                self.nodes.failed(node)
                raise bad_answer(node.url + p.target.partition("?")[0], exc) from exc
            if isinstance(exc, OSError | ValueError):
                self.nodes.failed(node)
                err = unreachable(node.url, connection_reason(exc), timed_out=isinstance(exc, TimeoutError))
                err.kind = failure_kind(exc)
                raise err from exc
            raise
        pool.release(conn, reusable=answer.keep_alive)
        if answer.warned:
            self._warnings(answer)
        answer.node_url, answer.target = node.url, p.target
        return answer

    # -- the request most callers make ---------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: bytes | None = None, content_type: str = JSON, timeout: float | None = None,
                      ignore: Collection[int] = ()) -> Response:
        answer = await self.send(self.prepare(method, path, params=params, body=body, content_type=content_type),
                                 timeout=timeout)
        return response(answer, ignore)

    # -- warnings and sniffing -----------------------------------------------------------------------------------
    def _warnings(self, answer: Answer) -> None:
        for text in warning_texts(answer.header_values("warning")):
            if text not in self._warned:
                self._warned.add(text)
                self.stats.warnings += 1
                if self.on_warning is not None:
                    self.on_warning(text)

    async def _sniff_nodes(self) -> None:
        async with self._sniff_lock:
            if not self._sniff_due or time.monotonic() - self._sniffed_at < SNIFF_MIN_INTERVAL:
                self._sniff_due = False
                return
            self._sniff_due = False
            self._sniffed_at = time.monotonic()
            p = self.prepare("GET", "/_nodes/_all/http", params={"filter_path": "nodes.*.http.publish_address"})
            try:
                answer = await retrying(lambda left: self._attempt(p, left, self.target.timeout), NO_RETRY,
                                        time.monotonic() + self.target.timeout)
            except UnreachableError:
                return  # the nodes given stay; the request that follows reports the failure
            if answer.status != 200:
                return
            try:
                info = orjson.loads(answer.body)
            except orjson.JSONDecodeError:
                return
            self.nodes.replace(nodes_from_info(info, self.target.endpoints[0]))

    async def close(self) -> None:
        self.nodes.close()
        await asyncio.sleep(0)  # let the transports see their close (TLS ones say goodbye) before the loop ends


class _NotConnected(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause
