"""CSV files into documents: the header, a bounded sample for guessing types, then every row through converters.

`open_csv` reads the header and up to `sample_rows` rows (kept, so nothing is read twice and stdin works);
`plan_columns` decides each column's type (an existing mapping first, then --types, then the guess);
`CsvTable.docs` streams the sample and the rest of the file as documents. Null cells are left out of the document,
so the engine sees a missing value. A cell that breaks its column's type makes the whole row a bad line
(FILE:LINE, column and value named); the rest of the file goes on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from escli.core.columns import columns_meta
from escli.core.csv_infer import (
    STRING,
    ColumnType,
    Converter,
    converter,
    from_mapping,
    infer,
    is_typed,
    mapped_field,
)
from escli.errors import InputError

SAMPLE_ROWS = 10_000          # DuckDB's sniffer reads 20,480; ten thousand rows guess as well for a few columns
SAMPLE_BYTES = 32 * 1024 * 1024  # and never more than this much text held for the sample
ID_COLUMN = "_id"

Row = tuple[int, list[str]]


class RowError(InputError):
    """A row with a cell that breaks its column's type; the --errors record keeps the row's cells."""

    def __init__(self, source: str, line: int, reason: str, row: dict[str, str]) -> None:
        super().__init__(source, line, reason)
        self.row = row


def _rows(text: IO[str], source: str) -> Iterator[Row | InputError]:
    """(first line of the row, cells) for every record, or an InputError naming the line."""
    reader = csv.reader(text)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            yield InputError(source, start, f"invalid CSV: {exc}")
            continue
        yield start, cells


@dataclass
class CsvTable:
    """An open CSV file: its header, the sampled rows (already read) and the rest (not yet read)."""

    source: str
    header: list[str]
    sample: list[Row | InputError]
    rest: Iterator[Row | InputError]

    def sample_values(self, nulls: frozenset[str]) -> list[list[str]]:
        """Per column, the sampled cells that are not null (empty cells never count for a guess)."""
        cols: list[list[str]] = [[] for _ in self.header]
        width = len(self.header)
        for item in self.sample:
            if isinstance(item, InputError) or len(item[1]) != width:
                continue
            for i, v in enumerate(item[1]):
                if v and v not in nulls:
                    cols[i].append(v)
        return cols

    def docs(self, plan: CsvPlan) -> Iterator[tuple[int, str | None, dict[str, Any]] | InputError]:
        """(line, id, document) for every row, or an InputError for a row that does not fit."""
        build = plan.builder()
        width = len(self.header)
        source = self.source
        id_at = plan.id_at
        for items in (self.sample, self.rest):
            for item in items:
                if isinstance(item, InputError):
                    yield item
                    continue
                line, cells = item
                if len(cells) != width:
                    if not cells:  # a blank line
                        continue
                    yield InputError(source, line, f"expected {width} fields, got {len(cells)}")
                    continue
                try:
                    doc = build(cells)
                except ValueError:
                    yield RowError(source, line, plan.explain(cells), dict(zip(self.header, cells, strict=True)))
                    continue
                doc_id = cells[id_at] if id_at is not None else None
                yield line, doc_id or None, doc
        self.sample = []


def open_csv(fh: IO[bytes], source: str, sample_rows: int = SAMPLE_ROWS,
             sample_bytes: int = SAMPLE_BYTES) -> CsvTable:
    """Read the header and the sample; the file handle must stay open while the table's rows are read."""
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    rows = _rows(text, source)
    header: list[str] = []
    sample: list[Row | InputError] = []
    for item in rows:
        if isinstance(item, InputError):
            raise item
        if item[1]:
            header = item[1]
            break
    if header and len(set(header)) != len(header):
        dup = next(c for c in header if header.count(c) > 1)
        raise InputError(source, 1, f"column {dup!r} appears twice in the header")
    held = 0
    for item in rows:
        sample.append(item)
        if not isinstance(item, InputError):
            held += sum(map(len, item[1]))
        if len(sample) >= sample_rows or held >= sample_bytes:
            break
    return CsvTable(source, header, sample, rows)


@dataclass
class CsvPlan:
    """What each column becomes: its type, its converter and which cells are null."""

    header: list[str]
    types: dict[str, ColumnType]
    nulls: frozenset[str] = frozenset({""})
    inferred: set[str] = field(default_factory=set)

    @property
    def id_at(self) -> int | None:
        return self.header.index(ID_COLUMN) if ID_COLUMN in self.header else None

    def _columns(self) -> list[tuple[int, str, Converter | None, frozenset[str]]]:
        out = []
        for i, name in enumerate(self.header):
            if name == ID_COLUMN or not name:
                continue
            ctype = self.types.get(name, ColumnType(STRING))
            # an empty cell in a number, boolean or date column can only mean "no value"
            nulls = self.nulls | {""} if is_typed(ctype) else self.nulls
            out.append((i, name, converter(ctype), nulls))
        return out

    def builder(self) -> Callable[[Sequence[str]], dict[str, Any]]:
        """A function cells -> document, made once per file: per column the converter and the null set are bound,
        and dotted columns (`specs.ram_gb`) take the nesting path only if the file has any. Raises ValueError for
        a cell that does not convert. (Writing the function out per column, namedtuple-style, was measured: no
        faster, since the converters' own calls dominate.)"""
        flat = [(i, name, conv, nulls) for i, name, conv, nulls in self._columns() if "." not in name]
        dotted = [(i, name.split("."), conv, nulls) for i, name, conv, nulls in self._columns() if "." in name]

        def build(cells: Sequence[str]) -> dict[str, Any]:
            doc: dict[str, Any] = {}
            for i, name, conv, nulls in flat:
                v = cells[i]
                if v not in nulls:
                    doc[name] = v if conv is None else conv(v)
            for i, parts, conv, nulls in dotted:
                v = cells[i]
                if v not in nulls:
                    _put(doc, parts, v if conv is None else conv(v))
            return doc

        return build

    def explain(self, cells: Sequence[str]) -> str:
        """Why `build` refused a row: the first column whose cell does not convert."""
        for i, name, conv, nulls in self._columns():
            v = cells[i]
            if conv is None or v in nulls:
                continue
            try:
                conv(v)
            except ValueError as exc:
                return f"column {name}: {exc}"
        return "row does not convert"

    def properties(self) -> dict[str, Any]:
        """The mapping `properties` for the columns escli types (dotted columns become object fields)."""
        props: dict[str, Any] = {}
        for name in self.header:
            ctype = self.types.get(name)
            spec = ctype.mapping() if ctype is not None and name != ID_COLUMN else None
            if spec is None:
                continue
            target = props
            parts = name.split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {"properties": {}}).setdefault("properties", {})
            target[parts[-1]] = spec
        return props

    def index_body(self) -> dict[str, Any]:
        """The body of the create-index request: the mapping and the file's column order in `_meta`."""
        return {"mappings": {"_meta": columns_meta(self.header), "properties": self.properties()}}


def _put(doc: dict[str, Any], parts: list[str], value: Any) -> None:
    target = doc
    for part in parts[:-1]:
        nxt = target.setdefault(part, {})
        if not isinstance(nxt, dict):
            return  # `a` and `a.b` both columns: the plain value wins, as before
        target = nxt
    target[parts[-1]] = value


def plan_columns(table: CsvTable, nulls: frozenset[str], overrides: Mapping[str, ColumnType],
                 existing: Mapping[str, Any] | None) -> CsvPlan:
    """Each column's type: from the existing mapping's `properties` if the index exists (no guessing), else
    `--types`, else the guess from the sample."""
    types: dict[str, ColumnType] = {}
    inferred: set[str] = set()
    values = table.sample_values(nulls) if existing is None else []
    for i, name in enumerate(table.header):
        if name == ID_COLUMN:
            continue
        if existing is not None:
            types[name] = from_mapping(mapped_field(existing, name))
        elif name in overrides:
            types[name] = overrides[name]
        else:
            types[name] = infer(values[i])
            inferred.add(name)
    return CsvPlan(list(table.header), types, nulls, inferred)
