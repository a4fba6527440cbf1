"""`export --format parquet`: columns and types from the index mapping, written in row groups.

Schema choices (docs/ARCHITECTURE.md has the reasons):
  * `_id` first, then the same columns as the CSV export (core/columns.py's order), dotted (`specs.cpu`): flat
    columns read the same in DuckDB, Spark, Polars, pandas and every warehouse loader, need no struct evolution when
    an object gains a field, and match the CSV header users already know.
  * keyword/text/ip (and other string-like types) -> string; long/integer/short/byte -> int64;
    double/float/half_float/scaled_float -> float64; boolean -> bool; date -> timestamp[ms, UTC];
    date_nanos -> timestamp[ns, UTC]; anything else (objects the mapping does not describe, nested, geo, ...) ->
    a string holding the value's JSON.
  * Every column is a nullable scalar unless it is a list column (list<type>): found holding an array in a sample
    of the documents before the run (core/array_sample.py), or named in --array-fields. The mapping cannot say
    which fields hold arrays and one streaming pass cannot learn it before the first row group is written, while a
    warehouse table wants one schema for every part. A one-element array is its element (the engine indexes both
    alike); a longer array in a scalar column, or a value that breaks its column's type, leaves the cell null and
    goes to --errors (exit 1), the same contract as elasticsearch-hadoop's `es.read.field.as.array.include`.

How it is written: a page is converted (in the encoder's worker processes, like CSV; decoded into typed rows,
`row_type`, or as dicts by the general path) into one Arrow IPC message plus its error lines, framed; the frames
are appended to the reader's part file exactly like NDJSON bytes, so cutting a part back to a mark (a unit read
again, --resume) works unchanged. When the export succeeds,
each part's frames are read in order and written as Parquet row groups of ROW_GROUP rows (zstd), one file per part
(--out-dir) or all parts into one file (--out). Memory stays at about one row group.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from escli.errors import UsageError
from escli.timestamps import MILLIS, NANOS, parse_date

EXTRA = "parquet"  # the optional dependency group in pyproject.toml
# Read by pyarrow when it is first imported (here, in the encoder's workers and the writer's thread): mimalloc,
# its default, keeps what a page or a row group freed, ~45 MB across the process tree of a 1M-document export
# (389 -> 345 MB), at the same speed. A user's own setting wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
ROW_GROUP = 65_536
FRAME = struct.Struct("<QQ")  # IPC bytes, error-line bytes
STRING_TYPES = {"keyword", "text", "ip", "match_only_text", "wildcard", "constant_keyword", "version",
                "search_as_you_type", "semantic_text"}
INT_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}
FLOAT_TYPES = {"double", "float", "half_float", "scaled_float"}
KINDS = {**dict.fromkeys(STRING_TYPES, "string"), **dict.fromkeys(INT_TYPES, "int64"),
         **dict.fromkeys(FLOAT_TYPES, "float64"), "boolean": "bool", "date": "ts_ms", "date_nanos": "ts_ns"}
INT64 = (-(2**63), 2**63 - 1)
NL = orjson.OPT_APPEND_NEWLINE
# the --errors text of an array in a column decided scalar; the summary line names those fields (misfit_summary)
ARRAY_MISFIT = "an array in a scalar column (name the field in --array-fields)"
_ARRAY_MISFIT = orjson.dumps(ARRAY_MISFIT)

Column = tuple[str, str, bool]  # name, kind, list


def require_pyarrow() -> None:
    """One line naming the extra when pyarrow is missing (exit 2). Found, not imported: the main process loads it
    only to write the files at the end, after the encoder's workers (which load it) are gone."""
    import importlib.util

    try:
        found = importlib.util.find_spec("pyarrow") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UsageError(f"--format parquet needs pyarrow: pip install '{_distribution()}[{EXTRA}]'")


def _distribution() -> str:
    """The name escli is installed under (the distribution may be renamed; the import package is escli)."""
    from importlib.metadata import packages_distributions

    names = packages_distributions().get("escli") or ["escli"]
    return names[0]


def column_kind(types: set[str]) -> str:
    kinds = {KINDS.get(t, "json") for t in types} or {"json"}
    if len(kinds) == 1:
        return kinds.pop()
    if kinds <= {"int64", "float64"}:
        return "float64"  # an index pattern mapping a field as long in one index and double in another
    return "string" if kinds <= {"string", "int64", "float64", "bool"} else "json"


def parquet_schema(columns: Sequence[str], types: Mapping[str, set[str]], array_fields: Sequence[str],
                   source_only: bool) -> list[Column]:
    """The file's columns: `_id` first (unless --source-only), then `columns` (the CSV export's, from the mapping
    or --fields) with their kinds; a column the mapping does not know holds JSON text."""
    from fnmatch import fnmatchcase

    def is_list(name: str) -> bool:
        return any(name == f or name.startswith(f + ".") or fnmatchcase(name, f) for f in array_fields)

    out: list[Column] = [] if source_only else [("_id", "string", False)]
    for name in columns:
        if name == "_id":
            continue
        out.append((name, column_kind(types.get(name, set())), is_list(name)))
    return out


def arrow_schema(columns: Sequence[Column]) -> Any:
    return _arrow_schema(tuple(columns))


@functools.lru_cache(maxsize=8)
def _arrow_schema(columns: tuple[Column, ...]) -> Any:  # once per export, not once per page (0.1 ms each)
    import pyarrow as pa

    base = {"string": pa.string(), "json": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
            "bool": pa.bool_(), "ts_ms": pa.timestamp("ms", tz="UTC"), "ts_ns": pa.timestamp("ns", tz="UTC")}
    return pa.schema([pa.field(n, pa.list_(base[k]) if lst else base[k], nullable=n != "_id")
                      for n, k, lst in columns])


# --- one page -> one frame -------------------------------------------------------------------------------------

class _Bad(ValueError):
    pass


def _int(v: Any) -> int:
    if type(v) is int:
        pass
    elif isinstance(v, float) and math.isfinite(v):
        v = int(v)  # the engine's coerce truncates a fraction on an integer field; so does this column
    elif isinstance(v, str) and not isinstance(v, bool):
        try:
            v = int(v) if v.strip().lstrip("+-").isdigit() and v.isascii() else int(float(v))
        except (ValueError, OverflowError):
            raise _Bad("not an integer") from None
    else:
        raise _Bad("not an integer")
    if not INT64[0] <= v <= INT64[1]:
        raise _Bad("out of int64 range")
    return int(v)


def _float(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    raise _Bad("not a number")


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if v in ("true", "false"):
        return bool(v == "true")
    raise _Bad("not a boolean")


def _string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v) if isinstance(v, float) else str(v)
    raise _Bad("an object in a string column")


def _json(v: Any) -> str:
    return orjson.dumps(v).decode()


def _timestamp(unit: int) -> Any:
    def convert(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise _Bad("not a date")
        try:
            at = parse_date(v, unit)
        except (ValueError, OverflowError):
            raise _Bad("not a date") from None
        if not INT64[0] <= at <= INT64[1]:
            raise _Bad("a date out of range")
        return at
    return convert


CONVERT = {"string": _string, "json": _json, "int64": _int, "float64": _float, "bool": _bool,
           "ts_ms": _timestamp(MILLIS), "ts_ns": _timestamp(NANOS)}


def _column(values: Sequence[Any], name: str, kind: str, is_list: bool, typ: Any, ids: Sequence[str],
            errors: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    if kind != "json" and (not is_list or all(v is None or type(v) is list for v in values)):
        # The common case, converted in C: every value already of the column's type (or null); a list column's
        # values all lists (pyarrow would read a string as a list of its characters) with no null element (which
        # the loop below reports).
        try:
            if kind.startswith("ts_"):
                text = pa.list_(pa.string()) if is_list else pa.string()
                arr = pa.array(values, text).cast(typ)
            else:
                arr = pa.array(values, typ)
            if not is_list or arr.values.null_count == 0:
                return arr
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            pass
    convert = CONVERT[kind]
    out: list[Any] = []

    def one(v: Any, i: int) -> Any:
        try:
            return convert(v)
        except _Bad as exc:
            errors.append({"_id": ids[i], "field": name, "value": v, "error": str(exc)})
            return None

    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif is_list:
            out.append([one(x, i) for x in (v if isinstance(v, list) else [v])])
        elif kind == "json":
            out.append(_json(v))
        elif isinstance(v, list):
            if len(v) > 1:
                errors.append({"_id": ids[i], "field": name, "value": v, "error": ARRAY_MISFIT})
                out.append(None)
            else:
                out.append(one(v[0], i) if v and v[0] is not None else None)
        else:
            out.append(one(v, i))
    return pa.array(out, typ)


def _fill(doc: Mapping[str, Any], prefix: str, i: int, cells: dict[str, list[Any]]) -> None:
    """Put document i's leaves into their columns in one walk (a column naming an object takes it whole, as JSON);
    a value no column names is not written (the mapping, or --fields, chose the columns)."""
    for key, value in doc.items():
        name = prefix + key if prefix else key
        column = cells.get(name)
        if column is not None:
            column[i] = value
        elif type(value) is dict:
            _fill(value, name + ".", i, cells)


def encode_frame(hits: Sequence[dict[str, Any]], columns: Sequence[Column]) -> bytes:
    """One page as a spool frame: an Arrow IPC stream of one record batch, then the page's error lines."""
    n = len(hits)
    ids = [str(h.get("_id")) for h in hits]
    cells: dict[str, list[Any]] = {name: [None] * n for name, _, _ in columns if name != "_id"}
    for i, h in enumerate(hits):
        _fill(h.get("_source") or {}, "", i, cells)
    return _encode_cells(ids, cells, columns)


def _encode_cells(ids: Sequence[str], cells: Mapping[str, Sequence[Any]], columns: Sequence[Column]) -> bytes:
    import pyarrow as pa

    schema = arrow_schema(columns)
    errors: list[dict[str, Any]] = []
    arrays = [_column(ids if name == "_id" else cells[name], name, kind, is_list, fld.type, ids, errors)
              for (name, kind, is_list), fld in zip(columns, schema, strict=True)]
    table = pa.Table.from_arrays(arrays, schema=schema)
    return _frame(table, b"".join(orjson.dumps(e, option=NL) for e in errors))


# --- the common page, decoded into typed rows -------------------------------------------------------------------

# The general path builds every document as dicts (orjson) and walks each into its columns (~14 ms per 1,000-hit
# products page here). Instead msgspec decodes the answer straight into Structs shaped like the columns' tree,
# and zip(*) turns the rows into columns in C (~5 ms). Each leaf accepts every JSON kind the general path's
# converters take (a number in a string column, "42" in an integer one, a one-element array in a scalar column),
# so both paths fill the same cells and `_column` converts and reports them alike. A page this decoder refuses
# (a key no column names, such as a literal dotted "specs.cpu" the general path puts in its column; an object
# where a column expects a value, or a value where it expects an object) takes the general path; after MISSES such
# pages in a row a worker stops trying (sources holding fields the columns leave out would fail every page).
MISSES = 8
_misses = 0
_LEAF: dict[str, Any] = {"string": str | int | float | bool | list[Any], "int64": int | float | str | list[Any],
                         "float64": float | int | str | list[Any], "bool": bool | str | list[Any],
                         "ts_ms": str | int | float | list[Any], "ts_ns": str | int | float | list[Any]}
_ITEM: dict[str, Any] = {"string": str | int | float | bool, "int64": int | float | str,
                         "float64": float | int | str, "bool": bool | str, "ts_ms": str | int | float,
                         "ts_ns": str | int | float}


class _Node(NamedTuple):
    struct: Any  # the msgspec Struct type of this object
    empty: tuple[None, ...]  # its astuple() when the object is missing
    fields: tuple[tuple[str, Any], ...]  # per field: its column's name (a leaf) or its _Node (an object)


@functools.lru_cache(maxsize=8)
def row_type(columns: tuple[Column, ...]) -> _Node | None:
    """The `_source` Struct tree for these columns, or None when they need the general path (a column that is also
    another column's object)."""
    import msgspec

    tree: dict[str, Any] = {}
    for name, kind, is_list in columns:
        if name == "_id":
            continue
        parts = name.split(".")
        if "" in parts:
            return None
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return None
        if parts[-1] in node:
            return None
        node[parts[-1]] = (name, Any if kind == "json" else _list_or_item(_ITEM[kind]) if is_list else _LEAF[kind])
    count = itertools.count()

    def build(node: dict[str, Any]) -> _Node:
        specs, fields = [], []
        for key, value in node.items():
            if isinstance(value, dict):
                child = build(value)
                specs.append((key, child.struct | None, None))
                fields.append((key, child))
            else:
                specs.append((key, value[1] | None, None))
                fields.append((key, value[0]))
        struct = msgspec.defstruct(f"_Source{next(count)}", specs, forbid_unknown_fields=True)
        return _Node(struct, (None,) * len(specs), tuple(fields))

    return build(tree)


def _list_or_item(item: Any) -> Any:
    return list[item | None] | item  # type: ignore[valid-type]


def _spread(rows: Sequence[Any], node: _Node, cells: dict[str, Sequence[Any]]) -> None:
    from msgspec.structs import astuple

    empty = node.empty
    columns = list(zip(*[empty if r is None else astuple(r) for r in rows], strict=True)) if rows else \
        [()] * len(node.fields)
    for (_, target), values in zip(node.fields, columns, strict=True):
        if isinstance(target, str):
            cells[target] = values
        else:
            _spread(values, target, cells)


def encode_rows(node: _Node, ids: Sequence[str], sources: Sequence[Any], columns: Sequence[Column]) -> bytes:
    """One page as a spool frame from rows decoded with `node` (`row_type(columns)`; a missing `_source` is None)."""
    cells: dict[str, Sequence[Any]] = {}
    _spread(sources, node, cells)
    return _encode_cells(ids, cells, columns)


def page_missed(missed: bool) -> None:
    """Count a page the typed decoder refused (or reset the count on one it took)."""
    global _misses
    _misses = _misses + 1 if missed else 0


def typed_pages() -> bool:
    return _misses < MISSES


def _frame(table: Any, bad: bytes) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    ipc: bytes = sink.getvalue().to_pybytes()
    return FRAME.pack(len(ipc), len(bad)) + ipc + bad


# --- the spool -> Parquet ------------------------------------------------------------------------------------------

def _frames(path: Path) -> Iterator[tuple[bytes, bytes]]:
    with path.open("rb") as fh:
        yield from _frames_between(fh, 0, None)


def _frames_between(fh: IO[bytes], start: int, end: int | None) -> Iterator[tuple[bytes, bytes]]:
    """The frames in bytes [start, end) of a spool (to its end when None); both are frame boundaries."""
    fh.seek(start)
    at = start
    while end is None or at < end:
        head = fh.read(FRAME.size)
        if not head:
            break
        n, m = FRAME.unpack(head)
        yield fh.read(n), fh.read(m)
        at += FRAME.size + n + m


class _Sink:
    """Arrow IPC frames in, a Parquet file of ROW_GROUP-row groups out (zstd, 0600); error lines to `errors`."""

    def __init__(self, dest: Path, columns: Sequence[Column], errors: IO[bytes] | None,
                 arrays: set[str] | None = None) -> None:
        import pyarrow.parquet as pq

        self.dest, self.errors = dest, errors
        self.arrays = arrays if arrays is not None else set()  # fields whose arrays met a scalar column
        self.schema = arrow_schema(columns)
        self.fh = os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        self.writer = pq.ParquetWriter(self.fh, self.schema, compression="zstd")
        self.pending: list[Any] = []
        self.rows, self.groups, self.bad = 0, 0, 0

    def frame(self, ipc: bytes, lines: bytes) -> None:
        import pyarrow as pa

        for batch in pa.ipc.open_stream(ipc):
            if batch.num_rows:
                self.pending.append(batch)
                self.rows += batch.num_rows
        if lines:
            self.bad += lines.count(b"\n")
            if _ARRAY_MISFIT in lines:  # rare: read only the lines that say so
                self.arrays.update(orjson.loads(line)["field"] for line in lines.splitlines()
                                   if _ARRAY_MISFIT in line)
            if self.errors is not None:
                self.errors.write(lines)
        if self.rows >= ROW_GROUP:
            self._flush()

    def _flush(self, rest: bool = False) -> None:
        """One row group of exactly ROW_GROUP rows, the remainder kept for the next (a group per flush of all
        pending rows made every other group a few hundred rows long); `rest`: everything pending."""
        import pyarrow as pa

        # from_batches and slice keep the batches' buffers (no copy, unlike concat_tables)
        table = pa.Table.from_batches(self.pending, self.schema)
        if not rest and table.num_rows > ROW_GROUP:
            table, left = table.slice(0, ROW_GROUP), table.slice(ROW_GROUP)
            self.pending, self.rows = left.to_batches(), left.num_rows
        else:
            self.pending, self.rows = [], 0
        self.writer.write_table(table, row_group_size=ROW_GROUP)
        self.groups += 1

    def close(self) -> int:
        """The rest (or an empty file that still carries the schema), the footer, and all of it on disk."""
        if self.pending:
            self._flush(rest=True)
        elif not self.groups:
            self.writer.write_table(self.schema.empty_table(), row_group_size=ROW_GROUP)
        self.writer.close()
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        return self.bad

    def discard(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self.writer.close()
        with contextlib.suppress(OSError, ValueError):
            self.fh.close()
        self.dest.unlink(missing_ok=True)


def spool_to_parquet(spools: Sequence[Path], dest: Path, columns: Sequence[Column], errors: IO[bytes] | None,
                     arrays: set[str] | None = None) -> int:
    """Write the spools' rows, in order, to the Parquet file `dest` (0600) in row groups; the error lines go to
    `errors`. Returns how many values went there; the fields whose arrays met a scalar column join `arrays`."""
    sink = _Sink(dest, columns, errors, arrays)
    try:
        for spool in spools:
            for ipc, lines in _frames(spool):
                sink.frame(ipc, lines)
        return sink.close()
    except BaseException:
        sink.discard()
        raise


class ParquetStream:
    """--out FILE.parquet written while the export runs. A reader's spool bytes are final once its unit is done (a
    unit read again is cut back to where it began, never further), so each finished unit's frames are handed
    here and a thread turns them into row groups of the one file, in the order units finish; the end of the export
    then writes only what is left (bench_export: that end was 1.5-2 s of a 1M-document export, one core busy and
    the other idle). pyarrow's Parquet writer releases the GIL while it encodes and compresses."""

    def __init__(self, dest: Path, columns: Sequence[Column], errors: IO[bytes] | None,
                 arrays: set[str] | None = None) -> None:
        import queue
        import threading

        self.jobs: queue.SimpleQueue[tuple[Path, int, int] | None] = queue.SimpleQueue()
        self.failed: BaseException | None = None
        self.stopping = False
        self.sink: _Sink | None = None
        self.arrays = arrays
        self.thread = threading.Thread(target=self._run, args=(dest, columns, errors), name="escli-parquet",
                                       daemon=True)
        self.thread.start()

    def add(self, spool: Path, start: int, end: int) -> None:
        if self.failed is not None:
            raise self.failed
        if end > start:
            self.jobs.put((spool, start, end))

    def _run(self, dest: Path, columns: Sequence[Column], errors: IO[bytes] | None) -> None:
        handles: dict[Path, IO[bytes]] = {}
        try:
            self.sink = _Sink(dest, columns, errors, self.arrays)
            while (job := self.jobs.get()) is not None:
                if self.stopping:
                    continue
                spool, start, end = job
                fh = handles.get(spool)
                if fh is None:
                    fh = handles[spool] = spool.open("rb")
                for ipc, lines in _frames_between(fh, start, end):
                    self.sink.frame(ipc, lines)
        except BaseException as exc:  # raised in the export's own thread, by add() or finish()
            self.failed = exc
        finally:
            for fh in handles.values():
                fh.close()

    def finish(self) -> int:
        """Every range handed over is written; then the rest, the footer, fsync. Returns the values in --errors."""
        self.jobs.put(None)
        self.thread.join()
        try:
            if self.failed is not None:
                raise self.failed
            assert self.sink is not None
            return self.sink.close()
        except BaseException:
            if self.sink is not None:
                self.sink.discard()
            raise

    def abort(self) -> None:
        self.stopping = True
        self.jobs.put(None)
        self.thread.join()
        if self.sink is not None:
            self.sink.discard()


def misfit_summary(bad: int, errors: Path | None, arrays: Iterable[str] = ()) -> str:
    """The one line of an export whose values did not all fit their columns (exit 1): how many, where they went,
    and for arrays met in a column decided scalar, the option that makes it a list column next time."""
    where = f"written to {errors}" if errors else "use --errors FILE to see them"
    names = sorted(arrays)
    fix = (f"; {', '.join(names)} held arrays the sample did not see: add --array-fields {','.join(names)}"
           if names else "")
    return f"{bad} value(s) did not fit their column and were left empty ({where}){fix}"
