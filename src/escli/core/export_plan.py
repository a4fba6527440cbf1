"""What an export reads, cut into units whose membership does not depend on the point in time.

A unit is one shard's documents with `_seq_no` in [lo, hi): the shard restriction is a slice without a field
(`{"id": s, "max": shards}`: Elasticsearch's SliceBuilder then matches all of shard s and nothing elsewhere, no
doc-values pass), the range is a query filter; inside a unit pages follow `_shard_doc` only, the cheap PIT paging
path. Both parts of a unit are stable across PITs, so when a PIT is lost only the unit in progress is read again
(its output cut back to where the unit began), at most CHUNK sequence numbers per reader.

Sorted exports (`sort` in --body) keep one stream per slice ordered by [sort, _seq_no, _shard_doc], whose
position survives a new PIT by itself (`stable_after`); they cannot be cut into units without losing the order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from escli.errors import UsageError

CHUNK = 50_000  # at most this many sequence numbers per unit: the most one reader reads twice after a lost PIT
MIN_CHUNK = 1_000
UNITS = 64  # aim: enough units for any --slices (up to 64 readers), few enough that none is tiny
PARTITION = re.compile(r"[ \t]*([0-9]+)[ \t]*/[ \t]*([0-9]+)[ \t]*")


@dataclass(frozen=True, slots=True)
class Unit:
    shard: int  # the shard's index in the PIT (the high 32 bits of `_shard_doc`)
    lo: int | None = None  # _seq_no range [lo, hi); None: the whole shard / whole stream
    hi: int | None = None
    slice: tuple[int, int] | None = None  # sorted streams only: a `_seq_no` doc-values slice (id, max)

    def as_list(self) -> list[Any]:
        return [self.shard, self.lo, self.hi, list(self.slice) if self.slice else None]

    @classmethod
    def from_list(cls, v: Sequence[Any]) -> Unit:
        return cls(int(v[0]), v[1], v[2], tuple(v[3]) if v[3] else None)  # type: ignore[arg-type]


def parse_partition(text: str | None) -> tuple[int, int] | None:
    """`K/N` (1 <= K <= N) -> (K, N)."""
    if text is None:
        return None
    m = PARTITION.fullmatch(text)
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise UsageError(f"--partition {text}: K/N with 1 <= K <= N, e.g. 1/4")
    return int(m.group(1)), int(m.group(2))


def grid(max_seq_nos: Sequence[int]) -> int:
    """The chunk size: a function of the index alone, so separate --partition processes cut it alike."""
    total = sum(max(0, top + 1) for top in max_seq_nos)
    return max(MIN_CHUNK, min(CHUNK, -(-total // UNITS)))


def plan_units(max_seq_nos: Sequence[int], partition: tuple[int, int] | None = None,
               chunk: int | None = None) -> list[Unit]:
    """Every (shard, _seq_no chunk) of the index, or partition K of N of them.

    The grid is fixed (chunk j of shard s is [j*chunk, (j+1)*chunk)) and a chunk belongs to partition
    (s + j) % N, so processes started apart agree on the split; a shard's last chunk ends after its max_seq_no
    at planning time (documents indexed later are not part of the export, as they are not in its first PIT).
    """
    chunk = chunk or grid(max_seq_nos)
    units: list[Unit] = []
    for shard, top in enumerate(max_seq_nos):
        for j in range(max(0, top) // chunk + 1):
            if partition is not None and (shard + j) % partition[1] != partition[0] - 1:
                continue
            units.append(Unit(shard, j * chunk, min((j + 1) * chunk, top + 1)))
    return _interleaved(units)


def _interleaved(units: list[Unit]) -> list[Unit]:
    """Shards interleaved, so that readers taking units in order spread over shards (and nodes)."""
    return sorted(units, key=lambda u: (u.lo or 0, u.shard))


WINDOW_PIECES = 4


def window_units(shards: int, span: tuple[int, int] | None, docs: int, page_size: int) -> list[Unit]:
    """A small --since window's units: the span of its documents' _seq_no (lowest, highest; from the mark search,
    in the same PIT) cut into up to WINDOW_PIECES pieces per shard, about a page each, so that several readers'
    pages are in flight at once; each shard's documents of the window lie inside the span, whatever shard they
    are on. Without a span (an engine that did not give one), one unit per shard."""
    if span is None:
        return [Unit(shard) for shard in range(shards)]
    lo, hi = span[0], span[1] + 1
    pieces = max(1, min(WINDOW_PIECES, -(-docs // max(1, page_size * shards)), hi - lo))
    step = -(-(hi - lo) // pieces)
    return _interleaved([Unit(shard, a, min(a + step, hi)) for shard in range(shards) for a in range(lo, hi, step)])


def sorted_units(slices: int) -> list[Unit]:
    return [Unit(0, slice=(n, slices) if slices > 1 else None) for n in range(slices)]


def unit_body(unit: Unit, shards: int, query: dict[str, Any] | None) -> dict[str, Any]:
    """The slice and query of one unit's searches (the caller adds pit, sort, size and search_after)."""
    body: dict[str, Any] = {}
    if unit.slice is not None:
        body["slice"] = {"field": "_seq_no", "id": unit.slice[0], "max": unit.slice[1]}
        if query:
            body["query"] = query
        return body
    if shards > 1:
        body["slice"] = {"id": unit.shard, "max": shards}
    if unit.lo is None:
        if query:
            body["query"] = query
        return body
    seq = {"range": {"_seq_no": {"gte": unit.lo, "lt": unit.hi}}}
    body["query"] = {"bool": {"filter": [seq], **({"must": [query]} if query else {})}}
    return body


AUTO_READERS = 8


def choose_readers(requested: int | None, shards: int, units: int) -> int:
    """--slices N, or auto: as many readers as there are units, up to AUTO_READERS (and at least one per shard
    when there are more shards), never more than units. More readers than shards is what keeps both the engine and
    escli busy: while one reader's page is encoded and written, the others' pages are being searched (measured in
    bench/bench_export.py; the pace, es/pace.py, keeps fewer in flight when the cluster refuses)."""
    want = requested if requested is not None else max(shards, AUTO_READERS)
    return max(1, min(want, units))
