"""Cache keys and bypass rules, shared by every cache level.

The key is a SHA-256 over the cluster identity and user (`Settings.identity`: never a secret), the index, the body
in canonical form (keys sorted at every level, no whitespace: key order and formatting do not matter) and the
request parameters that change the result, written as they appear in the URL (True and "true" are the same).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from escli.es.queries import EXECUTION_PARAMS, param_text

DEFAULT_TTL = 300.0
KEY_VERSION = 1
# Parameters that never change what comes back: the shard request cache is a server-side hint. Leaving it out of
# the key lets `warm-cache --request-cache` fill entries that a plain `escli search` then hits. The same holds for
# the execution parameters of `--tune throughput` (es/queries.EXECUTION_PARAMS): a tuned and a plain search share.
PARAMS_NOT_IN_KEY = frozenset({"request_cache"}) | EXECUTION_PARAMS
# Date-math bounds live under these keys (range queries, date_range aggregations, extended_bounds, decay origins).
DATE_BOUND_KEYS = frozenset({"gt", "gte", "lt", "lte", "from", "to", "origin", "min", "max"})
_NOW = re.compile(r"^\s*now(?![A-Za-z0-9_])")
# In Lucene syntax: `[now-1d TO now]`, `{now TO *}`, `field:>now-1h`, `field:>=now`.
_NOW_IN_QUERY_STRING = re.compile(r"(?:[\[{]|\bTO\s+|[<>]=?)\s*now(?![A-Za-z0-9_])")


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: keys sorted at every level, no whitespace."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def normalise_params(params: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): param_text(v) for k, v in params.items() if v is not None and k not in PARAMS_NOT_IN_KEY}


def normalise_index(index: str) -> str:
    return ",".join(part.strip() for part in index.split(",") if part.strip())


def cache_key(identity: str, index: str, body: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The cache key of one search: hex SHA-256 of identity, index, canonical body and result-changing params."""
    material = canonical_json({
        "v": KEY_VERSION,
        "identity": identity,
        "index": normalise_index(index),
        "body": body,
        "params": normalise_params(params),
    })
    return hashlib.sha256(material).hexdigest()


def _walk(value: Any, parent_key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """Every (key it sits under, scalar) pair of a JSON value."""
    stack: list[tuple[str | None, Any]] = [(parent_key, value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend((str(k), v) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((key, v) for v in item)
        else:
            yield key, item


def uses_now(body: Mapping[str, Any]) -> bool:
    """True when the body holds `now` date math (a range bound or a Lucene range in a query string)."""
    try:  # most bodies never say "now": one encoding (~1 µs) spares the walk (~10 µs), which batch pays per query
        if b"now" not in orjson.dumps(body):
            return False
    except TypeError:
        pass
    for key, value in _walk(body):
        if not isinstance(value, str):
            continue
        if key in DATE_BOUND_KEYS and _NOW.match(value):
            return True
        if key == "query" and "now" in value and _NOW_IN_QUERY_STRING.search(value):
            return True
    return False


def cache_bypass_reason(body: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """Why this search should not be cached unless forced, or None when it may be.

    `now` date math gives a different answer from one moment to the next; a custom `preference` (a session or
    user id) or a `routing` value personalises the request; a point in time expires with its id.
    """
    if uses_now(body):
        return "the query uses `now` date math"
    preference = params.get("preference")
    if preference is not None and not str(preference).startswith("_"):
        return "preference is set per user or session"
    if params.get("routing") is not None:
        return "routing is set (a personalised request)"
    if "pit" in body:
        return "the search uses a point in time"
    if params.get("scroll") is not None:
        return "the search opens a scroll"
    return None


