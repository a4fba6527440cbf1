"""`escli search INDEX [TEXT]`: options -> a SearchRequest -> core.search.run_search -> output.search_view.

The cache is looked up before any client exists, so a hit never imports a client; the client is built only on a
miss, and the cache write happens after the result is written (core/search.py).
"""

# No `from __future__ import annotations` here: Typer would then evaluate ~30 string annotations (compiling each)
# on every run; real annotation objects cost nothing.
from typing import Annotated

import typer

from escli.cli.common import app_context, global_options
from escli.cli.options import BatchedReduceSize, MaxConcurrentShardRequests, PreFilterShardSize, Tune, option

Texts = list[str] | None
Index = Annotated[str, typer.Argument(help="Index, comma-separated indices, alias or pattern", metavar="INDEX")]
Text = Annotated[str | None, typer.Argument(help="Text to search for (multi_match); none: match_all", metavar="TEXT",
                                            show_default=False)]
Field = Annotated[Texts, option("--field", "-f", metavar="NAME[^BOOST]",
                              help="Field to search, NAME or NAME^BOOST (repeatable)")]
QueryString = Annotated[str | None, option("--query-string", "-Q", metavar="LUCENE", help="A Lucene query string "
                                         "instead of TEXT")]
Body = Annotated[str | None, option("--body", "-b", metavar="FILE|-", help="A full search body: JSON FILE, or - for "
                                  "stdin")]
Filter = Annotated[Texts, option("--filter", metavar="FIELD=VALUE", help="FIELD=VALUE term filter (repeatable; the "
                               "same field again means any of the values)")]
Range = Annotated[Texts, option("--range", metavar="FIELD=OP:V,..", help="FIELD=OP:VALUE[,OP:VALUE] with gt, gte, lt, "
                              "lte, e.g. price=gte:10,lt:20 (repeatable)")]
Sort = Annotated[Texts, option("--sort", metavar="FIELD[:asc|desc]", help="FIELD[:asc|desc] (repeatable)")]
Size = Annotated[int | None, option("--size", "-n", metavar="N", min=0, help="Hits to return [default: 10]")]
From = Annotated[int | None, option("--from", metavar="N", min=0, help="Hits to skip [default: 0]")]
Source = Annotated[Texts, option("--source", metavar="FIELDS", help="_source fields: a,b includes, -c excludes, false "
                               "for none")]
Preference = Annotated[str | None, option("--preference", metavar="VALUE", help="Shard copy preference (a custom "
                                        "value is per user: not cached unless --cache)")]
Routing = Annotated[str | None, option("--routing", metavar="VALUE", help="Routing value (not cached unless --cache)")]
Timeout = Annotated[str | None, option("--timeout", metavar="TIME", help="Search timeout with a unit, e.g. 500ms (the "
                                     "request timeout is the global --timeout, before the command)")]
TerminateAfter = Annotated[int | None, option("--terminate-after", metavar="N", min=0, help="Stop each shard after N "
                                            "documents")]
RequestCache = Annotated[bool | None, option("--request-cache/--no-request-cache", help="Use the shard request "
                                           "cache")]
TrackTotalHits = Annotated[str | None, option("--track-total-hits", metavar="BOOL|N", help="true, false or a number")]
Explain = Annotated[bool, typer.Option("--explain", help="Explain each hit's score")]
Agg = Annotated[Texts, option("--agg", metavar="NAME=TYPE:FIELD[:ARG]", help="An aggregation: NAME=terms:FIELD[:SIZE], "
                            "NAME=histogram:FIELD:INTERVAL, NAME=date_histogram:FIELD:INTERVAL, NAME=stats:FIELD, "
                            "NAME=percentiles:FIELD (repeatable)")]
Highlight = Annotated[Texts, option("--highlight", metavar="FIELD", help="Show where the words matched in FIELD "
                                  "(repeatable)")]
StoredFields = Annotated[Texts, option("--stored-fields", metavar="FIELDS", help="Read these stored fields instead of "
                                     "_source (a,b); for ids only: --source false")]
Columns = Annotated[str | None, option("--fields", metavar="A,B.C", help="-o csv (and table): these columns; default "
                                     "for csv: every field of the index mapping, so every search on an index gives "
                                     "the same header")]
Curl = Annotated[bool, typer.Option("--curl", help="Print the search as a curl command and send nothing "
                                    "(credentials as $ESCLI_* variables)")]
# True: --cache, False: --no-cache (the global --no-cache, before the command, means the same as the latter)
CacheFlag = Annotated[bool | None, option("--cache/--no-cache", help="--cache: cache even what is not cached by "
                                        "default (now, per-user preference/routing); --no-cache: neither read nor "
                                        "write the cache")]
CacheTtl = Annotated[str | None, option("--cache-ttl", metavar="SECONDS", help="Seconds (or 90s, 5m, 2h) to keep the "
                                      "result [default: 300, or [cache] ttl in the config]")]


def register(app: typer.Typer) -> None:
    app.command("search", help="Search an index: multi_match over --field, --query-string, or a full --body.")(
        search_command
    )


@global_options
def search_command(
    ctx: typer.Context, index: Index, text: Text = None, field: Field = None, query_string: QueryString = None,
    body: Body = None, filter_: Filter = None, range_: Range = None, sort: Sort = None, size: Size = None,
    from_: From = None, source: Source = None, preference: Preference = None, routing: Routing = None,
    timeout: Timeout = None, terminate_after: TerminateAfter = None, request_cache: RequestCache = None,
    track_total_hits: TrackTotalHits = None, explain: Explain = False, agg: Agg = None,
    highlight: Highlight = None, stored_fields: StoredFields = None, columns_opt: Columns = None,
    curl: Curl = False, tune: Tune = None, batched_reduce_size: BatchedReduceSize = None,
    pre_filter_shard_size: PreFilterShardSize = None,
    max_concurrent_shard_requests: MaxConcurrentShardRequests = None, cache: CacheFlag = None,
    cache_ttl: CacheTtl = None,
) -> None:
    from escli.es.query_builder import SearchOptions, build_search

    app = app_context(ctx)
    fmt = app.output_format()
    opts = SearchOptions(
        index=index, text=text, fields=field or (), query_string=query_string, filters=filter_ or (),
        ranges=range_ or (), sort=sort or (), size=size, from_=from_, source=source or (), preference=preference,
        routing=routing, timeout=timeout, terminate_after=terminate_after, request_cache=request_cache,
        track_total_hits=track_total_hits, explain=explain, stored_fields=stored_fields or (), tune=tune,
        batched_reduce_size=batched_reduce_size, pre_filter_shard_size=pre_filter_shard_size,
        max_concurrent_shard_requests=max_concurrent_shard_requests, aggs=agg or (), highlight=highlight or (),
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

    from escli.core.search import SearchRequest, run_search
    from escli.output import search_view
    from escli.output.formats import Format

    settings = app.settings
    screen = app.screen
    if curl:
        search_view.print_curl(screen, settings, built)
        return
    if cache is False:
        settings = settings.with_(use_cache=False)
    req = SearchRequest(built, ttl if ttl is not None else settings.cache_ttl, force=cache is True,
                        mapping_columns=fmt is Format.CSV and chosen is None)
    search_view.describe(screen, settings, built)
    outcome = run_search(settings, req, screen.ui,
                         lambda outcome, columns: search_view.show(screen, fmt, built, outcome, chosen, columns))
    if outcome.failed_clusters:  # fan-out: the others' hits are out; say which cluster is missing, exit 1
        from escli.core.fanout import fan_out_warning
        from escli.errors import PartialFailure

        raise PartialFailure(fan_out_warning(outcome.meta()))

