"""Export pages: a raw search answer in, the output's bytes out (NDJSON inline, CSV and Parquet frames in a
process pool).

`encode_page` is pure and picklable, so CSV pages (Python-level cell work, ~80k docs/s on one core) are encoded
in worker processes while the event loop keeps requests flowing. NDJSON is inline and never builds the documents:
msgspec decodes the answer with each `_source` kept as its raw bytes (`msgspec.Raw`), which go out as they came
(0.71 ms per 1,000-hit products page, against 1.83 ms for orjson loads + dumps of every hit). A page whose bytes
hold a raw newline (a document indexed pretty-printed: the engine returns a source as it was sent, and JSON
strings escape their newlines) is re-serialized with orjson instead, so every line stays one document.
Parquet pages are decoded the same way with each `_source` as a typed row (output/parquet.row_type).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from escli.core.answer_page import Encoded, answer_decoder, page_problem, raw_answer

NL = orjson.OPT_APPEND_NEWLINE


@dataclass(frozen=True)
class PageSpec:
    fmt: str  # "ndjson" | "json" (encoded as NDJSON lines; the array is made on output) | "csv" | "parquet"
    columns: tuple[str, ...] = ()
    source_only: bool = False
    excel_safe: bool = False
    schema: tuple[tuple[str, str, bool], ...] = ()  # parquet: (column, kind, list), output/parquet.py


# --- NDJSON without building the documents ---------------------------------------------------------------------

class _Line(msgspec.Struct, omit_defaults=True,
            rename={"index": "_index", "id": "_id", "source": "_source", "routing": "_routing"}):
    index: str | None
    id: str
    source: msgspec.Raw
    routing: str | None = None  # only on the lines of hits that have one (a routed index): import sends it


_LINES = msgspec.json.Encoder()


def _raw_page(raw: bytes, spec: PageSpec, skip: set[str] | None, want_ids: bool, limit: int | None
              ) -> Encoded | None:
    """NDJSON lines from the answer's bytes without building the documents, or a Parquet frame from typed rows;
    None when the general path must do it."""
    if spec.fmt == "parquet":
        return typed_parquet(raw, spec, skip, want_ids, limit)
    kept = raw_answer(raw, skip, limit)
    if kept is None:
        return None
    hits = kept.hits
    ids = [h.id for h in hits] if want_ids else None
    if spec.source_only:
        data = b"".join([bytes(h.source) + b"\n" for h in hits])
    else:
        data = _LINES.encode_lines([_Line(h.index, h.id, h.source, h.routing) for h in hits])
    return Encoded(data, kept.in_answer, len(hits), kept.last_sort, ids, kept.context_id, None)


def typed_parquet(raw: bytes, spec: PageSpec, skip: set[str] | None = None, want_ids: bool = False,
                  limit: int | None = None) -> Encoded | None:
    """A Parquet page from typed rows, the same frame as general_page's, or None when it must decide."""
    from escli.output import parquet

    node = parquet.row_type(spec.schema)
    if node is None or not parquet.typed_pages():
        return None
    kept = raw_answer(raw, skip, limit, answer_decoder(node.struct))
    parquet.page_missed(kept is None)
    if kept is None:
        return None
    ids = [h.id for h in kept.hits]
    data = parquet.encode_rows(node, ids, [h.source for h in kept.hits], spec.schema)
    return Encoded(data, kept.in_answer, len(ids), kept.last_sort, ids if want_ids else None, kept.context_id, None)


def encode_page(raw: bytes, spec: PageSpec, skip: set[str] | None = None, want_ids: bool = False,
                limit: int | None = None) -> Encoded:
    if spec.fmt in ("ndjson", "json", "parquet"):
        fast = _raw_page(raw, spec, skip, want_ids, limit)
        if fast is not None:
            return fast
    return general_page(raw, spec, skip, want_ids, limit)


def general_page(raw: bytes, spec: PageSpec, skip: set[str] | None = None, want_ids: bool = False,
                 limit: int | None = None) -> Encoded:
    """Any page, any format: the answer built as dicts (orjson), its failures read."""
    resp = orjson.loads(raw)
    hits: list[dict[str, Any]] = (resp.get("hits") or {}).get("hits") or []
    count = len(hits)
    last_sort = hits[-1].get("sort") if hits else None
    context_id = resp.get("pit_id") or resp.get("_scroll_id")
    problem = page_problem(resp)
    if skip:
        hits = [h for h in hits if h["_id"] not in skip]
    if limit is not None:
        hits = hits[:limit]
    ids = [h["_id"] for h in hits] if want_ids else None
    return Encoded(encode_hits(hits, spec), count, len(hits), last_sort, ids, context_id, problem)


def encode_hits(hits: Sequence[dict[str, Any]], spec: PageSpec) -> bytes:
    dumps = orjson.dumps
    if spec.fmt == "parquet":
        from escli.output.parquet import encode_frame

        return encode_frame(hits, spec.schema)
    if spec.fmt == "csv":
        from escli.output.writers import csv_rows

        if spec.source_only:
            return csv_rows((h.get("_source") or {} for h in hits), spec.columns, spec.excel_safe)
        return csv_rows(({"_id": h["_id"], **(h.get("_source") or {})} for h in hits), spec.columns,
                        spec.excel_safe)
    if spec.source_only:
        return b"".join(dumps(h.get("_source") or {}, option=NL) for h in hits)
    return b"".join(dumps(_hit_line(h), option=NL) for h in hits)


def _hit_line(hit: dict[str, Any]) -> dict[str, Any]:
    """An NDJSON line of export: `_routing` only when the hit has one (as the fast path's _Line)."""
    line = {"_index": hit.get("_index"), "_id": hit["_id"], "_source": hit.get("_source") or {}}
    if hit.get("_routing") is not None:
        line["_routing"] = hit["_routing"]
    return line


class InlineEncoder:
    def __init__(self, spec: PageSpec) -> None:
        self.spec = spec

    async def encode(self, raw: bytes, skip: set[str] | None, want_ids: bool, limit: int | None = None) -> Encoded:
        return encode_page(raw, self.spec, skip, want_ids, limit)

    def close(self) -> None:
        pass


_WORKER_SPEC: PageSpec | None = None


def _init_worker(spec: PageSpec) -> None:
    global _WORKER_SPEC
    _WORKER_SPEC = spec
    import gc
    import signal

    # A Ctrl-C reaches the whole process group: the parent stops the pool; a worker killed by it would print a
    # KeyboardInterrupt traceback. It was started with SIGINT blocked (see PoolEncoder.encode), so none is lost.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    gc.set_threshold(50_000, 20, 100)  # pages are acyclic trees of fresh objects (see cli/export.py)


def _encode_in_worker(raw: bytes, skip: set[str] | None, want_ids: bool, limit: int | None) -> Encoded:
    assert _WORKER_SPEC is not None
    return encode_page(raw, _WORKER_SPEC, skip, want_ids, limit)


class PoolEncoder:
    """CSV pages encoded in `workers` processes (spawned: a fork of a process running an event loop and the
    transport's threads is not safe); the raw answer goes in and the CSV bytes come back, both plain bytes."""

    def __init__(self, spec: PageSpec, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(spec,))

    async def encode(self, raw: bytes, skip: set[str] | None, want_ids: bool, limit: int | None = None) -> Encoded:
        loop = asyncio.get_running_loop()
        # The pool starts a worker inside a submit, when it needs one: SIGINT blocked across it, so the worker
        # inherits the block through exec and a Ctrl-C while it imports cannot kill it; here the signal stays
        # pending until the mask is restored (~1 us per page).
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            fut = loop.run_in_executor(self.pool, _encode_in_worker, raw, skip, want_ids, limit)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return await fut

    def close(self) -> None:
        """Until the workers are gone (their memory with them, before the Parquet files are written). Never
        without waiting: at exit Python 3.11's `_python_exit` writes to the pool's wakeup pipe, which the pool's
        manager thread may be closing at that moment (EBADF, a traceback after a Ctrl-C). Pages not started are
        cancelled; a running one takes milliseconds."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def make_encoder(spec: PageSpec, readers: int) -> InlineEncoder | PoolEncoder:
    import os

    cpus = os.cpu_count() or 1
    if spec.fmt in ("csv", "parquet") and cpus > 1:  # even one reader gains: encoding overlaps the next request
        return PoolEncoder(spec, max(1, min(readers, cpus)))
    return InlineEncoder(spec)
