"""Row writers for table, json, ndjson and csv. Data goes to a binary stream (stdout by default).

Each writer takes dict rows one at a time and never holds more than one row, except the table, which has to
measure its columns (it is meant for terminals and small result sets).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from escli.output.flatten import cell, flatten, row_cells
from escli.output.formats import Format


class RowWriter(Protocol):
    def write(self, row: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class NdjsonWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, row: Mapping[str, Any]) -> None:
        self.out.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))

    def write_raw(self, line: bytes) -> None:
        self.out.write(line)

    def close(self) -> None:
        self.out.flush()


class JsonArrayWriter:
    """One valid JSON array, streamed: `[` first, commas between, `]` on close.

    `first=False` continues an array whose opening and first elements were written earlier (a resumed export).
    """

    def __init__(self, out: IO[bytes], first: bool = True) -> None:
        self.out = out
        self.first = first

    def write(self, row: Mapping[str, Any]) -> None:
        self.out.write(b"[\n" if self.first else b",\n")
        self.first = False
        self.out.write(orjson.dumps(row))

    def close(self) -> None:
        self.out.write(b"[]\n" if self.first else b"\n]\n")
        self.out.flush()


class CsvWriter:
    """RFC 4180 CSV (CRLF line ends, quotes doubled), UTF-8, nested objects flattened with dots."""

    def __init__(self, out: IO[bytes], columns: Sequence[str], excel_safe: bool = False, header: bool = True) -> None:
        self.out = out
        self.columns = list(columns)
        self.excel_safe = excel_safe
        self.buf = io.StringIO()
        self.csv = csv.writer(self.buf, lineterminator="\r\n")
        self._slots: dict[str, int] | None = None
        if header:
            self._emit(self.columns)

    def _emit(self, cells: Sequence[str]) -> None:
        self.csv.writerow(cells)
        self.out.write(self.buf.getvalue().encode("utf-8"))
        self.buf.seek(0)
        self.buf.truncate()

    def write(self, row: Mapping[str, Any]) -> None:
        self._emit(row_cells(flatten(row), self.columns, self.excel_safe))

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Several rows in one encode and one write (what a page of an export is).

        The same cells as `write`, computed only for the fields a document has (documents are usually sparse
        against a header taken from the whole mapping), with plain strings passed through as they are.
        """
        if self._slots is None:
            self._slots = {c: i for i, c in enumerate(self.columns)}
        slots, excel_safe, width = self._slots, self.excel_safe, len(self.columns)
        out: list[list[str]] = []
        for row in rows:
            cells = [""] * width
            _cells_into(row, "", cells, slots, excel_safe)
            out.append(cells)
        self.csv.writerows(out)
        self.out.write(self.buf.getvalue().encode("utf-8"))
        self.buf.seek(0)
        self.buf.truncate()

    def close(self) -> None:
        self.out.flush()


def csv_rows(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], excel_safe: bool = False) -> bytes:
    """Rows as CSV bytes (no header): one export page, encoded wherever it is encoded (a worker process)."""
    buf = io.BytesIO()
    CsvWriter(buf, columns, excel_safe, header=False).write_many(rows)
    return buf.getvalue()


def csv_header(columns: Sequence[str]) -> bytes:
    buf = io.BytesIO()
    CsvWriter(buf, columns)
    return buf.getvalue()


def _cells_into(doc: Mapping[str, Any], prefix: str, cells: list[str], slots: Mapping[str, int],
                excel_safe: bool) -> None:
    """`row_cells(flatten(doc), ...)` in one pass, for the keys the document has; the common JSON types inline."""
    for key, value in doc.items():
        name = prefix + key if prefix else key
        kind = type(value)
        if kind is dict and value:
            _cells_into(value, name + ".", cells, slots, excel_safe)
            continue
        i = slots.get(name)
        if i is None:
            continue
        if kind is str and not excel_safe:
            cells[i] = value
        elif kind is int:
            cells[i] = str(value)
        elif kind is float:
            cells[i] = repr(value)
        else:
            cells[i] = cell(value, excel_safe)


class TableWriter:
    """A rich table on stdout; rows are kept until close because column widths need them all."""

    def __init__(self, out: IO[bytes], columns: Sequence[str], title: str | None = None) -> None:
        self.out = out
        self.columns = list(columns)
        self.title = title
        self.rows: list[list[str]] = []

    def write(self, row: Mapping[str, Any]) -> None:
        self.rows.append(row_cells(flatten(row), self.columns, original=row))

    def close(self) -> None:
        from escli.output.tables import render_table

        self.out.write(render_table(self.columns, self.rows, self.title).encode("utf-8"))
        self.out.flush()


def make_writer(fmt: Format, out: IO[bytes], columns: Sequence[str] = (), title: str | None = None,
                excel_safe: bool = False) -> RowWriter:
    if fmt is Format.NDJSON:
        return NdjsonWriter(out)
    if fmt is Format.JSON:
        return JsonArrayWriter(out)
    if fmt is Format.CSV:
        return CsvWriter(out, columns, excel_safe)
    return TableWriter(out, columns, title)


# --- files that appear only when complete, and the export's page sink ----------------------------------------------

GZIP_LEVEL = 3  # zlib level for .gz output: most of level 6's ratio on JSON at several times the speed


def partial_path(path: Path) -> Path:
    """The temporary name a file is written under: hidden, beside it (so the rename is atomic)."""
    return path.with_name(f".{path.name}.escli-partial")
