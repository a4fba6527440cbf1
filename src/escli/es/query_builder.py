"""Search bodies and parameters from `escli search` options: parsing, validation and building, as plain data.

Every parse error is a UsageError (exit 2) that names the option and the value at fault. Bodies are built as plain
dicts through `queries.build_short_body`, the builder behind the query files' short form, so `escli search
products laptop -f name^2 --filter category=laptops` and the query-file line
`{"index":"products","q":"laptop","fields":["name^2"],"filter":{"category":"laptops"}}` give the same body and
therefore the same cache key (warm-cache fills what search reads). They are the same dicts elasticsearch.dsl
builds (tests/unit/test_search_builder.py checks that against `elasticsearch.dsl`), but the DSL is not imported
here: it pulls in the whole client (~0.4 s), and a cache hit must not pay for it.

Search-changing settings that Elasticsearch also takes in the URL (preference, routing, timeout,
terminate_after, request_cache, track_total_hits, explain) go to `params`, as in the query files' full form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from escli.errors import InputError, UsageError
from escli.es.queries import build_short_body

RANGE_OPS = ("gt", "gte", "lt", "lte")
RANGE_TEXT_OPS = ("format", "time_zone")
_FIELD = re.compile(r"^[^\s^=]+(\^(\d+(\.\d*)?|\.\d+))?$")
_TIME = re.compile(r"^\d+(nanos|micros|ms|s|m|h|d)$")


@dataclass
class SearchOptions:
    """What the user asked for on the command line, as given (strings), before validation."""

    index: str
    text: str | None = None
    fields: Sequence[str] = ()
    query_string: str | None = None
    body: Mapping[str, Any] | None = None
    body_source: str = "--body"
    filters: Sequence[str] = ()
    ranges: Sequence[str] = ()
    sort: Sequence[str] = ()
    size: int | None = None
    from_: int | None = None
    source: Sequence[str] = ()
    preference: str | None = None
    routing: str | None = None
    timeout: str | None = None
    terminate_after: int | None = None
    request_cache: bool | None = None
    track_total_hits: str | None = None
    explain: bool = False


@dataclass(frozen=True)
class BuiltSearch:
    index: str
    body: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()  # the fields the user chose (for table and csv output), boosts removed


def scalar(text: str) -> Any:
    """A command-line value: JSON numbers and booleans become numbers and booleans, anything else stays text."""
    stripped = text.strip()
    if stripped and (stripped[0] in "-0123456789" or stripped in ("true", "false")):
        try:
            value = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return text
        if isinstance(value, (int, float, bool)):
            return value
    return text


def parse_field(spec: str) -> str:
    if not _FIELD.match(spec):
        raise UsageError(f"--field {spec}: expected NAME or NAME^BOOST, e.g. name^2")
    return spec


def parse_filter(spec: str) -> tuple[str, Any]:
    name, sep, value = spec.partition("=")
    name = name.strip()
    if not sep or not name or value == "":
        raise UsageError(f"--filter {spec}: expected FIELD=VALUE, e.g. category=laptops")
    return name, scalar(value)


def parse_range(spec: str) -> tuple[str, dict[str, Any]]:
    name, sep, rest = spec.partition("=")
    name = name.strip()
    example = "e.g. price=gte:10,lt:20 or created_at=gte:now-7d/d"
    if not sep or not name or not rest.strip():
        raise UsageError(f"--range {spec}: expected FIELD=OP:VALUE[,OP:VALUE], {example}")
    bounds: dict[str, Any] = {}
    for part in rest.split(","):
        op, colon, value = part.partition(":")
        op = op.strip()
        if not colon:
            raise UsageError(f"--range {spec}: {part!r} is not OP:VALUE, {example}")
        if op not in RANGE_OPS + RANGE_TEXT_OPS:
            raise UsageError(f"--range {spec}: unknown bound {op!r} (use gt, gte, lt, lte; format, time_zone)")
        if value.strip() == "":
            raise UsageError(f"--range {spec}: no value for {op}")
        bounds[op] = value.strip() if op in RANGE_TEXT_OPS else scalar(value.strip())
    if not any(op in bounds for op in RANGE_OPS):
        raise UsageError(f"--range {spec}: give at least one of gt, gte, lt, lte")
    return name, bounds


def parse_sort(spec: str) -> list[Any]:
    out: list[Any] = []
    for part in spec.split(","):
        part = part.strip()
        name, colon, order = part.rpartition(":") if ":" in part else (part, "", "")
        if not name:
            raise UsageError(f"--sort {spec}: expected FIELD[:asc|desc], e.g. price:desc")
        if colon:
            if order not in ("asc", "desc"):
                raise UsageError(f"--sort {spec}: order must be asc or desc, not {order!r}")
            out.append({name: {"order": order}})
        else:
            out.append(name)
    return out


def parse_source(specs: Sequence[str]) -> Any:
    """`--source name,price,-description`: includes, and excludes marked with - or !; `false` for no _source."""
    includes: list[str] = []
    excludes: list[str] = []
    for spec in specs:
        if spec.strip().lower() in ("false", "none"):
            if len(specs) > 1:
                raise UsageError(f"--source {spec}: cannot be combined with other --source values")
            return False
        if spec.strip().lower() == "true":
            return True
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            if part[0] in "-!":
                if not part[1:]:
                    raise UsageError(f"--source {spec}: {part!r} names no field")
                excludes.append(part[1:])
            else:
                includes.append(part)
    if not includes and not excludes:
        raise UsageError(f"--source {','.join(specs)}: names no field")
    if not excludes:
        return includes
    out: dict[str, list[str]] = {}
    if includes:
        out["includes"] = includes
    out["excludes"] = excludes
    return out


def parse_track_total_hits(spec: str) -> bool | int:
    text = spec.strip().lower()
    if text in ("true", "false"):
        return text == "true"
    if text.isdigit():
        return int(text)
    raise UsageError(f"--track-total-hits {spec}: expected true, false or a number")


def parse_search_timeout(spec: str) -> str:
    text = spec.strip()
    if not _TIME.match(text):
        raise UsageError(f"--timeout {spec}: the search timeout needs a unit, e.g. 500ms or 2s (the request "
                         "timeout in seconds is the global --timeout, given before the command)")
    return text


def _filters_and_ranges(opts: SearchOptions) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    filters: dict[str, Any] = {}
    for spec in opts.filters:
        name, value = parse_filter(spec)
        if name in filters:  # the same field again: any of the values
            prev = filters[name]
            filters[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            filters[name] = value
    ranges: dict[str, dict[str, Any]] = {}
    for spec in opts.ranges:
        name, bounds = parse_range(spec)
        ranges.setdefault(name, {}).update(bounds)
    return filters, ranges


def _column(spec: str) -> str | None:
    name = spec.split("^", 1)[0]
    return None if "*" in name else name


def build_search(opts: SearchOptions) -> BuiltSearch:
    """Validate the options and build (body, params)."""
    if not opts.index.strip():
        raise UsageError("INDEX: give an index name, a comma-separated list or a pattern")
    fields = [parse_field(f) for f in opts.fields]
    filters, ranges = _filters_and_ranges(opts)
    sort: list[Any] = [item for spec in opts.sort for item in parse_sort(spec)]
    source = parse_source(opts.source) if opts.source else None
    if opts.text is not None and opts.query_string is not None:
        raise UsageError("--query-string: give either TEXT or --query-string, not both")

    if opts.body is not None:
        if opts.text is not None or opts.query_string is not None:
            raise UsageError(f"--body {opts.body_source}: cannot be combined with TEXT or --query-string "
                             "(put the query in the body)")
        if fields:
            raise UsageError("--field: applies to TEXT or --query-string, not to --body")
        body: dict[str, Any] = dict(opts.body)
        if filters or ranges:
            clauses = build_short_body({"filter": filters, "range": ranges})["query"]["bool"]["filter"]
            body["query"] = {"bool": {"must": [body.get("query", {"match_all": {}})], "filter": clauses}}
        if opts.size is not None:
            body["size"] = opts.size
        if opts.from_ is not None:
            body["from"] = opts.from_
        if sort:
            body["sort"] = sort
        if source is not None:
            body["_source"] = source
    else:
        if fields and opts.text is None and opts.query_string is None:
            raise UsageError("--field: give TEXT (or --query-string) to search those fields for")
        short: dict[str, Any] = {}
        if opts.query_string is not None:
            short.update(q=opts.query_string, query_string=True)
        elif opts.text is not None:
            short["q"] = opts.text
        if fields and opts.query_string is None:
            short["fields"] = fields
        if filters:
            short["filter"] = filters
        if ranges:
            short["range"] = ranges
        if opts.size is not None:
            short["size"] = opts.size
        if opts.from_ is not None:
            short["from"] = opts.from_
        if sort:
            short["sort"] = sort
        if source is not None:
            short["source"] = source
        body = build_short_body(short)
        if fields and opts.query_string is not None:
            query = body["query"]
            clause = query["bool"]["must"][0] if "bool" in query else query
            clause["query_string"]["fields"] = fields

    params: dict[str, Any] = {}
    if opts.preference is not None:
        params["preference"] = opts.preference
    if opts.routing is not None:
        params["routing"] = opts.routing
    if opts.timeout is not None:
        params["timeout"] = parse_search_timeout(opts.timeout)
    if opts.terminate_after is not None:
        params["terminate_after"] = opts.terminate_after
    if opts.request_cache is not None:
        params["request_cache"] = opts.request_cache
    if opts.track_total_hits is not None:
        params["track_total_hits"] = parse_track_total_hits(opts.track_total_hits)
    if opts.explain:
        params["explain"] = True

    if isinstance(source, list):
        columns = [c for c in source if "*" not in c]
    elif isinstance(source, dict) and source.get("includes"):
        columns = [c for c in source["includes"] if "*" not in c]
    else:
        columns = [c for c in (_column(f) for f in fields) if c]
    return BuiltSearch(opts.index.strip(), body, params, tuple(dict.fromkeys(columns)))


def load_body(fh: IO[bytes], source: str) -> dict[str, Any]:
    """A full search body from a file or stdin; bad JSON names FILE:LINE:COLUMN."""
    raw = fh.read()
    if not raw.strip():
        raise UsageError(f"--body {source}: empty, expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(source, exc.lineno, f"invalid JSON in --body: {exc.msg}", column=exc.colno) from None
    if not isinstance(body, dict):
        raise UsageError(f"--body {source}: expected a JSON object, got {type(body).__name__}")
    return body
