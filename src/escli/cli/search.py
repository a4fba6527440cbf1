"""`escli search INDEX [TEXT]`: one search, through the cache levels, out through the output layer.

The cache is looked up before any client exists, so a hit never imports elasticsearch; the client is built only
on a miss, and the cache write happens after the result is written.
"""

# No `from __future__ import annotations` here: Typer would then evaluate ~30 string annotations (compiling each)
# on every run; real annotation objects cost nothing. Names imported for type checking only are quoted.
from typing import TYPE_CHECKING, Annotated, Any

import typer

from escli.cli.common import app_context, global_options, run_async

if TYPE_CHECKING:
    from escli.cache import Cache
    from escli.cli.common import AppContext
    from escli.core.search import SearchOutcome
    from escli.es.query_builder import BuiltSearch
    from escli.settings import Settings

QUERY = "Query"
RESULT = "Result"
REQUEST = "Request"
CACHE = "Cache"
TABLE_DEFAULT_COLUMNS = 6


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
            rich_help_panel=QUERY,
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
            rich_help_panel=QUERY,
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
            rich_help_panel=QUERY,
            show_default=False,
        ),
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="FIELD=VALUE",
            help="FIELD=VALUE term filter (repeatable; the same field again means any of the values)",
            rich_help_panel=QUERY,
            show_default=False,
        ),
    ] = None,
    range_: Annotated[
        list[str] | None,
        typer.Option(
            "--range",
            metavar="FIELD=OP:V,..",
            help="FIELD=OP:VALUE[,OP:VALUE] with gt, gte, lt, lte, e.g. price=gte:10,lt:20 (repeatable)",
            rich_help_panel=QUERY,
            show_default=False,
        ),
    ] = None,
    sort: Annotated[
        list[str] | None,
        typer.Option(
            "--sort",
            metavar="FIELD[:asc|desc]",
            help="FIELD[:asc|desc] (repeatable)",
            rich_help_panel=RESULT,
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
            rich_help_panel=RESULT,
            show_default=False,
        ),
    ] = None,
    from_: Annotated[
        int | None,
        typer.Option(
            "--from", metavar="N", min=0, help="Hits to skip [default: 0]", rich_help_panel=RESULT, show_default=False
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            metavar="FIELDS",
            help="_source fields: a,b includes, -c excludes, false for none",
            rich_help_panel=RESULT,
            show_default=False,
        ),
    ] = None,
    preference: Annotated[
        str | None,
        typer.Option(
            "--preference",
            metavar="VALUE",
            help="Shard copy preference (a custom value is per user: not cached unless --cache)",
            rich_help_panel=REQUEST,
            show_default=False,
        ),
    ] = None,
    routing: Annotated[
        str | None,
        typer.Option(
            "--routing",
            metavar="VALUE",
            help="Routing value (not cached unless --cache)",
            rich_help_panel=REQUEST,
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
            rich_help_panel=REQUEST,
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
            rich_help_panel=REQUEST,
            show_default=False,
        ),
    ] = None,
    request_cache: Annotated[
        bool | None,
        typer.Option(
            "--request-cache/--no-request-cache",
            help="Use the shard request cache",
            rich_help_panel=REQUEST,
            show_default=False,
        ),
    ] = None,
    track_total_hits: Annotated[
        str | None,
        typer.Option(
            "--track-total-hits",
            metavar="BOOL|N",
            help="true, false or a number",
            rich_help_panel=REQUEST,
            show_default=False,
        ),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Explain each hit's score", rich_help_panel=REQUEST)
    ] = False,
    # Named no_cache so the global --no-cache is not added twice; True means --cache, False --no-cache.
    no_cache: Annotated[
        bool | None,
        typer.Option(
            "--cache/--no-cache",
            help="--cache: cache even what is not "
            "cached by default (now, per-user preference/routing); "
            "--no-cache: neither read nor write the cache",
            rich_help_panel=CACHE,
            show_default=False,
        ),
    ] = None,
    cache_ttl: Annotated[
        str | None,
        typer.Option(
            "--cache-ttl",
            metavar="SECONDS",
            help="Seconds (or 90s, 5m, 2h) to keep the result [default: 300, or [cache] ttl in the config]",
            rich_help_panel=CACHE,
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
    )
    ttl = parse_ttl(cache_ttl) if cache_ttl is not None else None
    if body is not None:
        from escli.es.query_builder import load_body
        from escli.inputs import open_input, source_name

        with open_input(body) as fh:
            opts.body = load_body(fh, source_name(body))
        opts.body_source = source_name(body)
    built = build_search(opts)

    settings = app.settings
    if no_cache is False:
        settings = settings.with_(use_cache=False)
    run_search(
        app, settings, built, fmt=fmt, force=no_cache is True, ttl=ttl if ttl is not None else settings.cache_ttl
    )


def parse_ttl(text: str) -> float:
    from escli.errors import UsageError

    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    raw = text.strip().lower()
    scale = 1.0
    if raw and raw[-1] in units:
        scale, raw = units[raw[-1]], raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        raise UsageError(f"--cache-ttl {text}: expected seconds, or a number with s, m, h or d") from None
    if not 0 < value < float("inf"):
        raise UsageError(f"--cache-ttl {text}: must be more than 0 and finite")
    return value


def run_search(
    app: "AppContext", settings: "Settings", built: "BuiltSearch", *, fmt: Any, force: bool, ttl: float
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
        write_result(app, fmt, built, outcome)
        if outcome.status == "miss":
            store(cache, outcome, ttl)
    finally:
        cache.close()


async def _ask_elasticsearch(
    app: "AppContext", settings: "Settings", cache: "Cache", built: "BuiltSearch", ttl: float, force: bool,
    product: str | None = None,
) -> "SearchOutcome":
    from escli.cache.product import product_identity, remember_product
    from escli.core.search import rekey, search_with_cache
    from escli.es.connect import open_es
    from escli.es.retry import with_backoff

    msgs = app.messages

    def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
        msgs.detail(f"retry {attempt} of {settings.max_retries} in {delay:.2f}s: {exc}")

    def on_request(method: str, path: str, status: "int | None", seconds: float) -> None:
        # -vv: one line per request. Paths never carry credentials (settings refuses them in URLs).
        msgs.detail(f"{method} {path} [status:{status if status is not None else 'N/A'} duration:{seconds:.3f}s]")

    # One request: the light transport. It does not retry: with_backoff does, with a pause, within --timeout.
    async with open_es(settings, pooled=False, on_request=on_request if msgs.verbose >= 2 else None) as es:
        es.expect(product)
        identity = product_identity(settings.identity, product or "unknown")  # re-keyed below once known
        outcome = await with_backoff(
            lambda left: search_with_cache(
                es,
                cache,
                identity,
                built.index,
                built.body,
                built.params,
                ttl,
                force=force,
                refresh=True,
                defer_store=True,
                request_timeout=left,
            ),
            retries=settings.max_retries,
            deadline=settings.timeout,
            on_retry=on_retry,
        )
        if not cache.enabled:
            return outcome
        # Known from the answer (Elasticsearch's header, or OpenSearch as remembered); a `GET /` only for the
        # first search of an identity on OpenSearch, or when the answer contradicts the memo.
        answered = es.known_product or await es.product()
        remember_product(settings, answered.name)
        if answered.name != product:  # first search, or the server changed product: key by what answered
            outcome = rekey(outcome, product_identity(settings.identity, answered.name), built.body, built.params)
        return outcome


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
    if isinstance(src, dict):
        row.update({k: v for k, v in src.items() if k not in row})
    fields = hit.get("fields")
    if isinstance(fields, dict):
        row.update({k: v for k, v in fields.items() if k not in row})
    return row


def result_columns(built: "BuiltSearch", hits: list[dict[str, Any]], limit: int | None) -> list[str]:
    if built.columns:
        return ["_id", "_score", *built.columns]
    from escli.output.flatten import flatten

    seen: dict[str, None] = {}
    for hit in hits:
        for name in flatten(hit_row(hit)):
            if name not in ("_id", "_score"):
                seen.setdefault(name, None)
    names = list(seen)
    return ["_id", "_score", *(names[:limit] if limit is not None else names)]


def write_result(app: "AppContext", fmt: Any, built: "BuiltSearch", outcome: "SearchOutcome") -> None:
    import orjson

    from escli.output.formats import Format

    response = outcome.response
    hits_obj = response.get("hits") if isinstance(response.get("hits"), dict) else {}
    hits: list[dict[str, Any]] = [h for h in (hits_obj or {}).get("hits", []) if isinstance(h, dict)]
    _warn_partial(app, response)
    out = app.stdout
    if fmt is Format.JSON:
        option = orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if app.stdout_is_tty else 0)
        out.write(orjson.dumps({**response, "_escli": outcome.meta()}, option=option))
        out.flush()
        return
    summary = _summary(response, hits, outcome)
    if fmt is Format.NDJSON:
        from escli.output.writers import NdjsonWriter

        writer = NdjsonWriter(out)
        for hit in hits:
            writer.write(hit)
        writer.close()
        app.messages.info(summary)
        return
    from escli.output.writers import make_writer

    limit = TABLE_DEFAULT_COLUMNS if fmt is Format.TABLE else None
    columns = result_columns(built, hits, limit)
    table_writer = make_writer(fmt, out, columns, title=summary if fmt is Format.TABLE else None)
    for hit in hits:
        table_writer.write(hit_row(hit))
    table_writer.close()
    if fmt is not Format.TABLE:
        app.messages.info(summary)


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
