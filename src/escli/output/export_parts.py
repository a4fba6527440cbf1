"""Where an export's bytes go: one part file per reader, cut back to a mark when a unit is read again.

    --out-dir DIR   DIR/part-00000.ndjson ... (each under a hidden temporary name until the export succeeds),
                    then DIR/_manifest.json last (documents, bytes and sha256 per part)
    --out FILE      every reader appends its pages to FILE's temporary name as they come (SharedFile), renamed
                    on success; with --checkpoint (or JSON) hidden parts beside FILE instead, joined into
                    FILE's temporary name on success (one reader: its part is that temporary name)
    stdout          every reader writes to stdout as pages come; cannot be cut back (the exporter leaves out what
                    a unit read again already wrote instead)

Parquet parts are spools of framed Arrow batches (output/parquet.py) under the hidden names, turned into Parquet
files when the export succeeds.

A part's `.gz` ends a gzip member at every mark, so it can be cut back to a mark and continued (a gzip file may
hold many members, and concatenated gzip files are one gzip file). Files are 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from escli.errors import UsageError
from escli.files import write_private
from escli.output.writers import GZIP_LEVEL, partial_path

if TYPE_CHECKING:
    from escli.output.parquet import ParquetStream

MANIFEST = "_manifest.json"


def _gzip() -> Any:
    return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)


class FilePart:
    rewindable = True

    def __init__(self, tmp: Path, gz: bool, resume: int | None = None, header: bytes = b"",
                 on_final: Callable[[Path, int, int], None] | None = None) -> None:
        self.tmp = tmp
        self.on_final = on_final  # told of bytes [start, end) that no rewind can take back (output/parquet.py)
        self.final_to = 0
        if resume is not None:
            if not tmp.exists():
                raise UsageError(f"--resume: the partial output {tmp} is gone; start the export again without "
                                 "--resume")
            fd = os.open(tmp, os.O_WRONLY)
            os.ftruncate(fd, resume)
            os.lseek(fd, resume, os.SEEK_SET)
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        self.out: IO[bytes] = os.fdopen(fd, "wb", buffering=1 << 20)
        self.gz = _gzip() if gz else None
        if header and resume is None:
            self.write(header)
            self.mark()  # a resume or a rewind never cuts into the header

    def write(self, data: bytes) -> None:
        self.out.write(self.gz.compress(data) if self.gz is not None else data)

    def mark(self) -> int:
        if self.gz is not None:
            self.out.write(self.gz.flush())
            self.gz = _gzip()
        self.out.flush()
        return self.out.tell()

    def rewind(self, to: int) -> None:
        self.mark()
        self.out.truncate(to)
        self.out.seek(to)

    def final(self) -> None:
        """Everything written so far is final (the reader's unit is done)."""
        if self.on_final is not None:
            end = self.mark()
            self.on_final(self.tmp, self.final_to, end)
            self.final_to = end

    def saved(self, since: int) -> dict[str, Any]:
        return {}  # its byte offset is all a resume needs

    def close(self) -> None:
        self.mark()
        self.out.close()


class SharedFile:
    """--out FILE with several readers: pages appended in arrival order to one file, so nothing is joined at the
    end (joining the 8 parts of a 1M-document export rewrote 500 MB and cost 1.2-2 s of a 3-5 s run). A unit read
    again cannot be cut out of the middle: the byte ranges of its pages are marked dead and left out by one copy at
    commit, only when a unit was read again. gzip: every page is a gzip member of its own (a gzip file may hold
    many), so a dead range never splits a stream. A resume cuts the file back to the end the checkpoint recorded
    and takes the dead ranges it recorded."""

    def __init__(self, tmp: Path, gz: bool, header: bytes = b"", resume: tuple[int, list[tuple[int, int]]] | None
                 = None) -> None:
        self.tmp = tmp
        self.gz = gz
        self.end = 0
        self.dead: list[tuple[int, int]] = []
        if resume is not None:
            if not tmp.exists():
                raise UsageError(f"--resume: the partial output {tmp} is gone; start the export again without "
                                 "--resume")
            self.end, self.dead = resume[0], list(resume[1])
            fd = os.open(tmp, os.O_WRONLY)
            os.ftruncate(fd, self.end)
            os.lseek(fd, self.end, os.SEEK_SET)
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        self.out: IO[bytes] = os.fdopen(fd, "wb", buffering=1 << 20)
        if header and resume is None:
            self.append(header)

    def append(self, data: bytes) -> tuple[int, int]:
        if self.gz:
            data = zlib.compress(data, GZIP_LEVEL, wbits=31)
        self.out.write(data)
        start, self.end = self.end, self.end + len(data)
        return start, self.end

    def close(self) -> None:
        """Flushed, and the dead ranges gone (a copy of the live ones in order, then renamed over)."""
        if self.out.closed:
            return
        self.out.close()
        if not self.dead:
            return
        live: list[tuple[int, int]] = []
        at = 0
        for start, end in sorted(self.dead):
            if start > at:
                live.append((at, start))
            at = max(at, end)
        if self.end > at:
            live.append((at, self.end))
        compact = self.tmp.with_name(self.tmp.name + ".compact")
        with self.tmp.open("rb") as src, os.fdopen(os.open(compact, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                                                     "wb") as dst:
            for start, end in live:
                src.seek(start)
                left = end - start
                while left > 0 and (chunk := src.read(min(left, 1 << 20))):
                    dst.write(chunk)
                    left -= len(chunk)
        os.replace(compact, self.tmp)
        self.dead = []


class SharedFileView:
    """One reader's handle on a SharedFile: a mark is the file's end, a rewind kills this reader's pages since.
    `saved()` is what a checkpoint keeps of it for a resume (`resume_shared`)."""

    rewindable = True

    def __init__(self, shared: SharedFile, ranges: Sequence[tuple[int, int]] = ()) -> None:
        self.shared = shared
        self.tmp = shared.tmp
        self.ranges: list[tuple[int, int]] = list(ranges)

    def write(self, data: bytes) -> None:
        self.ranges.append(self.shared.append(data))

    def mark(self) -> int:
        self.shared.out.flush()
        return self.shared.end

    def rewind(self, to: int) -> None:
        self.shared.dead.extend(r for r in self.ranges if r[0] >= to)
        self.ranges = [r for r in self.ranges if r[0] < to]

    def final(self) -> None:
        pass

    def saved(self, since: int) -> dict[str, Any]:
        """This reader's ranges from `since` (its unit's start: only those can still be cut), the file's end and
        its dead ranges. Each reader's copy is saved when it writes: a resume takes the largest end and the union
        of the dead ranges (both only grow)."""
        self.ranges = [r for r in self.ranges if r[0] >= since]
        return {"ranges": [list(r) for r in self.ranges], "end": self.shared.end,
                "dead": [list(r) for r in self.shared.dead]}

    def close(self) -> None:
        self.shared.close()


def resume_shared(saved: Sequence[Mapping[str, Any]]) -> tuple[int, list[tuple[int, int]]]:
    end = max((int(s.get("end", 0)) for s in saved), default=0)
    dead = sorted({(int(a), int(b)) for s in saved for a, b in s.get("dead", [])})
    return end, dead


class StdoutPart:
    """All readers share it; `json` streams one array (`[` first, commas between, `]` on close)."""

    rewindable = False

    def __init__(self, out: IO[bytes], json: bool, header: bytes = b"") -> None:
        self.out = out
        self.json = json
        self.first = True
        if header:
            out.write(header)

    def write(self, data: bytes) -> None:
        if self.json:
            # NDJSON lines to array elements: orjson never emits a raw newline inside a value
            data = (b"[\n" if self.first else b",\n") + data[:-1].replace(b"\n", b",\n")
            self.first = False
        self.out.write(data)

    def mark(self) -> int:
        return 0

    def rewind(self, to: int) -> None:
        raise RuntimeError("stdout cannot be cut back")

    def final(self) -> None:
        pass

    def saved(self, since: int) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        if self.json:
            self.out.write(b"[]\n" if self.first else b"\n]\n")
        self.out.flush()


class ExportOutput:
    """Makes the parts for n readers and, on success, turns them into the result (file, directory or stdout)."""

    def __init__(self, fmt: str, *, out: Path | None = None, out_dir: Path | None = None,
                 stdout: IO[bytes] | None = None, header: bytes = b"", gz: bool = False,
                 schema: Sequence[tuple[str, str, bool]] = (), errors: Path | None = None) -> None:
        self.fmt = fmt
        self.schema = schema
        self.errors = errors
        self.bad_values = 0  # parquet: values that did not fit their column (written to `errors`)
        self.array_misfits: set[str] = set()  # parquet: fields whose arrays met a scalar column
        self.out = out
        self.out_dir = out_dir
        self.stdout = stdout
        self.header = header
        self.gz = gz
        self.parts: list[FilePart] = []
        self.shared: StdoutPart | None = None
        self.joined: SharedFile | None = None
        self.names: list[Path] = []  # final names (out-dir) or hidden part names (out)
        self.stream: ParquetStream | None = None  # --out FILE.parquet: row groups written as units finish
        self.errors_out: IO[bytes] | None = None

    @property
    def ext(self) -> str:
        return f".{self.fmt}" + (".gz" if self.gz else "")

    def _single(self, n: int) -> bool:
        return self.out is not None and n == 1 and self.fmt not in ("json", "parquet")

    def open_parts(self, n: int, resume: Sequence[tuple[int, Mapping[str, Any]]] | None
                   ) -> Sequence[FilePart | StdoutPart | SharedFileView]:
        """`resume`: per reader, the byte offset and the part's saved state the checkpoint recorded."""
        if self.out is None and self.out_dir is None:
            assert self.stdout is not None
            self.shared = StdoutPart(self.stdout, self.fmt == "json", self.header)
            return [self.shared] * n
        if self.out is not None and n > 1 and self.fmt in ("ndjson", "csv"):
            saved = [s for _, s in resume] if resume else None
            self.joined = SharedFile(partial_path(self.out), self.gz, self.header,
                                     resume_shared(saved) if saved is not None else None)
            return [SharedFileView(self.joined, [(int(a), int(b)) for a, b in (saved[r].get("ranges", [])
                                                                                 if saved else [])])
                    for r in range(n)]
        on_final = None
        if self.fmt == "parquet" and self.out is not None and resume is None:
            # (a resumed run writes its file at the end, from the spools it resumes: simpler than knowing which
            # of their bytes an interrupted stream had written)
            from escli.output.parquet import ParquetStream

            self.stream = ParquetStream(partial_path(self.out), self.schema, self._open_errors(),
                                        self.array_misfits)
            on_final = self.stream.add
        for r in range(n):
            if self.out_dir is not None:
                final = self.out_dir / f"part-{r:05d}{self.ext}"
                tmp, header = partial_path(final), self.header
                if self.fmt == "parquet":
                    tmp = final.with_name(f".{final.name}.escli-spool")
            elif self._single(n):
                assert self.out is not None
                final, tmp, header = self.out, partial_path(self.out), self.header
            else:
                assert self.out is not None
                final = self.out.with_name(f".{self.out.name}.escli-part-{r:05d}")
                tmp, header = final, b""
            self.names.append(final)
            self.parts.append(FilePart(tmp, self.gz, resume[r][0] if resume else None, header, on_final))
        return self.parts

    def _open_errors(self) -> IO[bytes] | None:
        if self.errors is not None and self.errors_out is None:
            self.errors_out = os.fdopen(os.open(partial_path(self.errors), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                                0o600), "wb")
        return self.errors_out

    def commit(self, rows: Sequence[int], manifest: dict[str, Any] | None = None) -> None:
        if self.shared is not None:
            self.shared.close()
            return
        if self.joined is not None:
            assert self.out is not None
            self.joined.close()
            _fsync(self.joined.tmp)
            os.replace(self.joined.tmp, self.out)
            return
        if self.stream is not None:
            for p in self.parts:
                p.final()  # every unit is done: the rest of each spool
        for p in self.parts:
            p.close()
        if self.fmt == "parquet":
            self._parquet()
        if self.out_dir is not None:
            entries = []
            for final, part, n in zip(self.names, self.parts, rows, strict=True):
                if self.fmt != "parquet":
                    os.replace(part.tmp, final)
                entries.append({"file": final.name, "documents": n, "bytes": final.stat().st_size,
                                "sha256": sha256_of(final)})
            body = {**(manifest or {}), "documents": sum(rows), "parts": entries}
            # the manifest says the directory is complete: on disk (fsync) before it is renamed into place
            write_private(self.out_dir / MANIFEST, orjson.dumps(body, option=orjson.OPT_INDENT_2 |
                                                               orjson.OPT_APPEND_NEWLINE), fsync=True)
            return
        assert self.out is not None
        if self.fmt == "parquet":
            return
        if self._single(len(self.parts)):
            _fsync(partial_path(self.out))  # (the join fsyncs its own): on disk before the name says complete
        else:
            self._join(partial_path(self.out))
        os.replace(partial_path(self.out), self.out)

    def _parquet(self) -> None:
        """The spools as Parquet: one file per part (--out-dir) or all of them, in order, in one (--out), each
        written under its temporary name and renamed; the values that did not fit go to --errors (0600)."""
        from escli.output.parquet import spool_to_parquet

        errors = self._open_errors()
        try:
            if self.out_dir is not None:
                self.bad_values += self._parquet_parts(errors)
            else:
                assert self.out is not None
                stream, self.stream = self.stream, None
                # the stream has written what its units handed over; a resumed run has every spool still to write
                self.bad_values += stream.finish() if stream is not None else spool_to_parquet(
                    [p.tmp for p in self.parts], partial_path(self.out), self.schema, errors, self.array_misfits)
                os.replace(partial_path(self.out), self.out)
                for p in self.parts:
                    p.tmp.unlink(missing_ok=True)
        finally:
            if errors is not None:
                errors.close()
                self.errors_out = None
        if self.errors is not None:
            os.replace(partial_path(self.errors), self.errors)

    def _parquet_parts(self, errors: IO[bytes] | None) -> int:
        """--out-dir: each part's spool as its own file, two at a time (the encoder's workers are gone by now, so
        both cores are free, and pyarrow's writer releases the GIL); each part's error lines go to a file of its
        own, appended to --errors in part order, so that file reads the same whatever finished first."""
        from concurrent.futures import ThreadPoolExecutor

        from escli.output.parquet import spool_to_parquet

        def one(job: tuple[FilePart, Path]) -> tuple[int, Path | None]:
            part, final = job
            lines = final.with_name(f".{final.name}.escli-errors") if errors is not None else None
            with (open(lines, "wb") if lines is not None else contextlib.nullcontext()) as fh:
                bad = spool_to_parquet([part.tmp], partial_path(final), self.schema, fh, self.array_misfits)
            os.replace(partial_path(final), final)
            part.tmp.unlink(missing_ok=True)
            return bad, lines

        jobs = list(zip(self.parts, self.names, strict=True))
        with ThreadPoolExecutor(max_workers=max(1, min(2, len(jobs), os.cpu_count() or 1))) as pool:
            done = list(pool.map(one, jobs))
        for _, lines in done:
            if lines is not None and errors is not None:
                with lines.open("rb") as src:
                    shutil.copyfileobj(src, errors, 1 << 20)
                lines.unlink()
        return sum(bad for bad, _ in done)

    def _join(self, dest: Path) -> None:
        """The parts, in order, as one file: bytes copied in the kernel, or rewritten as one JSON array."""
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            if self.fmt == "json":
                _join_json(fh, [p.tmp for p in self.parts], self.gz)
            else:
                if self.header:
                    fh.write(zlib.compress(self.header, GZIP_LEVEL, wbits=31) if self.gz else self.header)
                    fh.flush()
                for p in self.parts:
                    _append(fh, p.tmp)
            fh.flush()
            os.fsync(fh.fileno())
        for p in self.parts:
            p.tmp.unlink(missing_ok=True)

    def abort(self, keep: bool) -> None:
        """Close; the partial parts stay (for --resume) only when `keep`."""
        if self.shared is not None:
            with contextlib.suppress(OSError, ValueError):
                self.shared.out.flush()
            return
        if self.joined is not None:
            with contextlib.suppress(OSError, ValueError):
                self.joined.out.close()  # as it is: a resume cuts it back and knows its dead ranges
            if not keep:
                self.joined.tmp.unlink(missing_ok=True)
            return
        if self.stream is not None:  # its file is written again from the spools by a resumed run
            stream, self.stream = self.stream, None
            stream.abort()
        if self.errors_out is not None:
            with contextlib.suppress(OSError, ValueError):
                self.errors_out.close()
            self.errors_out = None
            if self.errors is not None:
                partial_path(self.errors).unlink(missing_ok=True)
        for p in self.parts:
            with contextlib.suppress(OSError, ValueError):
                p.close()
            if not keep:
                p.tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append(fh: IO[bytes], src: Path) -> None:
    with src.open("rb") as inp:
        left = os.fstat(inp.fileno()).st_size
        out_fd, in_fd = fh.fileno(), inp.fileno()
        try:
            while left > 0:
                n = os.copy_file_range(in_fd, out_fd, left)
                if n == 0:
                    break
                left -= n
        except OSError:
            inp.seek(os.fstat(inp.fileno()).st_size - left)
            fh.seek(0, os.SEEK_END)
            while chunk := inp.read(1 << 20):
                fh.write(chunk)
            fh.flush()


def _chunks(path: Path, gz: bool) -> Iterator[bytes]:
    """A part's bytes, decompressed when it is gzip (member after member)."""
    with path.open("rb") as raw:
        dec = zlib.decompressobj(47) if gz else None  # 47: a gzip header, any window size
        while chunk := raw.read(1 << 20):
            if dec is None:
                yield chunk
                continue
            while chunk:
                yield dec.decompress(chunk)
                if not dec.eof:
                    break
                chunk, dec = dec.unused_data, zlib.decompressobj(47)


def _join_json(fh: IO[bytes], parts: Sequence[Path], gz: bool) -> None:
    comp = _gzip() if gz else None

    def put(data: bytes) -> None:
        fh.write(comp.compress(data) if comp is not None else data)

    first = True
    put(b"[")
    for path in parts:
        carry = b""
        for chunk in _chunks(path, gz):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            body, carry = data[:cut], data[cut:]
            if body:  # NDJSON lines to array elements: orjson never emits a raw newline inside a value
                put((b"\n" if first else b",\n") + body[:-1].replace(b"\n", b",\n"))
                first = False
    put(b"]\n" if first else b"\n]\n")
    if comp is not None:
        fh.write(comp.flush())


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()





def open_export(fmt: str, columns: list[str], schema: Sequence[tuple[str, str, bool]], readers: int, *,
                out: Path | None, out_dir: Path | None, stdout: IO[bytes] | None, gzip: bool, errors: Path | None,
                source_only: bool, excel_safe: bool) -> tuple[ExportOutput, Any]:
    """The output (a file, part files or stdout) and the page encoder of an export, from its columns (CSV) or
    schema (Parquet): what core.export_job.ExportJob is handed as `open_output`."""
    from escli.output.export_pages import PageSpec, make_encoder
    from escli.output.writers import csv_header

    gz = gzip or (out is not None and out.suffix == ".gz")
    output = ExportOutput(fmt, out=out, out_dir=out_dir, stdout=stdout, header=csv_header(columns) if fmt == "csv"
                          else b"", gz=gz, schema=schema, errors=errors)
    return output, make_encoder(PageSpec(fmt, tuple(columns), source_only, excel_safe, tuple(schema)), readers)
