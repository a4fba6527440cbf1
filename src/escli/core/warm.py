"""`escli warm-cache`: replay a query file into the on-disk cache, through the path `escli search` reads.

For each query: the cache key and bypass rules are those of `escli.core.search` (so a later `escli search` of the
same query is a hit). A query whose entry is still fresh, and will not expire within `refresh_ahead` seconds, is
left alone ("fresh"); any other is asked again and stored for `ttl` seconds ("refreshed"). A query the cache must
not hold (`now` date math, a per-user preference or routing) is "skipped". With `request_cache` the requests carry
request_cache=true, which also fills the server's shard request cache (the parameter is not part of the key).

Requests go out `concurrency` at a time, retried by the transport's one policy (es/retry.py: 429/502/503/504,
connection errors and timeouts, full jitter, Retry-After). When the cluster cannot be reached at all,
UnreachableError ends the run.

`WarmLock` is the non-blocking lock that keeps two runs of the same job (same cache, same query file) from
overlapping: a cron run that finds the previous one still going leaves at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from escli.errors import BadAnswerError, InputError, RefusedError, UnreachableError, api_error_summary
from escli.es.answers import connection_reason
from escli.es.queries import QuerySpec

if TYPE_CHECKING:
    from escli.cache import Cache
    from escli.es.api import Es
    from escli.settings import Settings
    from escli.ui import UI


@dataclass(frozen=True)
class WarmOptions:
    ttl: float
    refresh_ahead: float = 0.0
    request_cache: bool = False
    concurrency: int = 4

    @property
    def unreachable_after(self) -> int:
        """Queries in a row that failed to connect (after their retries) before the run stops."""
        return max(3, self.concurrency)


@dataclass
class Problem:
    source: str
    line: int
    id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: query {self.id}: {self.reason}"


@dataclass
class WarmResult:
    queries: int = 0  # well-formed queries read
    refreshed: int = 0  # asked Elasticsearch and stored
    fresh: int = 0  # still fresh in the cache, not asked
    failed: int = 0  # could not be refreshed (after retries), bad lines included
    skipped: int = 0  # not cacheable (now date math, personalised requests)
    bad_lines: int = 0
    retries: int = 0
    connection_failures: int = 0
    seconds: float = 0.0
    # when the run started (epoch seconds), so a log of summaries says which run each line is
    started_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at))
        return {"started_at": started, "queries": self.queries, "refreshed": self.refreshed, "fresh": self.fresh,
                "failed": self.failed,
                "skipped": self.skipped, "bad_lines": self.bad_lines, "retries": self.retries,
                "seconds": round(self.seconds, 3)}


class WarmLock:
    """A non-blocking exclusive lock (flock) on `<cache dir>/warm-cache-<job>.lock`, released when the process ends.

    `acquire()` returns False at once when another process holds it; `holder` then says who (pid, since).
    """

    def __init__(self, cache_dir: Path, source: str) -> None:
        job = "stdin" if source == "<stdin>" else hashlib.sha256(
            os.path.realpath(source).encode()).hexdigest()[:16]
        self.path = cache_dir / f"warm-cache-{job}.lock"
        self.fd: int | None = None
        self.holder = ""

    def acquire(self) -> bool:
        import fcntl

        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                self.holder = os.read(fd, 200).decode(errors="replace").strip()
            finally:
                os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> WarmLock:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


async def warm_cache(client: Es, cache: Cache, identity: str,
                     items: AsyncIterator[QuerySpec | InputError], opts: WarmOptions, source: str,
                     on_problem: Callable[[Problem | InputError], None] = lambda p: None,
                     on_progress: Callable[[int], None] = lambda n: None,
                     result: WarmResult | None = None) -> WarmResult:
    """Warm every query of `items`; problems (bad lines, failed and skipped queries) go to `on_problem`.

    The counts go to `result` (a new one when not given), also when the run ends with an exception."""
    from escli.core.search import plan, search_with_cache

    result = WarmResult() if result is None else result
    started = time.monotonic()
    retried0 = client.stats.retries
    queue: asyncio.Queue[QuerySpec | None] = asyncio.Queue(maxsize=opts.concurrency * 2)
    state: dict[str, Any] = {"streak": 0, "last": "", "fatal": None}

    async def warm_one(spec: QuerySpec) -> None:
        p = plan(cache, identity, spec.index, spec.body, spec.params)
        if p.bypass_reason is not None:
            result.skipped += 1
            on_problem(Problem(source, spec.line, spec.id, f"not cached: {p.bypass_reason}"))
            return
        if p.key is not None:
            entry = cache.get(p.key)
            if entry is not None and entry.expires_at - time.time() > opts.refresh_ahead:
                result.fresh += 1
                return
        params = {**spec.params, "request_cache": True} if opts.request_cache else spec.params
        try:
            outcome = await search_with_cache(client, cache, identity, spec.index, spec.body, params, opts.ttl,
                                              refresh=True)
        except RefusedError as exc:
            state["streak"] = 0
            status, etype, reason = api_error_summary(exc)
            result.failed += 1
            on_problem(Problem(source, spec.line, spec.id, f"{etype} ({status}): {reason}"))
            return
        except UnreachableError as exc:
            result.failed += 1
            result.connection_failures += 1
            state["last"] = connection_reason(exc)
            state["streak"] += 1
            bad = isinstance(exc, BadAnswerError)  # it answered, but not a search answer (es/answers.py)
            if state["streak"] >= opts.unreachable_after and state["fatal"] is None:
                state["fatal"] = BadAnswerError(f"{state['streak']} queries in a row got no answer escli can use "
                                                f"({exc})", exc.kind) if bad else \
                    UnreachableError(f"cluster unreachable: {state['streak']} queries in a row failed to connect "
                                     f"({state['last']})")
            on_problem(Problem(source, spec.line, spec.id, str(exc) if bad else f"connection error: {state['last']}"))
            return
        state["streak"] = 0
        if outcome.failed_clusters:  # fan-out without some cluster's hits: not stored, not warm
            result.failed += 1
            on_problem(Problem(source, spec.line, spec.id, "not stored: fan-out cluster(s) failed: "
                               + ", ".join(outcome.failed_clusters)))
            return
        result.refreshed += 1

    async def produce() -> None:
        async for item in items:
            if state["fatal"] is not None:
                break
            if isinstance(item, InputError):
                result.bad_lines += 1
                result.failed += 1
                on_problem(item)
                continue
            result.queries += 1
            await queue.put(item)
        # (an error above fails the gather below, which cancels the workers: no sentinels needed then)
        for _ in range(opts.concurrency):
            await queue.put(None)

    async def work() -> None:
        while (spec := await queue.get()) is not None:
            if state["fatal"] is None:
                await warm_one(spec)
                on_progress(1)

    producer = asyncio.create_task(produce())
    workers = [asyncio.create_task(work()) for _ in range(opts.concurrency)]
    try:
        await asyncio.gather(producer, *workers)
    except BaseException:
        for task in (producer, *workers):
            task.cancel()
        await asyncio.gather(producer, *workers, return_exceptions=True)
        raise
    finally:
        result.seconds = time.monotonic() - started
        result.retries = client.stats.retries - retried0
    if state["fatal"] is not None:
        raise state["fatal"]
    if result.connection_failures and not (result.refreshed or result.fresh) \
            and result.connection_failures == result.failed - result.bad_lines:
        raise UnreachableError(f"cluster unreachable: no query could connect ({state['last']})")
    return result


def run_failure(exc: BaseException) -> dict[str, object]:
    """What the summary line of a run that stopped adds: `"error"`, the one line said on stderr, and `"exit"`,
    so that a log reader (`jq 'select(.failed > 0 or .error)'`) sees an unreachable cluster, not a quiet run of
    0 queries and 0 failures."""
    from escli.errors import exit_code_for, one_line

    if isinstance(exc, KeyboardInterrupt):
        return {"error": "interrupted", "exit": 130}
    return {"error": one_line(exc), "exit": int(exit_code_for(exc))}


async def warm_file(settings: Settings, file: str, opts: WarmOptions, ui: UI,
                    on_problem: Callable[[Problem | InputError], None], result: WarmResult) -> None:
    """`escli warm-cache FILE`'s use case: the query file (or - for stdin) replayed into the cache levels, memory
    in front of disk (and the shared level, when configured), so that a query repeated in the file is found fresh
    in memory; entries are keyed by the product too, as `escli search` looks them up (cache/product.py)."""
    from escli.cache import open_cache
    from escli.core.search import cache_identity
    from escli.es.connect import open_es
    from escli.es.queries import aread_queries
    from escli.inputs import anumbered_lines, open_input, source_name

    source = source_name(file)
    with open_input(file) as fh:
        queries = aread_queries(anumbered_lines(fh, source), source)
        cache = open_cache(settings, warn=ui.warn, memory=True)
        try:
            async with open_es(settings, ui, concurrency=opts.concurrency, paced=True) as client:
                identity = await cache_identity(client, settings)
                with ui.progress("warm-cache", total=None) as bar:
                    await warm_cache(client, cache, identity, queries, opts, source, on_problem, bar.advance,
                                     result)
        finally:
            cache.close()
