"""`escli import INDEX FILE|-`: NDJSON or CSV into an index by streaming bulk."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from escli.cli.common import app_context, global_options, run_async
from escli.cli.options import concurrency_option

if TYPE_CHECKING:
    from escli.core.csv_infer import ColumnType


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
    from escli.core.importer import OP_TYPES, ErrorSink, ImportOptions, ImportRequest, Planned, import_file
    from escli.errors import PartialFailure, UsageError
    from escli.inputs import source_name
    from escli.output import import_view
    from escli.output.formats import summary_wanted

    app = app_context(ctx)
    fmt = (format or ("csv" if file.removesuffix(".gz").endswith(".csv") else "ndjson")).lower()
    if fmt not in ("ndjson", "csv"):
        raise UsageError(f"--format {format}: choose ndjson or csv")
    if op_type is not None and op_type not in OP_TYPES:
        raise UsageError(f"--op-type {op_type}: choose index or create")
    if fmt == "ndjson" and (null or types):
        raise UsageError(f"{'--null' if null else '--types'} applies to CSV input (NDJSON keeps JSON's own types)")
    nulls, overrides = _csv_options(null, types)
    opts = ImportOptions(index=index, source=source_name(file), format=fmt, id_field=id_field, chunk_size=chunk_size,
                         concurrency=concurrency, refresh=refresh, op_type=op_type)
    req = ImportRequest(opts, file, mapping, nulls, overrides, dry_run)
    settings = app.one_cluster("import")
    screen = app.screen
    bad = import_view.BadLines(screen.ui)
    sink = ErrorSink(errors)
    try:
        outcome = run_async(import_file(settings, req, screen.ui, sink, bad), many_requests=True)
    finally:
        sink.close()
    if isinstance(outcome, Planned):
        import_view.show_planned(screen, outcome.body)
        return
    import_view.show_result(screen, index, outcome, summary_wanted(app.options.output))
    if not outcome.ok:
        raise PartialFailure(import_view.failure(outcome, errors))


def _csv_options(null: list[str] | None, types: list[str] | None) -> tuple[frozenset[str], dict[str, ColumnType]]:
    """--null values (the empty cell when none is given) and --types overrides, or a usage error naming the option."""
    from escli.core.csv_infer import parse_types
    from escli.errors import UsageError

    try:
        overrides = parse_types(types or [])
    except ValueError as exc:
        raise UsageError(f"--types: {exc}") from None
    return frozenset(null if null else [""]), overrides
