"""`escli search`'s result on the screen: hits and aggregations as json, ndjson, csv or tables, the cache note, the
summary line, and --curl's command. The command (cli/search.py) hands over a Screen and the use case's outcome
(core/search.run_search); nothing here sends a request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from escli.output.console import Screen
from escli.output.formats import Format, write_json

if TYPE_CHECKING:
    from escli.core.search import SearchOutcome
    from escli.es.query_builder import BuiltSearch
    from escli.settings import Settings

TABLE_DEFAULT_COLUMNS = 6


def show(screen: Screen, fmt: Format, built: BuiltSearch, outcome: SearchOutcome, chosen: list[str] | None,
         columns: list[str] | None) -> None:
    """The cache note, then the result: `columns` are the mapping's (a CSV of hits without --fields), else
    `chosen` (--fields)."""
    report_cache(screen, outcome)
    write_result(screen, fmt, built, outcome, columns if columns is not None else chosen)


def print_curl(screen: Screen, settings: Settings, built: BuiltSearch) -> None:
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
    screen.out.write(("\n".join(lines) + "\n").encode())


def describe(screen: Screen, settings: Settings, built: BuiltSearch) -> None:
    """--verbose: where the request goes and as whom (never a secret), and what it asks."""
    msgs = screen.ui
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


def report_cache(screen: Screen, outcome: SearchOutcome) -> None:
    """One note on stderr naming the cache level that answered (hit-memory, hit-disk, hit-shared), as in
    `_escli.cache`; a miss or a bypass only with -v."""
    from escli.core.search import bypass_note

    msgs = screen.ui
    if outcome.cache_hit:
        meta = outcome.meta()
        msgs.info(
            f"cache {outcome.status}: stored {_ago(meta.get('age_s', 0.0))} ago, expires in "
            f"{_ago(meta.get('expires_in_s', 0.0))} (--no-cache to ask Elasticsearch)"
        )
    elif outcome.status == "bypass":
        msgs.detail(bypass_note(outcome.bypass_reason))
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


def result_columns(built: BuiltSearch, hits: list[dict[str, Any]], limit: int | None,
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


def write_result(screen: Screen, fmt: Format, built: BuiltSearch, outcome: SearchOutcome,
                 chosen: list[str] | None = None) -> None:
    """Hits, then aggregations: raw in json; NDJSON lines (hits, then aggregation rows); a CSV of the hits, or of
    the aggregation rows when there are aggregations; tables on a terminal. Highlights are emphasised in the
    table and plain text everywhere else but json."""
    from escli.output.highlight import highlight_tags

    response = outcome.response
    hits_obj = response.get("hits") if isinstance(response.get("hits"), dict) else {}
    hits: list[dict[str, Any]] = [h for h in (hits_obj or {}).get("hits", []) if isinstance(h, dict)]
    aggregations = _request_order(response.get("aggregations"), built.body)
    tags = highlight_tags(built.body)
    _warn_partial(screen, response)
    out = screen.out
    if fmt is Format.JSON:
        write_json(out, {**response, "_escli": outcome.meta()}, pretty=screen.tty)
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
        screen.ui.info(summary)
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
            screen.ui.warn(f"{len(hits)} hits not written: with aggregations -o csv writes their rows "
                              "(--size 0 to skip the hits, -o ndjson for both)")
        screen.ui.info(summary)
        return
    limit = TABLE_DEFAULT_COLUMNS if fmt is Format.TABLE else None
    columns = result_columns(built, hits, limit, chosen)
    if fmt is Format.TABLE:
        _write_tables(screen, columns, hits, aggregations, tags, summary)
        return
    table_writer = make_writer(fmt, out, columns)
    for hit in hits:
        row = hit_row(hit)
        for name, fragments in (hit.get("highlight") or {}).items():
            row[name] = _plain_fragments(fragments, tags)
        table_writer.write(row)
    table_writer.close()
    screen.ui.info(summary)


def _request_order(aggregations: Any, body: dict[str, Any]) -> dict[str, Any] | None:
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


def _write_tables(screen: Screen, columns: list[str], hits: list[dict[str, Any]],
                  aggregations: dict[str, Any] | None, tags: tuple[str, str], summary: str) -> None:
    from escli.output.flatten import flatten, row_cells
    from escli.output.highlight import segments
    from escli.output.tables import Cell, render_table

    color = screen.color
    out = screen.out
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


def _warn_partial(screen: Screen, response: dict[str, Any]) -> None:
    """Partial results are data the user should not mistake for complete ones: say so on stderr, always."""
    shards = response.get("_shards") if isinstance(response.get("_shards"), dict) else {}
    failed = (shards or {}).get("failed") or 0
    if response.get("timed_out"):
        screen.ui.warn("the search timed out: the results are partial")
    if failed:
        reasons = {str((f.get("reason") or {}).get("reason", "?")) for f in (shards or {}).get("failures", [])
                   if isinstance(f, dict)}
        screen.ui.warn(f"{failed} of {(shards or {}).get('total', '?')} shards failed: the results are partial"
                          + (f" ({'; '.join(sorted(reasons))[:300]})" if reasons else ""))


def _summary(response: dict[str, Any], hits: list[dict[str, Any]], outcome: SearchOutcome) -> str:
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
