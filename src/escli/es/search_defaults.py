"""Search defaults, written out or left implicit, give the same answer: the cache key sees them the same way.

`key_form(body, params)` is what the cache key hashes instead of the request as sent (the request itself is never
changed). It
- moves the parameters Elasticsearch also takes in the body (`?explain=true`, `?track_total_hits=100`, ...) into
  the body, since a URL parameter overrides the body's value;
- drops a body key or a parameter whose value is Elasticsearch's own default (`"size": 10`, `"from": 0`,
  `"_source": true`, `?expand_wildcards=open`, ...), and a query that is only `match_all`.
So `escli search products laptop` and the query-file line `{"index":"products","q":"laptop","size":10}` share one
entry, and warm-cache fills what search reads whichever defaults each writes out.

Only defaults fixed by the search API are here: ones a cluster setting can change (the search timeout,
allow_partial_search_results) are left alone. Values compare with their JSON type: 0 is not false.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from escli.es.queries import param_text
from escli.text import is_digits

BODY_DEFAULTS: dict[str, Any] = {
    "from": 0,
    "size": 10,
    "_source": True,
    "explain": False,
    "version": False,
    "seq_no_primary_term": False,
    "track_scores": False,
    "terminate_after": 0,
    "track_total_hits": 10_000,
    "profile": False,
}
# Parameters with a body twin: the URL value wins over the body's (RestSearchAction parses the body first).
PARAMS_INTO_BODY = frozenset({"explain", "version", "seq_no_primary_term", "terminate_after", "track_total_hits",
                              "timeout", "size", "from"})
PARAM_DEFAULTS = {
    "ignore_unavailable": "false",
    "allow_no_indices": "true",
    "expand_wildcards": "open",
    "search_type": "query_then_fetch",
}
_MATCH_ALL: dict[str, Any] = {"match_all": {}}


def _same(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default


def _body_value(text: str) -> Any:
    """A URL parameter's text as the JSON value it stands for in a body: true/false, integers, else the text."""
    if text in ("true", "false"):
        return text == "true"
    if is_digits(text):
        return int(text)
    return text


def key_form(body: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(body, params) with defaults removed and body-twin parameters moved into the body, for the cache key."""
    out = dict(body)
    rest: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        if name in PARAMS_INTO_BODY:
            out[name] = _body_value(param_text(value))
        elif PARAM_DEFAULTS.get(name) != param_text(value):
            rest[name] = value
    for name, default in BODY_DEFAULTS.items():
        if name in out and _same(out[name], default):
            del out[name]
    if out.get("query") == _MATCH_ALL:
        del out["query"]
    return out, rest
