"""`escli search` options to (body, params): validation, the DSL as oracle, and parity with the query files."""

from __future__ import annotations

import io
from typing import Any

import pytest
from elasticsearch.dsl import Q, Search

from escli.cache import cache_key
from escli.errors import InputError, UsageError
from escli.es.queries import parse_query_line
from escli.es.query_builder import (
    SearchOptions,
    build_search,
    load_body,
    parse_range,
    parse_sort,
    parse_source,
    scalar,
)


def build(**kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    built = build_search(SearchOptions(index=kw.pop("index", "products"), **kw))
    return built.body, built.params


def test_multi_match_with_filters_ranges_sort_source_equals_the_dsl() -> None:
    body, params = build(text="laptop", fields=["name^2", "description"],
                         filters=["category=laptops", "tags=a", "tags=b"], ranges=["price=gte:10,lt:20"],
                         sort=["price:desc", "_score"], size=3, from_=5, source=["name,price"])
    expected = (Search()
                .query(Q("multi_match", query="laptop", fields=["name^2", "description"]))
                .filter("term", category="laptops").filter("terms", tags=["a", "b"])
                .filter("range", price={"gte": 10, "lt": 20})
                .sort({"price": {"order": "desc"}}, "_score").source(["name", "price"])
                .extra(size=3, **{"from": 5})).to_dict()
    assert body == expected
    assert params == {}


def test_query_string_and_source_excludes_equal_the_dsl() -> None:
    body, _ = build(query_string="name:laptop AND price:<20", source=["name", "-description"])
    assert body == Search().query("query_string", query="name:laptop AND price:<20").source(
        includes=["name"], excludes=["description"]).to_dict()


def test_query_string_searches_the_given_fields() -> None:
    body, _ = build(query_string="laptop", fields=["name^3"], filters=["category=laptops"])
    assert body["query"]["bool"]["must"][0] == {"query_string": {"query": "laptop", "fields": ["name^3"]}}


def test_no_text_is_match_all_and_params_go_to_the_url() -> None:
    body, params = build(preference="_local", routing="u1", timeout="500ms", terminate_after=100,
                         request_cache=False, track_total_hits="1000", explain=True)
    assert body == {"query": {"match_all": {}}}
    assert params == {"preference": "_local", "routing": "u1", "timeout": "500ms", "terminate_after": 100,
                      "request_cache": False, "track_total_hits": 1000, "explain": True}


def test_body_is_kept_and_options_override_or_wrap_it() -> None:
    base = {"query": {"match": {"name": "laptop"}}, "size": 50, "aggs": {"c": {"terms": {"field": "category"}}}}
    body, _ = build(body=base, filters=["category=laptops"], size=2, sort=["price"])
    assert body == {"query": {"bool": {"must": [{"match": {"name": "laptop"}}],
                                       "filter": [{"term": {"category": "laptops"}}]}},
                    "size": 2, "sort": ["price"], "aggs": {"c": {"terms": {"field": "category"}}}}
    assert base["size"] == 50  # the caller's body is not modified


@pytest.mark.parametrize(("kw", "message"), [
    ({"ranges": ["price=foo:1"]}, "--range price=foo:1: unknown bound 'foo'"),
    ({"ranges": ["price"]}, "--range price: expected FIELD=OP:VALUE"),
    ({"ranges": ["price=gte"]}, "--range price=gte: 'gte' is not OP:VALUE"),
    ({"ranges": ["price=gte:"]}, "--range price=gte:: no value for gte"),
    ({"ranges": ["created_at=format:yyyy"]}, "give at least one of gt, gte, lt, lte"),
    ({"filters": ["category"]}, "--filter category: expected FIELD=VALUE"),
    ({"filters": ["=x"]}, "--filter =x: expected FIELD=VALUE"),
    ({"sort": ["price:up"]}, "--sort price:up: order must be asc or desc"),
    ({"fields": ["name^x"], "text": "a"}, "--field name^x: expected NAME or NAME^BOOST"),
    ({"fields": ["name"]}, "--field: give TEXT"),
    ({"text": "a", "query_string": "b"}, "give either TEXT or --query-string"),
    ({"body": {"query": {}}, "text": "a"}, "--body --body: cannot be combined with TEXT"),
    ({"timeout": "5"}, "--timeout 5: the search timeout needs a unit"),
    ({"track_total_hits": "maybe"}, "--track-total-hits maybe: expected true, false or a number"),
    ({"source": [","]}, "--source ,: names no field"),
    ({"index": " "}, "INDEX: give an index name"),
])
def test_bad_options_name_the_option(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as err:
        build(**kw)
    assert message in str(err.value)


def test_small_parsers() -> None:
    assert parse_range("created_at=gte:now-7d/d,lt:now,time_zone:+01:00") == (
        "created_at", {"gte": "now-7d/d", "lt": "now", "time_zone": "+01:00"})
    assert parse_range("price=gt:1.5") == ("price", {"gt": 1.5})
    assert parse_sort("price:desc,_score,created_at:asc") == [{"price": {"order": "desc"}}, "_score",
                                                              {"created_at": {"order": "asc"}}]
    assert parse_source(["false"]) is False
    assert parse_source(["!a"]) == {"excludes": ["a"]}
    assert [scalar(v) for v in ("10", "1.5", "true", "007", "abc", "-3", "1e2")] == [
        10, 1.5, True, "007", "abc", -3, 100.0]


def test_the_same_search_from_the_cli_and_from_a_query_file_has_the_same_cache_key() -> None:
    """warm-cache fills what search reads: the short form and the options build identical bodies."""
    line = (b'{"id":"q1","index":"products","q":"laptop","fields":["name^2","description"],'
            b'"filter":{"category":"laptops","stock":5},"range":{"price":{"gte":10}},"size":5,'
            b'"params":{"preference":"_local","request_cache":true}}')
    spec = parse_query_line(line, 1, "q.ndjson")
    assert not isinstance(spec, InputError) and spec is not None
    built = build_search(SearchOptions(index="products", text="laptop", fields=["name^2", "description"],
                                       filters=["category=laptops", "stock=5"], ranges=["price=gte:10"], size=5,
                                       preference="_local"))
    assert built.body == spec.body
    assert cache_key("c|u", built.index, built.body, built.params) == cache_key("c|u", spec.index, spec.body,
                                                                                spec.params)


def test_load_body_names_line_and_column() -> None:
    with pytest.raises(InputError) as err:
        load_body(io.BytesIO(b'{"query": {"match_all": {}},\n "size": 1,, }'), "bad.json")
    assert str(err.value).startswith("bad.json:2:12: invalid JSON in --body")
    with pytest.raises(UsageError, match="expected a JSON object, got list"):
        load_body(io.BytesIO(b"[1]"), "b.json")
    with pytest.raises(UsageError, match="empty"):
        load_body(io.BytesIO(b"  \n"), "-")
    assert load_body(io.BytesIO(b'{"size": 0}'), "ok.json") == {"size": 0}
