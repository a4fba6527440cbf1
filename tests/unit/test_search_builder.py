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


# --- aggregations, highlight, stored fields, tuning ------------------------------------------------------------

def test_agg_specs_equal_the_dsl() -> None:
    body, _ = build(size=0, aggs=["brands=terms:brand.keyword:5", "p=histogram:price:50",
                                  "m=date_histogram:created_at:1M", "w=date_histogram:created_at:7d",
                                  "s=stats:price", "q=percentiles:price:50,99.9"])
    s = Search().extra(size=0)
    s.aggs.bucket("brands", "terms", field="brand.keyword", size=5)
    s.aggs.bucket("p", "histogram", field="price", interval=50)
    s.aggs.bucket("m", "date_histogram", field="created_at", calendar_interval="1M")
    s.aggs.bucket("w", "date_histogram", field="created_at", fixed_interval="7d")
    s.aggs.metric("s", "stats", field="price")
    s.aggs.metric("q", "percentiles", field="price", percents=[50.0, 99.9])
    assert body == {"query": {"match_all": {}}, **s.to_dict()}


@pytest.mark.parametrize("spec", ["x", "=terms:a", "x=", "x=nope:a", "x=terms", "x=terms:a:0", "x=terms:a:b",
                                  "x=histogram:a", "x=histogram:a:0", "x=histogram:a:true", "x=stats:a:1",
                                  "x=date_histogram:a", "x=date_histogram:a:3M", "x=percentiles:a:101",
                                  "x=percentiles:a:p50", "a b=stats:x", "a[0]=stats:x"])
def test_bad_agg_specs_name_the_option(spec: str) -> None:
    with pytest.raises(UsageError, match=r"^--agg "):
        build(aggs=[spec])


def test_aggs_merge_into_a_body_and_refuse_a_clash() -> None:
    body, _ = build(body={"size": 0, "aggregations": {"a": {"avg": {"field": "price"}}}}, aggs=["b=stats:price"])
    assert body["aggregations"] == {"a": {"avg": {"field": "price"}}, "b": {"stats": {"field": "price"}}}
    with pytest.raises(UsageError, match="used twice"):
        build(body={"aggs": {"a": {"avg": {"field": "price"}}}}, aggs=["a=stats:price"])


def test_highlight_and_stored_fields() -> None:
    built = build_search(SearchOptions(index="p", text="x", highlight=["name,description", "name"],
                                       stored_fields=["title", "year"]))
    assert built.body["highlight"] == {"fields": {"name": {}, "description": {}}}
    assert built.params == {"stored_fields": "title,year"}
    assert built.columns == ("title", "year", "name", "description")
    body, _ = build(body={"query": {"match": {"a": "b"}}, "highlight": {"pre_tags": ["<b>"], "fields": {"a": {}}}},
                    highlight=["c"])
    assert body["highlight"] == {"pre_tags": ["<b>"], "fields": {"a": {}, "c": {}}}
    for bad in (["a,,b"], [" "], ["a b"]):
        with pytest.raises(UsageError, match=r"^--highlight"):
            build(highlight=bad)


def test_tune_presets_fill_what_no_option_sets() -> None:
    built = build_search(SearchOptions(index="p", tune="throughput", max_concurrent_shard_requests=7))
    assert built.params == {"max_concurrent_shard_requests": 7, "pre_filter_shard_size": 1, "batched_reduce_size": 64}
    assert built.notes == ("--tune throughput: pre_filter_shard_size=1, max_concurrent_shard_requests=2, "
                           "batched_reduce_size=64; --max-concurrent-shard-requests 7 overrides 2",)
    _, params = build(tune="LATENCY", timeout="2s")
    assert params == {"timeout": "2s", "terminate_after": 10000}
    with pytest.raises(UsageError, match=r"^--tune fast: choose throughput or latency"):
        build(tune="fast")
    with pytest.raises(UsageError, match=r"^--batched-reduce-size 1: must be at least 2"):
        build(batched_reduce_size=1)


def test_cache_key_ignores_execution_settings_but_not_result_settings() -> None:
    def key(**kw: Any) -> str:
        built = build_search(SearchOptions(index="p", text="x", **kw))
        return cache_key("id", built.index, built.body, built.params)

    plain = key()
    assert key(tune="throughput") == plain
    assert key(batched_reduce_size=5, pre_filter_shard_size=3, max_concurrent_shard_requests=1) == plain
    assert len({plain, key(tune="latency"), key(stored_fields=["a"]), key(aggs=["a=stats:b"]),
                key(highlight=["a"])}) == 5


def test_query_file_params_tune_and_validation() -> None:
    spec = parse_query_line(b'{"index":"p","q":"x","params":{"tune":"latency","terminate_after":5}}', 1, "f")
    assert not isinstance(spec, InputError) and spec is not None
    assert spec.params == {"terminate_after": 5, "timeout": "100ms"}
    cli = build_search(SearchOptions(index="p", text="x", tune="latency", terminate_after=5))
    assert cache_key("i", "p", spec.body, spec.params) == cache_key("i", "p", cli.body, cli.params)
    listed = parse_query_line(b'{"index":"p","params":{"stored_fields":["a","b"]}}', 1, "f")
    same = parse_query_line(b'{"index":"p","params":{"stored_fields":"a,b"}}', 1, "f")
    assert listed is not None and same is not None and not isinstance(listed, InputError)
    assert not isinstance(same, InputError)
    assert cache_key("i", "p", listed.body, listed.params) == cache_key("i", "p", same.body, same.params)
    for params, reason in (('{"tune":"fast"}', '"tune" must be one of'),
                           ('{"batched_reduce_size":1}', "at least 2"),
                           ('{"pre_filter_shard_size":"3"}', "an integer"),
                           ('{"max_concurrent_shard_requests":0}', "at least 1"),
                           ('{"stored_fields":[]}', "stored_fields"),
                           ('{"stored_fields":[1]}', "stored_fields")):
        err = parse_query_line(b'{"index":"p","params":' + params.encode() + b"}", 3, "f.ndjson")
        assert isinstance(err, InputError) and reason in str(err), (params, err)


# --- rendering: aggregation rows, bars, highlight segments --------------------------------------------------------

def test_agg_rows_of_every_shape() -> None:
    from escli.output.aggs_view import agg_rows, bar, row_columns

    aggs = {
        "brands": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 3, "buckets": [
            {"key": "A", "doc_count": 5, "avg_price": {"value": 2.5},
             "cats": {"buckets": [{"key": "x", "doc_count": 4}], "sum_other_doc_count": 0}}]},
        "days": {"buckets": [{"key": 1700000000000, "key_as_string": "2023-11-14", "doc_count": 2}]},
        "ranges": {"buckets": {"cheap": {"doc_count": 1}}},
        "s": {"count": 2, "min": 1.0, "max": 3.0, "avg": 2.0, "sum": 4.0, "min_as_string": "1"},
        "p": {"values": {"50.0": 2.0, "50.0_as_string": "2"}},
        "pl": {"values": [{"key": 99.0, "value": 3.0}]},
        "card": {"value": 7},
        "books": {"doc_count": 9, "avg": {"value": 1.5}},
    }
    rows = list(agg_rows(aggs))
    assert rows == [
        {"agg": "brands", "key": "A", "count": 5, "avg_price": 2.5},
        {"agg": "brands>cats", "key": "x", "parent": "A", "count": 4},
        {"agg": "days", "key": "2023-11-14", "count": 2},
        {"agg": "ranges", "key": "cheap", "count": 1},
        *({"agg": "s", "key": k, "value": v} for k, v in (("count", 2), ("min", 1.0), ("max", 3.0), ("avg", 2.0),
                                                         ("sum", 4.0))),
        {"agg": "p", "key": "50.0", "value": 2.0},
        {"agg": "pl", "key": 99.0, "value": 3.0},
        {"agg": "card", "key": "value", "value": 7},
        {"agg": "books", "count": 9},
        {"agg": "books>avg", "key": "value", "value": 1.5},
    ]
    assert row_columns(rows) == ["agg", "key", "parent", "count", "value", "avg_price"]
    assert bar(10, 10) == "█" * 30 and bar(0, 10) == "" and bar(1, 1000) == "▏"
    assert len(bar(5, 10)) == 15


def test_highlight_segments_and_plain_text() -> None:
    from escli.output.highlight import highlight_tags, plain, plain_highlight, segments

    tags = highlight_tags({})
    assert tags == ("<em>", "</em>")
    assert segments(["a <em>b</em> c", "<em>d</em>"], tags) == (("a ", False), ("b", True), (" c", False),
                                                                (" … ", False), ("d", True))
    assert segments("x <em>open", tags) == (("x ", False), ("open", True))
    assert plain(["a <em>b</em> c"], tags) == "a b c"
    assert highlight_tags({"highlight": {"pre_tags": ["[["], "post_tags": ["]]"]}}) == ("[[", "]]")
    assert plain_highlight({"f": ["[[x]] y"]}, ("[[", "]]")) == {"f": ["x y"]}
