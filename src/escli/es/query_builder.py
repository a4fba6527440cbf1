"""Search bodies and parameters from `escli search` options: parsing, validation and building, as plain data.

Every parse error is a UsageError (exit 2) that names the option and the value at fault. Bodies are built as plain
dicts through `queries.build_short_body`, the builder behind the query files' short form, so `escli search
products laptop -f name^2 --filter category=laptops` and the query-file line
`{"index":"products","q":"laptop","fields":["name^2"],"filter":{"category":"laptops"}}` give the same body and
therefore the same cache key (warm-cache fills what search reads). They are the same dicts elasticsearch.dsl
builds (tests/unit/test_search_builder.py checks that against `elasticsearch.dsl`), but the DSL is not imported
here: it pulls in the whole client (~0.4 s), and a cache hit must not pay for it.

Search-changing settings that Elasticsearch also takes in the URL (preference, routing, timeout,
terminate_after, request_cache, track_total_hits, explain, stored_fields) and the execution settings
(batched_reduce_size, pre_filter_shard_size, max_concurrent_shard_requests) go to `params`, as in the query files'
full form; `--tune NAME` fills in the preset's values (es/queries.TUNE_PRESETS) that no option of its own sets.
`--agg` and `--highlight` add to the body (`aggs`, `highlight`), also on top of a `--body`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from escli.errors import InputError, UsageError
from escli.es.queries import INT_PARAM_MIN, TUNE_PRESETS, build_short_body
from escli.text import is_digits, parse_float

RANGE_OPS = ("gt", "gte", "lt", "lte")
RANGE_TEXT_OPS = ("format", "time_zone")
_FIELD = re.compile(r"^[^\s^=]+(\^([0-9]+(\.[0-9]*)?|\.[0-9]+))?$")
_TIME = re.compile(r"^[0-9]+(nanos|micros|ms|s|m|h|d)$")
# Aggregation names may not hold [ ] or > (Elasticsearch uses them in buckets paths).
_AGG_NAME = re.compile(r"^[^\[\]>\s=]+$")
AGG_TYPES = ("terms", "histogram", "date_histogram", "stats", "percentiles")
AGG_SYNTAX = ("NAME=terms:FIELD[:SIZE], NAME=histogram:FIELD:INTERVAL, NAME=date_histogram:FIELD:INTERVAL, "
              "NAME=stats:FIELD or NAME=percentiles:FIELD[:P,P..]")
# date_histogram: these are calendar intervals (a month is not 30 days); any other NUMBER+UNIT is a fixed one.
CALENDAR_INTERVALS = frozenset({"minute", "1m", "hour", "1h", "day", "1d", "week", "1w", "month", "1M",
                                "quarter", "1q", "year", "1y"})
_FIXED_INTERVAL = re.compile(r"^[0-9]+(ms|s|m|h|d)$")


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
    stored_fields: Sequence[str] = ()
    tune: str | None = None
    batched_reduce_size: int | None = None
    pre_filter_shard_size: int | None = None
    max_concurrent_shard_requests: int | None = None
    aggs: Sequence[str] = ()
    highlight: Sequence[str] = ()


@dataclass(frozen=True)
class BuiltSearch:
    index: str
    body: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()  # the fields the user chose (for table and csv output), boosts removed
    notes: tuple[str, ...] = ()  # what a --tune preset set (and which options overrode it), for -v


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
    if is_digits(text):
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
    stored = _split_names(opts.stored_fields, "--stored-fields")
    notes = tuning_params(params, opts.tune, stored, batched_reduce_size=opts.batched_reduce_size,
                          pre_filter_shard_size=opts.pre_filter_shard_size,
                          max_concurrent_shard_requests=opts.max_concurrent_shard_requests)

    aggs = [parse_agg(spec) for spec in opts.aggs]
    if aggs:
        key = "aggregations" if "aggregations" in body else "aggs"
        merged: dict[str, Any] = dict(body.get(key) or {})
        for name, agg in aggs:
            if name in merged:
                raise UsageError(f"--agg {name}=...: the name {name!r} is used twice (by another --agg or the body)")
            merged[name] = agg
        body[key] = merged
    highlight = _split_names(opts.highlight, "--highlight")
    if highlight:
        hl = dict(body.get("highlight") or {})
        hl["fields"] = {**dict(hl.get("fields") or {}), **{name: {} for name in highlight if name not in
                                                              (hl.get("fields") or {})}}
        body["highlight"] = hl

    if isinstance(source, list):
        columns = [c for c in source if "*" not in c]
    elif isinstance(source, dict) and source.get("includes"):
        columns = [c for c in source["includes"] if "*" not in c]
    else:
        columns = [c for c in (_column(f) for f in fields) if c]
    columns += [c for c in (*stored, *highlight) if "*" not in c and not c.startswith("_")]
    return BuiltSearch(opts.index.strip(), body, params, tuple(dict.fromkeys(columns)), notes)


def tuning_params(params: dict[str, Any], tune: str | None, stored_fields: Sequence[str] = (),
                  **execution: int | None) -> tuple[str, ...]:
    """Add --stored-fields, the execution options (batched_reduce_size=..., None when not given) and then the
    --tune preset's other values to `params`; returns what the preset did, for -v. Shared by search and profile."""
    stored = _split_names(stored_fields, "--stored-fields")
    if stored:
        params["stored_fields"] = ",".join(stored)
    for name, value in execution.items():
        if value is not None:
            if value < INT_PARAM_MIN[name]:
                raise UsageError(f"--{name.replace('_', '-')} {value}: must be at least {INT_PARAM_MIN[name]}")
            params[name] = value
    return _apply_tune(tune, params)


def _split_names(specs: Sequence[str], option: str) -> list[str]:
    """Field names from a repeatable, comma-separated option (--stored-fields a,b --stored-fields c)."""
    names: list[str] = []
    for spec in specs:
        parts = [p.strip() for p in spec.split(",")]
        if not any(parts) or any(not p or " " in p for p in parts):
            raise UsageError(f"{option} {spec}: expected FIELD[,FIELD...]")
        names.extend(parts)
    return list(dict.fromkeys(names))


def _apply_tune(tune: str | None, params: dict[str, Any]) -> tuple[str, ...]:
    """Fill in a preset's values that no option set; describe what it set and what was overridden (for -v)."""
    if tune is None:
        return ()
    name = tune.strip().lower()
    if name not in TUNE_PRESETS:
        raise UsageError(f"--tune {tune}: choose {' or '.join(TUNE_PRESETS)}")
    preset = TUNE_PRESETS[name]
    kept = {k: v for k, v in preset.items() if k in params}
    params.update({k: v for k, v in preset.items() if k not in params})
    text = ", ".join(f"{k}={v}" for k, v in preset.items())
    over = "".join(f"; --{k.replace('_', '-')} {params[k]} overrides {v}" for k, v in kept.items())
    return (f"--tune {name}: {text}{over}",)


def parse_agg(spec: str) -> tuple[str, dict[str, Any]]:
    """`NAME=TYPE:FIELD[:ARG]` -> (NAME, the aggregation's body)."""
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise UsageError(f"--agg {spec}: expected {AGG_SYNTAX}")
    if not _AGG_NAME.match(name):
        raise UsageError(f"--agg {spec}: the name {name!r} may not hold spaces, [, ] or >")
    kind, _, tail = rest.strip().partition(":")
    field_name, _, arg = tail.partition(":")
    field_name, arg = field_name.strip(), arg.strip()
    if kind not in AGG_TYPES:
        raise UsageError(f"--agg {spec}: unknown type {kind!r} (use {', '.join(AGG_TYPES)})")
    if not field_name:
        raise UsageError(f"--agg {spec}: {kind} needs a FIELD, e.g. {name}={kind}:price")
    agg: dict[str, Any] = {"field": field_name}
    if kind == "terms":
        if arg:
            if not is_digits(arg) or int(arg) < 1:
                raise UsageError(f"--agg {spec}: SIZE must be a whole number of at least 1, not {arg!r}")
            agg["size"] = int(arg)
    elif kind == "histogram":
        interval = scalar(arg) if arg else None
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
            raise UsageError(f"--agg {spec}: histogram needs a positive INTERVAL, e.g. {name}=histogram:"
                             f"{field_name}:50")
        agg["interval"] = interval
    elif kind == "date_histogram":
        if arg in CALENDAR_INTERVALS:
            agg["calendar_interval"] = arg
        elif _FIXED_INTERVAL.match(arg):
            agg["fixed_interval"] = arg
        else:
            raise UsageError(f"--agg {spec}: date_histogram needs an INTERVAL: a calendar one (1d, 1w, 1M, 1q, 1y, "
                             "day, month...) or a fixed one (30m, 12h, 7d)")
    elif kind == "percentiles" and arg:
        try:
            pcts = [parse_float(p) for p in arg.split(",")]
        except ValueError:
            raise UsageError(f"--agg {spec}: percentiles are numbers between 0 and 100, e.g. 50,95,99") from None
        if not all(0 <= p <= 100 for p in pcts):
            raise UsageError(f"--agg {spec}: percentiles are numbers between 0 and 100, e.g. 50,95,99")
        agg["percents"] = pcts
    elif arg:
        raise UsageError(f"--agg {spec}: {kind} takes only a FIELD ({kind}:{field_name})")
    return name, {kind: agg}


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
