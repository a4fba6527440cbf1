"""`escli batch`: run a query file at full speed, one NDJSON result line per query, in constant memory.

    stats = BatchStats()
    async with aclosing(run_batch(client, queries, BatchOptions(concurrency=8), stats, on_bad)) as batches:
        async for lines in batches:          # lists of result lines (bytes), in output order
            await writer.write_lines(lines)  # the window slots of these lines are freed when we ask for more

Flow: the input is read by one producer, which takes one slot of a bounded *window* per query before it hands
the query (or a group of `--msearch N` queries) to a bounded work queue; `concurrency` workers send them. Results
go out in completion order, or with `ordered` in input order through a reorder buffer. A query's slot is given
back only when the consumer has taken its line and come back for more, so the window bounds everything at once:
queries in flight, results waiting for an earlier one (ordered), and lines waiting for a slow stdout. When the
window is full the producer stops reading, and a pipe feeding the input fills up: backpressure end to end.

Retries: whole requests are retried by the transport's one policy (es/retry.py: 429/502/503/504, connection
errors, timeouts; full jitter; Retry-After); _msearch items refused with one of those statuses inside a 200 are
sent again here, after the same policy's pause.

A query that still fails becomes an `{"ok": false}` line. When requests keep failing to connect (`concurrency`
in a row, at least 3), or nothing at all could be reached, the run stops with UnreachableError (exit 3).

`fail_fast`: a failed query stops the run (nothing new is sent, queued queries are skipped, those in flight
finish without further retries); a bad line stops the reading (the queries before it are still answered).

Each query is encoded once and sent with `Es.send` (the seam's prepared-request path: no header building or
response wrapping per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from escli.errors import BadAnswerError, InputError, UnreachableError, error_summary
from escli.es.answers import MSEARCH, SEARCH, Need, connection_reason, parsed
from escli.es.queries import QuerySpec, search_target
from escli.es.retry import RETRY_ON_STATUS
from escli.es.target import JSON, NDJSON
from escli.profiler import Histogram

if TYPE_CHECKING:
    from escli.core.search import Memo
    from escli.es.api import Es
    from escli.es.transport import Answer
# In an _msearch, these parameters go in the header line of each search ...
MSEARCH_HEADER_PARAMS = frozenset({"preference", "routing", "request_cache", "search_type",
                                   "allow_partial_search_results", "ignore_unavailable", "allow_no_indices",
                                   "expand_wildcards"})
# ... and these in its body, where the search API accepts them too.
MSEARCH_BODY_PARAMS = frozenset({"timeout", "terminate_after", "track_total_hits", "explain", "version",
                                 "seq_no_primary_term", "stored_fields"})
# The execution settings (es/queries.EXECUTION_PARAMS) have no per-search place in an _msearch: they are dropped
# there, which changes nothing but how the searches run.
_LINE = orjson.OPT_APPEND_NEWLINE


@dataclass(frozen=True)
class BatchOptions:
    concurrency: int = 8
    msearch: int = 0  # 0 or 1: one _search per query; N > 1: _msearch requests of N queries
    ordered: bool = False
    fail_fast: bool = False
    window: int = 0  # queries between the reader and stdout; 0 = automatic

    @property
    def group_size(self) -> int:
        return max(1, self.msearch)

    @property
    def window_size(self) -> int:
        return self.window or max(64, 4 * self.concurrency * self.group_size)

    @property
    def unreachable_after(self) -> int:
        return max(3, self.concurrency)


@dataclass
class BatchStats:
    queries: int = 0  # answered: ok + failed
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # read but not run because --fail-fast stopped the run
    bad_lines: int = 0
    retries: int = 0
    requests: int = 0
    connection_failures: int = 0  # queries that failed because the cluster could not be reached
    partial: int = 0  # fan-out: queries answered without some cluster's hits
    cache_hits: int = 0  # answered from the memory cache level (a query repeated in the file)
    error_types: Counter[str] = field(default_factory=Counter)
    latency_us: Histogram = field(default_factory=Histogram)
    first_bad: InputError | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def rate(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        lat = self.latency_us
        pct = dict(zip(("p50", "p90", "p99", "max"), (v / 1000 for v in lat.values_at([50, 90, 99, 100])),
                       strict=True)) if lat.count else {}
        return {
            "queries": self.queries, "ok": self.ok, "failed": self.failed, "skipped": self.skipped,
            "bad_lines": self.bad_lines, "retries": self.retries, "requests": self.requests,
            "cache_hits": self.cache_hits, **({"partial": self.partial} if self.partial else {}),
            "seconds": round(self.seconds, 3), "queries_per_second": round(self.rate, 1),
            "latency_ms": {k: round(v, 2) for k, v in pct.items()}, "errors": dict(self.error_types.most_common()),
        }


# --- building requests -------------------------------------------------------------------------------------------

def _body_value(value: Any, name: str = "") -> Any:
    if name == "stored_fields" and isinstance(value, str):  # the URL's a,b is a list in a body
        return value.split(",")
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def msearch_lines(spec: QuerySpec) -> bytes:
    """The header and body lines of one query inside an _msearch request."""
    header: dict[str, Any] = {"index": spec.index}
    body = spec.body
    for name, value in spec.params.items():
        if name in MSEARCH_HEADER_PARAMS:
            header[name] = value
        elif name in MSEARCH_BODY_PARAMS and name not in body:
            if body is spec.body:
                body = dict(body)
            body[name] = _body_value(value, name)
    return orjson.dumps(header) + b"\n" + orjson.dumps(body) + b"\n"


def msearch_body(specs: list[QuerySpec]) -> bytes:
    return b"".join(msearch_lines(s) for s in specs)


# --- result lines ------------------------------------------------------------------------------------------------

def success_line(qid: str, response: dict[str, Any], latency_ms: float, cache: str | None = None,
                 cluster: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
    """`{"id","ok":true,"took_ms","latency_ms","total","hits":[...]}`; aggregations, a timeout or failed shards
    are added when the response has them; with several clusters, `cluster` (who answered) or a fan-out's
    `clusters` (per cluster took, total, error) and `partial`."""
    hits = response.get("hits") or {}
    total = hits.get("total")
    if isinstance(total, dict):
        total = total.get("value")
    line: dict[str, Any] = {"id": qid, "ok": True, "took_ms": response.get("took"),
                            "latency_ms": round(latency_ms, 3), "total": total, "hits": hits.get("hits") or []}
    if "aggregations" in response:
        line["aggregations"] = response["aggregations"]
    if cache is not None:
        line["cache"] = cache
    if cluster is not None:
        line["cluster"] = cluster
    if extra:
        line.update(extra)
    if response.get("timed_out"):
        line["timed_out"] = True
    shards = response.get("_shards")
    if isinstance(shards, dict) and shards.get("failed"):
        line["shards_failed"] = shards["failed"]
    return orjson.dumps(line, option=_LINE)


def failure_line(qid: str, etype: str, reason: str, status: int | None) -> bytes:
    return orjson.dumps({"id": qid, "ok": False, "error": {"type": etype, "reason": reason, "status": status}},
                        option=_LINE)


# --- the run -----------------------------------------------------------------------------------------------------

Outcome = tuple[int, bytes | None]  # (sequence number, result line or None for a skipped query)


@dataclass(slots=True)
class Reply:
    status: int
    body: Any  # the parsed JSON answer, or its text when it is not JSON
    duration: float  # seconds, from the request's first byte out to the answer's last byte in
    raw: bytes | None = None  # the answer's bytes (the memory cache level keeps them as they came)
    cluster: str | None = None  # several clusters: the one that answered
    extra: dict[str, Any] | None = None  # fan-out: per-cluster took/total/error for the result line
    bad: BadAnswerError | None = None  # an answer that is not what the request needs (es/answers.py)


def reply_of(answer: Answer, need: Need = SEARCH) -> Reply:
    """The answer read: a status below 400 through the one check (es/answers.parsed), an error's body as well as
    it can be read (JSON, else its text)."""
    raw = answer.body
    bad: BadAnswerError | None = None
    data: Any = None
    if answer.status < 400:
        try:
            data = parsed(answer.status, raw, answer.url, need, answer.header("location"))
        except BadAnswerError as exc:
            bad = exc
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = raw.decode("utf-8", "replace").strip()[:500]
    return Reply(answer.status, data, answer.done_at - answer.sent_at, raw, answer.cluster or None, bad=bad)


def reply_error(reply: Reply) -> tuple[str, str]:
    """(type, reason) of an error answer."""
    return error_summary(reply.status, reply.body)


class _Run:
    def __init__(self, client: Es, opts: BatchOptions, stats: BatchStats,
                 on_bad: Callable[[InputError], None], memo: Memo | None = None) -> None:
        from escli.es.routing import RoutedTransport
        from escli.strategies import FAN_OUT

        self.client = client
        self.policy = client.retry_policy
        t = client.transport
        self.fanout = t if isinstance(t, RoutedTransport) and t.strategy == FAN_OUT else None
        self.memo = memo  # the memory cache level: a query that repeats in the file is answered from it
        self.memo_keys: dict[int, str] = {}  # id(spec) -> cache key, for the queries in flight
        self.opts = opts
        self.stats = stats
        self.on_bad = on_bad
        self.item_retries = 0  # _msearch items sent again (whole requests are retried by the transport)
        self.window = asyncio.Semaphore(opts.window_size)
        self.work: asyncio.Queue[list[tuple[int, QuerySpec]] | None] = asyncio.Queue(maxsize=opts.concurrency)
        self.reorder: dict[int, bytes | None] = {}
        self.next_seq = 0
        self.ready: list[bytes] = []
        self.ready_slots = 0
        self.wake = asyncio.Event()
        self.stopping = False
        self.fatal: BaseException | None = None
        self.workers_left = opts.concurrency
        self.conn_streak = 0
        self.last_conn_error = ""
        self.last_failure: UnreachableError | None = None

    # -- outcomes --

    def deliver(self, outcomes: list[Outcome]) -> None:
        if self.opts.ordered:
            for seq, line in outcomes:
                self.reorder[seq] = line
            while self.next_seq in self.reorder:
                line = self.reorder.pop(self.next_seq)
                self.next_seq += 1
                self.ready_slots += 1
                if line is not None:
                    self.ready.append(line)
        else:
            for _, line in outcomes:
                self.ready_slots += 1
                if line is not None:
                    self.ready.append(line)
        self.wake.set()

    def succeeded(self, spec: QuerySpec, response: dict[str, Any], duration: float, raw: bytes | None = None,
                  cluster: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
        if self.memo is not None and (key := self.memo_keys.pop(id(spec), None)) is not None:
            self.memo.put(key, response, spec.index, raw)
        self.stats.ok += 1
        self.stats.queries += 1
        self.stats.latency_us.record(int(duration * 1_000_000))
        return success_line(spec.id, response, duration * 1000, cluster=cluster, extra=extra)

    def failed(self, spec: QuerySpec, etype: str, reason: str, status: int | None) -> bytes:
        self.memo_keys.pop(id(spec), None)
        self.stats.failed += 1
        self.stats.queries += 1
        self.stats.error_types[etype] += 1
        if self.opts.fail_fast:
            self.stop()
        return failure_line(spec.id, etype, reason, status)

    def reached(self) -> None:
        self.conn_streak = 0

    def unreachable(self, exc: UnreachableError) -> None:
        """A request that failed to connect even after its retries, or got an answer escli cannot use."""
        self.last_conn_error = connection_reason(exc)
        self.last_failure = exc
        self.conn_streak += 1
        if self.conn_streak >= self.opts.unreachable_after and self.fatal is None:
            if isinstance(exc, BadAnswerError):
                self.fatal = BadAnswerError(f"{self.conn_streak} requests in a row got no answer escli can use "
                                            f"({exc})", exc.kind)
            else:
                self.fatal = UnreachableError(f"cluster unreachable: {self.conn_streak} requests in a row failed "
                                              f"to connect ({self.last_conn_error})")
            self.stop()

    def bad_answer(self, spec: QuerySpec, reply: Reply) -> bytes:
        """A query whose answer is not a search answer: a failed line naming what came back; counted with the
        connection failures (no cluster answered it), so a run where every answer is one exits 3."""
        assert reply.bad is not None
        self.stats.connection_failures += 1
        self.unreachable(reply.bad)
        return self.failed(spec, reply.bad.kind, str(reply.bad), reply.status)

    def stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.stats.stopped_early = True
            self.wake.set()

    # -- requests --

    def stopped(self) -> bool:
        return self.stopping  # --fail-fast: requests in flight finish without further retries

    async def post(self, target: str, body: bytes, ndjson: bool = False) -> Reply:
        """The answer after the transport's retries, whatever its status; UnreachableError when none came."""
        p = self.client.prepare("POST", target, body=body, content_type=NDJSON if ndjson else JSON)
        return reply_of(await self.client.send(p, stop=self.stopped), MSEARCH if ndjson else SEARCH)

    async def one(self, seq: int, spec: QuerySpec) -> Outcome:
        target = search_target(spec)
        try:
            reply = await (self.fan_post(target, spec) if self.fanout is not None else
                           self.post(target, orjson.dumps(spec.body)))
        except UnreachableError as exc:
            self.stats.connection_failures += 1
            self.unreachable(exc)
            return seq, self.failed(spec, exc.kind, connection_reason(exc), None)
        if reply.bad is not None:
            return seq, self.bad_answer(spec, reply)
        self.reached()
        if 200 <= reply.status < 300 and isinstance(reply.body, dict):
            return seq, self.succeeded(spec, reply.body, reply.duration, reply.raw, reply.cluster, reply.extra)
        etype, reason = reply_error(reply)
        return seq, self.failed(spec, etype, reason, reply.status)

    async def fan_post(self, target: str, spec: QuerySpec) -> Reply:
        """Fan-out: the query to every healthy cluster, hits merged (core/fanout.py), as one Reply; a cluster that
        failed is named in the line's `clusters` and the line says `"partial": true`. Each member's request is retried
        by the one policy (es/routing.py request_on)."""
        from escli.core.fanout import fan_out_search
        from escli.errors import RefusedError

        assert self.fanout is not None
        started = time.perf_counter()
        try:
            fan = await fan_out_search(self.fanout, target, spec.body)
        except RefusedError as exc:  # every cluster refused it: an error answer like any other
            return Reply(exc.status or 500, exc.body, time.perf_counter() - started)
        extra: dict[str, Any] = {"clusters": fan.clusters}
        if fan.partial:
            self.stats.partial += 1
            extra["partial"] = True
        return Reply(200, fan.response, time.perf_counter() - started, extra=extra)

    async def group(self, jobs: list[tuple[int, QuerySpec]]) -> list[Outcome]:
        """One _msearch for the group (the request retried by the transport); items refused with a retryable
        status are sent again, only those, after the policy's pause."""
        results: dict[int, bytes] = {}
        pending = jobs
        attempt = 0
        while pending:
            try:
                reply = await self.post("/_msearch", msearch_body([s for _, s in pending]), ndjson=True)
            except UnreachableError as exc:
                self.unreachable(exc)
                for seq, spec in pending:
                    self.stats.connection_failures += 1
                    results[seq] = self.failed(spec, exc.kind, connection_reason(exc), None)
                break
            if reply.bad is not None:
                for seq, spec in pending:
                    results[seq] = self.bad_answer(spec, reply)
                break
            self.reached()
            status = reply.status
            if not (200 <= status < 300 and isinstance(reply.body, dict)):
                if len(pending) > 1 and 400 <= status < 500 and status != 429:
                    # One unparsable search fails the whole _msearch (400): run them one by one, so only the bad
                    # one is reported and the others are answered.
                    for seq, spec in pending:
                        results[seq] = (await self.one(seq, spec))[1]  # type: ignore[assignment]
                    break
                etype, reason = reply_error(reply)
                for seq, spec in pending:
                    results[seq] = self.failed(spec, etype, reason, status)
                break
            responses = reply.body.get("responses") or []
            again: list[tuple[int, QuerySpec]] = []
            may_retry = attempt < self.policy.retries and not self.stopping
            for (seq, spec), item in zip(pending, responses, strict=False):
                item_status = int(item.get("status", 200))
                if "error" not in item:
                    results[seq] = self.succeeded(spec, item, reply.duration, cluster=reply.cluster)
                elif item_status in RETRY_ON_STATUS and may_retry:
                    again.append((seq, spec))
                else:
                    etype, reason = error_summary(item_status, item)
                    results[seq] = self.failed(spec, etype, reason, item_status)
            for seq, spec in pending[len(responses):]:  # never expected: fewer responses than searches
                results[seq] = self.failed(spec, "missing_response", "_msearch returned no response for it", None)
            if again:
                self.item_retries += 1
                await asyncio.sleep(self.policy.delay(attempt))
                attempt += 1
            pending = again
        return [(seq, results[seq]) for seq, _ in jobs]

    # -- tasks --

    async def produce(self, items: AsyncIterator[QuerySpec | InputError]) -> None:
        size = self.opts.group_size
        seq = 0
        group: list[tuple[int, QuerySpec]] = []
        async for item in items:
            if self.stopping:
                break
            if isinstance(item, InputError):
                self.stats.bad_lines += 1
                if self.stats.first_bad is None:
                    self.stats.first_bad = item
                self.on_bad(item)
                if self.opts.fail_fast:
                    # Stop reading here; the queries before the bad line are still answered.
                    self.stats.stopped_early = True
                    break
                continue
            await self.window.acquire()
            group.append((seq, item))
            seq += 1
            if len(group) >= size:
                await self.work.put(group)
                group = []
        if group:
            await self.work.put(group)
        # An error above ends the whole run (task_done makes it fatal), so the sentinels only follow success.
        for _ in range(self.opts.concurrency):
            await self.work.put(None)

    def from_memo(self, jobs: list[tuple[int, QuerySpec]]) -> list[tuple[int, QuerySpec]]:
        """Answer the jobs the memory level holds; the others are returned (with their keys noted)."""
        assert self.memo is not None
        left: list[tuple[int, QuerySpec]] = []
        hits: list[Outcome] = []
        for seq, spec in jobs:
            key = self.memo.key(spec.index, spec.body, spec.params)
            response = self.memo.get(key) if key is not None else None
            if response is None:
                if key is not None:
                    self.memo_keys[id(spec)] = key
                left.append((seq, spec))
                continue
            self.stats.ok += 1
            self.stats.queries += 1
            self.stats.cache_hits += 1
            hits.append((seq, success_line(spec.id, response, 0.0, "hit-memory")))
        if hits:
            self.deliver(hits)
        return left

    async def work_loop(self) -> None:
        try:
            while (jobs := await self.work.get()) is not None:
                if self.memo is not None and not self.stopping:
                    jobs = self.from_memo(jobs)
                    if not jobs:
                        continue
                if self.stopping:
                    self.stats.skipped += len(jobs)
                    self.deliver([(seq, None) for seq, _ in jobs])
                elif len(jobs) == 1 and self.opts.group_size == 1:
                    self.deliver([await self.one(*jobs[0])])
                elif self.fanout is not None:  # fan-out merges per query: an _msearch group goes one by one
                    self.deliver([await self.one(seq, spec) for seq, spec in jobs])
                else:
                    self.deliver(await self.group(jobs))
        finally:
            self.workers_left -= 1
            self.wake.set()

    def task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and self.fatal is None:
            self.fatal = task.exception()
            self.stop()
        self.wake.set()


async def run_batch(client: Es, items: AsyncIterator[QuerySpec | InputError], opts: BatchOptions,
                    stats: BatchStats, on_bad: Callable[[InputError], None] = lambda e: None, *,
                    memo: Memo | None = None) -> AsyncGenerator[list[bytes], None]:
    """Run every query; yields lists of result lines in output order (see the module doc for the flow).

    `memo`: the memory cache level; a query it holds is answered without a request (`"cache":"hit-memory"` in
    its line), every answer is put there."""
    run = _Run(client, opts, stats, on_bad, memo)
    stats.started = time.monotonic()
    sent0, retried0 = client.stats.requests, client.stats.retries
    tasks = [asyncio.create_task(run.produce(items))]
    tasks += [asyncio.create_task(run.work_loop()) for _ in range(opts.concurrency)]
    for task in tasks:
        task.add_done_callback(run.task_done)
    try:
        while True:
            await run.wake.wait()
            run.wake.clear()
            if run.ready_slots:
                lines, slots = run.ready, run.ready_slots
                run.ready, run.ready_slots = [], 0
                if lines:
                    yield lines
                for _ in range(slots):
                    run.window.release()
            if run.fatal is not None:
                raise run.fatal
            if run.workers_left == 0 and not run.ready_slots:
                break
        if stats.ok == 0 and stats.failed and stats.failed == stats.connection_failures:
            if isinstance(run.last_failure, BadAnswerError):
                raise BadAnswerError(f"no query got an answer escli can use ({run.last_failure})",
                                     run.last_failure.kind)
            raise UnreachableError(f"cluster unreachable: no query could connect ({run.last_conn_error})")
    finally:
        stats.seconds = time.monotonic() - stats.started
        stats.requests = client.stats.requests - sent0
        stats.retries = client.stats.retries - retried0 + run.item_retries
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)

