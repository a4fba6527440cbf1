"""`escli export`: every matching document exactly once, in flat memory, resumable, light on the cluster.

Reading: one point in time (PIT), cut into units (core/export_plan.py): a shard's documents with `_seq_no` in
[lo, hi), the shard picked by a slice without a field (whole shards, no doc-values pass), the range a query
filter. Inside a unit, pages follow `_shard_doc` alone, the PIT paging fast path. Readers take units one after
another. When the PIT is gone (expired, closed by Ctrl-C, lost with a node), a new one is opened and each reader
reads its unit in progress again from the start: its part file is cut back to where the unit began, or, on
stdout (which cannot be cut back), the documents it already wrote (at most one unit's ids) are left out.
Sorted exports keep one stream per slice ordered by [sort, _seq_no, _shard_doc]; their position survives a new
PIT by itself (`stable_after`). Scroll is the fallback where PIT is missing.

Writing: readers hand raw pages to an encoder (inline for NDJSON, a process pool for CSV), then put the encoded
bytes on a bounded queue; one writer appends them to the reader's own part and records where every reader stands
in the checkpoint. Cancellation can only land between pages (the write is synchronous), so the checkpoint always
describes exactly what the parts hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from escli.core.export_plan import CHUNK, Unit, choose_readers, plan_units, sorted_units, unit_body, window_units
from escli.core.export_state import (
    Checkpoint,
    EncodedPage,
    ExportRequest,
    ExportResult,
    OpenParts,
    PageEncoder,
    Part,
    ReaderState,
)
from escli.core.pit import Pit, PitUnavailable, shard_seq_nos
from escli.core.tasks import together
from escli.errors import BadAnswerError, EscliError, ExitCode, RefusedError, UnreachableError, UsageError
from escli.es.answers import SEARCH, WRONG_SHAPE, bad, parsed
from escli.es.paging import ELASTICSEARCH_ORDER, PageOrder, page_order
from escli.es.retry import RETRY_ON_STATUS

if TYPE_CHECKING:
    from escli.es.api import Es
    from escli.es.transport import Response

SAVE_EVERY = 0.1  # seconds between two checkpoint saves while pages are written
TIEBREAK: dict[str, str] = {"_shard_doc": "asc"}
# No filter_path on searches: with one, Elasticsearch re-parses every _source through the filter instead of
# copying its bytes, which cost ~20% of the export's throughput in bench/bench_export.py.
# pre_filter_shard_size: when the coordinator's can-match round skips a shard (a range no document of that shard can
# match: the --since window, or a --query on a date), it numbers the remaining shards again for `slice`, so the
# shard-picking slice of a unit (core/export_plan.py) reads another shard, or none: documents lost. Measured on
# Elasticsearch 9 with two shards, one empty. Above any shard count the round never runs; each shard still skips
# cheaply by itself in the query phase.
SEARCH_PARAMS = {"allow_partial_search_results": "false", "pre_filter_shard_size": "2147483647"}


class ExportStalled(EscliError):
    """Retries ran out; the checkpoint (if any) lets --resume continue."""

    exit_code = ExitCode.UNREACHABLE


@dataclass
class Page:
    reader: int
    unit: int
    enc: EncodedPage
    done: bool
    generation: int = 0


@dataclass
class Rewind:
    reader: int


@dataclass
class Finished:
    reader: int


Item = Page | Rewind | Finished | BaseException


# --- reading ------------------------------------------------------------------------------------------------------

def _is_context_missing(exc: BaseException) -> bool:
    body = getattr(exc, "body", None)
    text = f"{exc} {orjson.dumps(body).decode() if isinstance(body, dict | list) else ''}"
    return "search_context_missing" in text or "No search context found" in text


class _PartialResults(Exception):
    pass


def _exhausted(exc: BaseException) -> bool:
    """A failure the transport already retried by the one policy (es/retry.py) and gave up on: no answer, or a
    429/502/503/504 that persisted. Never a reason to reopen the point in time."""
    if isinstance(exc, UnreachableError):
        return True
    return isinstance(exc, RefusedError) and (exc.status or 0) in RETRY_ON_STATUS


def _page_retryable(exc: BaseException) -> bool:
    """What the export itself tries again: a page with failed shards (the engine answered 200), or a PIT the
    engine no longer knows (then a new one is opened)."""
    return isinstance(exc, _PartialResults) or (isinstance(exc, RefusedError) and _is_context_missing(exc))


class _RetriesExhausted(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Exporter:
    def __init__(self, es: Es, req: ExportRequest, checkpoint: Checkpoint, encoder: PageEncoder,
                 open_parts: OpenParts,
                 on_progress: Callable[[int], None] = lambda n: None,
                 on_warning: Callable[[str], None] = lambda s: None) -> None:
        self.es = es
        self.req = req
        self.cp = checkpoint
        self.encoder = encoder
        self.open_parts = open_parts
        self.parts: Sequence[Part] = ()
        self.on_progress = on_progress
        self.on_warning = on_warning
        self.result = ExportResult(req.index)
        self.body = req.search_body()
        self.query = self.body.pop("query", None)
        self.order: PageOrder = ELASTICSEARCH_ORDER
        self.sorted = bool(req.user_sort())
        self.sort = [*req.user_sort(), *self.order.sort] if self.sorted else [TIEBREAK]
        self.pit: Pit | None = None
        self.scroll_ids: set[str] = set()
        self.stop = asyncio.Event()
        self.pending: deque[int] = deque()
        self.budget: int | None = None
        self.unit_rows: dict[int, int] = {}  # per reader: rows of its current unit handed to the writer
        self.saved_at = 0.0  # time.monotonic() of the last checkpoint save while writing

    # -- budget (--max-docs): each request reserves its size, so pages never overshoot ----------------------------
    def _reserve(self) -> int:
        if self.budget is None:
            return self.req.page_size
        size = min(self.req.page_size, self.budget)
        self.budget -= size
        return size

    def _give_back(self, n: int) -> None:
        if self.budget is not None:
            self.budget += n

    async def _backoff(self, attempt: int, exc: BaseException) -> None:
        self.result.retries += 1
        self.on_warning(f"retrying after {_describe(exc)} (attempt {attempt + 1} of {self.req.attempts - 1})")
        await asyncio.sleep(self.es.retry_policy.delay(attempt))

    async def _search_page(self, body: dict[str, Any], skip: set[str] | None, want_ids: bool) -> EncodedPage:
        resp = await self.es.search(None, body, params=SEARCH_PARAMS)
        enc = await self._encode(resp, skip, want_ids)
        if enc.problem:
            raise _PartialResults(f"incomplete page ({enc.problem})")
        return enc

    async def _encode(self, resp: Response, skip: set[str] | None, want_ids: bool,
                      limit: int | None = None) -> EncodedPage:
        """A page's bytes encoded; an answer Es.search let through (it starts as an object with hits) that still
        does not decode as a search answer is said as what came back (es/answers.py), not as a decoder's error."""
        import msgspec  # loaded already: the encoders decode with it

        try:
            return await self.encoder.encode(resp.body, skip, want_ids, limit)
        except (ValueError, TypeError, KeyError, AttributeError, msgspec.MsgspecError) as exc:
            raise bad(resp.url, "JSON that does not read as a search answer: is this Elasticsearch?", WRONG_SHAPE,
                      resp.body) from exc

    async def _read_unit(self, r: int, u: int, after: list[Any] | None, gen: int, queue: asyncio.Queue[Item]) -> bool:
        """Read unit u to its end (True) or until the budget runs out (False)."""
        assert self.pit is not None
        pit, unit = self.pit, self.cp.units[u]
        base = {**self.body, **unit_body(unit, self.cp.shards, self.query), "sort": self.sort,
                "track_total_hits": False}
        rewindable = self.parts[r].rewindable
        # stdout cannot be cut back: remember what this unit wrote, to leave it out if the unit is read again
        seen: set[str] | None = None if (rewindable or self.sorted) else set()
        skip: set[str] | None = None
        emitted = after is not None
        partials = 0
        while not self.stop.is_set():
            size = self._reserve()
            if size <= 0:
                return False
            for attempt in range(self.req.attempts):
                seen_gen = pit.generation
                if gen != seen_gen and emitted:
                    if self.sorted:
                        after = self.order.stable_after(after) if after is not None else None
                    else:  # a new PIT numbers documents differently: read the unit again from its start
                        after = None
                        self.result.reread += 1
                        if rewindable:
                            await queue.put(Rewind(r))
                            # The rows cut out no longer count against --max-docs: they will be written again.
                            self._give_back(self.unit_rows[r])
                            self.unit_rows[r] = 0
                        else:
                            skip = set(seen or ())
                gen = seen_gen
                body = {**base, "size": size, "pit": {"id": pit.id, "keep_alive": pit.keep_alive}}
                if after is not None:
                    body["search_after"] = after
                try:
                    asked = time.monotonic()
                    enc = await self._search_page(body, skip, seen is not None)
                    took = time.monotonic() - asked
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if _exhausted(exc):
                        self._give_back(size)
                        raise _RetriesExhausted(exc) from exc
                    if not _page_retryable(exc):
                        self._give_back(size)
                        raise
                    if attempt == self.req.attempts - 1:
                        self._give_back(size)
                        raise _RetriesExhausted(exc) from exc
                    partials += isinstance(exc, _PartialResults)
                    await self._backoff(attempt, exc)
                    # Only a PIT the engine lost, or shards failing again and again, warrant a new PIT; a busy
                    # cluster's refusals never do (the transport retried those).
                    if _is_context_missing(exc) or partials >= 2:
                        with contextlib.suppress(Exception):
                            await pit.reopen(seen_gen)
            pit.update(enc.context_id, gen)
            self._give_back(size - enc.rows)
            self.unit_rows[r] += enc.rows
            if enc.last_sort is not None:
                after = enc.last_sort
                self._check_shard(unit, after)
            if seen is not None and enc.ids:
                seen.update(enc.ids)
            emitted = emitted or enc.hits > 0
            done = enc.hits < size
            await queue.put(Page(r, u, enc, done, gen))
            if self.req.throttle:  # between any two pages of this reader, also across units
                await asyncio.sleep(self.req.throttle * took)
            if done:
                return True
        return False

    def _check_shard(self, unit: Unit, after: list[Any]) -> None:
        if self.sorted or self.cp.shards <= 1:
            return
        shard = int(after[-1]) >> 32
        if shard != unit.shard:
            raise RefusedError(f"{self.req.index}: the point in time numbers shards differently than planned "
                               f"(shard {shard}, expected {unit.shard}); did the indices behind it change?")

    async def _read_pit(self, r: int, queue: asyncio.Queue[Item]) -> None:
        state = self.cp.readers[r]
        u, after, gen = state.unit, state.after, state.gen
        # rows of the unit in progress already in the part (a resumed unit), given back if it is read again
        self.unit_rows[r] = state.rows - state.unit_rows if u is not None else 0
        while not self.stop.is_set():
            if u is None or u in self.cp.done:
                if not self.pending:
                    return
                u, after, gen = self.pending.popleft(), None, self.pit.generation if self.pit else 1
                self.unit_rows[r] = 0
            if not await self._read_unit(r, u, after, gen, queue):
                return
            u = None

    async def _read_scroll(self, r: int, queue: asyncio.Queue[Item]) -> None:
        """Scroll (no PIT on this cluster): one stream per reader, not resumable."""
        if self.req.since is not None and self.req.since.nothing_new:
            return
        total = len(self.cp.readers)
        body: dict[str, Any] = {**self.body, "size": self.req.page_size, "sort": self.req.user_sort() or ["_doc"]}
        if self.query:
            body["query"] = self.query
        if total > 1:
            body["slice"] = {"id": r, "max": total}
        resp = await self.es.search(self.req.index, body, params={"scroll": self.req.keep_alive})
        while True:
            enc = await self._encode(resp, None, False)
            if enc.problem:
                raise _PartialResults(f"incomplete page ({enc.problem})")
            scroll_id = enc.context_id
            if scroll_id:
                if scroll_id not in self.scroll_ids:
                    self.on_warning(f"scroll {scroll_id}")
                self.scroll_ids.add(scroll_id)
            if self.budget is not None:
                if enc.rows > self.budget:  # scroll pages have a fixed size: cut the last one by rows
                    enc = await self._encode(resp, None, False, limit=self.budget)
                self.budget -= enc.rows
            done = enc.hits == 0 or self.stop.is_set() or self.budget == 0
            await queue.put(Page(r, r, enc, done))
            if done or not scroll_id:
                return
            resp = await self.es.scroll(scroll_id, self.req.keep_alive)  # the next page names the next id

    async def _reader(self, r: int, queue: asyncio.Queue[Item], scroll: bool) -> None:
        try:
            if scroll:
                await self._read_scroll(r, queue)
            else:
                await self._read_pit(r, queue)
            await queue.put(Finished(r))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the writer, which owns the error path
            await queue.put(exc)

    async def _start(self) -> bool:
        """Open (or reuse) the PIT; returns True when scroll must be used instead."""
        method = self.cp.method if self.cp.started else self.req.method
        if method == "scroll":
            return True
        self.pit = Pit(self.es, self.req.index, self.req.keep_alive, log=self.on_warning)
        if self.cp.pit_id and self.cp.started:
            # Resuming: try the PIT we had; if it is gone, the units in progress are read again in a new one.
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

    async def _plan(self, scroll: bool, seq_nos: list[int] | None) -> None:
        req = self.req
        if scroll:
            n = req.slices or 1
            self.cp.units = sorted_units(n)
            self.cp.readers = [ReaderState() for _ in range(n)]
            return
        if self.sorted:
            n = req.slices or 1  # a sorted export stays in order only when one reader produces it
            if n > 1 and req.user_sort():
                self.on_warning(f"--slices {n} with a sort: documents are in order within each slice only")
            if req.partition:
                raise UsageError("--partition: needs units in _shard_doc order (Elasticsearch, no sort in --body)")
            self.cp.units = sorted_units(n)
            self.cp.readers = [ReaderState() for _ in range(n)]
            return
        if seq_nos is None:
            seq_nos = await shard_seq_nos(self.es, req.index)
        self.cp.shards = len(seq_nos)
        # --since with --partition: runs of one partition follow each other for months while the index grows, so
        # the grid must not move with the index's size (grid()); otherwise a document could change partition
        # between two partitions' runs and be exported by both or by neither. A fixed chunk keeps it in place.
        chunk = CHUNK if req.partition and req.since is not None else None
        if req.since is not None and req.partition is None and req.since.new <= CHUNK:
            # A small window: its _seq_no span cut into a few units per shard. A lost PIT rereads at most CHUNK
            # documents all the same, the run does not pay ~64 searches for a few changed documents, and several
            # pages are in flight at once (bench: since-changed).
            self.cp.units = window_units(len(seq_nos), req.since.seq_span, req.since.new, req.page_size)
        else:
            self.cp.units = plan_units(seq_nos, req.partition, chunk)
        # --throttle is for staying out of production's way: auto then means one reader per shard (the least
        # parallelism), so that F halves, thirds... the export's load instead of being absorbed by spare readers.
        wanted = req.slices if req.slices is not None or not req.throttle else len(seq_nos)
        n = choose_readers(wanted, len(seq_nos), len(self.cp.units))
        self.cp.readers = [ReaderState() for _ in range(n)]

    async def run(self) -> ExportResult:
        started = time.monotonic()
        resuming = self.cp.started
        try:
            await self._prepare(resuming)
            return await self._read(started, resuming)
        except BaseException:
            if self.pit is not None:  # a bad --since field, a checkpoint that cannot be saved...: no PIT left
                await self.pit.close()  # open (a no-op when the reading loop's own `finally` closed it)
            raise

    async def _prepare(self, resuming: bool) -> None:
        """The run's setup requests, those that do not need each other's answers sent together (an incremental
        run is mostly setup: bench since-changed): the product, the PIT and --since's mapping; then the mark and
        the shards' _seq_no."""
        since = self.req.since
        want_types = since is not None and not since.taken
        product, scroll, types = await together(self.es.product(), self._start(),
                                                 self.es.mapping(self.req.index) if want_types else None)
        self.order = page_order(product)
        if self.order is not ELASTICSEARCH_ORDER:
            # no `_shard_doc` here (OpenSearch): one stream per slice in the product's own stable order
            self.sorted = True
        if self.sorted:
            self.sort = [*self.req.user_sort(), *self.order.sort]
        if resuming and scroll:
            raise UsageError(f"--checkpoint {self.cp.path}: a scroll export cannot be resumed; start it again")
        self.cp.method = "scroll" if scroll else "pit"
        self.result.method = self.cp.method
        planned = not resuming and not scroll and not self.sorted
        _, seq_nos = await together(self._since(types) if since is not None else None,
                                     shard_seq_nos(self.es, self.req.index) if planned else None)
        if not resuming:
            if since is not None and since.nothing_new:
                self.cp.units, self.cp.readers = [], [ReaderState()]  # one reader with nothing to read: 0 documents
            else:
                await self._plan(scroll, seq_nos)
            self.cp.written = 0

    async def _read(self, started: float, resuming: bool) -> ExportResult:
        if self.pit is not None:
            self.cp.pit_id = self.pit.id
            self.cp.generation = self.pit.generation
        if self.req.max_docs is not None:
            self.budget = max(0, self.req.max_docs - self.cp.written)
        busy = {s.unit for s in self.cp.readers if s.unit is not None}
        self.pending = deque(i for i in range(len(self.cp.units)) if i not in self.cp.done and i not in busy)
        self.parts = self.open_parts(len(self.cp.readers),
                                     [(s.bytes, s.part) for s in self.cp.readers] if resuming else None)
        total = len(self.cp.readers)
        self.result.slices = total
        self.cp.status = "running"
        self.cp.save()
        queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=max(2, total + 1))
        readers = [asyncio.create_task(self._reader(n, queue, self.cp.method == "scroll")) for n in range(total)]
        live = total
        try:
            while live:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Finished):
                    live -= 1
                elif isinstance(item, Rewind):
                    self._rewind(item.reader)
                else:
                    self._write(item)
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
                    await asyncio.wait_for(self.es.clear_scroll(scroll_id, timeout=10), timeout=10)
                    self.on_warning(f"cleared scroll {scroll_id}")
            with contextlib.suppress(OSError):
                self.cp.save()
            self.result.written = self.cp.written
            self.result.part_rows = [s.rows for s in self.cp.readers]
            self.result.seconds = time.monotonic() - started
        return self.result

    async def _since(self, types: Mapping[str, Any] | None) -> None:
        """--since: take the mark inside our PIT (the documents the export will read), unless the checkpoint of a
        resumed run already holds the window; then every unit's query carries last_mark < FIELD <= mark."""
        since = self.req.since
        assert since is not None
        self.result.since = since
        if not since.taken:
            from escli.core.columns import mapped_types

            since.resolve(mapped_types(types if types is not None else await self.es.mapping(self.req.index)))
            body = since.mark_body(self.query, seq_span=not self.sorted)
            if self.pit is not None:
                body["pit"] = {"id": self.pit.id, "keep_alive": self.pit.keep_alive}
            resp = await self.es.search(None if self.pit is not None else self.req.index, body, params=SEARCH_PARAMS)
            answer = parsed(resp.status, resp.body, resp.url, SEARCH)
            since.take(answer)
            if self.pit is not None:
                self.pit.update(answer.get("pit_id"), self.pit.generation)
            self.cp.request["since"] = since.as_dict()
        window = since.window()
        if window is not None:
            self.query = {"bool": {"filter": [window], **({"must": [self.query]} if self.query else {})}}

    def _rewind(self, r: int) -> None:
        state = self.cp.readers[r]
        if state.unit is None:
            return
        self.parts[r].rewind(state.unit_bytes)
        self.cp.written -= state.rows - state.unit_rows
        state.rows, state.bytes, state.after = state.unit_rows, state.unit_bytes, None
        if self.cp.path is not None:
            state.part = self.parts[r].saved(state.unit_bytes)
        self.cp.save()

    def _write(self, page: Page) -> None:
        """Synchronous on purpose: a cancellation cannot fall between writing a page and recording it."""
        state = self.cp.readers[page.reader]
        part = self.parts[page.reader]
        enc = page.enc
        if self.cp.method == "pit" and state.unit != page.unit:
            state.unit = page.unit
            state.unit_bytes = part.mark() if part.rewindable else 0
            state.unit_rows = state.rows
        if enc.rows:
            part.write(enc.data)
            state.rows += enc.rows
            self.cp.written += enc.rows
        if enc.last_sort is not None:
            state.after, state.gen = enc.last_sort, page.generation
        if page.done and self.cp.method == "pit":
            self.cp.done.add(page.unit)
            state.unit, state.after = None, None
            part.final()
        if self.pit is not None:
            self.cp.pit_id = self.pit.id
            self.cp.generation = self.pit.generation
        if self.cp.path is not None:
            state.bytes = part.mark()
            state.part = part.saved(state.unit_bytes)
            now = time.monotonic()
            if now - self.saved_at >= SAVE_EVERY:
                self.cp.save()
                self.saved_at = now
        if enc.rows:
            self.on_progress(enc.rows)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _PartialResults | EscliError):
        return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


async def count_matching(es: Es, req: ExportRequest) -> int | None:
    query = req.search_body().get("query")
    try:
        n = await es.count(req.index, query)
    except Exception:
        return None
    if req.partition is not None or req.since is not None:
        return None  # a partition's share, or what changed, is not known before it is read
    return min(n, req.max_docs) if req.max_docs is not None else n


async def run_export(es: Es, req: ExportRequest, checkpoint: Checkpoint, encoder: PageEncoder,
                     open_parts: OpenParts,
                     on_progress: Callable[[int], None] = lambda n: None,
                     on_warning: Callable[[str], None] = lambda s: None, what: str = "export") -> ExportResult:
    """`what`: the command that reads (export, copy, verify), for the message when retries run out."""
    exporter = Exporter(es, req, checkpoint, encoder, open_parts, on_progress, on_warning)
    try:
        return await exporter.run()
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except _RetriesExhausted as exc:
        where = f"; checkpoint kept in {checkpoint.path}: run again with --resume" if checkpoint.path else \
            "; use --checkpoint FILE to be able to resume"
        # An answer escli cannot use is not retried (es/answers.py): it is said as it is.
        why = f": {exc.cause}" if isinstance(exc.cause, BadAnswerError) else \
            f", retries exhausted ({_describe(exc.cause)})"
        stalled = ExportStalled(f"{what} of {req.index} stopped after {checkpoint.written} documents{why}{where}")
        if isinstance(exc.cause, EscliError):
            stalled.exit_code = exc.cause.exit_code
        raise stalled from exc.cause
