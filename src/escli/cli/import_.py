"""`escli import INDEX FILE|-`: NDJSON or CSV into an index by streaming bulk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from escli.cli.common import app_context, global_options, run_async


def register(app: typer.Typer) -> None:
    app.command("import", help="Load NDJSON or CSV documents into an index (streaming bulk).")(import_command)


@global_options
def import_command(
    ctx: typer.Context,
    index: Annotated[str, typer.Argument(help="Target index")],
    file: Annotated[str, typer.Argument(help="NDJSON or CSV file (.gz read transparently), or - for stdin",
                                        metavar="FILE|-")],
    format: Annotated[str | None, typer.Option("--format", help="ndjson|csv [default: by file suffix, else ndjson]",
                                               show_default=False, metavar="FORMAT")] = None,
    id_field: Annotated[str | None, typer.Option("--id-field", help="Field (dotted path) to use as _id",
                                                 metavar="FIELD")] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="JSON mapping (or settings and mappings) to "
                                                 "create the index with")] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Documents per bulk request")] = 1000,
    concurrency: Annotated[int, typer.Option("--concurrency", "-j", min=1, help="Bulk requests in flight")] = 4,
    errors: Annotated[Path | None, typer.Option("--errors", help="Write rejected documents and bad lines here "
                                                "(NDJSON)")] = None,
    refresh: Annotated[bool, typer.Option("--refresh/--no-refresh", help="Refresh the index at the end")] = True,
) -> None:
    from escli.core.importer import (
        ErrorSink,
        ImportOptions,
        ImportResult,
        ensure_index,
        parse_csv,
        parse_ndjson,
        run_import,
    )
    from escli.errors import InputError, PartialFailure, UsageError
    from escli.es.connect import open_es
    from escli.inputs import numbered_lines, open_input, source_name

    app = app_context(ctx)
    msgs = app.messages
    fmt = (format or ("csv" if file.removesuffix(".gz").endswith(".csv") else "ndjson")).lower()
    if fmt not in ("ndjson", "csv"):
        raise UsageError(f"--format {format}: choose ndjson or csv")
    source = source_name(file)
    opts = ImportOptions(index=index, source=source, format=fmt, id_field=id_field, chunk_size=chunk_size,
                         concurrency=concurrency, refresh=refresh)
    settings = app.one_cluster("import")
    sink = ErrorSink(errors)
    shown_bad = 0

    def on_bad(err: InputError) -> None:
        nonlocal shown_bad
        shown_bad += 1
        if shown_bad <= 20:
            msgs.warn(str(err))
        elif shown_bad == 21:
            msgs.warn("more bad lines; see --errors FILE for all of them")

    async def main() -> ImportResult:
        with open_input(file) as fh:
            docs = parse_csv(fh, source, id_field) if fmt == "csv" else parse_ndjson(numbered_lines(fh), source,
                                                                                     id_field)
            async with open_es(settings, pooled=True, concurrency=concurrency,
                               retries=settings.max_retries) as client:
                await ensure_index(client, index, mapping)
                with msgs.progress(f"import {index}", total=None) as bar:
                    return await run_import(client, opts, docs, sink, on_bad, bar.advance)

    try:
        result = run_async(main(), many_requests=True)
    finally:
        sink.close()
    rate = result.imported / result.seconds if result.seconds else 0.0
    msgs.info(f"imported {result.imported} of {result.read} documents into {index} in {result.seconds:.2f}s "
              f"({rate:,.0f} docs/s); {result.failed} rejected, {result.bad_lines} bad lines")
    if app.options.get("output") == "json":
        import orjson

        app.stdout.write(orjson.dumps(result.as_dict(), option=orjson.OPT_APPEND_NEWLINE))
    if not result.ok:
        for line in result.errors_sample:
            msgs.warn(line)
        hint = f" (details in {errors})" if errors else " (use --errors FILE to keep them)"
        raise PartialFailure(f"{result.failed} documents rejected, {result.bad_lines} bad input lines{hint}")
