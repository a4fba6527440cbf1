"""A source page as bulk documents (core/copy.page_docs): raw `_source` bytes, `_id`, `_routing`, one line each."""

from __future__ import annotations

import orjson

from escli.core.copy import Rename, page_docs
from escli.core.importer import bulk_body


def test_sources_are_the_answers_bytes_with_id_and_routing() -> None:
    raw = (b'{"pit_id":"p2","hits":{"hits":[{"_id":"a","_source":{"x": 1.50,"y":"\\u00e9"},"sort":[1]},'
           b'{"_id":"b","_routing":"u1","_source":{"x":2},"sort":[2]}]}}')
    page = page_docs(raw)
    assert [(d.id, d.encoded, d.routing) for d in page.docs] == [
        ("a", b'{"x": 1.50,"y":"\\u00e9"}', None), ("b", b'{"x":2}', "u1")]  # number spelling and escapes kept
    assert (page.hits, page.last_sort, page.context_id, page.problem) == (2, [2], "p2", None)
    assert bulk_body("dest", page.docs).splitlines() == [
        b'{"index":{"_index":"dest","_id":"a"}}', b'{"x": 1.50,"y":"\\u00e9"}',
        b'{"index":{"_index":"dest","_id":"b","routing":"u1"}}', b'{"x":2}']


def test_a_pretty_printed_source_stays_one_bulk_line() -> None:
    raw = b'{"hits":{"hits":[{"_id":"a","_source":{\n  "t": "two\\nlines"\n}}]}}'
    (doc,) = page_docs(raw).docs
    assert b"\n" not in doc.encoded and orjson.loads(doc.encoded) == {"t": "two\nlines"}


def test_failed_shards_make_no_page() -> None:
    raw = orjson.dumps({"_shards": {"failed": 1, "failures": [{"reason": {"type": "node_closed"}}]},
                        "hits": {"hits": [{"_id": "a", "_source": {}}]}})
    assert page_docs(raw).problem == "node_closed"


def test_skip_and_limit() -> None:
    raw = b'{"hits":{"hits":[{"_id":"a","_source":{}},{"_id":"b","_source":{}},{"_id":"c","_source":{}}]}}'
    page = page_docs(raw, skip={"a"}, limit=1)
    assert [d.id for d in page.docs] == ["b"] and page.hits == 3


def test_rename() -> None:
    assert Rename(dest="x").apply("logs") == "x"
    assert Rename(prefix="new-", suffix="-v2").apply("logs") == "new-logs-v2"
