"""Query files (batch, warm-cache, profile): NDJSON, one query a line, streamed.

Short form: {"id","index","q","fields","filter","size", ...}; full form: {"id","index","body","params"}.
Blank lines and lines starting with `#` are skipped; a bad line becomes an InputError naming FILE:LINE, and
reading goes on, so the caller decides whether one bad line stops the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from escli.errors import InputError

SHORT_KEYS = {"id", "index", "q", "fields", "filter", "size", "from", "sort", "weight", "params", "range",
              "query_string", "source"}
FULL_KEYS = {"id", "index", "body", "params", "weight"}
# Parameters that change how a search runs but never which hits, aggregations or highlights come back: the
# cache key leaves them out (cache/keys.PARAMS_NOT_IN_KEY), so a tuned search and a plain one share an entry.
EXECUTION_PARAMS = frozenset({"batched_reduce_size", "pre_filter_shard_size", "max_concurrent_shard_requests"})
# Integer search parameters and the least value Elasticsearch accepts for each.
INT_PARAM_MIN = {"batched_reduce_size": 2, "pre_filter_shard_size": 1, "max_concurrent_shard_requests": 1}
# Search parameters a query line may set. Every one outside EXECUTION_PARAMS (and request_cache) changes the
# result, so the cache key covers it.
ALLOWED_PARAMS = {"preference", "routing", "request_cache", "timeout", "terminate_after", "track_total_hits",
                  "search_type", "allow_partial_search_results", "explain", "version", "seq_no_primary_term",
                  "ignore_unavailable", "allow_no_indices", "expand_wildcards", "stored_fields", *EXECUTION_PARAMS}
# `--tune NAME` (and `"params": {"tune": NAME}` in a query file): search parameters set together for a purpose.
# Each value is only a default: the parameter's own option (or key in the same params) wins.
#   throughput: many searches at once. pre_filter_shard_size=1 always runs the cheap can_match round, so shards
#     that cannot match (by their min/max values) are skipped before the query phase; max_concurrent_shard_requests
#     =2 keeps one search from fanning out to every search thread of a node while others wait (the default is 5 per
#     node); batched_reduce_size=64 reduces shard results on the coordinating node every 64 shards (default 512),
#     which bounds the memory each of many concurrent searches holds there. None of them changes the result.
#   latency: an answer soon, possibly partial. terminate_after=10000 stops each shard after 10,000 collected
#     documents and timeout=100ms returns what the shards have by then; both can change hits, totals and
#     aggregations (flagged on stderr when they do), so both are part of the cache key.
TUNE_PRESETS: dict[str, dict[str, Any]] = {
    "throughput": {"pre_filter_shard_size": 1, "max_concurrent_shard_requests": 2, "batched_reduce_size": 64},
    "latency": {"terminate_after": 10000, "timeout": "100ms"},
}
# Full-form keys people put in a short-form line by mistake, and what to write instead.
_HINTS = {"query": 'a full search body goes under "body"', "aggs": 'a full search body goes under "body"',
          "aggregations": 'a full search body goes under "body"', "text": 'the search text goes in "q"',
          "_index": 'write "index"', "_source": 'write "source" (short form) or put it in "body"'}
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class QuerySpec:
    id: str
    index: str
    body: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    line: int = 0


def build_short_body(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The search body for a short-form line: multi_match (or match_all) plus term filters."""
    must: list[dict[str, Any]]
    q = obj.get("q")
    if q in (None, "", "*"):
        must = [{"match_all": {}}]
    elif obj.get("query_string"):
        must = [{"query_string": {"query": q}}]
    else:
        mm: dict[str, Any] = {"query": q}
        if obj.get("fields"):
            mm["fields"] = list(obj["fields"])
        must = [{"multi_match": mm}]
    filters: list[dict[str, Any]] = []
    for name, value in (obj.get("filter") or {}).items():
        filters.append({"terms" if isinstance(value, list) else "term": {name: value}})
    for name, bounds in (obj.get("range") or {}).items():
        filters.append({"range": {name: bounds}})
    body: dict[str, Any] = {"query": {"bool": {"must": must, "filter": filters}} if filters else must[0]}
    for key in ("size", "from", "sort"):
        if key in obj:
            body[key] = obj[key]
    if "source" in obj:
        body["_source"] = obj["source"]
    return body


def _check_types(obj: Mapping[str, Any]) -> str | None:
    if not isinstance(obj.get("index"), str) or not obj["index"]:
        return '"index" is required and must be a non-empty string'
    if "id" in obj and not isinstance(obj["id"], (str, int)):
        return '"id" must be a string or number'
    if "fields" in obj and not (isinstance(obj["fields"], list) and all(isinstance(f, str) for f in obj["fields"])):
        return '"fields" must be a list of strings'
    for key in ("filter", "range", "params"):
        if key in obj and not isinstance(obj[key], dict):
            return f'"{key}" must be an object'
    if "body" in obj and not isinstance(obj["body"], dict):
        return '"body" must be an object'
    for key in ("size", "from"):
        if key in obj and (not isinstance(obj[key], int) or isinstance(obj[key], bool) or obj[key] < 0):
            return f'"{key}" must be a non-negative integer'
    if "weight" in obj and (not isinstance(obj["weight"], (int, float)) or obj["weight"] <= 0):
        return '"weight" must be a positive number'
    if "q" in obj and not isinstance(obj["q"], str):
        return '"q" must be a string'
    return _check_params(obj.get("params") or {})


def _check_params(params: Mapping[str, Any]) -> str | None:
    for name, value in params.items():
        if name == "stored_fields" and isinstance(value, list):
            if not value or not all(isinstance(v, str) and v for v in value):
                return 'params "stored_fields" must be a comma-separated string or a list of field names'
        elif not isinstance(value, (str, int, float, bool)):
            return f'params "{name}" must be a string, number or boolean'
        elif name in INT_PARAM_MIN and (isinstance(value, bool) or not isinstance(value, int)
                                        or value < INT_PARAM_MIN[name]):
            return f'params "{name}" must be an integer of at least {INT_PARAM_MIN[name]}'
    tune = params.get("tune")
    if tune is not None and tune not in TUNE_PRESETS:
        return f'params "tune" must be one of {", ".join(TUNE_PRESETS)}, not {tune!r}'
    return None


def tuned_params(tune: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` with the preset's values filled in where `params` does not set them (`tune` itself removed)."""
    preset = TUNE_PRESETS[tune] if tune is not None else {}
    return {**preset, **{k: v for k, v in params.items() if k != "tune"}}


def _unknown(keys: set[str], what: str) -> str:
    hints = sorted({_HINTS[k] for k in keys if k in _HINTS})
    return f"unknown key(s){what}: {', '.join(sorted(keys))}" + (f" ({'; '.join(hints)})" if hints else "")


def parse_query_line(raw: bytes, line: int, source: str) -> QuerySpec | InputError | None:
    """One line of a query file: a QuerySpec, an InputError, or None for blank and comment lines."""
    if line == 1 and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    text = raw.strip()
    if not text or text.startswith(b"#"):
        return None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        # The column counts in the raw line (leading blanks included), so an editor's "go to" lands on it.
        column = exc.pos + (len(raw) - len(raw.lstrip())) + 1
        return InputError(source, line, f"invalid JSON: {exc.msg}", column=column)
    if not isinstance(obj, dict):
        return InputError(source, line, f"expected a JSON object, got {type(obj).__name__}")
    problem = _check_types(obj)
    if problem:
        return InputError(source, line, problem)
    if "body" in obj:
        unknown = set(obj) - FULL_KEYS
        if unknown:
            return InputError(source, line, _unknown(unknown, ' next to "body"'))
        body = obj["body"]
    else:
        unknown = set(obj) - SHORT_KEYS
        if unknown:
            return InputError(source, line, _unknown(unknown, ""))
        body = build_short_body(obj)
    params = dict(obj.get("params") or {})
    bad = set(params) - ALLOWED_PARAMS - {"tune"}
    if bad:
        return InputError(source, line, f"unknown search parameter(s): {', '.join(sorted(bad))}")
    params = tuned_params(params.get("tune"), params)
    return QuerySpec(
        id=str(obj.get("id", f"line-{line}")),
        index=obj["index"],
        body=body,
        params=params,
        weight=float(obj.get("weight", 1.0)),
        line=line,
    )


def read_queries(lines: Iterator[tuple[int, bytes]], source: str) -> Iterator[QuerySpec | InputError]:
    """Stream a query file: (line number, raw line) in, QuerySpec or InputError out, constant memory."""
    for number, raw in lines:
        item = parse_query_line(raw, number, source)
        if item is not None:
            yield item


async def aread_queries(lines: AsyncIterator[tuple[int, bytes]], source: str
                        ) -> AsyncIterator[QuerySpec | InputError]:
    """`read_queries` for an asynchronous line source (a pipe read without blocking the event loop)."""
    async for number, raw in lines:
        item = parse_query_line(raw, number, source)
        if item is not None:
            yield item


def param_text(value: Any) -> str:
    """A search parameter as it goes in the URL: booleans lower-case, lists comma-joined (as the client does)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(param_text(v) for v in value)
    return str(value)


def search_target(spec: QuerySpec) -> str:
    """`/index/_search?params` for one query (comma lists and wildcards in the index are kept)."""
    path = f"/{quote(spec.index, safe=',*')}/_search"
    if spec.params:
        path += "?" + urlencode({k: param_text(v) for k, v in spec.params.items()}, safe=",*")
    return path
