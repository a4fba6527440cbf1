"""`escli export INDEX`: every matching document as ndjson, csv, json or parquet, to stdout or a file; resumable,
incremental with --since."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from escli.cli.common import app_context, global_options, run_async
from escli.cli.options import option, parse_slices, partition_option, query_option, slices_option
from escli.files import require_parent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from escli.core.export_state import Checkpoint, ExportRequest

KEEP_ALIVE = re.compile(r"^[0-9]+(d|h|m|s|ms)$")
# export's own formats (parquet is not a global -o choice: it is a file, never a terminal's or a pipe's text)
FORMATS = ("ndjson", "csv", "json", "parquet")
TEXT_FORMATS = ("ndjson", "csv", "json")


def register(app: typer.Typer) -> None:
    app.command("export", help="Export every matching document as ndjson, csv, json or parquet (point in time + "
                "search_after, parallel slices, resumable, incremental with --since).")(export_command)


def _format_for(explicit: str | None, global_output: str | None, out: Path | None) -> str:
    from escli.errors import UsageError

    if global_output and global_output.lower() not in TEXT_FORMATS:
        raise UsageError(f"-o {global_output}: export writes ndjson, csv or json (use --format)")
    if explicit:
        if explicit.lower() not in FORMATS:
            raise UsageError(f"--format {explicit}: choose ndjson, csv, json or parquet")
        return explicit.lower()
    if out is not None:
        suffix = out.name.removesuffix(".gz").rsplit(".", 1)[-1].lower()
        if suffix in FORMATS:
            return suffix
        if suffix == "jsonl":
            return "ndjson"
    if global_output:
        return global_output.lower()
    return "ndjson"


def _read_body(body: str) -> dict[str, Any]:
    import orjson

    from escli.core.export_state import check_body
    from escli.errors import UsageError
    from escli.inputs import open_input, source_name

    with open_input(body) as fh:
        raw = fh.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--body {source_name(body)}: invalid JSON: {exc}") from exc
    return check_body(data, source_name(body))


# The export command's options, one Annotated alias each.
Index = Annotated[str, typer.Argument(help="Index, alias or pattern to export")]
Query = Annotated[str | None, query_option("Lucene query string (query_string syntax), e.g. "
                                           "'category:laptops AND price:>100'")]
Body = Annotated[str | None, option("--body", metavar="FILE|-", help="Search body FILE (or -): query, _source, "
                                    "sort, runtime_mappings")]
FormatOpt = Annotated[str | None, option("--format", "-F", metavar="FORMAT", help="ndjson|csv|json|parquet "
                                         "[default: from --out's suffix, else ndjson]")]
Out = Annotated[Path | None, option("--out", help="Write to FILE (temporary name, renamed on success; .gz "
                                    "compresses) instead of stdout")]
OutDir = Annotated[Path | None, option("--out-dir", metavar="DIR", help="Write one part file per slice into DIR, "
                                       "then DIR/_manifest.json (documents, bytes, sha256 per part)")]
Gzip = Annotated[bool, typer.Option("--gzip", help="--out-dir: compress the parts (.gz)")]
Force = Annotated[bool, typer.Option("--force", help="--out-dir: replace a finished export in DIR")]
Partition = Annotated[str | None, partition_option("Export partition K of N only (N machines or jobs share one "
                                                   "export; each resumable)")]
Fields = Annotated[str | None, option("--fields", metavar="FIELDS", help="Only these fields, comma-separated (dots "
                                      "for nested: a,b.c); also the CSV columns")]
Slices = Annotated[str, slices_option("Parallel readers: N, or auto (as many as the index's units allow, at most "
                                     "8; fewer in flight while the cluster refuses)")]
Throttle = Annotated[float, option("--throttle", min=0.0, metavar="F", help="Wait F times the last page's time "
                                   "between pages (stay out of production's way)")]
PageSize = Annotated[int, typer.Option("--page-size", min=1, max=10000, help="Documents per request")]
MaxDocs = Annotated[int | None, option("--max-docs", min=0, help="Stop after exactly N documents")]
CheckpointOpt = Annotated[Path | None, option("--checkpoint", help="Record progress in FILE as pages are written, "
                                              "at most 10 times a second (needs --out or --out-dir)")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the export recorded in --checkpoint")]
KeepAlive = Annotated[str, typer.Option("--keep-alive", metavar="DURATION", help="How long the point in time "
                                        "lives between requests")]
Method = Annotated[str, typer.Option("--method", metavar="METHOD", help="auto|pit|scroll (scroll only where PIT "
                                     "is unavailable)")]
SourceOnly = Annotated[bool, typer.Option("--source-only", help="Write bare _source documents (no _index/_id; no "
                                          "_id column in CSV)")]
ExcelSafe = Annotated[bool, typer.Option("--excel-safe", help="CSV: prefix text cells starting with = + - @ with "
                                         "' so spreadsheets do not run them")]
Curl = Annotated[bool, typer.Option("--curl", help="Print an sh script of curl commands (open the point in time, "
                                    "the first page, close it) and send nothing")]
SinceOpt = Annotated[str | None, option("--since", metavar="FIELD", help="Only documents whose FIELD (a date or "
                                        "number that grows with every write) is above the last completed run's "
                                        "mark")]
State = Annotated[Path | None, option("--state", metavar="FILE", help="--since: the last completed run's mark; "
                                      "written (0600, atomically) when this run completes")]
SinceValue = Annotated[str | None, option("--since-value", metavar="VALUE", help="--since: start above this value "
                                          "(overrides --state's mark)")]
Lag = Annotated[str | None, option("--lag", metavar="DURATION", help="--since on a date field: leave the newest "
                                   "DURATION for the next run (documents indexed late)")]
Errors = Annotated[Path | None, option("--errors", metavar="FILE", help="parquet: write values that do not fit "
                                       "their column here (NDJSON: _id, field, value); exit 1 if any")]
ArrayFields = Annotated[str | None, option("--array-fields", metavar="FIELDS", help="parquet: these fields hold "
                                           "arrays (list columns; patterns allowed), added to those the sample "
                                           "finds; none: no sample, the mapping alone")]
ArraySample = Annotated[str, typer.Option("--array-sample", metavar="N|off", help="parquet: look at N documents of "
                                          "the export first; a field holding an array in any becomes a list column "
                                          "(off: only --array-fields)")]


@global_options
def export_command(
    ctx: typer.Context, index: Index, query: Query = None, body: Body = None, format: FormatOpt = None,
    out: Out = None, out_dir: OutDir = None, gzip: Gzip = False, force: Force = False, partition: Partition = None,
    fields: Fields = None, slices: Slices = "auto", throttle: Throttle = 0.0, page_size: PageSize = 1000,
    max_docs: MaxDocs = None, checkpoint: CheckpointOpt = None, resume: Resume = False, keep_alive: KeepAlive = "5m",
    method: Method = "auto", source_only: SourceOnly = False, excel_safe: ExcelSafe = False, curl: Curl = False,
    since: SinceOpt = None, state: State = None, since_value: SinceValue = None, lag: Lag = None,
    errors: Errors = None, array_fields: ArrayFields = None, array_sample: ArraySample = "2000",
) -> None:
    from escli.core.array_sample import parse_sample_size
    from escli.core.export_plan import parse_partition
    from escli.errors import UsageError

    app = app_context(ctx)
    _check_options(method, keep_alive, out, out_dir, checkpoint, resume, errors, gzip)
    parts = parse_partition(partition)
    fmt = _format_for(format, app.options.output, out)
    if fmt == "parquet":
        _check_parquet(out, out_dir, gzip)
    since_spec = _since_options(since, state, since_value, lag, max_docs)
    if out_dir is not None:
        _check_out_dir(out_dir, fmt, force, resume)
    field_list = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    if fields is not None and not field_list:
        raise UsageError("--fields: give at least one field name")

    from escli.core.export_state import Checkpoint, ExportRequest

    if resume:
        assert checkpoint is not None
        cp = Checkpoint.load(checkpoint)
        req, fmt = _resumed_request(cp, index, out, out_dir, fmt, format, page_size, checkpoint)
        req.throttle = throttle
        source_only = bool(cp.request.get("source_only"))
        excel_safe = bool(cp.request.get("excel_safe"))
        gzip = bool(cp.output.get("gzip"))
        state = Path(cp.request["state"]) if cp.request.get("state") else None
    else:
        query_clause = {"query_string": {"query": query}} if query else None
        req = ExportRequest(index=index, query=query_clause, body=_read_body(body) if body else {},
                            fields=field_list, page_size=page_size, slices=parse_slices(slices), max_docs=max_docs,
                            keep_alive=keep_alive, method=method, partition=parts, throttle=throttle,
                            since=since_spec)
        if since_spec is not None and since_value is None and state is not None:
            from escli.core.since import read_state

            since_spec.since_value = read_state(state, since_spec, index, req.search_body().get("query"),
                                                _partition_text(parts))
            since_spec.since_from = f"--state {state}"
        cp = Checkpoint(path=checkpoint)
        cp.request = {"index": index, "query": query_clause, "body": req.body, "fields": field_list,
                      "max_docs": max_docs, "keep_alive": keep_alive, "source_only": source_only,
                      "excel_safe": excel_safe, "format": fmt, "slices": req.slices, "partition": partition,
                      "state": str(state) if state else None,
                      "since": since_spec.as_dict() if since_spec is not None else None}
        cp.output = {"path": str(out) if out else None, "dir": str(out_dir) if out_dir else None, "gzip": gzip}
    if curl:  # the requests, not the loop: es/curl.export_script says why
        _print_curl(app, req)
        return
    arrays = [f.strip() for f in (array_fields or "").split(",") if f.strip()]
    if [a.lower() for a in arrays] == ["none"]:  # SPEC: --array-fields turns the look off (no field is named none)
        arrays, array_sample = [], "off"
    _run(app, req, cp, fmt, out, out_dir, gzip, source_only, excel_safe, state, errors, arrays,
         parse_sample_size(array_sample))


def _check_options(method: str, keep_alive: str, out: Path | None, out_dir: Path | None, checkpoint: Path | None,
                   resume: bool, errors: Path | None, gzip: bool) -> None:
    from escli.errors import UsageError

    if method not in ("auto", "pit", "scroll"):
        raise UsageError(f"--method {method}: choose auto, pit or scroll")
    if not KEEP_ALIVE.fullmatch(keep_alive):
        raise UsageError(f"--keep-alive {keep_alive}: a duration such as 30s, 5m or 1h")
    if resume and checkpoint is None:
        raise UsageError("--resume needs --checkpoint FILE")
    if out is not None and out_dir is not None:
        raise UsageError("--out and --out-dir: choose one")
    if checkpoint is not None and out is None and out_dir is None:
        raise UsageError("--checkpoint needs --out FILE or --out-dir DIR (stdout cannot be rewound to the "
                         "checkpoint)")
    if out is not None and out.is_dir():
        raise UsageError(f"--out {out}: is a directory")
    for name, path in (("--out", out), ("--checkpoint", checkpoint), ("--errors", errors)):
        if path is not None:
            require_parent(name, path)
    if gzip and out_dir is None:
        raise UsageError("--gzip is for --out-dir; with --out, name the file .gz")


def _print_curl(app: Any, req: ExportRequest) -> None:
    from escli.cache.product import remembered_product
    from escli.core.export import TIEBREAK
    from escli.es.curl import export_script
    from escli.output.formats import write_text

    settings = app.one_cluster("export")
    write_text(app.stdout, export_script(settings, remembered_product(settings), req.index, req.search_body(),
                                         [*req.user_sort(), TIEBREAK], req.page_size, req.keep_alive))


def _partition_text(parts: tuple[int, int] | None) -> str | None:
    return f"{parts[0]}/{parts[1]}" if parts else None


def _since_options(since: str | None, state: Path | None, since_value: str | None, lag: str | None,
                   max_docs: int | None) -> Any:
    from escli.errors import UsageError

    if since is None:
        for name, value in (("--state", state), ("--since-value", since_value), ("--lag", lag)):
            if value is not None:
                raise UsageError(f"{name} needs --since FIELD")
        return None
    if not since.strip():
        raise UsageError("--since: give a field name")
    if max_docs is not None:
        raise UsageError("--since with --max-docs: a run cut short cannot record its mark; leave --max-docs out")
    if state is not None and (state.is_dir() or not state.parent.exists()):
        raise UsageError(f"--state {state}: not a file in an existing directory")
    from escli.core.since import Since
    from escli.durations import parse_duration

    return Since(field=since.strip(), since_value=since_value,
                 lag_seconds=parse_duration(lag, "--lag") if lag is not None else None)


def _check_parquet(out: Path | None, out_dir: Path | None, gzip: bool) -> None:
    from escli.errors import UsageError

    if out is None and out_dir is None:
        raise UsageError("--format parquet: needs --out FILE.parquet or --out-dir DIR (a Parquet file is written "
                         "whole, its footer last; it cannot stream to stdout)")
    if gzip or (out is not None and out.suffix == ".gz"):
        raise UsageError("--format parquet: compressed inside already (zstd); drop --gzip / .gz")
    from escli.output.parquet import require_pyarrow

    require_pyarrow()


def _check_out_dir(out_dir: Path, fmt: str, force: bool, resume: bool) -> None:
    from escli.errors import UsageError
    from escli.files import make_dirs
    from escli.output.export_parts import MANIFEST

    if fmt == "json":
        raise UsageError("--out-dir with --format json: a JSON array does not split into parts; use ndjson")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir}: not a directory")
    if (out_dir / MANIFEST).exists() and not resume:
        if not force:
            raise UsageError(f"--out-dir {out_dir}: holds a finished export ({MANIFEST}); --force replaces it")
        (out_dir / MANIFEST).unlink()  # first, so an interrupted replacement never looks finished
        for old in out_dir.glob("part-*"):
            old.unlink()
    make_dirs("--out-dir", out_dir)


def _resumed_request(cp: Checkpoint, index: str, out: Path | None, out_dir: Path | None, fmt: str,
                     explicit_format: str | None, page_size: int, path: Path) -> tuple[ExportRequest, str]:
    from escli.core.export_plan import parse_partition
    from escli.core.export_state import ExportRequest
    from escli.core.since import Since
    from escli.errors import UsageError

    r = cp.request
    if r.get("index") != index:
        raise UsageError(f"--checkpoint {path}: it records an export of {r.get('index')}, not {index}")
    if cp.output.get("path") != (str(out) if out else None):
        raise UsageError(f"--out {out}: the checkpoint {path} writes {cp.output.get('path')}")
    if cp.output.get("dir") != (str(out_dir) if out_dir else None):
        raise UsageError(f"--out-dir {out_dir}: the checkpoint {path} writes {cp.output.get('dir')}")
    recorded = str(r.get("format", "ndjson"))
    if explicit_format and recorded != fmt:
        raise UsageError(f"--format {explicit_format}: the checkpoint {path} writes {recorded}")
    if cp.status == "done":
        raise UsageError(f"--checkpoint {path}: that export already finished")
    req = ExportRequest(index=index, query=r.get("query"), body=r.get("body") or {}, fields=r.get("fields"),
                        page_size=page_size, slices=r.get("slices"), max_docs=r.get("max_docs"),
                        keep_alive=str(r.get("keep_alive", "5m")), method=cp.method,
                        partition=parse_partition(r.get("partition")),
                        # the window recorded when the run began: a resumed run exports the same documents
                        since=Since.from_dict(r["since"]) if r.get("since") else None)
    return req, recorded


def _run(app: Any, req: ExportRequest, cp: Checkpoint, fmt: str, out: Path | None, out_dir: Path | None,
         gzip: bool, source_only: bool, excel_safe: bool, state: Path | None = None,
         errors: Path | None = None, array_fields: list[str] | None = None, array_sample: int = 0) -> None:
    import asyncio
    import gc
    import signal

    from escli import __version__
    from escli.core.export_job import ExportJob
    from escli.errors import Said
    from escli.output.export_parts import open_export

    msgs = app.messages

    def schema_of(columns: list[str], mapping: Any, arrays: Sequence[str]) -> Any:
        from escli.core.columns import mapped_types
        from escli.output.parquet import parquet_schema

        return parquet_schema(columns, mapped_types(mapping), arrays, source_only)

    def open_output(columns: list[str], schema: Any, readers: int) -> Any:
        return open_export(fmt, columns, schema, readers, out=out, out_dir=out_dir,
                           stdout=None if (out or out_dir) else app.stdout, gzip=gzip, errors=errors,
                           source_only=source_only, excel_safe=excel_safe)

    job = ExportJob(app.one_cluster("export"), req, cp, fmt, msgs, source_only=source_only, open_output=open_output,
                    schema_of=schema_of, count_first=msgs.err_is_tty and not msgs.quiet, version=__version__,
                    array_fields=array_fields or [], array_sample=array_sample)
    # Pages are trees of fresh dicts and strings without cycles; at the default thresholds the cyclic collector
    # keeps walking them and cost ~25% of export's CPU (bench/bench_export.py). Collect far less often.
    gc.set_threshold(50_000, 20, 100)
    try:
        result = run_async(job.run(), many_requests=True)
    except BaseException as exc:
        output = job.output
        keep = cp.path is not None
        if output is not None:
            output.abort(keep=keep)
        signum = job.signal
        if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
            if keep:
                msgs.error(f"interrupted after {cp.written} documents; checkpoint saved to {cp.path}: run the same "
                           "command with --resume to continue")
            if signum is not None:
                if not keep:
                    msgs.error(f"stopped by {signal.Signals(signum).name} after {cp.written} documents")
                raise Said(128 + signum, f"stopped by {signal.Signals(signum).name}") from None
            raise (Said(130, "interrupted") if keep else KeyboardInterrupt()) from None  # one line: the checkpoint's
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError | ConnectionError):
            raise _write_failure(exc, out, out_dir, cp, keep) from exc
        raise
    finally:
        if job.encoder is not None:
            job.encoder.close()
    # The output is in place: only now may the state move on (a crash before this line repeats the window).
    since_note = _record_since(result, state, req, cp, __version__)
    if cp.path is not None:
        cp.path.unlink(missing_ok=True)
    rate = result.written / result.seconds if result.seconds else 0.0
    where = f" to {out}" if out else f" to {out_dir}/" if out_dir else ""
    extra = f"; point in time reopened {result.pit_reopened}x" if result.pit_reopened else ""
    extra += f", {result.reread} unit(s) read again" if result.reread else ""
    msgs.info(f"exported {result.written} documents from {req.index}{where} in {result.seconds:.2f}s "
              f"({rate:,.0f} docs/s, {result.slices} slice{'s' if result.slices != 1 else ''}, "
              f"{result.method}{extra}){since_note}")
    if job.bad_values:
        _bad_values(job.bad_values, errors, job.array_misfits)


def _write_failure(exc: OSError, out: Path | None, out_dir: Path | None, cp: Checkpoint, kept: bool) -> Exception:
    """A file that could not be written (a full disk, a read-only or vanished directory): one line naming the
    output, how far the run got and what is left of it, instead of a bare `OSError: [Errno 28] ...`."""
    from escli.errors import PartialFailure

    where = f"--out {out}" if out else f"--out-dir {out_dir}" if out_dir else "stdout"
    what = (exc.strerror or str(exc)).lower()
    if exc.filename:
        what += f" ({exc.filename})"
    left = (f"checkpoint saved to {cp.path}: run the same command with --resume once it can be written" if kept
            else "nothing was kept" if out or out_dir else "what came out is incomplete")
    return PartialFailure(f"{where}: {what} after {cp.written} documents; {left}")


def _record_since(result: Any, state: Path | None, req: ExportRequest, cp: Checkpoint, version: str) -> str:
    """Write the state file of a completed --since run; the summary's note about the window."""
    since = result.since
    if since is None:
        return ""
    last = "the beginning" if since.last_mark is None else since.show(since.last_mark)
    if since.nothing_new:
        return f"; nothing new in {since.field} above {last}" + (f", {state} unchanged" if state else "")
    if state is not None:
        from escli.core.since import state_bytes
        from escli.files import write_private

        write_private(state, state_bytes(since, req.index, req.search_body().get("query"),
                                         _partition_text(req.partition), result.written, version))
    return f"; {since.field} above {last} up to {since.show(since.mark)}"


def _bad_values(bad: int, errors: Path | None, arrays: set[str]) -> None:
    from escli.errors import PartialFailure
    from escli.output.parquet import misfit_summary

    raise PartialFailure(misfit_summary(bad, errors, arrays))
