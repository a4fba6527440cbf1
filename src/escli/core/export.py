"""`escli export`: every matching document exactly once, in flat memory, resumable.

Reading: a point in time (PIT) and search_after, one reader task per slice. The sort is the user's sort (if any),
then `_seq_no`, then `_shard_doc`. `_shard_doc` makes the order total inside one PIT; `_seq_no` (unique per shard
for live documents) makes a position meaningful in *another* PIT too: when the PIT expired, was closed by Ctrl-C
or lost a node, a new one is opened and each slice continues after `[..., seq_no, (shard << 32) | 0x7FFFFFFF]`,
which skips exactly the documents already read (see `stable_after`). Slices are split on `_seq_no` for the same
reason: the slice a document falls in does not depend on the PIT. Scroll is the fallback where PIT is missing.

Writing: readers put pages on a bounded queue; one writer hands each page to the sink, then records where every
slice stands (and the sink's own resume state, e.g. bytes written) in the checkpoint. Cancellation can only land
between pages (the write is synchronous), so the checkpoint always describes exactly what the output holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from escli.errors import EscliError, ExitCode, RefusedError, UsageError, api_error_summary

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

CHECKPOINT_VERSION = 1
DOC_BITS = 0x7FFFFFFF  # the largest Lucene doc id: "after every document of this shard with this seq_no"
SHARD_MASK = ~0xFFFFFFFF
CONTROLLED_KEYS = ("pit", "search_after", "slice", "from", "size", "scroll", "track_total_hits")
MAX_AUTO_SLICES = 8
# No filter_path on searches: with one, Elasticsearch re-parses every _source through the filter instead of
# copying its bytes, which cost ~20% of the export's throughput in bench/bench_export.py.


class ExportStalled(EscliError):
    """Retries ran out; the checkpoint (if any) lets --resume continue."""

    exit_code = ExitCode.UNREACHABLE


class PitUnavailable(Exception):
    """The cluster has no point-in-time API (or refuses it): fall back to scroll."""


@dataclass
class ExportRequest:
    index: str
    query: dict[str, Any] | None = None
    body: dict[str, Any] = field(default_factory=dict)
    fields: list[str] | None = None
    page_size: int = 1000
    slices: int | None = None  # None: one per shard (at most MAX_AUTO_SLICES)
    max_docs: int | None = None
    keep_alive: str = "5m"
    method: str = "auto"  # auto | pit | scroll
    attempts: int = 6  # per page, for failures the client's own retries did not absorb

    def search_body(self) -> dict[str, Any]:
        """The parts of the search body that say what to export (not where we stand)."""
        body = {k: v for k, v in self.body.items() if k not in CONTROLLED_KEYS}
        queries = [q for q in (body.pop("query", None), self.query) if q]
        if len(queries) == 2:
            body["query"] = {"bool": {"must": queries}}
        elif queries:
            body["query"] = queries[0]
        if self.fields:
            body["_source"] = {"includes": list(self.fields)}
        return body

    def user_sort(self) -> list[Any]:
        sort = self.body.get("sort")
        if sort is None:
            return []
        items = sort if isinstance(sort, list) else [sort]
        return [s for s in items if _sort_name(s) not in ("_shard_doc", "_seq_no", "_doc")]


def _sort_name(item: Any) -> str:
    if isinstance(item, str):
        return item.split(":")[0]
    if isinstance(item, Mapping) and item:
        return str(next(iter(item)))
    return ""


def check_body(body: Any, source: str) -> dict[str, Any]:
    """A --body must be a JSON object without the keys export sets itself."""
    if not isinstance(body, dict):
        raise UsageError(f"--body {source}: expected a JSON object (a search body)")
    bad = [k for k in CONTROLLED_KEYS if k in body]
    if bad:
        raise UsageError(f"--body {source}: {', '.join(bad)}: set by export itself; use --max-docs, --page-size "
                         "or --slices instead")
    return body


def stable_after(after: Sequence[Any]) -> list[Any]:
    """A position from one PIT turned into the same position in any other PIT of the same data.

    The last value is `_shard_doc` = (shard index << 32) | Lucene doc id; doc ids change between PITs (merges),
    shard indexes do not. `_seq_no` before it is unique within a shard, so "this seq_no, this shard, any doc id"
    is exactly the one document already read.
    """
    values = list(after)
    values[-1] = (int(values[-1]) & SHARD_MASK) | DOC_BITS
    return values


# --- checkpoint -----------------------------------------------------------------------------------------------

@dataclass
class SliceState:
    after: list[Any] | None = None
    done: bool = False
    written: int = 0
    gen: int = 1  # the PIT generation `after` came from; another generation needs stable_after()

    def as_dict(self, generation: int) -> dict[str, Any]:
        return {"after": self.after, "done": self.done, "written": self.written,
                "exact": self.after is None or self.gen == generation}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SliceState:
        return cls(after=d.get("after"), done=bool(d.get("done")), written=int(d.get("written", 0)),
                   gen=1 if d.get("exact", True) else 0)


@dataclass
class Checkpoint:
    """Where an export stands. Saved atomically (temp file, rename), 0600, after every written page."""

    path: Path | None
    request: dict[str, Any] = field(default_factory=dict)
    method: str = "pit"
    pit_id: str | None = None
    slices: list[SliceState] = field(default_factory=list)
    written: int = 0
    sink: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    generation: int = 1  # of the PIT named by pit_id (runtime only)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION, "status": self.status, "method": self.method, "request": self.request,
            "output": self.output, "pit_id": self.pit_id, "written": self.written, "sink": self.sink,
            "slices": [s.as_dict(self.generation) for s in self.slices],
        }

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise UsageError(f"--checkpoint {path}: no such file (nothing to resume)") from None
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"--checkpoint {path}: not a checkpoint ({exc})") from exc
        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            raise UsageError(f"--checkpoint {path}: not an escli export checkpoint (version {CHECKPOINT_VERSION})")
        return cls(path=path, request=data.get("request", {}), method=data.get("method", "pit"),
                   pit_id=data.get("pit_id"), slices=[SliceState.from_dict(s) for s in data.get("slices", [])],
                   written=int(data.get("written", 0)), sink=data.get("sink", {}), output=data.get("output", {}),
                   status=str(data.get("status", "running")))


# --- the sink the writer hands pages to -------------------------------------------------------------------------

class PageSink(Protocol):
    def write_hits(self, hits: Sequence[Mapping[str, Any]]) -> None: ...

    def mark(self) -> dict[str, Any]:
        """Make what was written durable enough to resume from, and say how to get back to this point."""
        ...


@dataclass
class ExportResult:
    index: str
    written: int = 0
    slices: int = 1
    method: str = "pit"
    seconds: float = 0.0
    pit_reopened: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "written": self.written, "slices": self.slices, "method": self.method,
                "seconds": round(self.seconds, 3), "pit_reopened": self.pit_reopened, "retries": self.retries}


@dataclass
class Page:
    slice: int
    hits: list[dict[str, Any]]
    done: bool
    generation: int = 0


# --- reading ------------------------------------------------------------------------------------------------------

def _is_context_missing(exc: BaseException) -> bool:
    _status, etype, reason = api_error_summary(exc)
    body = getattr(exc, "body", None)
    text = f"{etype} {reason} {orjson.dumps(body).decode() if isinstance(body, dict | list) else ''}"
    return "search_context_missing" in text or "No search context found" in text


def _retryable(exc: BaseException) -> bool:
    import elastic_transport
    from elasticsearch import ApiError

    if isinstance(exc, elastic_transport.TransportError):  # connection errors, timeouts, TLS
        return True
    if isinstance(exc, ApiError):
        status = exc.meta.status if exc.meta is not None else 0
        return status in (408, 429) or status >= 500 or _is_context_missing(exc)
    return isinstance(exc, _PartialResults)


class _PartialResults(Exception):
    pass


class _RetriesExhausted(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _check_complete(resp: Any) -> None:
    """A page with shard failures or a timeout is not a page: retrying beats silently losing documents."""
    shards = resp.get("_shards") or {}
    if resp.get("timed_out") or shards.get("failed"):
        failures = shards.get("failures") or []
        reason = failures[0].get("reason", {}).get("type", "shard failure") if failures else "timed out"
        raise _PartialResults(f"incomplete page ({reason})")


class Pit:
    """Our point in time: opened once, reopened (by one task) when it is gone, always closed by us."""

    def __init__(self, client: AsyncElasticsearch, index: str, keep_alive: str, pit_id: str | None = None,
                 log: Callable[[str], None] = lambda s: None) -> None:
        self.log = log
        self.client = client
        self.index = index
        self.keep_alive = keep_alive
        self.id = pit_id
        self.generation = 0
        self.shards = 0
        self.reopened = 0
        self.lock = asyncio.Lock()
        self.opened_ids: list[str] = []

    async def open(self) -> None:
        from elasticsearch import ApiError

        try:
            resp = await self.client.open_point_in_time(index=self.index, keep_alive=self.keep_alive,
                                                        allow_partial_search_results=False)
        except ApiError as exc:
            status, etype, _ = api_error_summary(exc)
            if status in (400, 404, 405, 501) and etype != "index_not_found_exception":
                raise PitUnavailable(f"{status} {etype}") from exc
            raise
        self.id = str(resp["id"])
        self.log(f"opened point in time {self.id}")
        self.opened_ids.append(self.id)
        self.generation += 1
        self.shards = int((resp.get("_shards") or {}).get("total") or 0)

    async def reopen(self, seen_generation: int) -> None:
        async with self.lock:
            if self.generation != seen_generation:
                return  # another slice already did it
            old = self.id
            await self.open()
            self.reopened += 1
            if old is not None:
                await self._close_id(old)

    def update(self, new_id: Any, generation: int) -> None:
        if isinstance(new_id, str) and generation == self.generation and new_id != self.id:
            if self.id in self.opened_ids:
                self.opened_ids.remove(self.id)
            self.id = new_id
            self.opened_ids.append(new_id)

    async def _close_id(self, pit_id: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.close_point_in_time(id=pit_id), timeout=10)
            self.log(f"closed point in time {pit_id}")

    async def close(self) -> None:
        """Close only the PIT ids escli opened or was handed by the checkpoint; never all PITs."""
        ids, self.opened_ids = list(dict.fromkeys(self.opened_ids)), []
        for pit_id in ids:
            await self._close_id(pit_id)


class Exporter:
    def __init__(self, client: AsyncElasticsearch, req: ExportRequest, checkpoint: Checkpoint, sink: PageSink,
                 on_progress: Callable[[int], None] = lambda n: None,
                 on_warning: Callable[[str], None] = lambda s: None) -> None:
        self.client = client
        self.req = req
        self.cp = checkpoint
        self.sink = sink
        self.on_progress = on_progress
        self.on_warning = on_warning
        self.result = ExportResult(req.index)
        self.body = req.search_body()
        self.sort = [*req.user_sort(), {"_seq_no": "asc"}, {"_shard_doc": "asc"}]
        self.pit: Pit | None = None
        self.scroll_ids: set[str] = set()
        self.stop = asyncio.Event()

    def _page_size(self) -> int:
        if self.req.max_docs is not None:
            return max(1, min(self.req.page_size, self.req.max_docs - self.cp.written))
        return self.req.page_size

    async def _backoff(self, attempt: int, exc: BaseException) -> None:
        self.result.retries += 1
        delay = min(10.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
        self.on_warning(f"retrying after {_describe(exc)} (attempt {attempt + 1} of {self.req.attempts - 1})")
        await asyncio.sleep(delay)

    async def _read_pit_slice(self, n: int, total: int, queue: asyncio.Queue[Page | BaseException]) -> None:
        assert self.pit is not None
        pit = self.pit
        state = self.cp.slices[n]
        after = state.after
        generation = state.gen
        while not self.stop.is_set():
            for attempt in range(self.req.attempts):
                seen = pit.generation
                if after is not None and generation != pit.generation:
                    after = stable_after(after)
                    generation = pit.generation
                body: dict[str, Any] = {**self.body, "size": self._page_size(), "sort": self.sort,
                                        "track_total_hits": False, "pit": {"id": pit.id, "keep_alive": pit.keep_alive}}
                if total > 1:
                    body["slice"] = {"field": "_seq_no", "id": n, "max": total}
                if after is not None:
                    body["search_after"] = after
                try:
                    resp = await self.client.search(body=body, allow_partial_search_results=False)
                    _check_complete(resp)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not _retryable(exc):
                        raise
                    if attempt == self.req.attempts - 1:
                        raise _RetriesExhausted(exc) from exc
                    await self._backoff(attempt, exc)
                    if _is_context_missing(exc) or isinstance(exc, _PartialResults) or attempt >= 1:
                        with contextlib.suppress(Exception):
                            await pit.reopen(seen)
            pit.update(resp.get("pit_id"), seen)
            hits: list[dict[str, Any]] = (resp.get("hits") or {}).get("hits") or []
            if hits:
                after, generation = hits[-1]["sort"], seen
            done = len(hits) < body["size"]
            await queue.put(Page(n, hits, done, seen))
            if done:
                return

    async def _read_scroll_slice(self, n: int, total: int, queue: asyncio.Queue[Page | BaseException]) -> None:
        body: dict[str, Any] = {**self.body, "size": self._page_size(), "sort": self.req.user_sort() or ["_doc"]}
        if total > 1:
            body["slice"] = {"id": n, "max": total}
        resp = await self.client.search(index=self.req.index, body=body, scroll=self.req.keep_alive)
        while True:
            _check_complete(resp)
            scroll_id = resp.get("_scroll_id")
            if scroll_id and scroll_id not in self.scroll_ids:
                self.on_warning(f"scroll {scroll_id}")
                self.scroll_ids.add(scroll_id)
            hits: list[dict[str, Any]] = (resp.get("hits") or {}).get("hits") or []
            done = not hits or self.stop.is_set()
            await queue.put(Page(n, hits, done))
            if done:
                return
            resp = await self.client.scroll(scroll_id=scroll_id, scroll=self.req.keep_alive)
            new_id = resp.get("_scroll_id")
            if new_id and new_id != scroll_id:
                self.scroll_ids.discard(scroll_id)

    async def _reader(self, n: int, total: int, queue: asyncio.Queue[Page | BaseException], scroll: bool) -> None:
        try:
            if scroll:
                await self._read_scroll_slice(n, total, queue)
            else:
                await self._read_pit_slice(n, total, queue)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the writer, which owns the error path
            await queue.put(exc)

    async def _start(self) -> bool:
        """Open (or reuse) the PIT; returns True when scroll must be used instead."""
        method = self.cp.method if self.cp.slices else self.req.method
        if method == "scroll":
            return True
        self.pit = Pit(self.client, self.req.index, self.req.keep_alive, log=self.on_warning)
        if self.cp.pit_id and self.cp.slices:
            # Resuming: try the PIT we had; if it is gone, the positions are made stable for a new one.
            self.pit.id = self.cp.pit_id
            self.pit.opened_ids.append(self.cp.pit_id)
            self.pit.generation = 1
            return False
        try:
            await self.pit.open()
        except PitUnavailable as exc:
            if method == "pit":
                raise RefusedError(f"{self.req.index}: point in time is not available ({exc}); "
                                   "try --method scroll") from exc
            self.on_warning(f"point in time not available ({exc}); reading with scroll")
            self.pit = None
            return True
        return False

    async def run(self) -> ExportResult:
        started = time.monotonic()
        resuming = bool(self.cp.slices)
        scroll = await self._start()
        if resuming and scroll:
            raise UsageError(f"--checkpoint {self.cp.path}: a scroll export cannot be resumed; start it again")
        self.cp.method = "scroll" if scroll else "pit"
        self.result.method = self.cp.method
        if not resuming:
            total = self.req.slices
            if total is None and self.req.user_sort():
                total = 1  # a sorted export stays in order only when one reader produces it
            elif total is None:
                shards = self.pit.shards if self.pit else 0
                total = max(1, min(shards or 1, MAX_AUTO_SLICES))
            elif total > 1 and self.req.user_sort():
                self.on_warning(f"--slices {total} with a sort: documents are in order within each slice only")
            self.cp.slices = [SliceState() for _ in range(total)]
            self.cp.written = 0
        if self.pit is not None:
            self.cp.pit_id = self.pit.id
            self.cp.generation = self.pit.generation
        total = len(self.cp.slices)
        self.result.slices = total
        self.cp.status = "running"
        self.cp.save()
        queue: asyncio.Queue[Page | BaseException] = asyncio.Queue(maxsize=max(2, total + 1))
        readers = [asyncio.create_task(self._reader(n, total, queue, scroll))
                   for n, s in enumerate(self.cp.slices) if not s.done]
        live = len(readers)
        try:
            while live and not self._full():
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                self._write(item)
                if item.done:
                    live -= 1
            self.cp.status = "done"
        except BaseException as exc:
            self.cp.status = "interrupted" if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError) \
                else "failed"
            raise
        finally:
            self.stop.set()
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            if self.pit is not None:
                self.cp.pit_id = self.pit.id
                self.cp.generation = self.pit.generation
                self.result.pit_reopened = self.pit.reopened
                await self.pit.close()
            for scroll_id in list(self.scroll_ids):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.client.clear_scroll(scroll_id=scroll_id), timeout=10)
                    self.on_warning(f"cleared scroll {scroll_id}")
            with contextlib.suppress(OSError):
                self.cp.save()
            self.result.written = self.cp.written
            self.result.seconds = time.monotonic() - started
        return self.result

    def _full(self) -> bool:
        return self.req.max_docs is not None and self.cp.written >= self.req.max_docs

    def _write(self, page: Page) -> None:
        """Synchronous on purpose: a cancellation cannot fall between writing a page and recording it."""
        hits = page.hits
        state = self.cp.slices[page.slice]
        if self.req.max_docs is not None:
            room = self.req.max_docs - self.cp.written
            if len(hits) > room:
                hits = hits[:room]
        if hits:
            self.sink.write_hits(hits)
            if self.cp.method == "pit":
                state.after = hits[-1]["sort"]
                state.gen = page.generation
            state.written += len(hits)
            self.cp.written += len(hits)
        state.done = page.done and len(hits) == len(page.hits)
        if self.pit is not None:
            self.cp.pit_id = self.pit.id
            self.cp.generation = self.pit.generation
        self.cp.sink = self.sink.mark()
        self.cp.save()
        if hits:
            self.on_progress(len(hits))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _PartialResults):
        return str(exc)
    status, etype, reason = api_error_summary(exc)
    if status is None:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return f"{status} {etype}: {reason}"[:300]


async def count_matching(client: AsyncElasticsearch, req: ExportRequest) -> int | None:
    body = req.search_body()
    query = body.get("query")
    try:
        resp = await client.count(index=req.index, query=query) if query else await client.count(index=req.index)
    except Exception:
        return None
    n = int(resp.get("count", 0))
    return min(n, req.max_docs) if req.max_docs is not None else n


async def index_mappings(client: AsyncElasticsearch, index: str) -> list[dict[str, Any]]:
    """The `properties` of every index the target names (an alias or pattern can name several), in order."""
    resp = await client.indices.get_mapping(index=index)
    out: list[dict[str, Any]] = []
    for name in sorted(resp):
        props = (resp[name].get("mappings") or {}).get("properties")
        if isinstance(props, dict):
            out.append(props)
    return out


async def run_export(client: AsyncElasticsearch, req: ExportRequest, checkpoint: Checkpoint, sink: PageSink,
                     on_progress: Callable[[int], None] = lambda n: None,
                     on_warning: Callable[[str], None] = lambda s: None) -> ExportResult:
    exporter = Exporter(client, req, checkpoint, sink, on_progress, on_warning)
    try:
        return await exporter.run()
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except _RetriesExhausted as exc:
        from escli.errors import translate

        where = f"; checkpoint kept in {checkpoint.path}: run again with --resume" if checkpoint.path else \
            "; use --checkpoint FILE to be able to resume"
        stalled = ExportStalled(f"export of {req.index} stopped after {checkpoint.written} documents, retries "
                                f"exhausted ({_describe(exc.cause)}){where}")
        cause = translate(exc.cause)
        if isinstance(cause, EscliError):
            stalled.exit_code = cause.exit_code
        raise stalled from exc.cause
