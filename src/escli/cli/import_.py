"""`escli import INDEX FILE|-`: NDJSON or CSV into an index by streaming bulk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from escli.cli.common import app_context, global_options, run_async
from escli.cli.options import concurrency_option

if TYPE_CHECKING:
    from escli.core.csv_import import CsvTable
    from escli.core.csv_infer import ColumnType
    from escli.es.api import Es


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
    concurrency: Annotated[int, concurrency_option("Bulk requests in flight")] = 4,
    errors: Annotated[Path | None, typer.Option("--errors", help="Write rejected documents and bad lines here "
                                                "(NDJSON)")] = None,
    refresh: Annotated[bool, typer.Option("--refresh/--no-refresh", help="Refresh the index at the end")] = True,
    op_type: Annotated[str | None, typer.Option("--op-type", metavar="index|create", show_default=False,
                                                help="Bulk op: create refuses a document whose _id exists (it "
                                                "goes to --errors) [default: create into a data stream, else "
                                                "index]")] = None,
    null: Annotated[list[str] | None, typer.Option("--null", metavar="VALUE", show_default=False,
                                                   help="CSV: a cell meaning no value (repeatable; default: the "
                                                   "empty cell); null cells are left out of the document")] = None,
    types: Annotated[list[str] | None, typer.Option("--types", metavar="COL=TYPE,...", show_default=False,
                                                    help="CSV: column types instead of the guess: long, double, "
                                                    "boolean, date, date_epoch, date_epoch_ms, keyword, text, json, "
                                                    "string (repeatable)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the index body (mapping) the import would "
                                          "create and exit, without contacting the cluster")] = False,
) -> None:
    from escli.core.csv_import import open_csv
    from escli.core.importer import (
        OP_TYPES,
        CsvSetup,
        Doc,
        ErrorSink,
        ImportOptions,
        ImportResult,
        csv_docs,
        ensure_index,
        parse_ndjson,
        plan_csv,
        read_mapping_file,
        run_import,
    )
    from escli.errors import InputError, PartialFailure, UsageError
    from escli.es.connect import open_es
    from escli.inputs import numbered_lines, open_input, source_name
    from escli.output.formats import summary_wanted, write_json

    app = app_context(ctx)
    msgs = app.messages
    fmt = (format or ("csv" if file.removesuffix(".gz").endswith(".csv") else "ndjson")).lower()
    if fmt not in ("ndjson", "csv"):
        raise UsageError(f"--format {format}: choose ndjson or csv")
    if op_type is not None and op_type not in OP_TYPES:
        raise UsageError(f"--op-type {op_type}: choose index or create")
    source = source_name(file)
    opts = ImportOptions(index=index, source=source, format=fmt, id_field=id_field, chunk_size=chunk_size,
                         concurrency=concurrency, refresh=refresh, op_type=op_type)
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

    if fmt == "ndjson" and (null or types):
        raise UsageError(f"{'--null' if null else '--types'} applies to CSV input (NDJSON keeps JSON's own types)")
    nulls, overrides = _csv_options(null, types)
    if dry_run and fmt == "ndjson":
        body = read_mapping_file(mapping) if mapping else {}
        msgs.info("NDJSON: values keep their JSON types; fields without a --mapping are mapped by the engine")
        write_json(app.stdout, body, pretty=True)
        return

    async def prepare_csv(client: Es | None, table: CsvTable) -> CsvSetup:
        setup = await plan_csv(client, index, table, nulls, overrides, mapping)
        if setup.existing and overrides:
            msgs.warn(f"index {index} exists: its mapping converts the values, --types is not used")
        return setup

    async def main() -> ImportResult | None:
        with open_input(file) as fh:
            docs: Iterator[Doc | InputError]
            table = open_csv(fh, source) if fmt == "csv" else None
            if dry_run and table is not None:
                setup = await prepare_csv(None, table)
                write_json(app.stdout, setup.create, pretty=True)
                return None
            async with open_es(settings, msgs, concurrency=concurrency, paced=True) as client:
                if table is not None:
                    setup = await prepare_csv(client, table)
                    if setup.create is not None and table.header:  # an empty file creates nothing
                        await client.create_index(index, setup.create)
                        typed = ", ".join(f"{c}={t.kind}" for c, t in setup.plan.types.items()
                                          if c in setup.plan.inferred)
                        msgs.detail(f"created {index} with guessed types: {typed}")
                    docs = csv_docs(table, setup.plan, id_field)
                else:
                    await ensure_index(client, index, mapping)
                    docs = parse_ndjson(numbered_lines(fh), source, id_field)
                with msgs.progress(f"import {index}", total=None) as bar:
                    return await run_import(client, opts, docs, sink, on_bad, bar.advance)

    try:
        outcome = run_async(main(), many_requests=True)
    finally:
        sink.close()
    if outcome is None:
        return
    result = outcome
    rate = result.imported / result.seconds if result.seconds else 0.0
    msgs.info(f"imported {result.imported} of {result.read} documents into {index} in {result.seconds:.2f}s "
              f"({rate:,.0f} docs/s); {result.failed} rejected, {result.bad_lines} bad lines")
    if summary_wanted(app.options.output):  # -o json or ndjson, in any case (-o JSON printed nothing)
        write_json(app.stdout, result.as_dict())
    if not result.ok:
        for line in result.errors_sample:
            msgs.warn(line)
        hint = f" (details in {errors})" if errors else " (use --errors FILE to keep them)"
        raise PartialFailure(f"{result.failed} documents rejected, {result.bad_lines} bad input lines{hint}")


def _csv_options(null: list[str] | None, types: list[str] | None) -> tuple[frozenset[str], dict[str, ColumnType]]:
    """--null values (the empty cell when none is given) and --types overrides, or a usage error naming the option."""
    from escli.core.csv_infer import parse_types
    from escli.errors import UsageError

    try:
        overrides = parse_types(types or [])
    except ValueError as exc:
        raise UsageError(f"--types: {exc}") from None
    return frozenset(null if null else [""]), overrides
