"""`escli search INDEX [TEXT]`: one search, through the cache levels, out through the output layer.

The cache is looked up before any client exists, so a hit never imports elasticsearch; the client is built only
on a miss, and the cache write happens after the result is written.
"""

# No `from __future__ import annotations` here: Typer would then evaluate ~30 string annotations (compiling each)
# on every run; real annotation objects cost nothing. Names imported for type checking only are quoted.
import contextlib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from escli.cli.common import app_context, global_options, run_async

if TYPE_CHECKING:
    from escli.cache import Cache
    from escli.cli.common import AppContext
    from escli.core.search import SearchOutcome
    from escli.es.query_builder import BuiltSearch
    from escli.settings import Settings

TABLE_DEFAULT_COLUMNS = 6
CSV_COLUMNS = ":csv-columns"  # the cache key of a CSV search's columns: the answer's key plus this


def register(app: typer.Typer) -> None:
    app.command("search", help="Search an index: multi_match over --field, --query-string, or a full --body.")(
        search_command
    )


@global_options
def search_command(
    ctx: typer.Context,
    index: Annotated[str, typer.Argument(help="Index, comma-separated indices, alias or pattern", metavar="INDEX")],
    text: Annotated[
        str | None,
        typer.Argument(help="Text to search for (multi_match); none: match_all", metavar="TEXT", show_default=False),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            "-f",
            metavar="NAME[^BOOST]",
            help="Field to search, NAME or NAME^BOOST (repeatable)",
            show_default=False,
        ),
    ] = None,
    query_string: Annotated[
        str | None,
        typer.Option(
            "--query-string",
            "-Q",
            metavar="LUCENE",
            help="A Lucene query string instead of TEXT",
            show_default=False,
        ),
    ] = None,
    body: Annotated[
        str | None,
        typer.Option(
            "--body",
            "-b",
            metavar="FILE|-",
            help="A full search body: JSON FILE, or - for stdin",
            show_default=False,
        ),
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="FIELD=VALUE",
            help="FIELD=VALUE term filter (repeatable; the same field again means any of the values)",
            show_default=False,
        ),
    ] = None,
    range_: Annotated[
        list[str] | None,
        typer.Option(
            "--range",
            metavar="FIELD=OP:V,..",
            help="FIELD=OP:VALUE[,OP:VALUE] with gt, gte, lt, lte, e.g. price=gte:10,lt:20 (repeatable)",
            show_default=False,
        ),
    ] = None,
    sort: Annotated[
        list[str] | None,
        typer.Option(
            "--sort",
            metavar="FIELD[:asc|desc]",
            help="FIELD[:asc|desc] (repeatable)",
            show_default=False,
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            "--size",
            "-n",
            metavar="N",
            min=0,
            help="Hits to return [default: 10]",
            show_default=False,
        ),
    ] = None,
    from_: Annotated[
        int | None,
        typer.Option(
            "--from", metavar="N", min=0, help="Hits to skip [default: 0]", show_default=False
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            metavar="FIELDS",
            help="_source fields: a,b includes, -c excludes, false for none",
            show_default=False,
        ),
    ] = None,
    preference: Annotated[
        str | None,
        typer.Option(
            "--preference",
            metavar="VALUE",
            help="Shard copy preference (a custom value is per user: not cached unless --cache)",
            show_default=False,
        ),
    ] = None,
    routing: Annotated[
        str | None,
        typer.Option(
            "--routing",
            metavar="VALUE",
            help="Routing value (not cached unless --cache)",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            metavar="TIME",
            help="Search timeout with a unit, e.g. 500ms "
            "(the request timeout is the global --timeout, before the "
            "command)",
            show_default=False,
        ),
    ] = None,
    terminate_after: Annotated[
        int | None,
        typer.Option(
            "--terminate-after",
            metavar="N",
            min=0,
            help="Stop each shard after N documents",
            show_default=False,
        ),
    ] = None,
    request_cache: Annotated[
        bool | None,
        typer.Option(
            "--request-cache/--no-request-cache",
            help="Use the shard request cache",
            show_default=False,
        ),
    ] = None,
    track_total_hits: Annotated[
        str | None,
        typer.Option(
            "--track-total-hits",
            metavar="BOOL|N",
            help="true, false or a number",
            show_default=False,
        ),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Explain each hit's score")
    ] = False,
    agg: Annotated[
        list[str] | None,
        typer.Option(
            "--agg",
            metavar="NAME=TYPE:FIELD[:ARG]",
            help="An aggregation: NAME=terms:FIELD[:SIZE], NAME=histogram:FIELD:INTERVAL, "
            "NAME=date_histogram:FIELD:INTERVAL, NAME=stats:FIELD, NAME=percentiles:FIELD (repeatable)",
            show_default=False,
        ),
    ] = None,
    highlight: Annotated[
        list[str] | None,
        typer.Option(
            "--highlight",
            metavar="FIELD",
            help="Show where the words matched in FIELD (repeatable)",
            show_default=False,
        ),
    ] = None,
    stored_fields: Annotated[
        list[str] | None,
        typer.Option(
            "--stored-fields",
            metavar="FIELDS",
            help="Read these stored fields instead of _source (a,b; _none_ for ids only)",
            show_default=False,
        ),
    ] = None,
    columns_opt: Annotated[
        str | None,
        typer.Option(
            "--fields",
            metavar="A,B.C",
            help="-o csv (and table): these columns; default for csv: every field of the index mapping, so every "
            "search on an index gives the same header",
            show_default=False,
        ),
    ] = None,
    curl: Annotated[
        bool,
        typer.Option(
            "--curl",
            help="Print the search as a curl command and send nothing (credentials as $ESCLI_* variables)",
        ),
    ] = False,
    tune: Annotated[
        str | None,
        typer.Option(
            "--tune",
            metavar="throughput|latency",
            help="A preset: throughput sets --batched-reduce-size, --pre-filter-shard-size and "
            "--max-concurrent-shard-requests; latency --terminate-after and --timeout (-v prints the values); "
            "each of those options, given, wins over the preset",
            show_default=False,
        ),
    ] = None,
    batched_reduce_size: Annotated[
        int | None,
        typer.Option(
            "--batched-reduce-size",
            metavar="N",
            min=2,
            help="Reduce shard results on the coordinating node every N shards",
            show_default=False,
        ),
    ] = None,
    pre_filter_shard_size: Annotated[
        int | None,
        typer.Option(
            "--pre-filter-shard-size",
            metavar="N",
            min=1,
            help="Run the can_match pre-filter round when the search spans more than N shards",
            show_default=False,
        ),
    ] = None,
    max_concurrent_shard_requests: Annotated[
        int | None,
        typer.Option(
            "--max-concurrent-shard-requests",
            metavar="N",
            min=1,
            help="Shard requests this search runs at once per node",
            show_default=False,
        ),
    ] = None,
    # True: --cache, False: --no-cache (the global --no-cache, before the command, means the same as the latter)
    cache: Annotated[
        bool | None,
        typer.Option(
            "--cache/--no-cache",
            help="--cache: cache even what is not "
            "cached by default (now, per-user preference/routing); "
            "--no-cache: neither read nor write the cache",
            show_default=False,
        ),
    ] = None,
    cache_ttl: Annotated[
        str | None,
        typer.Option(
            "--cache-ttl",
            metavar="SECONDS",
            help="Seconds (or 90s, 5m, 2h) to keep the result [default: 300, or [cache] ttl in the config]",
            show_default=False,
        ),
    ] = None,
) -> None:
    from escli.es.query_builder import SearchOptions, build_search

    app = app_context(ctx)
    fmt = app.output_format()
    opts = SearchOptions(
        index=index,
        text=text,
        fields=field or (),
        query_string=query_string,
        filters=filter_ or (),
        ranges=range_ or (),
        sort=sort or (),
        size=size,
        from_=from_,
        source=source or (),
        preference=preference,
        routing=routing,
        timeout=timeout,
        terminate_after=terminate_after,
        request_cache=request_cache,
        track_total_hits=track_total_hits,
        explain=explain,
        stored_fields=stored_fields or (),
        tune=tune,
        batched_reduce_size=batched_reduce_size,
        pre_filter_shard_size=pre_filter_shard_size,
        max_concurrent_shard_requests=max_concurrent_shard_requests,
        aggs=agg or (),
        highlight=highlight or (),
    )
    from escli.durations import parse_duration

    ttl = parse_duration(cache_ttl, "--cache-ttl") if cache_ttl is not None else None
    if body is not None:
        from escli.es.query_builder import load_body
        from escli.inputs import open_input, source_name

        with open_input(body) as fh:
            opts.body = load_body(fh, source_name(body))
        opts.body_source = source_name(body)
    built = build_search(opts)
    chosen = [c.strip() for c in columns_opt.split(",") if c.strip()] if columns_opt is not None else None
    if columns_opt is not None and not chosen:
        from escli.errors import UsageError

        raise UsageError("--fields: give at least one field name")

    settings = app.settings
    if curl:
        _print_curl(app, settings, built)
        return
    if cache is False:
        settings = settings.with_(use_cache=False)
    run_search(
        app, settings, built, fmt=fmt, force=cache is True, ttl=ttl if ttl is not None else settings.cache_ttl,
        columns=chosen,
    )


def _print_curl(app: "AppContext", settings: "Settings", built: "BuiltSearch") -> None:
    """--curl: the request escli would send, to each cluster of a set; nothing is sent (no product probe either)."""
    import orjson

    from escli.es.curl import auth_note, curl_command
    from escli.es.target import index_path

    members = settings.members or (settings,)
    lines: list[str] = []
    for m in members:
        if len(members) > 1:
            lines.append(f"# {m.cluster or ','.join(m.urls)}")
        lines += [*auth_note(m), curl_command(m, "POST", index_path(built.index, "_search"),
                                              params={k: str(v) for k, v in built.params.items()},
                                              body=orjson.dumps(built.body))]
    app.stdout.write(("\n".join(lines) + "\n").encode())


def run_search(
    app: "AppContext", settings: "Settings", built: "BuiltSearch", *, fmt: Any, force: bool, ttl: float,
    columns: list[str] | None = None,
) -> None:
    from escli.cache import open_cache
    from escli.cache.product import PRODUCTS, product_identity, remembered_product
    from escli.core.search import lookup, store

    msgs = app.messages
    _describe(app, settings, built)
    cache = open_cache(settings, warn=msgs.warn)
    try:
        # The key includes the product; before any request only the memo can say which (cache/product.py). With
        # none (a fresh machine sharing a Redis level, a cleared cache directory) an entry keyed by either product
        # was stored from an answer of that product, so either may serve.
        product = remembered_product(settings) if cache.enabled else None
        outcome = None
        for candidate in (product,) if product else PRODUCTS if cache.enabled else ():
            outcome = lookup(cache, product_identity(settings.identity, candidate), built.index, built.body,
                             built.params, force=force)
            if outcome is not None:
                break
        if outcome is None:
            outcome = run_async(_ask_elasticsearch(app, settings, cache, built, ttl, force, product))
        _report_cache(app, outcome)
        write_result(app, fmt, built, outcome, _csv_columns(app, settings, cache, built, fmt, columns, outcome, ttl))
        if outcome.status == "miss":
            store(cache, outcome, ttl)
    finally:
        cache.close()
    if outcome.failed_clusters:  # fan-out: the others' hits are out; say which cluster is missing, exit 1
        from escli.core.fanout import fan_out_warning
        from escli.errors import PartialFailure

        raise PartialFailure(fan_out_warning(outcome.meta()))


async def _ask_elasticsearch(
    app: "AppContext", settings: "Settings", cache: "Cache", built: "BuiltSearch", ttl: float, force: bool,
    product: str | None = None,
) -> "SearchOutcome":
    from escli.cache.product import product_identity, remember_product
    from escli.core.search import rekey, search_with_cache
    from escli.es.connect import open_es

    # The transport retries by the one policy (es/retry.py), pauses included, within --timeout.
    async with open_es(settings, app.messages) as es:
        es.expect(product)
        identity = product_identity(settings.identity, product or "unknown")  # re-keyed below once known
        outcome = await search_with_cache(es, cache, identity, built.index, built.body, built.params, ttl,
                                          force=force, refresh=True, defer_store=True)
        if not cache.enabled:
            return outcome
        # Known from the answer (Elasticsearch's header, or OpenSearch as remembered); a `GET /` only for the
        # first search of an identity on OpenSearch, or when the answer contradicts the memo.
        answered = es.known_product or await es.product()
        remember_product(settings, answered.name)
        if answered.name != product:  # first search, or the server changed product: key by what answered
            outcome = rekey(outcome, product_identity(settings.identity, answered.name), built.body, built.params)
        return outcome


def _csv_columns(app: "AppContext", settings: "Settings", cache: "Cache", built: "BuiltSearch", fmt: Any,
                 chosen: list[str] | None, outcome: "SearchOutcome", ttl: float) -> list[str] | None:
    """The fields after _id and _score: --fields, else for CSV of hits the index mapping's (as export chooses
    them), so that every search on an index has one header and CSV files of several searches append. What the
    request itself narrows (--source, --stored-fields) keeps its columns: those are the same for that request.
    The mapping's columns are cached beside the answer (same key plus a suffix, same index, as long as it lives),
    so a hit asks the cluster nothing."""
    from escli.output.formats import Format

    if (chosen is not None or fmt is not Format.CSV or outcome.response.get("aggregations")
            or "_source" in built.body or "stored_fields" in built.body or "stored_fields" in built.params):
        return chosen
    import time

    import orjson

    key = f"{outcome.key}{CSV_COLUMNS}" if outcome.key and outcome.status != "bypass" else None
    entry = cache.get(key) if key is not None and outcome.cache_hit else None
    if entry is not None:
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
            cached = orjson.loads(entry.value).get("columns")  # an object: every cache level holds JSON objects
            if isinstance(cached, list) and all(isinstance(c, str) for c in cached):
                return cached
    from escli.cli.export import choose_columns
    from escli.es.connect import open_es

    async def read() -> dict[str, Any]:
        async with open_es(settings, app.messages) as es:
            return await es.mapping(built.index)

    columns = choose_columns(run_async(read()), None)
    if key is not None:
        left = outcome.expires_at - time.time() if outcome.cache_hit and outcome.expires_at else ttl
        if left > 0:
            cache.set(key, orjson.dumps({"columns": columns}), left, outcome.index or built.index)
    return columns


def _describe(app: "AppContext", settings: "Settings", built: "BuiltSearch") -> None:
    """--verbose: where the request goes and as whom (never a secret), and what it asks."""
    msgs = app.messages
    if not msgs.verbose:
        return
    import orjson

    creds = settings.credentials
    who = "API key" if creds.api_key else f"basic auth as {creds.username}" if creds.username else "no credentials"
    tls = "" if settings.verify_certs else ", TLS verification off"
    msgs.detail(f"cluster {settings.cluster or ', '.join(settings.urls)} ({who}{tls})")
    for note in built.notes:
        msgs.detail(note)
    query = "&".join(f"{k}={v}" for k, v in built.params.items())
    msgs.detail(f"POST /{built.index}/_search{'?' + query if query else ''} {orjson.dumps(built.body).decode()}")


def _report_cache(app: "AppContext", outcome: "SearchOutcome") -> None:
    """One note on stderr naming the cache level that answered (hit-memory, hit-disk, hit-shared), as in
    `_escli.cache`; a miss or a bypass only with -v."""
    msgs = app.messages
    if outcome.cache_hit:
        meta = outcome.meta()
        msgs.info(
            f"cache {outcome.status}: stored {_ago(meta.get('age_s', 0.0))} ago, expires in "
            f"{_ago(meta.get('expires_in_s', 0.0))} (--no-cache to ask Elasticsearch)"
        )
    elif outcome.status == "bypass":
        msgs.detail(f"cache bypass: {outcome.bypass_reason} (--cache to cache it anyway)")
    elif outcome.status == "miss":
        msgs.detail("cache miss: asked Elasticsearch")
    if outcome.key is not None:
        msgs.detail(f"cache key {outcome.key}")


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def hit_row(hit: dict[str, Any]) -> dict[str, Any]:
    src = hit.get("_source")
    row: dict[str, Any] = {"_id": hit.get("_id"), "_score": hit.get("_score")}
    if "_cluster" in hit:  # several clusters (fan-out): which one the hit came from
        row["_cluster"] = hit["_cluster"]
    if isinstance(src, dict):
        row.update({k: v for k, v in src.items() if k not in row})
    fields = hit.get("fields")
    if isinstance(fields, dict):
        row.update({k: v for k, v in fields.items() if k not in row})
    return row


def result_columns(built: "BuiltSearch", hits: list[dict[str, Any]], limit: int | None,
                   chosen: list[str] | None = None) -> list[str]:
    lead = ["_id", "_score", "_cluster"] if any("_cluster" in h for h in hits) else ["_id", "_score"]
    if chosen is not None:
        return [*lead, *(c for c in chosen if c not in lead)]
    # Highlighted fields always get a column (a wildcard --highlight names them only in the hits).
    highlighted = dict.fromkeys(k for h in hits if isinstance(h.get("highlight"), dict) for k in h["highlight"])
    if built.columns:
        return [*lead, *built.columns, *(k for k in highlighted if k not in built.columns)]
    from escli.output.flatten import flatten

    seen: dict[str, None] = dict(highlighted)
    for hit in hits:
        for name in flatten(hit_row(hit)):
            if name not in lead:
                seen.setdefault(name, None)
    # a table reads in the documents' own order; CSV (limit None) sorts, so the same query gives the same header
    # whatever order the hits, or the keys inside each _source, come back in
    names = list(seen) if limit is not None else sorted(seen)
    return [*lead, *(names[:limit] if limit is not None else names)]


def _color(app: "AppContext") -> bool:
    """Styles (the emphasised match, bars in colour) only on a terminal, and never with NO_COLOR set."""
    return app.stdout_is_tty and not app.env.get("NO_COLOR")


def write_result(app: "AppContext", fmt: Any, built: "BuiltSearch", outcome: "SearchOutcome",
                 chosen: list[str] | None = None) -> None:
    """Hits, then aggregations: raw in json; NDJSON lines (hits, then aggregation rows); a CSV of the hits, or of
    the aggregation rows when there are aggregations; tables on a terminal. Highlights are emphasised in the
    table and plain text everywhere else but json."""
    import orjson

    from escli.output.formats import Format
    from escli.output.highlight import highlight_tags

    response = outcome.response
    hits_obj = response.get("hits") if isinstance(response.get("hits"), dict) else {}
    hits: list[dict[str, Any]] = [h for h in (hits_obj or {}).get("hits", []) if isinstance(h, dict)]
    aggregations = _request_order(response.get("aggregations"), built.body)
    tags = highlight_tags(built.body)
    _warn_partial(app, response)
    out = app.stdout
    if fmt is Format.JSON:
        option = orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if app.stdout_is_tty else 0)
        out.write(orjson.dumps({**response, "_escli": outcome.meta()}, option=option))
        out.flush()
        return
    summary = _summary(response, hits, outcome)
    if fmt is Format.NDJSON:
        from escli.output.aggs_view import agg_rows
        from escli.output.writers import NdjsonWriter

        writer = NdjsonWriter(out)
        for hit in hits:
            writer.write(_plain_hit(hit, tags))
        for row in agg_rows(aggregations or {}):
            writer.write(row)
        writer.close()
        app.messages.info(summary)
        return
    from escli.output.writers import make_writer

    if fmt is Format.CSV and aggregations:
        from escli.output.aggs_view import agg_rows, row_columns

        rows = list(agg_rows(aggregations))
        csv_writer = make_writer(fmt, out, row_columns(rows))
        for row in rows:
            csv_writer.write(row)
        csv_writer.close()
        if hits:
            app.messages.warn(f"{len(hits)} hits not written: with aggregations -o csv writes their rows "
                              "(--size 0 to skip the hits, -o ndjson for both)")
        app.messages.info(summary)
        return
    limit = TABLE_DEFAULT_COLUMNS if fmt is Format.TABLE else None
    columns = result_columns(built, hits, limit, chosen)
    if fmt is Format.TABLE:
        _write_tables(app, columns, hits, aggregations, tags, summary)
        return
    table_writer = make_writer(fmt, out, columns)
    for hit in hits:
        row = hit_row(hit)
        for name, fragments in (hit.get("highlight") or {}).items():
            row[name] = _plain_fragments(fragments, tags)
        table_writer.write(row)
    table_writer.close()
    app.messages.info(summary)


def _request_order(aggregations: Any, body: dict[str, Any]) -> "dict[str, Any] | None":
    """The response's aggregations in the order the body asked for them (Elasticsearch answers in its own)."""
    if not isinstance(aggregations, dict) or not aggregations:
        return None
    asked = body.get("aggs") or body.get("aggregations") or {}
    order = [name for name in asked if name in aggregations] if isinstance(asked, dict) else []
    return {**{name: aggregations[name] for name in order}, **aggregations}


def _plain_fragments(fragments: Any, tags: tuple[str, str]) -> str:
    from escli.output.highlight import plain

    return plain(fragments if isinstance(fragments, (list, str)) else str(fragments), tags)


def _plain_hit(hit: dict[str, Any], tags: tuple[str, str]) -> dict[str, Any]:
    """A hit for a pipe: its highlight fragments as plain text (the tags are markup for a person)."""
    highlight = hit.get("highlight")
    if not isinstance(highlight, dict):
        return hit
    from escli.output.highlight import plain_highlight

    return {**hit, "highlight": plain_highlight(highlight, tags)}


def _write_tables(app: "AppContext", columns: list[str], hits: list[dict[str, Any]],
                  aggregations: "dict[str, Any] | None", tags: tuple[str, str], summary: str) -> None:
    from escli.output.flatten import flatten, row_cells
    from escli.output.highlight import segments
    from escli.output.tables import Cell, render_table

    color = _color(app)
    out = app.stdout
    if hits or not aggregations:
        rows: list[list[Cell]] = []
        for hit in hits:
            row = hit_row(hit)
            cells: list[Cell] = list(row_cells(flatten(row), columns, original=row))
            highlight = hit.get("highlight")
            if isinstance(highlight, dict):
                for i, name in enumerate(columns):
                    fragments = highlight.get(name)
                    if isinstance(fragments, (list, str)):
                        cells[i] = segments(fragments, tags)
            rows.append(cells)
        out.write(render_table(columns, rows, summary, color=color).encode("utf-8"))
    else:  # --size 0 with aggregations: no empty hits table, the summary heads the aggregations
        out.write(f"{summary}\n".encode())
    if aggregations:
        from escli.output.aggs_view import render_aggs

        out.write(render_aggs(aggregations, color=color).encode("utf-8"))
    out.flush()


def _warn_partial(app: "AppContext", response: dict[str, Any]) -> None:
    """Partial results are data the user should not mistake for complete ones: say so on stderr, always."""
    shards = response.get("_shards") if isinstance(response.get("_shards"), dict) else {}
    failed = (shards or {}).get("failed") or 0
    if response.get("timed_out"):
        app.messages.warn("the search timed out: the results are partial")
    if failed:
        reasons = {str((f.get("reason") or {}).get("reason", "?")) for f in (shards or {}).get("failures", [])
                   if isinstance(f, dict)}
        app.messages.warn(f"{failed} of {(shards or {}).get('total', '?')} shards failed: the results are partial"
                          + (f" ({'; '.join(sorted(reasons))[:300]})" if reasons else ""))


def _summary(response: dict[str, Any], hits: list[dict[str, Any]], outcome: "SearchOutcome") -> str:
    total_obj = (response.get("hits") or {}).get("total")
    if isinstance(total_obj, dict):
        total = f"{total_obj.get('value', 0):,}{'+' if total_obj.get('relation') == 'gte' else ''}"
    elif isinstance(total_obj, int):
        total = f"{total_obj:,}"
    else:
        total = "?"
    text = f"{len(hits)} of {total} hits, took {response.get('took', '?')} ms"
    if response.get("timed_out"):
        text += ", timed out (partial results)"
    shards = response.get("_shards") or {}
    if isinstance(shards, dict) and shards.get("failed"):
        text += f", {shards['failed']} of {shards.get('total', '?')} shards failed"
    if response.get("terminated_early"):
        text += ", terminated early"
    if outcome.cache_hit:
        text += " (from the cache)"
    return text
