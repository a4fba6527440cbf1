"""A small HTTP/1.1 proxy in front of the real engine that injects faults, for retry tests.

    with FaultProxy(ES_URL) as proxy:
        proxy.fail(429, times=3, retry_after="1")      # the next 3 requests get 429 with Retry-After: 1
        proxy.fail(503, times=2, match=b"camera")     # 2 requests whose target or body contains b"camera"
        proxy.drop(times=2)                           # read the request, then close the connection, no answer
        proxy.delay(0.5, times=5, match=b"laptop")    # forward those 5 only after half a second
        proxy.refuse_first_try(429, retry_after="0")  # the first try of each distinct request gets 429
        proxy.limit_in_flight(2)                      # 429 for a request that arrives while 2 are in flight
        proxy.warn('"[x] is deprecated"')             # a Warning: 299 header on every forwarded answer
        proxy.misbehave("html", match=b"/_bulk")      # bad_server.py's misbehaviours, on the requests matched
        cli("--url", proxy.url, "batch", ...)
        assert proxy.injected == 7

Rules are tried in the order they were added; the first one that matches and has times left answers the request
(and uses one up); every other request goes to the engine unchanged. It listens on 127.0.0.1 on a free port, runs
its own event loop in a daemon thread, and is bounded: at most `max_connections` clients, `max_body` bytes per
request, idle connections closed after `idle_timeout` seconds, and it stops itself after `lifetime` seconds
whatever the test does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.support.loop_server import LoopServer


@dataclass
class Rule:
    kind: str  # "status", "drop", "delay" or "misbehave"
    times: int
    status: int = 0
    seconds: float = 0.0
    retry_after: str | None = None
    match: bytes | None = None
    hits: int = 0
    error_type: str | None = None  # the error body's type (default: es_rejected_execution_exception for 429)
    mode: str = ""  # misbehave: a tests/support/bad_server.py MODE
    after: int = 0  # let this many matching requests through first
    passed: int = 0

    def applies(self, head: bytes, body: bytes) -> bool:
        if self.hits >= self.times or not (self.match is None or self.match in head or self.match in body):
            return False
        if self.passed < self.after:
            self.passed += 1
            return False
        return True


@dataclass
class Request:
    method: str
    target: str
    body: bytes
    fault: str | None  # "429", "503", "drop" or None when forwarded (also when only delayed)
    at: float = 0.0  # time.monotonic() when the request had been read


REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout", 400: "Bad Request"}


@dataclass
class FaultProxy(LoopServer):
    thread_name = "fault-proxy"

    upstream: str
    max_connections: int = 64
    max_body: int = 16 * 1024 * 1024
    idle_timeout: float = 30.0
    lifetime: float = 300.0
    rules: list[Rule] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    in_flight_limit: int | None = None  # refuse (limit_status) a request arriving while this many are in flight
    limit_status: int = 429
    limit_hold: float = 0.0  # seconds a request under the limit is held before it is forwarded
    first_try_status: int | None = None  # answer the first try of each distinct request with this status
    warnings: list[str] = field(default_factory=list)  # Warning header texts added to forwarded answers
    in_flight: int = 0
    max_in_flight: int = 0  # the most requests forwarded at once (after the limit's refusals)
    _seen: set[bytes] = field(default_factory=set)

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._up_host = parts.hostname or "127.0.0.1"
        self._up_port = parts.port or 80
        self._lock = threading.Lock()
        self._connections = 0
        self._init_loop_server()

    # -- rules (callable from the test's thread) --

    def fail(self, status: int, times: int = 1, retry_after: str | None = None, match: bytes | None = None,
             error_type: str | None = None) -> Rule:
        rule = Rule("status", times, status=status, retry_after=retry_after, match=match, error_type=error_type)
        with self._lock:
            self.rules.append(rule)
        return rule

    def drop(self, times: int = 1, match: bytes | None = None) -> Rule:
        rule = Rule("drop", times, match=match)
        with self._lock:
            self.rules.append(rule)
        return rule

    def delay(self, seconds: float, times: int = 1_000_000, match: bytes | None = None) -> Rule:
        rule = Rule("delay", times, seconds=seconds, match=match)
        with self._lock:
            self.rules.append(rule)
        return rule

    def misbehave(self, mode: str, times: int = 1_000_000, match: bytes | None = None, after: int = 0) -> Rule:
        """Answer the matching requests (after the first `after` of them) as bad_server.py's MODE does."""
        rule = Rule("misbehave", times, match=match, mode=mode, after=after)
        with self._lock:
            self.rules.append(rule)
        return rule

    def refuse_first_try(self, status: int = 429, retry_after: str | None = "0") -> None:
        """What a busy load balancer does: each distinct request (method, target, body) is refused once."""
        with self._lock:
            self.first_try_status = status
            self._first_retry_after = retry_after
            self._seen.clear()

    def limit_in_flight(self, limit: int, status: int = 429, retry_after: str | None = None,
                        hold: float = 0.0) -> None:
        """Refuse with `status` any request that arrives while `limit` forwarded ones wait for the engine. `hold`:
        keep each forwarded request that long before it goes on, so that a client sending more than `limit` at
        once meets the limit whatever the engine's speed."""
        with self._lock:
            self.in_flight_limit = limit
            self.limit_status = status
            self._limit_retry_after = retry_after
            self.limit_hold = hold

    def warn(self, text: str) -> None:
        """Add `Warning: 299 Elasticsearch-9.0.0 "TEXT"` (TEXT as given, quotes included) to forwarded answers."""
        with self._lock:
            self.warnings.append(text)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.requests.clear()
            self.in_flight_limit = None
            self.limit_hold = 0.0
            self.first_try_status = None
            self.warnings.clear()
            self._seen.clear()
            self.max_in_flight = 0

    @property
    def refused(self) -> int:
        """Requests answered with an injected status (rules, the in-flight limit, first tries)."""
        with self._lock:
            return sum(1 for r in self.requests if r.fault not in (None, "drop"))

    @property
    def injected(self) -> int:
        with self._lock:
            return sum(r.hits for r in self.rules)

    @property
    def forwarded(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.fault is None)

    # -- one client connection --

    def _choose(self, head: bytes, body: bytes) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.applies(head, body):
                    rule.hits += 1
                    return rule
            if self.first_try_status is not None:
                key = _request_key(head, body)
                if key not in self._seen:
                    self._seen.add(key)
                    return Rule("status", 1, status=self.first_try_status, retry_after=self._first_retry_after,
                                hits=1)
            if self.in_flight_limit is not None and self.in_flight >= self.in_flight_limit:
                return Rule("status", 1, status=self.limit_status, retry_after=self._limit_retry_after, hits=1)
            self.in_flight += 1  # forwarded: counted until its answer is written
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return None

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= self.max_connections:
            writer.close()
            return
        self._connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await asyncio.wait_for(_read_message(reader, self.max_body, request=True),
                                                 self.idle_timeout)
                if request is None:
                    return
                head, body = request
                method, target = _request_line(head)
                rule = self._choose(head, body)
                with self._lock:
                    fault = None if rule is None or rule.kind == "delay" else (
                        rule.kind if rule.kind in ("drop", "misbehave") else str(rule.status))
                    self.requests.append(Request(method, target, body, fault, time.monotonic()))
                if rule is not None and rule.kind == "drop":
                    writer.transport.abort()
                    return
                if rule is not None and rule.kind == "misbehave":
                    from tests.support.bad_server import misbehave

                    if not await misbehave(rule.mode, writer):
                        return
                    continue
                if rule is not None and rule.kind == "status":
                    writer.write(_error_response(rule.status, rule.retry_after, rule.error_type))
                    await writer.drain()
                    continue
                try:
                    if rule is not None:  # a delay
                        with self._lock:
                            self.in_flight += 1
                            self.max_in_flight = max(self.max_in_flight, self.in_flight)
                        await asyncio.sleep(rule.seconds)
                    elif self.in_flight_limit is not None and self.limit_hold:
                        await asyncio.sleep(self.limit_hold)
                    if upstream is None:
                        upstream = await asyncio.open_connection(self._up_host, self._up_port, limit=64 * 1024)
                    up_reader, up_writer = upstream
                    up_writer.write(_with_content_length(head, body) + body)
                    await up_writer.drain()
                    response = await asyncio.wait_for(
                        _read_message(up_reader, 1 << 30, request=False, no_body=method == "HEAD"),
                        self.idle_timeout)
                finally:
                    self._done()
                if response is None:
                    return
                answer_head = response[0]
                with self._lock:
                    extra = [f'warning: 299 Elasticsearch-9.0.0 {w}'.encode() for w in self.warnings]
                if extra:
                    answer_head = b"\r\n".join([answer_head, *extra])
                if method == "HEAD":
                    writer.write(answer_head + b"\r\n\r\n")
                else:
                    writer.write(_with_content_length(answer_head, response[1]) + response[1])
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._connections -= 1
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            if upstream is not None:
                upstream[1].close()
            if not writer.transport.is_closing():
                writer.close()


def _request_key(head: bytes, body: bytes) -> bytes:
    return head.split(b"\r\n", 1)[0] + b"\n" + body


def _request_line(head: bytes) -> tuple[str, str]:
    first = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    return (first[0], first[1]) if len(first) >= 2 else ("?", "?")


def _headers(head: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            out[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return out


async def _read_message(reader: asyncio.StreamReader, max_body: int, request: bool, no_body: bool = False
                        ) -> tuple[bytes, bytes] | None:
    """(head without its blank line, body) of one HTTP/1.1 message; None at a clean end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    head = head[:-4]
    headers = _headers(head)
    if no_body:
        return head, b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            if len(body) + size > max_body:
                raise ValueError("body too large")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return head, bytes(body)
    length = int(headers.get("content-length", "0"))
    if length > max_body:
        raise ValueError("body too large")
    if not request and "content-length" not in headers:
        status = head.split(b" ", 2)[1] if b" " in head else b""
        if status not in (b"204", b"304"):
            return head, await reader.read()  # read to close
    return head, await reader.readexactly(length) if length else b""


def _with_content_length(head: bytes, body: bytes) -> bytes:
    """The head with Transfer-Encoding dropped and a Content-Length for the (de-chunked) body."""
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith((b"transfer-encoding:", b"content-length:"))]
    lines.append(b"content-length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _error_response(status: int, retry_after: str | None, error_type: str | None = None) -> bytes:
    reason = REASONS.get(status, "Error")
    kind = error_type or ("es_rejected_execution_exception" if status == 429 else "fault_proxy_error")
    body = (b'{"error":{"root_cause":[{"type":"%s","reason":"injected by the fault proxy"}],"type":"%s",'
            b'"reason":"injected by the fault proxy"},"status":%d}' % (kind.encode(), kind.encode(), status))
    head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", "x-elastic-product: Elasticsearch",
            f"content-length: {len(body)}"]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
