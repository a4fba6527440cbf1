"""Export's NDJSON lines carry `_routing` when a hit has one, on the fast path and on the general one."""

from __future__ import annotations

import orjson

from escli.output.export_pages import PageSpec, encode_page


def answer(sources: list[bytes]) -> bytes:
    hits = b",".join(b'{"_index":"i","_id":"%d",%s"_source":%s,"sort":[%d]}'
                     % (n, b'"_routing":"r%d",' % n if n % 2 else b"", s, n) for n, s in enumerate(sources))
    return b'{"pit_id":"p","hits":{"hits":[' + hits + b"]}}"


def test_fast_path_lines_carry_routing_only_when_present() -> None:
    enc = encode_page(answer([b'{"a":1}', b'{"a":2}']), PageSpec("ndjson"))
    lines = [orjson.loads(x) for x in enc.data.splitlines()]
    assert lines == [{"_index": "i", "_id": "0", "_source": {"a": 1}},
                     {"_index": "i", "_id": "1", "_source": {"a": 2}, "_routing": "r1"}]


def test_general_path_lines_carry_routing_only_when_present() -> None:
    # a raw newline inside a source (indexed pretty-printed) takes the orjson path
    enc = encode_page(answer([b'{\n"a":1}', b'{\n"a":2}']), PageSpec("ndjson"))
    lines = [orjson.loads(x) for x in enc.data.splitlines()]
    assert lines == [{"_index": "i", "_id": "0", "_source": {"a": 1}},
                     {"_index": "i", "_id": "1", "_source": {"a": 2}, "_routing": "r1"}]
