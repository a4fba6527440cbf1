"""What an export is asked (ExportRequest), where it stands (Checkpoint, ReaderState), what the use case hands in
(a PageEncoder and its EncodedPages, the Parts the bytes go to) and what it gives back (ExportResult).

Kept apart from core/export.py's reading loop: commands, copy and verify build these values without the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from escli.core.export_plan import Unit
from escli.errors import UsageError
from escli.es.paging import shard_doc_stable_after
from escli.files import write_private

if TYPE_CHECKING:
    from escli.core.since import Since

CHECKPOINT_VERSION = 3  # 3: --out FILE is one file shared by the readers (each reader's state keeps its part's)
CONTROLLED_KEYS = ("pit", "search_after", "slice", "from", "size", "scroll", "track_total_hits")


@dataclass
class ExportRequest:
    index: str
    query: dict[str, Any] | None = None
    body: dict[str, Any] = field(default_factory=dict)
    fields: list[str] | None = None
    page_size: int = 1000
    slices: int | None = None  # None: auto (core/export_plan.choose_readers)
    max_docs: int | None = None
    keep_alive: str = "5m"
    method: str = "auto"  # auto | pit | scroll
    attempts: int = 6  # per page, for a lost PIT or failed shards (requests are retried by the transport)
    partition: tuple[int, int] | None = None
    throttle: float = 0.0  # wait this many times the last page's time between a reader's pages
    since: Since | None = None  # --since: only last_mark < FIELD <= mark (core/since.py)

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


stable_after = shard_doc_stable_after  # a sorted stream's position made valid in another PIT (es/paging.py)


# --- checkpoint -----------------------------------------------------------------------------------------------

@dataclass
class ReaderState:
    """One reader and its part: the unit in progress, where it began in the part, and the last position."""

    unit: int | None = None
    after: list[Any] | None = None
    gen: int = 1  # the PIT generation `after` came from
    bytes: int = 0  # the part's size at the last mark (what a resume cuts it back to)
    rows: int = 0
    unit_bytes: int = 0
    unit_rows: int = 0
    part: dict[str, Any] = field(default_factory=dict)  # what the part itself needs for a resume (Part.saved)

    def as_dict(self, generation: int) -> dict[str, Any]:
        return {"unit": self.unit, "after": self.after, "exact": self.after is None or self.gen == generation,
                "bytes": self.bytes, "rows": self.rows, "unit_bytes": self.unit_bytes, "unit_rows": self.unit_rows,
                "part": self.part}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReaderState:
        return cls(unit=d.get("unit"), after=d.get("after"), gen=1 if d.get("exact", True) else 0,
                   bytes=int(d.get("bytes", 0)), rows=int(d.get("rows", 0)), unit_bytes=int(d.get("unit_bytes", 0)),
                   unit_rows=int(d.get("unit_rows", 0)), part=dict(d.get("part") or {}))


@dataclass
class Checkpoint:
    """Where an export stands. Saved atomically (temp file, rename), 0600, as pages are written: at most every
    SAVE_EVERY seconds (a save is ~260 us of file system work; after every page it cost a 1M-document export 10% of
    its time), and always at the end, on a rewind and on an interruption. What it records is consistent whenever
    it is saved: a resume cuts the output back to the recorded offsets, so pages written after the last save are
    simply read again."""

    path: Path | None
    request: dict[str, Any] = field(default_factory=dict)
    method: str = "pit"
    pit_id: str | None = None
    shards: int = 0
    units: list[Unit] = field(default_factory=list)
    done: set[int] = field(default_factory=set)
    readers: list[ReaderState] = field(default_factory=list)
    written: int = 0
    output: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    generation: int = 1  # of the PIT named by pit_id (runtime only)

    @property
    def started(self) -> bool:
        return bool(self.readers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION, "status": self.status, "method": self.method, "request": self.request,
            "output": self.output, "pit_id": self.pit_id, "written": self.written, "shards": self.shards,
            "units": [u.as_list() for u in self.units], "done": sorted(self.done),
            "readers": [r.as_dict(self.generation) for r in self.readers],
        }

    def save(self) -> None:
        if self.path is None:
            return
        write_private(self.path, orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise UsageError(f"--checkpoint {path}: no such file (nothing to resume)") from None
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"--checkpoint {path}: not a checkpoint ({exc})") from exc
        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            raise UsageError(f"--checkpoint {path}: not an escli export checkpoint (version {CHECKPOINT_VERSION}); "
                             "start the export again without --resume")
        return cls(path=path, request=data.get("request", {}), method=data.get("method", "pit"),
                   pit_id=data.get("pit_id"), shards=int(data.get("shards", 0)),
                   units=[Unit.from_list(u) for u in data.get("units", [])], done=set(data.get("done", [])),
                   readers=[ReaderState.from_dict(r) for r in data.get("readers", [])],
                   written=int(data.get("written", 0)), output=data.get("output", {}),
                   status=str(data.get("status", "running")))


# --- what the cli hands in: how pages are encoded and where the bytes go ------------------------------------------

class EncodedPage(Protocol):
    @property
    def data(self) -> bytes: ...  # the rows, encoded for the output

    @property
    def hits(self) -> int: ...  # hits in the answer

    @property
    def rows(self) -> int: ...  # rows in `data` (hits minus skipped ones)

    @property
    def last_sort(self) -> list[Any] | None: ...

    @property
    def ids(self) -> list[str] | None: ...  # the written rows' ids, when asked for

    @property
    def context_id(self) -> str | None: ...  # pit_id or _scroll_id of the answer

    @property
    def problem(self) -> str | None: ...  # a timed-out or partial answer


class PageEncoder(Protocol):
    async def encode(self, raw: bytes, skip: set[str] | None, want_ids: bool,
                     limit: int | None = None) -> EncodedPage: ...


class Part(Protocol):
    """One reader's output: appended to by the writer, cut back to a mark when a unit is read again."""

    rewindable: bool

    def write(self, data: bytes) -> None: ...

    def mark(self) -> int:
        """Make what was written durable enough to resume from; returns the size to come back to."""
        ...

    def rewind(self, to: int) -> None: ...

    def final(self) -> None:
        """What was written is final: the reader's unit is done, nothing will cut it back."""
        ...

    def saved(self, since: int) -> dict[str, Any]:
        """What a resume needs of this part beyond its offset, given the current unit's start `since`."""
        ...


# n readers, and on a resume each reader's (byte offset, Part.saved()) from the checkpoint -> their parts
OpenParts = Callable[[int, list[tuple[int, dict[str, Any]]] | None], Sequence[Part]]


@dataclass
class ExportResult:
    index: str
    written: int = 0
    slices: int = 1
    method: str = "pit"
    seconds: float = 0.0
    pit_reopened: int = 0
    retries: int = 0
    reread: int = 0  # units read again after the PIT was lost
    part_rows: list[int] = field(default_factory=list)
    since: Since | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "written": self.written, "slices": self.slices, "method": self.method,
                "seconds": round(self.seconds, 3), "pit_reopened": self.pit_reopened, "retries": self.retries,
                "units_reread": self.reread}
