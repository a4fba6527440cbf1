"""The --since window's mark search (core/since.py): its body and what is taken from the answer."""

from __future__ import annotations

from escli.core.since import Since


def test_mark_body_asks_for_the_seq_no_span_only_when_told() -> None:
    since = Since(field="updated_at", kind="long", last_mark=5)
    plain = since.mark_body(None)
    assert "aggs" not in plain["aggs"]["window"]
    spanned = since.mark_body({"match": {"a": 1}}, seq_span=True)
    assert spanned["aggs"]["window"]["aggs"] == {"seq": {"stats": {"field": "_seq_no"}}}
    assert spanned["aggs"]["window"]["filter"] == {"range": {"updated_at": {"gt": 5}}}
    assert spanned["query"]["bool"]["must"] == [{"match": {"a": 1}}]


def test_take_reads_the_span_and_ignores_an_empty_one() -> None:
    since = Since(field="n", kind="long", last_mark=5)
    since.take({"hits": {"hits": [{"sort": [90]}]},
                "aggregations": {"window": {"doc_count": 3, "seq": {"count": 3, "min": 10.0, "max": 42.0}}}})
    assert (since.mark, since.new, since.seq_span) == (90, 3, (9, 43))  # widened by the doubles' spacing
    big = Since(field="n", kind="long")
    big.take({"hits": {"hits": [{"sort": [1]}]},
              "aggregations": {"window": {"doc_count": 2, "seq": {"count": 2, "min": 0.0, "max": 2.0**53 + 2}}}})
    assert big.seq_span is not None and big.seq_span[0] == 0 and big.seq_span[1] >= 2**53 + 3
    empty = Since(field="n", kind="long", last_mark=5)
    empty.take({"hits": {"hits": [{"sort": [5]}]},
                "aggregations": {"window": {"doc_count": 0, "seq": {"count": 0, "min": None, "max": None}}}})
    assert empty.seq_span is None and empty.nothing_new
