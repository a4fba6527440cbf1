"""Cache keys: equal bodies give equal keys whatever the key order and whitespace; different ones differ."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from escli.cache import cache_bypass_reason, cache_key, canonical_json, normalise_params, uses_now
from escli.es.search_defaults import key_form

# JSON text: no lone surrogates (orjson, like Elasticsearch, refuses them)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=False, allow_infinity=False), text)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(text, children, max_size=5)),
    max_leaves=25,
)
bodies = st.dictionaries(text, json_values, max_size=6)
params = st.dictionaries(st.sampled_from(["preference", "routing", "timeout", "terminate_after",
                                          "track_total_hits", "explain", "search_type"]),
                         st.one_of(st.booleans(), st.integers(0, 10**6),
                                   st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8)),
                         max_size=4)


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@given(body=bodies, p=params, seed=st.integers(0, 2**32), indent=st.sampled_from([None, 1, 4]))
def test_key_order_and_whitespace_do_not_matter(body: dict[str, Any], p: dict[str, Any], seed: int,
                                                indent: int | None) -> None:
    rng = random.Random(seed)
    # what a user might type: other key order, other whitespace, read back from text
    text = json.dumps(shuffled(body, rng), indent=indent, separators=None if indent else (", ", " : "))
    again = orjson.loads(text)
    reordered_params = dict(shuffled(p, rng))
    assert cache_key("c|u", "products", body, p) == cache_key("c|u", "products", again, reordered_params)


@given(a=bodies, b=bodies)
def test_different_bodies_give_different_keys(a: dict[str, Any], b: dict[str, Any]) -> None:
    same = canonical_json(key_form(a, {})[0]) == canonical_json(key_form(b, {})[0])  # defaults are one key
    assert (cache_key("c|u", "i", a, {}) == cache_key("c|u", "i", b, {})) == same


@given(p=params, q=params)
def test_different_params_give_different_keys(p: dict[str, Any], q: dict[str, Any]) -> None:
    (bp, pp), (bq, pq) = key_form({}, p), key_form({}, q)  # defaults dropped, body twins moved into the body
    same = canonical_json(bp) == canonical_json(bq) and normalise_params(pp) == normalise_params(pq)
    assert (cache_key("c|u", "i", {}, p) == cache_key("c|u", "i", {}, q)) == same


def test_identity_user_and_index_are_part_of_the_key() -> None:
    body = {"query": {"match_all": {}}}
    keys = {cache_key(who, index, body, {}) for who in ("a|user:x", "a|user:y", "b|user:x")
            for index in ("products", "other")}
    assert len(keys) == 6
    assert cache_key("a|u", " products ", body, {}) == cache_key("a|u", "products", body, {})


def test_params_as_they_appear_in_the_url() -> None:
    body: dict[str, Any] = {}
    assert cache_key("c", "i", body, {"explain": True}) == cache_key("c", "i", body, {"explain": "true"})
    assert cache_key("c", "i", body, {"terminate_after": 10}) == cache_key("c", "i", body, {"terminate_after": "10"})
    assert cache_key("c", "i", body, {"timeout": None}) == cache_key("c", "i", body, {})
    # the shard request cache does not change the answer: warm-cache --request-cache fills what search reads
    assert cache_key("c", "i", body, {"request_cache": True}) == cache_key("c", "i", body, {})
    assert cache_key("c", "i", body, {"preference": "_local"}) != cache_key("c", "i", body, {})


def test_keys_hold_no_secret() -> None:
    key = cache_key("https://es:9200|apikey:0123", "products", {"query": {"match_all": {}}}, {})
    assert len(key) == 64 and all(c in "0123456789abcdef" for c in key)


def test_now_date_math_is_not_cached() -> None:
    assert uses_now({"query": {"range": {"created_at": {"gte": "now-7d/d"}}}})
    assert uses_now({"query": {"range": {"created_at": {"lt": "now"}}}})
    assert uses_now({"aggs": {"r": {"date_range": {"field": "d", "ranges": [{"from": "now-1M/M"}]}}}})
    assert uses_now({"query": {"query_string": {"query": "created_at:[now-1d TO now]"}}})
    assert uses_now({"query": {"query_string": {"query": "created_at:>=now-1h"}}})
    # the word in text, fixed dates and anchored date math are fine
    assert not uses_now({"query": {"match": {"name": {"query": "now"}}}})
    assert not uses_now({"query": {"multi_match": {"query": "buy now", "fields": ["name"]}}})
    assert not uses_now({"query": {"range": {"created_at": {"gte": "2024-01-01||-1d", "lt": "nowhere"}}}})
    assert not uses_now({"query": {"query_string": {"query": "snow AND known"}}})


def test_bypass_reasons() -> None:
    body = {"query": {"match_all": {}}}
    assert cache_bypass_reason(body, {}) is None
    assert cache_bypass_reason(body, {"preference": "_local"}) is None
    assert cache_bypass_reason(body, {"preference": "_shards:0"}) is None
    assert "preference" in (cache_bypass_reason(body, {"preference": "session-42"}) or "")
    assert "routing" in (cache_bypass_reason(body, {"routing": "user-7"}) or "")
    assert "now" in (cache_bypass_reason({"query": {"range": {"d": {"gte": "now-1h"}}}}, {}) or "")
    assert "point in time" in (cache_bypass_reason({"pit": {"id": "x"}}, {}) or "")
