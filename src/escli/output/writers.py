"""Row writers for table, json, ndjson and csv. Data goes to a binary stream (stdout by default).

Each writer takes dict rows one at a time and never holds more than one row, except the table, which has to
measure its columns (it is meant for terminals and small result sets).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import IO, Any, Protocol

import orjson

from escli.output.flatten import flatten, row_cells
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
    """One valid JSON array, streamed: `[` first, commas between, `]` on close."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.first = True

    def write(self, row: Mapping[str, Any]) -> None:
        self.out.write(b"[\n" if self.first else b",\n")
        self.first = False
        self.out.write(orjson.dumps(row))

    def close(self) -> None:
        self.out.write(b"[]\n" if self.first else b"\n]\n")
        self.out.flush()


class CsvWriter:
    """RFC 4180 CSV (CRLF line ends, quotes doubled), UTF-8, nested objects flattened with dots."""

    def __init__(self, out: IO[bytes], columns: Sequence[str], excel_safe: bool = False) -> None:
        self.out = out
        self.columns = list(columns)
        self.excel_safe = excel_safe
        self.buf = io.StringIO()
        self.csv = csv.writer(self.buf, lineterminator="\r\n")
        self._emit(self.columns)

    def _emit(self, cells: Sequence[str]) -> None:
        self.csv.writerow(cells)
        self.out.write(self.buf.getvalue().encode("utf-8"))
        self.buf.seek(0)
        self.buf.truncate()

    def write(self, row: Mapping[str, Any]) -> None:
        self._emit(row_cells(flatten(row), self.columns, self.excel_safe))

    def close(self) -> None:
        self.out.flush()


class TableWriter:
    """A rich table on stdout; rows are kept until close because column widths need them all."""

    def __init__(self, out: IO[bytes], columns: Sequence[str], title: str | None = None) -> None:
        self.out = out
        self.columns = list(columns)
        self.title = title
        self.rows: list[list[str]] = []

    def write(self, row: Mapping[str, Any]) -> None:
        self.rows.append(row_cells(flatten(row), self.columns))

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
