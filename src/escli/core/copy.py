"""`escli copy SOURCE --to TARGET`: every document of SOURCE exactly once on another cluster, resumably.

Reading is export's machinery (core/export.py): one point in time per source index, its units, slices,
--partition and checkpoint. Writing plugs into it as its page encoder: `BulkWriter.encode` turns the raw page
into one bulk request (each `_source` sent as the bytes the source answered with, never decoded; the action
carries `_id` and `routing`; data streams take `create`) and returns only once the target acknowledged it, refused
items retried by importer.send_chunk (the retry policy; the target's adaptive pace slows on 429 and
es_rejected_execution). So a page reaches export's writer, and the checkpoint, only after it is on the target:
what the checkpoint records is on the target, and what a SIGKILL leaves unrecorded is sent again by --resume
under the same `_id` (an overwrite with the same document: still exactly once). The "part" the writer appends to
is `Sent`, which holds nothing. Without --checkpoint nothing records a page, so BulkWriter hands a page back once
its bulk request is under way (`ahead` of them in flight) and the copy drains them before it ends.

Documents the target refuses for good go to --errors in import's own error-line shape (core/importer.ErrorSink),
flushed before their page counts as done, so `escli import DEST ERRORS` re-imports them as they are.

Several source indices (a pattern, an alias, data streams) are copied one after another; the checkpoint names
them all and which one is in progress (its export state is that index's own).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from escli.core.answer_page import Encoded, page_problem, raw_answer
from escli.core.copy_meta import DATA_STREAM, CopyPlan, IndexPair, Rename
from escli.core.export import ExportStalled, run_export
from escli.core.export_state import Checkpoint, ExportRequest, ExportResult
from escli.core.importer import ErrorSink, ImportOptions, ImportResult, OpType, Pending, send_chunk
from escli.errors import EscliError, RefusedError, UnreachableError, UsageError
from escli.es.retry import RETRY_ON_STATUS

if TYPE_CHECKING:
    from escli.es.api import Es

COPY_STATE = "copy"  # the key of the checkpoint's `output` that holds the copy's own state


@dataclass
class CopyRequest:
    source: str  # index, alias, data stream or pattern on the source cluster
    rename: Rename = field(default_factory=Rename)
    query: dict[str, Any] | None = None
    body: dict[str, Any] = field(default_factory=dict)
    metadata: bool = True
    into_existing: bool = False
    evaluate: bool = False  # plan only: what would be created, rewritten, dropped or refused
    page_size: int = 1000
    slices: int | None = None  # None: auto (export's choice)
    partition: tuple[int, int] | None = None
    keep_alive: str = "5m"

    def export_request(self, index: str, method: str = "auto") -> ExportRequest:
        return ExportRequest(index=index, query=self.query, body=dict(self.body), page_size=self.page_size,
                             slices=self.slices, keep_alive=self.keep_alive, partition=self.partition, method=method)

    def recorded(self) -> dict[str, Any]:
        """What a --resume must match (the checkpoint's record of the run)."""
        return {"source": self.source, "query": self.query, "body": self.body, "metadata": self.metadata,
                "partition": None if self.partition is None else list(self.partition),
                "rename": [self.rename.dest, self.rename.prefix, self.rename.suffix]}


@dataclass
class PairResult:
    source: str
    dest: str
    kind: str
    copied: int = 0
    rejected: int = 0
    seconds: float = 0.0
    export: ExportResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "dest": self.dest, "kind": self.kind, "copied": self.copied,
                "rejected": self.rejected, "seconds": round(self.seconds, 3)}


@dataclass
class CopyResult:
    plan: CopyPlan
    pairs: list[PairResult] = field(default_factory=list)
    seconds: float = 0.0
    errors_sample: list[str] = field(default_factory=list)
    skipped: int = 0  # indices a resumed run found done already

    @property
    def copied(self) -> int:
        return sum(p.copied for p in self.pairs)

    @property
    def rejected(self) -> int:
        return sum(p.rejected for p in self.pairs)

    def as_dict(self) -> dict[str, Any]:
        return {"copied": self.copied, "rejected": self.rejected, "seconds": round(self.seconds, 3),
                "indices": [p.as_dict() for p in self.pairs],
                "changes": [{"index": c.index, "what": c.what, "action": c.action, "why": c.why}
                            for c in self.plan.changes]}


# --- a page of the source, as documents for the target ---------------------------------------------------------

@dataclass
class PageDocs:
    docs: list[Pending]
    hits: int
    last_sort: list[Any] | None
    context_id: str | None
    problem: str | None


def page_docs(raw: bytes, skip: set[str] | None = None, limit: int | None = None) -> PageDocs:
    """The documents of a raw search answer, each `_source` as the bytes the engine sent (msgspec.Raw: never
    decoded). A raw newline in a source (a document indexed pretty-printed) is JSON whitespace (strings escape
    theirs), so it becomes a space: the bulk body stays one line per source. Failed shards or a timeout: the
    general path reads the reason, and the page is no page (export retries it)."""
    kept = raw_answer(raw, skip, limit, newlines=True)
    if kept is None:
        return _general_docs(raw, skip, limit)
    hits = kept.hits
    if b"\n" in raw:
        docs = [Pending(0, h.id, bytes(h.source).replace(b"\n", b" "), h.routing) for h in hits]
    else:
        docs = [Pending(0, h.id, bytes(h.source), h.routing) for h in hits]
    return PageDocs(docs, kept.in_answer, kept.last_sort, kept.context_id, None)


def _general_docs(raw: bytes, skip: set[str] | None, limit: int | None) -> PageDocs:
    resp = orjson.loads(raw)
    if not isinstance(resp, dict):
        return PageDocs([], 0, None, None, f"not a search answer ({type(resp).__name__})")
    hits: list[dict[str, Any]] = (resp.get("hits") or {}).get("hits") or []
    count = len(hits)
    last_sort = hits[-1].get("sort") if hits else None
    if skip:
        hits = [h for h in hits if h["_id"] not in skip]
    if limit is not None:
        hits = hits[:limit]
    docs = [Pending(0, h["_id"], orjson.dumps(h.get("_source") or {}), h.get("_routing")) for h in hits]
    return PageDocs(docs, count, last_sort, resp.get("pit_id") or resp.get("_scroll_id"), page_problem(resp))


class BulkWriter:
    """Export's PageEncoder for a copy: a page is sent to the target as one bulk request and handed back (with no
    bytes) only once the target acknowledged it, so export's writer records it as done only then.

    `ahead` > 0 (a copy without --checkpoint: nothing records a page, so nothing can record one too early): a page is
    handed back as soon as its bulk request is under way, up to `ahead` of them in flight, and the reader searches
    its next page meanwhile; `drain` waits for every one (and raises the first failure) before the copy counts as
    done. A single reader (OpenSearch, a scroll) then keeps the target as busy as several would."""

    def __init__(self, target: Es, pair: IndexPair, op: OpType, errors: ErrorSink, result: ImportResult,
                 resent: bool = False, ahead: int = 0) -> None:
        self.target = target
        self.ahead = ahead
        self.sending: set[asyncio.Task[None]] = set()
        self.resent = resent  # pages may go a second time (a resumed run, a unit read again): a 409 is a copy
        # `source` and the error lines' `line` 0: a copy's refused document comes from an index, not a file line
        self.opts = ImportOptions(index=pair.dest, source=pair.source, refresh=False)
        self.op = op
        self.errors = errors
        self.result = result

    async def encode(self, raw: bytes, skip: set[str] | None, want_ids: bool, limit: int | None = None) -> Encoded:
        page = page_docs(raw, skip, limit)
        if page.problem is None and page.docs:
            if self.ahead:
                self._reap({t for t in self.sending if t.done()})
                while len(self.sending) >= self.ahead:
                    done, _ = await asyncio.wait(self.sending, return_when=asyncio.FIRST_COMPLETED)
                    self._reap(done)
                self.sending.add(asyncio.create_task(self._send(page.docs)))
            else:
                await self._send(page.docs)
        ids = [d.id for d in page.docs if d.id is not None] if want_ids else None
        return Encoded(b"", page.hits, len(page.docs), page.last_sort, ids, page.context_id, page.problem)

    async def _send(self, docs: list[Pending]) -> None:
        failed = self.result.failed
        await send_chunk(self.target, self.opts, self.op, docs, self.result, self.errors, self.resent)
        if self.result.failed != failed:
            self.errors.flush()

    def _reap(self, done: set[asyncio.Task[None]]) -> None:
        """Forget finished sends; the first failure among them is raised (every one is read, none left unseen)."""
        self.sending -= done
        failures = [exc for exc in (t.exception() for t in done if not t.cancelled()) if exc is not None]
        if failures:
            raise failures[0]

    async def drain(self) -> None:
        while self.sending:
            done, _ = await asyncio.wait(self.sending)
            self._reap(done)

    async def cancel(self) -> None:
        for task in self.sending:
            task.cancel()
        await asyncio.gather(*self.sending, return_exceptions=True)
        self.sending.clear()


class Sent:
    """Export's Part for a copy: the documents went to the target in BulkWriter.encode; nothing to hold here. A unit
    read again (a lost PIT) sends its documents again under the same ids, which is why this part can always be
    'cut back'; from then on the writer knows pages may be sent twice."""

    rewindable = True

    def __init__(self, writer: BulkWriter) -> None:
        self.writer = writer

    def write(self, data: bytes) -> None:
        pass

    def mark(self) -> int:
        return 0

    def rewind(self, to: int) -> None:
        self.writer.resent = True

    def final(self) -> None:
        pass

    def saved(self, since: int) -> dict[str, Any]:
        return {}


# --- the use case ----------------------------------------------------------------------------------------------

@dataclass
class CopyRun:
    """What the cli hands in besides the request: the checkpoint file (and whether to resume it), the errors
    file, who the target is (a resume must go to the same one), and where progress and warnings go."""

    checkpoint: Path | None = None
    resume: bool = False
    errors: Path | None = None
    target_id: str = ""
    ahead: int = 0  # without a checkpoint: bulk requests still in flight when their page is handed back
    on_start: Callable[[list[IndexPair]], None] = lambda pairs: None
    on_progress: Callable[[int], None] = lambda n: None
    on_warning: Callable[[str], None] = lambda s: None


def _load_state(run: CopyRun, req: CopyRequest) -> tuple[Checkpoint, dict[str, Any]]:
    assert run.checkpoint is not None
    cp = Checkpoint.load(run.checkpoint)
    state = cp.output.get(COPY_STATE)
    where = f"--checkpoint {run.checkpoint}"
    if not isinstance(state, dict):
        raise UsageError(f"{where}: not a copy's checkpoint (an export's?); start the copy again without --resume")
    if state.get("request") != req.recorded():
        was = state.get("request") or {}
        raise UsageError(f"{where}: it records a copy of {was.get('source')} with other options; give the same "
                         "SOURCE and options, or start again without --resume")
    if state.get("target") != run.target_id:
        raise UsageError(f"--to: the checkpoint {run.checkpoint} copies to {state.get('target')}, not "
                         f"{run.target_id}")
    return cp, state


async def _read_method(source: Es, req: CopyRequest, run: CopyRun) -> str:
    """How the source is read. OpenSearch before 3.3 has no `_shard_doc`: a point in time there pages in
    [_index, _id] order, which costs the engine a sort on every page (3.5x a scroll's CPU for 30k products here,
    more as the index grows). A copy without --checkpoint resumes nothing, so it reads such a source with a scroll
    (`_doc` order, the engine's cheapest); with --checkpoint, or --partition (units), a point in time."""
    from escli.es.paging import OPENSEARCH_ORDER, page_order

    if run.checkpoint is not None or req.partition is not None or req.body.get("sort"):
        return "auto"
    return "scroll" if page_order(await source.product()) is OPENSEARCH_ORDER else "auto"  # not 3.3+


def _listed(pairs: list[IndexPair]) -> list[list[str]]:
    return [[p.source, p.dest, p.kind] for p in pairs]


async def run_copy(source: Es, target: Es, req: CopyRequest, run: CopyRun) -> CopyResult:
    """Plan (core/copy_meta.py), create what the plan creates, copy each index's documents, finish (settings
    back, aliases, refresh). --evaluate: the plan alone. A resumed run plans again (`resuming`: the indices its
    first run made are its own) and goes on from the pair and the page the checkpoint records."""
    from escli.core.copy_meta import apply_plan, finish_plan, plan_copy

    started = time.monotonic()
    cp: Checkpoint | None = None
    state: dict[str, Any] = {}
    if run.resume:
        cp, state = _load_state(run, req)
    plan = await plan_copy(source, target, req.source, req.rename, metadata=req.metadata,
                           into_existing=req.into_existing, resuming=run.resume)
    result = CopyResult(plan)
    if req.evaluate:
        return result
    if run.resume:
        if state.get("pairs") != _listed(plan.pairs):
            raise UsageError(f"--checkpoint {run.checkpoint}: {req.source} names other indices now than when the "
                             "copy began; start it again without --resume")
        current = int(state.get("current", 0))
    else:
        existing = [p.dest for p in plan.pairs if p.exists]
        if existing and not req.into_existing and not req.metadata:  # with metadata, the plan refuses it
            raise RefusedError(f"{existing[0]}: the index exists on the target (--into-existing copies into it)")
        state = {"request": req.recorded(), "target": run.target_id, "pairs": _listed(plan.pairs), "current": 0}
        current = 0
    if req.metadata:
        await apply_plan(target, plan)  # a refused plan stops here (exit 4), before any document
    run.on_start(plan.pairs)
    method = await _read_method(source, req, run)
    errors = ErrorSink(run.errors, append=run.resume)
    try:
        for n, pair in enumerate(plan.pairs):
            if n < current:
                result.skipped += 1
                continue
            if cp is None or n != current or not run.resume:
                cp = Checkpoint(path=run.checkpoint)
                cp.request = {"index": pair.source}
            state["current"] = n
            cp.output = {COPY_STATE: state}
            if cp.written:
                run.on_progress(cp.written)  # what the interrupted run copied of this index already
            result.pairs.append(await _copy_pair(source, target, req, pair, cp, errors, run, result, method))
    finally:
        errors.close()
    await finish_plan(target, plan)  # --no-metadata: the refresh alone (in as many requests as the names need)
    result.seconds = time.monotonic() - started
    return result


async def _copy_pair(source: Es, target: Es, req: CopyRequest, pair: IndexPair, cp: Checkpoint,
                     errors: ErrorSink, run: CopyRun, result: CopyResult, method: str) -> PairResult:
    started = time.monotonic()
    tally = ImportResult(pair.dest)
    # a data stream takes create only; an index name that a target template makes a data stream switches to it
    op = OpType("create", switchable=False) if pair.kind == DATA_STREAM else OpType("index", switchable=True)
    writer = BulkWriter(target, pair, op, errors, tally, resent=cp.started,
                        ahead=run.ahead if run.checkpoint is None else 0)

    def open_sent(readers: int, resumed: list[tuple[int, dict[str, Any]]] | None) -> list[Sent]:
        return [Sent(writer) for _ in range(readers)]

    try:
        exported = await run_export(source, req.export_request(pair.source, method), cp, writer, open_sent,
                                    run.on_progress, run.on_warning, what="copy")
        await writer.drain()
    except (ExportStalled, UnreachableError, RefusedError) as exc:
        gave_up = isinstance(exc, ExportStalled | UnreachableError) or (exc.status or 0) in RETRY_ON_STATUS
        if not writer.ahead or not gave_up:
            raise
        # Bulks ahead: a failed one surfaces at the next page or at the end, and the pages handed back are not
        # all acknowledged; the count said is the target's answers.
        cause = exc.__cause__ if isinstance(exc, ExportStalled) and isinstance(exc.__cause__, EscliError) else exc
        stalled = ExportStalled(f"copy of {pair.source} stopped after {tally.imported + tally.failed} documents, "
                                f"retries exhausted ({str(cause).splitlines()[0]}); use --checkpoint FILE to be "
                                "able to resume")
        stalled.exit_code = cause.exit_code if isinstance(cause, EscliError) else exc.exit_code
        raise stalled from cause
    finally:
        await writer.cancel()
    result.errors_sample.extend(tally.errors_sample[:max(0, 5 - len(result.errors_sample))])
    return PairResult(pair.source, pair.dest, pair.kind, tally.imported, tally.failed,
                      time.monotonic() - started, exported)
