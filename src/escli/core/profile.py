"""`escli profile`: measure query latency honestly.

Two load models:

* closed loop (`concurrency` workers, each sends its next request when the previous one is answered): latency is
  counted from the actual send, so a stall delays the next sends and the requests that would have been sent
  meanwhile are never measured (coordinated omission). It answers "how fast is one request".
* open loop (`rate` requests per second on a fixed or Poisson schedule, at most `concurrency` in flight): every
  request has an intended send time, and latency is counted from it. A request that finds every slot busy waits,
  and its wait is in its latency, as wrk2 and Rally count it. It answers "what do users see at this load".

Per request three times are taken: latency (intended send to the answer handed back), service time (the request's
bytes handed to the socket, a keep-alive connection being ours, to the last byte of the answer, both taken inside
`es.wire`'s protocol where the bytes move) and Elasticsearch's `took`. Client overhead is the part of our own call
that is not service time. The measured requests go out on `es.wire` connections (an HTTP/1.1 asyncio Protocol):
aiohttp spent ~300 µs of CPU per request here, CPU taken from the engine being measured on a shared machine.
Nothing here prints: the command renders what `run_profile` returns (a ProfileResult, core/profile_result.py).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import orjson

from escli.core.profile_result import ProfileResult
from escli.durations import parse_duration
from escli.errors import BadAnswerError, InputError, RefusedError, UnreachableError, UsageError, api_error_summary
from escli.es.answers import BAD_KINDS, SEARCH, check, parsed, problem
from escli.es.queries import QuerySpec, build_short_body, read_queries, search_target
from escli.profiler import DEFAULT_PERCENTILES, RequestStats
from escli.text import is_digits

if TYPE_CHECKING:
    from escli.es.api import Es

SCHEDULES = ("fixed", "poisson")
# The event loop's timers wake up to 1 ms late (epoll rounds its timeout up to whole ms): aim that much early so a
# send is not late by the timer alone; an early send's latency counts from its actual send.
EARLY = 0.001
# Elasticsearch and OpenSearch put `took` first in a search answer: read it there without parsing the hits.
_TOOK = re.compile(rb'^\{\s*"took"\s*:\s*(\d+)')


# --------------------------------------------------------------------------------------------------------------
# Options and workload


@dataclass(frozen=True)
class Warmup:
    requests: int = 0
    seconds: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Warmup:
        """`--warmup 50` (requests) or `--warmup 5s` (time)."""
        raw = text.strip()
        if is_digits(raw):
            return cls(requests=int(raw))
        if raw and raw[-1].isalpha():
            return cls(seconds=parse_duration(raw, "--warmup"))
        raise UsageError(f"--warmup {text}: a number of requests (50) or a duration (5s)")

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests} if not self.seconds else {"seconds": self.seconds}


@dataclass(frozen=True)
class ProfileOptions:
    iterations: int | None = 1000
    duration: float | None = None
    warmup: Warmup = field(default_factory=Warmup)
    concurrency: int = 1
    rate: float | None = None
    schedule: str = "fixed"
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
    seed: int | None = None
    # Open loop with several workers: this worker's first send comes `offset` s after the common start, so the
    # workers' fixed schedules interleave into one schedule at the whole rate.
    offset: float = 0.0

    @property
    def mode(self) -> str:
        return "open" if self.rate else "closed"


@dataclass(frozen=True)
class EncodedQuery:
    """A query ready to send again and again: target path with query string and the body's bytes."""

    spec: QuerySpec
    target: str
    body: bytes


def encode_query(spec: QuerySpec) -> EncodedQuery:
    return EncodedQuery(spec, search_target(spec), orjson.dumps(spec.body))


def single_query(index: str, text: str | None, fields: Sequence[str], size: int | None) -> QuerySpec:
    short: dict[str, Any] = {"index": index, "q": text or ""}
    if fields:
        short["fields"] = list(fields)
    if size is not None:
        short["size"] = size
    return QuerySpec(id=text or "match_all", index=index, body=build_short_body(short))


def load_workload(lines: Iterator[tuple[int, bytes]], source: str) -> list[QuerySpec]:
    """Every query of a query file; the first bad line stops with FILE:LINE (a profile needs a sound workload)."""
    specs: list[QuerySpec] = []
    seen: dict[str, int] = {}
    for item in read_queries(lines, source):
        if isinstance(item, InputError):
            raise item
        if item.id in seen:
            raise InputError(source, item.line, f'id "{item.id}" already used on line {seen[item.id]}')
        seen[item.id] = item.line
        specs.append(item)
    if not specs:
        raise UsageError(f"--queries {source}: no queries in the file")
    return specs


class Picker:
    """Weighted choice of the next query, reproducible with a seed."""

    def __init__(self, prepared: Sequence[EncodedQuery], seed: int | None) -> None:
        self.items = list(prepared)
        self.cum = list(accumulate(p.spec.weight for p in self.items))
        self.total = self.cum[-1]
        self.rng = random.Random(seed)
        self.single = len(self.items) == 1

    def __call__(self) -> EncodedQuery:
        if self.single:
            return self.items[0]
        return self.items[bisect.bisect_right(self.cum, self.rng.random() * self.total)]


# --------------------------------------------------------------------------------------------------------------
# Running


def error_kind(exc: BaseException) -> str:
    """A short, stable name for an error, used to count errors by type."""
    if isinstance(exc, UnreachableError):
        return exc.kind  # connection_error, timeout or tls_error (es/transport.failure_kind)
    name = type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "timeout"
    if "SSL" in name or "Certificate" in name:  # ssl.SSLError and its SSLCertVerificationError
        return "tls_error"
    if isinstance(exc, OSError):
        return "connection_error"
    status, etype, _ = api_error_summary(exc)
    if status is not None:
        return f"{status} {etype}"
    return name


def http_error_kind(status: int, raw: bytes) -> str:
    """`404 index_not_found_exception` from an error response body."""
    etype = "error"
    try:
        body = orjson.loads(raw)
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            root = (err.get("root_cause") or [err])[0]
            etype = str(root.get("type") or err.get("type") or etype)
    except (orjson.JSONDecodeError, AttributeError, IndexError, TypeError):
        pass
    return f"{status} {etype}"


def took_of(raw: bytes) -> int | None:
    """Elasticsearch's `took` of a search answer: read at its start, or (elsewhere) from the parsed answer."""
    m = _TOOK.match(raw)
    if m is not None:
        return int(m.group(1))
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    t = body.get("took") if isinstance(body, dict) else None
    return t if isinstance(t, int) else None


class Runner:
    """Sends the workload; `measure_from` splits warm-up from measured requests by their intended send time."""

    def __init__(self, client: Es, prepared: Sequence[EncodedQuery], opts: ProfileOptions, result: ProfileResult,
                 on_progress: Callable[[int], None], cpu_now: Callable[[], float], timeout: float | None) -> None:
        # Each query's whole request (line, headers, body) is encoded once per node by the seam's prepared form;
        # the seam's timed send (`send_once`) takes the next node's pool, as many connections as may be in flight.
        # Several clusters: the seam's router picks the member of each request and hears how it went.
        self.client = client
        self.first_bad: BadAnswerError | None = None  # the first answer that was not a search answer
        self.requests = {id(p): client.prepare("POST", p.target, body=p.body) for p in prepared}
        self.timeout = timeout
        self.opts = opts
        self.result = result
        self.pick = Picker(prepared, opts.seed)
        self.on_progress = on_progress
        self.cpu_now = cpu_now
        self.measure_from = float("inf")
        self.deadline = float("inf")
        self.cpu_start = 0.0
        self.last_end = 0.0
        self.sent = 0
        self.measured = 0  # requests sent since measuring began: what --iterations counts

    def start_measuring(self, at: float) -> None:
        self.measure_from = at
        if self.opts.duration:
            self.deadline = at + self.opts.duration
        self.cpu_start = self.cpu_now()

    def maybe_start(self, index: int, at: float, warm_until: float | None) -> None:
        if self.measure_from != float("inf"):
            return
        if (warm_until is not None and at >= warm_until) or (warm_until is None
                                                               and index >= self.opts.warmup.requests):
            self.start_measuring(at)

    async def one(self, item: EncodedQuery, intended: float) -> None:
        """Send one request; record it unless it was meant to be sent before measuring began.

        The request goes to the next node (round robin) on a keep-alive connection of its pool; waiting for a
        free connection is queueing (in latency, not in service time). No retries: each failure is counted,
        none is hidden in a longer latency. The answer's body is not parsed unless it is an error or `took` is
        not where search answers put it.
        """
        perf = time.perf_counter
        self.sent += 1
        sent = perf()
        took: int | None = None
        error: str | None = None
        service_s = 0.0
        cluster = ""
        try:
            answer = await self.client.send_once(self.requests[id(item)], self.timeout)
            cluster = answer.cluster
            service_s = answer.done_at - answer.sent_at
            if answer.status >= 400:
                error = http_error_kind(answer.status, answer.body)
            elif (bad := problem(answer.status, answer.body, answer.url, SEARCH)) is not None:
                error = bad.kind  # not a search answer (HTML, a redirect, `{}`): counted by what came back
                self.first_bad = self.first_bad or bad
            else:
                took = took_of(answer.body)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = error_kind(exc)
            cluster = exc.cluster if isinstance(exc, UnreachableError) else ""
            if isinstance(exc, BadAnswerError):
                self.first_bad = self.first_bad or exc
        end = perf()
        if intended < self.measure_from:
            return
        if end > self.last_end:
            self.last_end = end
        q = self.result.per_query[item.spec.id]
        c = self.result.per_cluster.setdefault(cluster, RequestStats()) if cluster else None
        second = int(end - self.measure_from)
        if error is not None:
            q.record_error(error)
            if c is not None:
                c.record_error(error)
            self.result.timeline.record(item.spec.id, second, None)
        else:
            service = int(service_s * 1e6)
            # Latency counts from the intended send; a send a little early (see EARLY) from its actual send.
            latency = int((end - min(intended, sent)) * 1e6)
            q.record(latency, service, took, int((end - sent) * 1e6) - service)
            if c is not None:
                c.record(latency, service, took, int((end - sent) * 1e6) - service)
            self.result.timeline.record(item.spec.id, second, latency)  # after the clock was read: not timed
        self.on_progress(1)

    def _limits(self, t0: float) -> float | None:
        """The end of a warm-up by time, or None (a warm-up by count, or none)."""
        w = self.opts.warmup
        return t0 + w.seconds if w.seconds else None

    def take(self) -> bool:
        """Once measuring has begun: claim one of --iterations' requests (False when they are all sent). The
        warm-up's requests, whatever its form, are never among them."""
        if self.measure_from == float("inf"):
            return True
        if self.opts.iterations is not None and self.measured >= self.opts.iterations:
            return False
        self.measured += 1
        return True

    async def closed(self) -> None:
        t0 = time.perf_counter()
        warm_until = self._limits(t0)
        counter = itertools.count()

        async def worker() -> None:
            perf = time.perf_counter
            while True:
                i = next(counter)
                now = perf()
                self.maybe_start(i, now, warm_until)
                if now >= self.deadline or not self.take():
                    return
                await self.one(self.pick(), now)

        await asyncio.gather(*(worker() for _ in range(self.opts.concurrency)))

    async def open(self) -> None:
        opts = self.opts
        assert opts.rate
        rate = opts.rate
        rng = random.Random(None if opts.seed is None else opts.seed + 1)
        gap: Callable[[], float] = (lambda: rng.expovariate(rate)) if opts.schedule == "poisson" else (
            lambda: 1.0 / rate)
        slots = asyncio.Semaphore(opts.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        perf = time.perf_counter
        t0 = perf()
        warm_until = self._limits(t0)
        intended = t0 + opts.offset
        lag_max = 0.0
        late = 0

        async def send(item: EncodedQuery, at: float) -> None:
            try:
                await self.one(item, at)
            finally:
                slots.release()

        i = 0
        try:
            while True:
                self.maybe_start(i, intended, warm_until)
                if intended >= self.deadline or not self.take():
                    break
                delay = intended - perf() - EARLY
                if delay > 0:
                    await asyncio.sleep(delay)
                await slots.acquire()
                now = perf()
                lag = now - intended
                if intended >= self.measure_from:
                    late += lag > 0.001
                    lag_max = max(lag_max, lag)
                task = asyncio.create_task(send(self.pick(), intended))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                intended += gap()
                i += 1
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            self.result.late_sends = late
            self.result.max_send_lag_us = int(lag_max * 1e6)
            for task in list(tasks):  # interrupted: nothing may outlive the run
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)


async def preflight(client: Es, prepared: Sequence[EncodedQuery]) -> None:
    """One request per query before any load: a query the engine refuses stops here, named by its id and line."""
    for item in prepared:
        try:
            resp = await client.request("POST", item.target, body=item.body)
            check(resp.status, resp.body, resp.url, SEARCH)
        except (RefusedError, UnreachableError) as exc:
            where = f"query {item.spec.id}" + (f" (line {item.spec.line})" if item.spec.line else "")
            if isinstance(exc, RefusedError):
                status, etype, reason = api_error_summary(exc)
                raise RefusedError(f"{where}: Elasticsearch refused it ({status} {etype}): {reason}",
                                   status, exc.body) from exc
            if exc.timed_out:
                raise UnreachableError(f"cluster unreachable: no answer to {where} within the request timeout "
                                       "(--timeout)", timed_out=True) from exc
            raise


async def run_profile(client: Es, queries: Sequence[QuerySpec], opts: ProfileOptions,
                      on_progress: Callable[[int], None] = lambda n: None, *, check_first: bool = True,
                      before_start: Callable[[], Awaitable[None]] | None = None) -> ProfileResult:
    """Run the workload and return what was measured; requests sent during warm-up are not recorded.

    `check_first`: send each query once first (a worker skips it: its parent checked). `before_start`: awaited
    once everything is ready, just before the first request (workers wait there for their common start)."""
    import psutil  # type: ignore[import-untyped]

    prepared = [encode_query(q) for q in queries]
    result = ProfileResult(opts, list(queries), per_query={q.id: RequestStats() for q in queries})
    if check_first:
        await preflight(client, prepared)
    proc = psutil.Process()
    # CLOCK_PROCESS_CPUTIME_ID, in nanoseconds: /proc's counters tick every 10 ms, so a short worker's share read 0.
    cpu_now = time.process_time

    from escli.es.routing import RoutedTransport

    routed = client.transport if isinstance(client.transport, RoutedTransport) else None
    runner = Runner(client, prepared, opts, result, on_progress, cpu_now, None)
    if routed is not None:
        result.per_cluster = {m.name: RequestStats() for m in routed.members}  # reported in the order given
    result.started_at = time.time()
    try:
        if before_start is not None:
            await before_start()
            result.started_at = time.time()
        if opts.mode == "open":
            await runner.open()
        else:
            await runner.closed()
    except asyncio.CancelledError:
        # Ctrl-C: keep what was measured; the command reports it and exits 130.
        task = asyncio.current_task()
        if task is None or not task.cancelling():
            raise
        task.uncancel()
        result.interrupted = True
    if runner.measure_from == float("inf"):  # everything was warm-up
        runner.start_measuring(time.perf_counter())
    result.cpu_seconds = cpu_now() - runner.cpu_start
    for stats in result.per_query.values():  # recorded per query only; the overall figures are their sum
        result.overall.merge(stats)
    result.seconds = max(runner.last_end - runner.measure_from, 0.0) if result.overall.requests else 0.0
    result.warmup_sent = runner.sent - result.overall.requests
    result.rss_bytes = proc.memory_info().rss
    if result.overall.requests and not result.overall.ok and runner.first_bad is not None and all(
            k in BAD_KINDS or k in ("connection_error", "timeout", "tls_error") for k in result.overall.errors):
        raise BadAnswerError(f"every request failed ({', '.join(result.overall.errors)}): {runner.first_bad}",
                             runner.first_bad.kind)
    if result.overall.requests and not result.overall.ok and all(
            k in ("connection_error", "timeout", "tls_error") for k in result.overall.errors):
        raise UnreachableError(f"cluster unreachable: every request failed ({', '.join(result.overall.errors)})")
    return result


# --------------------------------------------------------------------------------------------------------------
# The Profile API, one execution per query


async def shard_profiles(client: Es, queries: Sequence[QuerySpec]) -> list[dict[str, Any]]:
    """Each query once with `"profile": true`: its took and the per-shard breakdown Elasticsearch returns."""
    out: list[dict[str, Any]] = []
    for q in queries:
        body = {**q.body, "profile": True}
        resp = await client.request("POST", encode_query(QuerySpec(q.id, q.index, body, q.params)).target,
                                    body=orjson.dumps(body))
        data = parsed(resp.status, resp.body, resp.url, SEARCH)
        out.append({"id": q.id, "index": q.index, "took_ms": data.get("took"),
                    "shards": (data.get("profile") or {}).get("shards", [])})
    return out
