"""`escli verify SOURCE --to TARGET` and `copy --verify`: are the target's documents the source's, exactly?

Both sides are read at once through export's machinery (core/export.py: a point in time, units, slices,
partitions; a unit read again after a lost PIT is undone, so each document counts once), and every page is folded
into an order-free digest (core/digest.py) instead of being written anywhere:

1. BYTES: each side's count, and per bucket the count and sum of hashes of (`_id`, `_routing`, `_source` bytes
   as returned). Equal buckets are equal (a faithful copy sends the bytes it read). Most copies end here.
2. VALUES: both sides read again, hashing only the documents of the buckets whose bytes differed, as values (keys
   sorted, numbers by value): a bucket whose values agree was spelled differently, not changed. The documents
   of up to MAX_WATCH of the buckets that differ are kept by key (bounded memory: about MAX_WATCH / buckets of
   the index), which names the documents that differ: missing (on the source only), extra (on the target only),
   changed. Should those buckets name fewer than `limit` documents and more buckets differ, one more pass reads
   the next ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import orjson

from escli.core.digest import (
    BYTES,
    DEFAULT_BUCKETS,
    VALUES,
    Difference,
    Digest,
    Fold,
    combine,
    decode_raw_answer,
    diff,
    differing_docs,
    fold,
)
from escli.errors import RefusedError

if TYPE_CHECKING:
    from escli.core.copy_meta import IndexPair, Rename
    from escli.es.api import Es

MAX_WATCH = 10  # buckets whose documents are kept by key in one pass
LIMIT = 10  # documents named per index


# --- export's extension points: a page folded into a digest, a part that keeps a reader's digest ---------------

class FoldBytes(bytes):
    """An encoded page's `data` for export's writer: no bytes to write, the page's fold riding along (export's
    Part.write takes bytes; this keeps core/export.py unchanged)."""

    fold: Fold


class FoldedPage(NamedTuple):
    data: bytes
    hits: int
    rows: int
    last_sort: list[Any] | None
    ids: list[str] | None
    context_id: str | None
    problem: str | None


class FoldEncoder:
    """export's PageEncoder: a raw search answer -> its fold, in the given form and buckets."""

    def __init__(self, index: str, buckets: int, form: str, only: frozenset[int] | None = None,
                 watch: frozenset[int] = frozenset()) -> None:
        self.index, self.buckets, self.form, self.only, self.watch = index, buckets, form, only, watch

    async def encode(self, raw: bytes, skip: set[str] | None, want_ids: bool,
                     limit: int | None = None) -> FoldedPage:
        try:
            answer = decode_raw_answer(raw)
        except msgspec.DecodeError:
            answer = None
        if answer is None or answer.timed_out or answer.shards.failed:
            return self._problem(raw)
        hits = answer.hits.hits
        count = len(hits)
        last_sort = hits[-1].sort if hits else None
        if skip:  # export asks for this only of parts it cannot rewind; ours can, but honour it all the same
            hits = [h for h in hits if h.id not in skip]
        if limit is not None:
            hits = hits[:limit]
        data = FoldBytes()
        data.fold = fold(hits, self.buckets, self.form, self.only, self.watch)
        data.fold.rows = len(hits)
        ids = [h.id for h in hits] if want_ids else None
        return FoldedPage(data, count, len(hits), last_sort, ids, answer.pit_id or answer.scroll_id, None)

    def _problem(self, raw: bytes) -> FoldedPage:
        from escli.core.answer_page import page_problem

        try:
            resp = orjson.loads(raw)
        except orjson.JSONDecodeError:
            resp = None
        problem = page_problem(resp) if isinstance(resp, dict) else None
        if problem is None:
            raise RefusedError(f"{self.index}: a search answer without hits came back ({raw[:80]!r})")
        return FoldedPage(FoldBytes(), 0, 0, None, None, resp.get("pit_id") if isinstance(resp, dict) else None,
                          problem)


class FoldPart:
    """export's Part for one reader: the pages of the unit in progress are kept apart until the unit is done, so
    a unit read again after a lost PIT (a rewind) is undone instead of counted twice."""

    rewindable = True

    def __init__(self, buckets: int, form: str) -> None:
        self.done = Fold(Digest(buckets, form))
        self.unit = Fold(Digest(buckets, form))
        self.marks = 0

    def write(self, data: bytes) -> None:
        assert isinstance(data, FoldBytes)
        self.unit.merge(data.fold)

    def mark(self) -> int:
        self.marks += 1
        return self.marks

    def rewind(self, to: int) -> None:
        self.unit = Fold(Digest(self.done.digest.buckets, self.done.digest.form))

    def final(self) -> None:
        self.done.merge(self.unit)
        self.unit = Fold(Digest(self.done.digest.buckets, self.done.digest.form))

    def saved(self, since: int) -> dict[str, Any]:
        return {}

    def total(self) -> Fold:
        """Everything read: the units done, and a scroll reader's stream (scroll has no units to finish)."""
        out = Fold(self.done.digest.copy(), dict(self.done.docs), self.done.rows)
        out.merge(self.unit)
        return out


# --- one side ------------------------------------------------------------------------------------------------------

@dataclass
class Reading:
    """How each side is read: export's options that apply to a verify."""

    query: dict[str, Any] | None = None
    slices: int | None = None  # None: auto
    partition: tuple[int, int] | None = None
    page_size: int = 1000
    keep_alive: str = "5m"
    buckets: int = DEFAULT_BUCKETS


async def side_digest(es: Es, index: str, reading: Reading, form: str = BYTES,
                      only: frozenset[int] | None = None, watch: frozenset[int] = frozenset(),
                      on_progress: Callable[[int], None] = lambda n: None,
                      on_warning: Callable[[str], None] = lambda s: None) -> Fold:
    """One side's fold of `index` (every matching document once: PIT, units, slices, partition)."""
    from escli.core.export import run_export
    from escli.core.export_state import Checkpoint, ExportRequest

    req = ExportRequest(index=index, query=reading.query, page_size=reading.page_size, slices=reading.slices,
                        keep_alive=reading.keep_alive, partition=reading.partition)
    parts: list[FoldPart] = []

    def open_parts(n: int, resumed: list[tuple[int, dict[str, Any]]] | None) -> list[FoldPart]:
        parts[:] = [FoldPart(reading.buckets, form) for _ in range(n)]
        return parts

    encoder = FoldEncoder(index, reading.buckets, form, only, watch)
    await run_export(es, req, Checkpoint(path=None), encoder, open_parts, on_progress, on_warning)
    out = Fold(Digest(reading.buckets, form))
    for part in parts:
        out.merge(part.total())
    return out


# --- the verdict ---------------------------------------------------------------------------------------------------

@dataclass
class IndexVerdict:
    source: str
    dest: str
    source_count: int = 0
    target_count: int | None = None  # None: no such index on the target
    buckets: int = DEFAULT_BUCKETS
    differing_buckets: int = 0  # by value
    spelled_apart: int = 0  # buckets whose bytes differed but whose values agree
    differences: list[Difference] = field(default_factory=list)
    source_digest: str = ""  # the BYTES digests' totals (hex), for the record
    target_digest: str = ""

    @property
    def equal(self) -> bool:
        return self.target_count is not None and self.differing_buckets == 0

    def summary(self) -> str:
        """One line: what differs."""
        pair = self.source if self.source == self.dest else f"{self.source} -> {self.dest}"
        if self.target_count is None:
            return f"{pair}: no such index on the target ({self.source_count} documents on the source)"
        if self.equal:
            spelled = f" ({self.spelled_apart} bucket(s) spelled differently)" if self.spelled_apart else ""
            return f"{pair}: equal, {self.source_count} documents{spelled}"
        kinds: dict[str, int] = {}
        for d in self.differences:
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
        named = ", ".join(f"{n} {k}" for k, n in kinds.items()) or "none named"
        return (f"{pair}: differs: {self.source_count} documents on the source, {self.target_count} on the "
                f"target; {self.differing_buckets} of {self.buckets} buckets differ ({named})")

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "dest": self.dest, "equal": self.equal, "source_count": self.source_count,
                "target_count": self.target_count, "buckets": self.buckets,
                "differing_buckets": self.differing_buckets, "spelled_apart": self.spelled_apart,
                "source_digest": self.source_digest, "target_digest": self.target_digest,
                "differences": [d.as_dict() for d in self.differences]}


@dataclass
class VerifyResult:
    indices: list[IndexVerdict] = field(default_factory=list)
    seconds: float = 0.0
    passes: int = 0  # reads of both sides (1 when everything was equal byte for byte)

    @property
    def equal(self) -> bool:
        return all(v.equal for v in self.indices)

    def as_dict(self) -> dict[str, Any]:
        return {"equal": self.equal, "seconds": round(self.seconds, 3), "passes": self.passes,
                "indices": [v.as_dict() for v in self.indices]}


async def _exists(es: Es, name: str) -> bool:
    try:
        data = await es.resolve_index(name)
    except RefusedError as exc:
        if exc.status == 404:
            return False
        raise
    return any(data.get(k) for k in ("indices", "aliases", "data_streams"))


async def verify_index(source: Es, target: Es, src: str, dest: str, reading: Reading, limit: int = LIMIT,
                       on_progress: Callable[[int], None] = lambda n: None,
                       on_warning: Callable[[str], None] = lambda s: None,
                       first: tuple[Digest, Digest] | None = None,
                       known_source: Digest | None = None) -> tuple[IndexVerdict, int]:
    """One source index (or data stream) against its copy: the verdict and how many passes it took. `first`:
    both sides' BYTES digests already made (every partition's, combined): the first pass is not read again;
    `known_source`: the source's BYTES digest already made (by the copy, from the pages it sent): the first pass
    reads the target only."""
    verdict = IndexVerdict(src, dest, buckets=reading.buckets)
    if first is None and not await _exists(target, dest):
        verdict.source_count = known_source.count if known_source is not None else \
            await source.count(src, reading.query)
        return verdict, 1

    async def both(form: str, only: frozenset[int] | None = None,
                   watch: frozenset[int] = frozenset()) -> tuple[Fold, Fold]:
        a, b = await asyncio.gather(
            side_digest(source, src, reading, form, only, watch, on_progress, on_warning),
            side_digest(target, dest, reading, form, only, watch, on_progress, on_warning))
        return a, b

    if first is None and known_source is not None:
        t = await side_digest(target, dest, reading, BYTES, None, frozenset(), on_progress, on_warning)
        first = known_source, t.digest
    elif first is None:
        s, t = await both(BYTES)
        first = s.digest, t.digest
    passes = 1
    ds, dt = first
    verdict.source_count, verdict.target_count = ds.count, dt.count
    verdict.source_digest, verdict.target_digest = f"{ds.total:032x}", f"{dt.total:032x}"
    apart = diff(ds, dt)
    if not apart:
        return verdict, passes
    # counts that differ are differences for sure: watch those buckets first
    sure = [b for b in apart if ds.counts.get(b, 0) != dt.counts.get(b, 0)]
    watch = frozenset((sure + [b for b in apart if b not in set(sure)])[:MAX_WATCH])
    s, t = await both(VALUES, frozenset(apart), watch)
    passes += 1
    real = diff(s.digest, t.digest)
    verdict.differing_buckets = len(real)
    verdict.spelled_apart = len(apart) - len(real)
    docs_s, docs_t = s.docs, t.docs
    seen = set(watch)
    while True:
        verdict.differences = differing_docs(docs_s, docs_t, limit)
        left = [b for b in real if b not in seen]
        if len(verdict.differences) >= limit or not left:
            return verdict, passes
        more = frozenset(left[:MAX_WATCH])
        seen |= more
        s, t = await both(VALUES, more, more)
        passes += 1
        docs_s.update(s.docs)
        docs_t.update(t.docs)


def pairs_of(pairs: Sequence[IndexPair] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(p.source, p.dest) if not isinstance(p, tuple) else p for p in pairs]


async def verify_copy(source: Es, target: Es, pairs: Sequence[IndexPair] | Sequence[tuple[str, str]],
                      query: dict[str, Any] | None = None, *, slices: int | None = None,
                      buckets: int = DEFAULT_BUCKETS, limit: int = LIMIT, page_size: int = 1000,
                      first: Mapping[tuple[str, str], tuple[Digest, Digest]] | None = None,
                      source_digests: Mapping[tuple[str, str], Digest] | None = None,
                      on_progress: Callable[[int], None] = lambda n: None,
                      on_warning: Callable[[str], None] = lambda s: None) -> VerifyResult:
    """Each (source index, dest index) pair compared: what `copy --verify` calls after the documents are in (the
    target refreshed: a document not yet visible there is missing). `query` restricts both sides alike.
    `first`: per pair, both sides' BYTES digests already made (`partition_digests` of every partition,
    combined); then only the buckets that differ are read again, whole (not by partition). `source_digests`:
    per pair, the source's BYTES digest made while copying (digest.fold_answer of every page sent, a page read
    again after a lost PIT taken out): the first pass then reads the target only."""
    started = time.monotonic()
    reading = Reading(query=query, slices=slices, page_size=page_size, buckets=buckets)
    result = VerifyResult()
    for src, dest in pairs_of(pairs):
        verdict, passes = await verify_index(source, target, src, dest, reading, limit, on_progress, on_warning,
                                             (first or {}).get((src, dest)), (source_digests or {}).get((src, dest)))
        result.indices.append(verdict)
        result.passes = max(result.passes, passes)
    result.seconds = time.monotonic() - started
    return result


@dataclass
class PairDigests:
    """One partition's BYTES digests of a pair: they compare only once every partition's are combined."""

    source: str
    dest: str
    partition: tuple[int, int] | None
    source_digest: Digest
    target_digest: Digest

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "dest": self.dest,
                "partition": f"{self.partition[0]}/{self.partition[1]}" if self.partition else None,
                "source_digest": self.source_digest.as_dict(), "target_digest": self.target_digest.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairDigests:
        from escli.core.export_plan import parse_partition

        return cls(str(d["source"]), str(d["dest"]), parse_partition(d.get("partition")),
                   Digest.from_dict(d["source_digest"]), Digest.from_dict(d["target_digest"]))


async def partition_digests(source: Es, target: Es, pairs: Sequence[IndexPair] | Sequence[tuple[str, str]],
                            reading: Reading, on_progress: Callable[[int], None] = lambda n: None,
                            on_warning: Callable[[str], None] = lambda s: None) -> list[PairDigests]:
    """Partition `reading.partition` of each side of each pair, as BYTES digests (`--partition K/N`)."""
    out = []
    for src, dest in pairs_of(pairs):
        s, t = await asyncio.gather(side_digest(source, src, reading, BYTES, None, frozenset(), on_progress,
                                                on_warning),
                                    side_digest(target, dest, reading, BYTES, None, frozenset(), on_progress,
                                                on_warning))
        out.append(PairDigests(src, dest, reading.partition, s.digest, t.digest))
    return out


def combine_partitions(parts: Sequence[PairDigests]) -> dict[tuple[str, str], tuple[Digest, Digest]]:
    """Every partition's digests, combined per pair (for verify_copy's `first`); a partition missing or given
    twice is a UsageError naming it."""
    from escli.errors import UsageError

    by_pair: dict[tuple[str, str], list[PairDigests]] = {}
    for p in parts:
        by_pair.setdefault((p.source, p.dest), []).append(p)
    out = {}
    for (src, dest), group in by_pair.items():
        n = {p.partition[1] if p.partition else 1 for p in group}
        ks = sorted(p.partition[0] if p.partition else 1 for p in group)
        if len(n) != 1 or ks != list(range(1, next(iter(n)) + 1)):
            have = ", ".join(f"{k}/{'/'.join(map(str, sorted(n)))}" for k in ks)
            raise UsageError(f"{src} -> {dest}: the partitions given ({have}) are not each of 1/N..N/N once")
        out[(src, dest)] = (combine(p.source_digest for p in group), combine(p.target_digest for p in group))
    return out


async def resolve_pairs(source: Es, expr: str, rename: Rename) -> list[tuple[str, str]]:
    """SOURCE on the source cluster -> [(source index or data stream, its name on the target)], copy's rules."""
    from escli.core.copy_meta import resolve_sources

    return [(name, rename.apply(name)) for name, _ in await resolve_sources(source, expr, rename)]
