"""Row writers for table, json, ndjson and csv. Data goes to a binary stream (stdout by default).

Each writer takes dict rows one at a time and never holds more than one row, except the table, which has to
measure its columns (it is meant for terminals and small result sets).
"""

from __future__ import annotations

import contextlib
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


class OutputTarget:
    """Where an export's bytes go: stdout, or a file written under a temporary name and renamed on success.

    A file is created 0600. `.gz` compresses; every `mark()` ends a gzip member, so the file can be cut back to
    the last mark and continued (a gzip file may hold many members; gzip, zcat and Python read them as one).
    """

    def __init__(self, path: Path | None, stdout: IO[bytes] | None = None, resume_bytes: int | None = None,
                 gzip_level: int = GZIP_LEVEL) -> None:
        import os
        import zlib

        self.path = path
        self.tmp: Path | None = None
        self._zlib = zlib
        self.level = gzip_level
        self.gz: Any = None
        if path is None:
            if stdout is None:
                raise ValueError("stdout or a path")
            self.out: IO[bytes] = stdout
            self.owned = False
            return
        self.tmp = partial_path(path)
        if resume_bytes is not None:
            if not self.tmp.exists():
                from escli.errors import UsageError

                raise UsageError(f"--resume: the partial output {self.tmp} is gone; start the export again "
                                 "without --resume")
            fd = os.open(self.tmp, os.O_WRONLY)
            os.ftruncate(fd, resume_bytes)
            os.lseek(fd, resume_bytes, os.SEEK_SET)
        else:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        self.out = os.fdopen(fd, "wb", buffering=1 << 20)
        self.owned = True
        if path.suffix == ".gz":
            self.gz = self._new_member()

    def _new_member(self) -> Any:
        return self._zlib.compressobj(self.level, self._zlib.DEFLATED, 31)

    def write(self, data: bytes) -> int:
        if self.gz is not None:
            self.out.write(self.gz.compress(data))
        else:
            self.out.write(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()

    def mark(self) -> int:
        """End the current gzip member (if any), flush, and return the file size to resume from."""
        if self.gz is not None:
            self.out.write(self.gz.flush())
            self.gz = self._new_member()
        self.out.flush()
        return self.out.tell() if self.owned else 0

    def commit(self) -> None:
        """Finish the file and give it its final name (atomic within a file system)."""
        import os

        if self.gz is not None:
            self.out.write(self.gz.flush())
            self.gz = None
        self.out.flush()
        if self.owned and self.tmp is not None and self.path is not None:
            os.fsync(self.out.fileno())
            self.out.close()
            os.replace(self.tmp, self.path)

    def abort(self, keep: bool) -> None:
        """Close; the partial file stays (for --resume) only when `keep`."""
        if not self.owned:
            return
        with contextlib.suppress(OSError):
            self.out.close()
        if not keep and self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


def partial_path(path: Path) -> Path:
    """The temporary name a file is written under: hidden, beside it (so the rename is atomic)."""
    return path.with_name(f".{path.name}.escli-partial")


class HitSink:
    """Export pages (search hits) to ndjson, json or csv rows on an OutputTarget.

    ndjson/json rows are hit-like, `{"_index", "_id", "_source"}` (what `escli import` reads back with ids), or the
    bare `_source` with `source_only`. CSV has an `_id` column first (unless `source_only`), then `columns`.
    """

    def __init__(self, fmt: Format, target: OutputTarget, columns: Sequence[str] = (), *, source_only: bool = False,
                 excel_safe: bool = False, rows_before: int = 0, resumed: bool = False) -> None:
        self.fmt = fmt
        self.target = target
        self.source_only = source_only
        self.rows = rows_before
        self.csv: CsvWriter | None = None
        self.json: JsonArrayWriter | None = None
        out: IO[bytes] = target  # type: ignore[assignment]
        if fmt is Format.CSV:
            cols = list(columns) if source_only else ["_id", *[c for c in columns if c != "_id"]]
            # every mark() follows the header, so a resumed file already has it
            self.csv = CsvWriter(out, cols, excel_safe, header=not resumed)
        elif fmt is Format.JSON:
            self.json = JsonArrayWriter(out, first=rows_before == 0)

    def write_hits(self, hits: Sequence[Mapping[str, Any]]) -> None:
        dumps = orjson.dumps
        if self.csv is not None:
            if self.source_only:
                self.csv.write_many(h.get("_source") or {} for h in hits)
            else:
                self.csv.write_many({"_id": h["_id"], **(h.get("_source") or {})} for h in hits)
        elif self.source_only:
            nl = orjson.OPT_APPEND_NEWLINE
            data = b"".join(dumps(h.get("_source") or {}, option=nl) for h in hits)
            self._emit_docs(data, hits)
        else:
            nl = orjson.OPT_APPEND_NEWLINE
            data = b"".join(dumps({"_index": h.get("_index"), "_id": h["_id"], "_source": h.get("_source") or {}},
                                  option=nl) for h in hits)
            self._emit_docs(data, hits)
        self.rows += len(hits)

    def _emit_docs(self, ndjson: bytes, hits: Sequence[Mapping[str, Any]]) -> None:
        if self.json is None:
            self.target.write(ndjson)
            return
        # a JSON array: the same rows joined by commas
        body = ndjson[:-1].replace(b"\n", b",\n")  # orjson never emits a raw newline inside a value
        self.target.write((b"[\n" if self.json.first else b",\n") + body)
        self.json.first = False

    def mark(self) -> dict[str, Any]:
        return {"bytes": self.target.mark(), "rows": self.rows}

    def finish(self) -> None:
        if self.json is not None:
            self.json.close()
        self.target.commit()
