"""Defaults written out or left implicit give one cache key (what warm-cache stores, search finds)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.cache import cache_key
from escli.es.queries import build_short_body
from escli.es.query_builder import SearchOptions, build_search
from escli.es.search_defaults import BODY_DEFAULTS, PARAM_DEFAULTS, PARAMS_INTO_BODY, key_form

BASE = {"query": {"multi_match": {"query": "laptop", "fields": ["name^2"]}}}


def key(body: dict[str, Any], params: dict[str, Any] | None = None) -> str:
    return cache_key("c", "products", body, params or {})


@pytest.mark.parametrize("name", sorted(BODY_DEFAULTS))
def test_each_body_default_written_out_is_the_same_key(name: str) -> None:
    assert key({**BASE, name: BODY_DEFAULTS[name]}) == key(BASE)


@pytest.mark.parametrize("name", sorted(PARAM_DEFAULTS))
def test_each_parameter_default_written_out_is_the_same_key(name: str) -> None:
    assert key(BASE, {name: PARAM_DEFAULTS[name]}) == key(BASE)


@pytest.mark.parametrize("name", sorted(BODY_DEFAULTS))
def test_a_value_other_than_the_default_is_another_key(name: str) -> None:
    default = BODY_DEFAULTS[name]
    other = (not default) if isinstance(default, bool) else default + 1
    assert key({**BASE, name: other}) != key(BASE)


def test_values_compare_with_their_type() -> None:
    assert key({**BASE, "from": False}) != key(BASE)  # 0 == False in Python, not in a search body
    assert key({**BASE, "size": 10.5}) != key(BASE)
    assert key({**BASE, "_source": 1}) != key(BASE)


def test_match_all_is_the_default_query() -> None:
    assert key({"query": {"match_all": {}}, "size": 3}) == key({"size": 3})
    assert key({"query": {"match_all": {"boost": 2}}}) != key({})


@pytest.mark.parametrize("name", sorted(PARAMS_INTO_BODY - {"timeout"}))
def test_a_parameter_with_a_body_twin_is_the_same_key_in_either_place(name: str) -> None:
    value: Any = True if name in ("explain", "version", "seq_no_primary_term") else 3
    assert key(BASE, {name: value}) == key({**BASE, name: value})
    assert key(BASE, {name: str(value).lower()}) == key({**BASE, name: value})


def test_the_url_parameter_overrides_the_body() -> None:
    assert key({**BASE, "explain": True}, {"explain": False}) == key(BASE)
    assert key({**BASE, "size": 3}, {"size": 10}) == key(BASE)


def test_search_options_and_a_query_line_share_the_key_with_or_without_defaults() -> None:
    line = build_short_body({"q": "laptop", "fields": ["name^2"]})
    built = build_search(SearchOptions(index="products", text="laptop", fields=["name^2"], size=10, from_=0,
                                       source=["true"]))
    assert key(line) == cache_key("c", built.index, built.body, built.params)


def test_the_request_itself_is_left_alone() -> None:
    body = {**BASE, "size": 10}
    params = {"expand_wildcards": "open"}
    key_form(body, params)
    assert body == {**BASE, "size": 10} and params == {"expand_wildcards": "open"}


@given(st.dictionaries(st.sampled_from(sorted(BODY_DEFAULTS)), st.one_of(st.booleans(), st.integers(0, 20))))
def test_key_form_is_idempotent(extra: dict[str, Any]) -> None:
    once = key_form({**BASE, **extra}, {})
    assert key_form(*once) == once
