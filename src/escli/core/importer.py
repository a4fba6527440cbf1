"""`escli import`: stream NDJSON or CSV documents into an index with concurrent bulk requests.

Memory stays flat: the reader fills a bounded queue of chunks, `concurrency` workers send them, and a chunk's
documents are dropped as soon as its response is read. A bad input line is reported as FILE:LINE and skipped;
documents Elasticsearch rejects go to the errors file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from escli.errors import InputError, UsageError

if TYPE_CHECKING:
    from escli.es.api import Es

RETRYABLE_ITEM_STATUS = {429, 502, 503, 504}
MAX_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass
class ImportOptions:
    index: str
    source: str
    format: str = "ndjson"
    id_field: str | None = None
    chunk_size: int = 1000
    concurrency: int = 4
    refresh: bool = True
    item_retries: int = 5


@dataclass
class Doc:
    line: int
    id: str | None
    source: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pending:
    """A document on its way: only its encoded bytes are kept, the parsed object is dropped at once."""

    line: int
    id: str | None
    encoded: bytes


@dataclass
class ImportResult:
    index: str
    read: int = 0
    imported: int = 0
    failed: int = 0
    bad_lines: int = 0
    seconds: float = 0.0
    errors_sample: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.bad_lines == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "read": self.read, "imported": self.imported, "failed": self.failed,
            "bad_lines": self.bad_lines, "seconds": round(self.seconds, 3),
        }


def lookup(doc: Mapping[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _doc_from_object(obj: Any, line: int, source: str, id_field: str | None) -> Doc:
    if not isinstance(obj, dict):
        raise InputError(source, line, f"expected a JSON object, got {type(obj).__name__}")
    doc_id: Any = None
    body = obj
    # Hits as export writes them ({"_id": ..., "_source": {...}}) keep their ids.
    if isinstance(obj.get("_source"), dict):
        body = obj["_source"]
        doc_id = obj.get("_id")
    if id_field:
        doc_id = lookup(body, id_field)
        if doc_id is None:
            raise InputError(source, line, f"--id-field {id_field} is missing")
    if doc_id is not None and not isinstance(doc_id, (str, int)):
        raise InputError(source, line, f"document id must be a string or number, got {type(doc_id).__name__}")
    return Doc(line, None if doc_id is None else str(doc_id), body)


def parse_ndjson(lines: Iterator[tuple[int, bytes]], source: str, id_field: str | None
                 ) -> Iterator[Doc | InputError]:
    for number, raw in lines:
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield InputError(source, number, f"invalid JSON: {exc.args[0] if exc.args else exc}")
            continue
        try:
            yield _doc_from_object(obj, number, source, id_field)
        except InputError as err:
            yield err


def unflatten(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row back to a document: dotted columns nest, empty cells are absent, JSON arrays/objects decode."""
    doc: dict[str, Any] = {}
    for column, text in row.items():
        if column is None or text is None or text == "":
            continue
        value: Any = text
        if text[0] in "[{":
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                value = text
        target = doc
        parts = column.split(".")
        for part in parts[:-1]:
            nxt = target.setdefault(part, {})
            if not isinstance(nxt, dict):
                break
            target = nxt
        else:
            target[parts[-1]] = value
    return doc


def parse_csv(fh: IO[bytes], source: str, id_field: str | None) -> Iterator[Doc | InputError]:
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    header = reader.fieldnames
    if not header:
        return
    width = len(header)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            yield InputError(source, start, f"invalid CSV: {exc}")
            continue
        extra = row.pop(None, None)  # type: ignore[call-overload]
        if extra or any(v is None for v in row.values()):
            got = width + len(extra or []) - sum(v is None for v in row.values())
            yield InputError(source, start, f"expected {width} fields, got {got}")
            continue
        doc = unflatten(row)
        doc_id: Any = doc.pop("_id", None)
        try:
            yield _doc_from_object({"_id": doc_id, "_source": doc} if doc_id is not None else doc, start, source,
                                   id_field)
        except InputError as err:
            yield err


def read_chunks(docs: Iterator[Doc | InputError], chunk_size: int, on_bad: Callable[[InputError], None]
                ) -> Iterator[list[Pending]]:
    chunk: list[Pending] = []
    size = 0
    for item in docs:
        if isinstance(item, InputError):
            on_bad(item)
            continue
        encoded = orjson.dumps(item.source)
        chunk.append(Pending(item.line, item.id, encoded))
        size += len(encoded)
        if len(chunk) >= chunk_size or size >= MAX_CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def bulk_body(index: str, chunk: list[Pending]) -> bytes:
    body = bytearray()
    for doc in chunk:
        action: dict[str, Any] = {"_index": index}
        if doc.id is not None:
            action["_id"] = doc.id
        body += b'{"index":' + orjson.dumps(action) + b"}\n" + doc.encoded + b"\n"
    return bytes(body)


class ErrorSink:
    """Rejected documents and bad lines, as NDJSON in the --errors file (0600), if one was asked for."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fh: IO[bytes] | None = None

    def write(self, record: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        if self.fh is None:
            import os

            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self.fh = os.fdopen(fd, "wb")
        self.fh.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


async def ensure_index(client: Es, index: str, mapping_file: Path | None) -> None:
    if mapping_file is None:
        return
    try:
        spec = orjson.loads(mapping_file.read_bytes())
    except OSError as exc:
        raise UsageError(f"--mapping {mapping_file}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--mapping {mapping_file}: invalid JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise UsageError(f"--mapping {mapping_file}: expected a JSON object")
    body = spec if ("mappings" in spec or "settings" in spec) else {"mappings": spec}
    await client.create_index(index, body)


async def run_import(
    client: Es,
    opts: ImportOptions,
    docs: Iterator[Doc | InputError],
    errors: ErrorSink,
    on_bad: Callable[[InputError], None],
    on_progress: Callable[[int], None] = lambda n: None,
) -> ImportResult:
    result = ImportResult(opts.index)
    started = time.monotonic()
    # At most `concurrency` chunks wait while `concurrency` are in flight: memory is bounded by the chunk size.
    queue: asyncio.Queue[list[Pending] | None] = asyncio.Queue(maxsize=opts.concurrency)

    def bad(err: InputError) -> None:
        result.bad_lines += 1
        errors.write({"source": err.source, "line": err.line, "error": {"type": "bad_input", "reason": err.reason}})
        on_bad(err)

    async def produce() -> None:
        try:
            for chunk in read_chunks(docs, opts.chunk_size, bad):
                result.read += len(chunk)
                await queue.put(chunk)
        finally:
            for _ in range(opts.concurrency):
                await queue.put(None)

    async def consume() -> None:
        while (chunk := await queue.get()) is not None:
            await _send_chunk(client, opts, chunk, result, errors)
            on_progress(len(chunk))

    workers = [asyncio.create_task(consume()) for _ in range(opts.concurrency)]
    producer = asyncio.create_task(produce())
    try:
        await asyncio.gather(producer, *workers)
    except BaseException:
        for task in [producer, *workers]:
            task.cancel()
        raise
    if opts.refresh and result.imported:
        await client.refresh(opts.index)
    result.seconds = time.monotonic() - started
    return result


async def _send_chunk(client: Es, opts: ImportOptions, chunk: list[Pending],
                      result: ImportResult, errors: ErrorSink) -> None:
    pending = chunk
    for attempt in range(opts.item_retries + 1):
        resp = await client.bulk(bulk_body(opts.index, pending))
        if not resp.get("errors"):
            result.imported += len(pending)
            return
        retry: list[Pending] = []
        for doc, item in zip(pending, resp["items"], strict=True):
            outcome = next(iter(item.values()))
            status = int(outcome.get("status", 500))
            if status < 300:
                result.imported += 1
            elif status in RETRYABLE_ITEM_STATUS and attempt < opts.item_retries:
                retry.append(doc)
            else:
                result.failed += 1
                error = outcome.get("error") or {}
                if len(result.errors_sample) < 5:
                    result.errors_sample.append(
                        f"{opts.source}:{doc.line}: {error.get('type', status)}: {error.get('reason', '')}")
                errors.write({"source": opts.source, "line": doc.line, "_id": doc.id, "status": status,
                              "error": error, "document": orjson.loads(doc.encoded)})
        if not retry:
            return
        pending = retry
        # Exponential backoff with full jitter, as the bulk helpers do for rejected items.
        await asyncio.sleep(random.uniform(0, min(10.0, 0.2 * 2**attempt)))
