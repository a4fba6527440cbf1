"""`escli import`: stream NDJSON or CSV documents into an index with concurrent bulk requests.

Memory stays flat: the reader fills a bounded queue of chunks, `concurrency` workers send them, and a chunk's
documents are dropped as soon as its response is read. A bad input line is reported as FILE:LINE and skipped;
documents Elasticsearch rejects go to the errors file, one line each, in a shape this module reads back: an errors
file imports as it is, its documents with their ids.

Into a data stream, documents go with `create` (the only op a data stream takes); into an index, with `index`
unless `--op-type create` asks for a conflict on an existing id. An item refused because two bulk requests mapped
one new field at the same moment ("cannot be changed from type [long] to [float]", OpenSearch) is resent once
the mapping has settled: that refusal says nothing about the document.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import orjson

from escli.core.columns import columns_meta
from escli.core.csv_import import CsvPlan, CsvTable, RowError, plan_columns
from escli.core.csv_infer import ColumnType
from escli.errors import InputError, UsageError
from escli.es.retry import RETRY_ON_STATUS

if TYPE_CHECKING:
    from escli.es.api import Es
    from escli.settings import Settings
    from escli.ui import UI

MAX_CHUNK_BYTES = 8 * 1024 * 1024
OP_TYPES = ("index", "create")
# Resends of an item refused by a concurrent mapping update: the mapping settles after the first winner, so a
# second try nearly always goes in; a few more cover several new fields racing one after another.
MAPPING_RACE_TRIES = 5
DATA_STREAM_ONLY_CREATE = "only write ops with an op_type of create are allowed in data streams"
# The keys of an --errors line (ErrorSink records below): a line with these is escli's own, not a document.
ERROR_LINE_KEYS = frozenset({"source", "line", "error"})
ERROR_LINE_ALL_KEYS = ERROR_LINE_KEYS | {"_id", "_routing", "status", "document", "row"}


@dataclass
class ImportOptions:
    index: str
    source: str
    format: str = "ndjson"
    id_field: str | None = None
    chunk_size: int = 1000
    concurrency: int = 4
    refresh: bool = True
    op_type: str | None = None  # None: create into a data stream, index otherwise


@dataclass
class Doc:
    line: int
    id: str | None
    source: dict[str, Any]
    routing: str | None = None


class Pending(NamedTuple):
    """A document on its way: only its encoded bytes are kept, the parsed object is dropped at once. A tuple: a copy
    makes one per document of every page, and a frozen dataclass took 2.5 us each (a page's whole decode: 1 ms)."""

    line: int
    id: str | None
    encoded: bytes
    routing: str | None = None


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


def is_error_line(obj: Mapping[str, Any]) -> bool:
    """A line of an --errors file (as ErrorSink writes it), not a document: exactly escli's own keys."""
    return ERROR_LINE_KEYS <= obj.keys() <= ERROR_LINE_ALL_KEYS and isinstance(obj.get("error"), dict)


def _doc_from_object(obj: Any, line: int, source: str, id_field: str | None) -> Doc:
    if not isinstance(obj, dict):
        raise InputError(source, line, f"expected a JSON object, got {type(obj).__name__}")
    doc_id: Any = None
    routing: Any = None
    body = obj
    # Hits as export writes them ({"_id": ..., "_source": {...}, "_routing": ...}) keep their ids and routing.
    if isinstance(obj.get("_source"), dict):
        body = obj["_source"]
        doc_id = obj.get("_id")
        routing = obj.get("_routing")
    elif is_error_line(obj):
        # An --errors file re-imports as it is: the refused document, with the id it was sent with.
        if not isinstance(obj.get("document"), dict):
            raise InputError(source, line, f"an error line for bad input at {obj['source']}:{obj['line']} holds no "
                             "document: fix it there")
        body = obj["document"]
        doc_id = obj.get("_id")
        routing = obj.get("_routing")
    if id_field:
        doc_id = lookup(body, id_field)
        if doc_id is None:
            raise InputError(source, line, f"--id-field {id_field} is missing")
    if doc_id is not None and not isinstance(doc_id, (str, int)):
        raise InputError(source, line, f"document id must be a string or number, got {type(doc_id).__name__}")
    if routing is not None and not isinstance(routing, (str, int)):
        raise InputError(source, line, f"_routing must be a string or number, got {type(routing).__name__}")
    return Doc(line, None if doc_id is None else str(doc_id), body, None if routing is None else str(routing))


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


def csv_docs(table: CsvTable, plan: CsvPlan, id_field: str | None) -> Iterator[Doc | InputError]:
    """Documents from a CSV table typed by `plan`; an `_id` column, or --id-field, gives the ids."""
    source = table.source
    for item in table.docs(plan):
        if isinstance(item, InputError):
            yield item
            continue
        line, doc_id, doc = item
        if id_field:
            value = lookup(doc, id_field)
            if value is None:
                yield InputError(source, line, f"--id-field {id_field} is missing")
                continue
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                yield InputError(source, line, f"document id must be a string or number, got {type(value).__name__}")
                continue
            doc_id = str(value)
        yield Doc(line, doc_id, doc)


def read_chunks(docs: Iterator[Doc | InputError], chunk_size: int, on_bad: Callable[[InputError], None]
                ) -> Iterator[list[Pending]]:
    chunk: list[Pending] = []
    size = 0
    for item in docs:
        if isinstance(item, InputError):
            on_bad(item)
            continue
        encoded = orjson.dumps(item.source)
        chunk.append(Pending(item.line, item.id, encoded, item.routing))
        size += len(encoded)
        if len(chunk) >= chunk_size or size >= MAX_CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def bulk_body(index: str, chunk: list[Pending], op_type: str = "index") -> bytes:
    body = bytearray()
    head = b'{"' + op_type.encode() + b'":'
    for doc in chunk:
        action: dict[str, Any] = {"_index": index}
        if doc.id is not None:
            action["_id"] = doc.id
        if doc.routing is not None:
            action["routing"] = doc.routing
        body += head + orjson.dumps(action) + b"}\n" + doc.encoded + b"\n"
    return bytes(body)


def mapping_race(error: Mapping[str, Any]) -> bool:
    """Refused because another bulk request mapped the same new field with another type a moment earlier."""
    return (error.get("type") in ("illegal_argument_exception", "mapper_parsing_exception")
            and "cannot be changed from type" in str(error.get("reason", "")))


async def choose_op_type(client: Es, opts: ImportOptions) -> str:
    """create into a data stream, else --op-type (default index); --op-type index into a data stream is refused
    here, once, rather than for every document."""
    if await client.is_data_stream(opts.index):
        if opts.op_type == "index":
            raise UsageError(f"--op-type index: {opts.index} is a data stream, which takes create only")
        return "create"
    return opts.op_type or "index"


class ErrorSink:
    """Rejected documents and bad lines, as NDJSON in the --errors file (0600), if one was asked for."""

    def __init__(self, path: Path | None, append: bool = False) -> None:
        self.path = path
        self.append = append
        self.fh: IO[bytes] | None = None

    def write(self, record: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        if self.fh is None:
            import os

            # a resumed copy adds to the file its first run began (truncating would lose what that run refused)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if self.append else os.O_TRUNC), 0o600)
            self.fh = os.fdopen(fd, "wb")
        self.fh.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def flush(self) -> None:
        """To the file now: a copy records a page as done only after its refused documents are written down."""
        if self.fh is not None:
            self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def read_mapping_file(path: Path) -> dict[str, Any]:
    """The create-index body in a --mapping file (a bare mapping, or settings and mappings)."""
    try:
        spec = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"--mapping {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--mapping {path}: invalid JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise UsageError(f"--mapping {path}: expected a JSON object")
    return spec if ("mappings" in spec or "settings" in spec) else {"mappings": spec}


async def ensure_index(client: Es, index: str, mapping_file: Path | None) -> None:
    if mapping_file is None:
        return
    await client.create_index(index, read_mapping_file(mapping_file))


async def index_properties(client: Es, index: str) -> dict[str, Any] | None:
    """The mapped `properties` of an existing index (merged over every index a pattern names), None if absent."""
    data = await client.mapping_if_any(index)
    if data is None:
        return None
    props: dict[str, Any] = {}
    for body in data.values():
        found = (body.get("mappings") or {}).get("properties") if isinstance(body, dict) else None
        if isinstance(found, dict):
            props.update(found)
    return props


@dataclass
class CsvSetup:
    """How a CSV file goes in: the column plan and the create-index body (None: the index exists already)."""

    plan: CsvPlan
    create: dict[str, Any] | None
    existing: bool = False


async def plan_csv(client: Es | None, index: str, table: CsvTable, nulls: frozenset[str],
                   overrides: Mapping[str, ColumnType], mapping_file: Path | None) -> CsvSetup:
    """Types for a CSV import. --mapping FILE decides (and gets the column order in `_meta`); else an existing
    index's mapping converts the values (no guessing); else --types and the guess from the sample make the
    mapping. Without a client (--dry-run) the index is not looked up."""
    unknown = [c for c in overrides if c not in table.header]
    if unknown:
        raise UsageError(f"--types: no column {unknown[0]!r} in {table.source} (columns: {', '.join(table.header)})")
    if mapping_file is not None:
        from escli.es.api import typeless

        body = read_mapping_file(mapping_file)
        mappings = body["mappings"] = typeless(body.get("mappings", {}))  # a 6.x/7.x file's `_doc` level
        if isinstance(mappings, dict):
            meta = mappings.setdefault("_meta", {})
            if isinstance(meta, dict):
                for key, value in columns_meta(table.header).items():
                    meta.setdefault(key, value)
        props = mappings.get("properties") if isinstance(mappings, dict) else None
        return CsvSetup(plan_columns(table, nulls, {}, props if isinstance(props, dict) else {}), body)
    existing = await index_properties(client, index) if client is not None else None
    if existing is not None:
        return CsvSetup(plan_columns(table, nulls, {}, existing), None, existing=True)
    plan = plan_columns(table, nulls, overrides, None)
    return CsvSetup(plan, plan.index_body())


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
    op = OpType(await choose_op_type(client, opts), switchable=opts.op_type is None)
    # At most `concurrency` chunks wait while `concurrency` are in flight: memory is bounded by the chunk size.
    queue: asyncio.Queue[list[Pending] | None] = asyncio.Queue(maxsize=opts.concurrency)

    def bad(err: InputError) -> None:
        result.bad_lines += 1
        record: dict[str, Any] = {"source": err.source, "line": err.line,
                                  "error": {"type": "bad_input", "reason": err.reason}}
        if isinstance(err, RowError):
            record["row"] = err.row
        errors.write(record)
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
            await send_chunk(client, opts, op, chunk, result, errors)
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


@dataclass
class OpType:
    """The bulk op of this run, shared by the workers: a new name that a data-stream template matches is only
    known to be a data stream from the first refusal, and then every worker writes with create."""

    name: str
    switchable: bool  # no --op-type given


async def send_chunk(client: Es, opts: ImportOptions, op: OpType, chunk: list[Pending],
                     result: ImportResult, errors: ErrorSink, resent: bool = False) -> None:
    """`resent`: these documents may have been sent before (a resumed copy, a unit read again), so a `create`
    refused because the id is there already (409) means the document is there: counted as written."""
    pending = chunk
    retries = client.retry_policy.retries
    busy = races = 0  # rounds resent for a full queue (429 items: --max-retries), for a mapping race (fixed)
    for attempt in itertools.count():
        sent_as = op.name
        resp = await client.bulk(bulk_body(opts.index, pending, sent_as))
        if not resp.get("errors"):
            result.imported += len(pending)
            return
        retry: list[Pending] = []
        refused = raced = False
        for doc, item in zip(pending, resp["items"], strict=True):
            outcome = next(iter(item.values()))
            status = int(outcome.get("status", 500))
            error = outcome.get("error") or {}
            if status < 300 or (resent and status == 409 and sent_as == "create"):
                result.imported += 1
            elif status in RETRY_ON_STATUS and busy < retries:
                retry.append(doc)
                refused = True
            elif mapping_race(error) and races < MAPPING_RACE_TRIES:
                retry.append(doc)
                raced = True
            elif (op.switchable and sent_as == "index" and DATA_STREAM_ONLY_CREATE in str(error.get("reason"))):
                op.name = "create"  # a template made a data stream of the name: it takes create only
                retry.append(doc)
            else:
                result.failed += 1
                if len(result.errors_sample) < 5:
                    result.errors_sample.append(
                        f"{opts.source}:{doc.line}: {error.get('type', status)}: {error.get('reason', '')}")
                record: dict[str, Any] = {"source": opts.source, "line": doc.line, "_id": doc.id}
                if doc.routing is not None:
                    record["_routing"] = doc.routing
                errors.write({**record, "status": status, "error": error, "document": orjson.loads(doc.encoded)})
        if not retry:
            return
        pending = retry
        if refused:
            busy += 1
            client.refused(f"{len(retry)} bulk item(s) rejected")
        races += raced
        if refused or raced:
            # Items refused inside a 200 (a full write queue, a mapping that is still settling): the one policy's
            # pause (es/retry.py), as for requests.
            await asyncio.sleep(client.retry_policy.delay(attempt))


# ---------------------------------------------------------------------------------------------------------------
# `escli import`'s use case: a file (NDJSON or CSV) into an index, or with --dry-run the index body it would create


@dataclass(frozen=True)
class ImportRequest:
    opts: ImportOptions
    file: str  # a path, or - for stdin
    mapping: Path | None = None
    nulls: frozenset[str] = frozenset([""])  # CSV cells meaning no value
    overrides: Mapping[str, ColumnType] | None = None  # CSV --types
    dry_run: bool = False


@dataclass(frozen=True)
class Planned:
    """--dry-run: the index body the import would create (NDJSON: the --mapping file's, or nothing)."""

    body: dict[str, Any] | None


async def import_file(settings: Settings, req: ImportRequest, ui: UI, sink: ErrorSink,
                      on_bad: Callable[[InputError], None]) -> ImportResult | Planned:
    """Open the input, plan the index (CSV: the guessed or given types; NDJSON: the --mapping file), create it
    when missing, and stream the documents in by bulk; with --dry-run, the plan only, and nothing sent."""
    from escli.core.csv_import import open_csv
    from escli.es.connect import open_es
    from escli.inputs import numbered_lines, open_input

    opts = req.opts
    if req.dry_run and opts.format == "ndjson":
        ui.info("NDJSON: values keep their JSON types; fields without a --mapping are mapped by the engine")
        return Planned(read_mapping_file(req.mapping) if req.mapping else {})

    async def prepare_csv(client: Es | None, table: CsvTable) -> CsvSetup:
        setup = await plan_csv(client, opts.index, table, req.nulls, dict(req.overrides or {}), req.mapping)
        if setup.existing and req.overrides:
            ui.warn(f"index {opts.index} exists: its mapping converts the values, --types is not used")
        return setup

    with open_input(req.file) as fh:
        docs: Iterator[Doc | InputError]
        table = open_csv(fh, opts.source) if opts.format == "csv" else None
        if req.dry_run and table is not None:
            return Planned((await prepare_csv(None, table)).create)
        async with open_es(settings, ui, concurrency=opts.concurrency, paced=True) as client:
            if table is not None:
                setup = await prepare_csv(client, table)
                if setup.create is not None and table.header:  # an empty file creates nothing
                    await client.create_index(opts.index, setup.create)
                    typed = ", ".join(f"{c}={t.kind}" for c, t in setup.plan.types.items()
                                      if c in setup.plan.inferred)
                    ui.detail(f"created {opts.index} with guessed types: {typed}")
                docs = csv_docs(table, setup.plan, opts.id_field)
            else:
                await ensure_index(client, opts.index, req.mapping)
                docs = parse_ndjson(numbered_lines(fh), opts.source, opts.id_field)
            with ui.progress(f"import {opts.index}", total=None) as bar:
                return await run_import(client, opts, docs, sink, on_bad, bar.advance)
