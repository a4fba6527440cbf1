"""The query-file reader (batch, warm-cache, profile): both forms, comments, errors as FILE:LINE, streaming."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.errors import InputError
from escli.es.queries import QuerySpec, aread_queries, build_short_body, parse_query_line, read_queries
from escli.inputs import anumbered_lines, numbered_lines

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_queries"

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
names = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_-.*,"),
                min_size=1, max_size=20)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53), text,
                    st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(text, inner, max_size=4)), max_leaves=20)
ids = st.one_of(text, st.integers(0, 10**9))


@st.composite
def short_forms(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = {"index": draw(names)}
    if draw(st.booleans()):
        obj["id"] = draw(ids)
    if draw(st.booleans()):
        obj["q"] = draw(text)
    if draw(st.booleans()):
        obj["fields"] = draw(st.lists(names, max_size=3))
    if draw(st.booleans()):
        obj["filter"] = draw(st.dictionaries(names, st.one_of(text, st.integers(-2**63, 2**63 - 1), st.booleans(),
                                                              st.lists(text, max_size=3)), max_size=3))
    if draw(st.booleans()):
        bound = st.fixed_dictionaries({"gte": st.integers(-2**63, 2**63 - 1)})
        obj["range"] = draw(st.dictionaries(names, bound, max_size=2))
    for key in ("size", "from"):
        if draw(st.booleans()):
            obj[key] = draw(st.integers(0, 10_000))
    if draw(st.booleans()):
        obj["params"] = draw(st.dictionaries(st.sampled_from(["preference", "routing", "request_cache"]),
                                             st.one_of(text, st.booleans()), max_size=2))
    return obj


@given(short_forms(), st.integers(1, 10**7))
def test_short_form_round_trip(obj: dict[str, Any], line: int) -> None:
    spec = parse_query_line(orjson.dumps(obj), line, "f.ndjson")
    assert isinstance(spec, QuerySpec), spec
    assert spec.index == obj["index"]
    assert spec.id == (str(obj["id"]) if "id" in obj else f"line-{line}")
    assert spec.body == build_short_body(obj)
    assert spec.params == obj.get("params", {})
    assert spec.line == line


@given(names, st.dictionaries(text, json_values, max_size=5), ids, st.integers(0, 8))
def test_full_form_keeps_the_body(index: str, body: dict[str, Any], qid: str | int, indent: int) -> None:
    raw = (b" " * indent) + orjson.dumps({"id": qid, "index": index, "body": body}) + b"\r"
    spec = parse_query_line(raw, 3, "f")
    assert isinstance(spec, QuerySpec), spec
    assert (spec.id, spec.index, spec.body) == (str(qid), index, body)


@given(st.binary(max_size=200), st.integers(1, 1000))
def test_any_bytes_give_a_spec_an_error_or_nothing(raw: bytes, line: int) -> None:
    item = parse_query_line(raw, line, "in.ndjson")
    assert item is None or isinstance(item, QuerySpec | InputError)
    if isinstance(item, InputError):
        assert str(item).startswith(f"in.ndjson:{line}")
        assert item.line == line and item.reason
    if item is None:
        assert not raw.strip() or raw.strip().startswith(b"#") or (line == 1 and raw.startswith(b"\xef\xbb\xbf"))


line_kinds = st.one_of(
    st.builds(lambda i: orjson.dumps({"id": f"q{i}", "index": "products", "q": "x"}), st.integers(0, 999)),
    st.just(b""), st.just(b"   "), st.just(b"# a comment"), st.just(b"  # indented comment"),
    st.just(b"{not json"), st.just(b"[1, 2]"), st.just(b'{"q": "no index"}'),
)


@given(st.lists(line_kinds, max_size=40))
def test_stream_keeps_line_numbers_and_skips_blanks_and_comments(lines: list[bytes]) -> None:
    data = b"\n".join(lines) + b"\n"
    with_numbers = list(numbered_lines(_bytes_io(data)))
    out = list(read_queries(iter(with_numbers), "s.ndjson"))
    expected = [n for n, raw in with_numbers if raw.strip() and not raw.strip().startswith(b"#")]
    assert [x.line for x in out] == expected
    for item in out:
        raw = lines[item.line - 1]
        assert isinstance(item, QuerySpec) == raw.startswith(b'{"id"')


def test_reading_is_lazy_on_an_endless_input() -> None:
    def endless() -> Iterator[tuple[int, bytes]]:
        for n in itertools.count(1):
            yield n, b'{"index": "products", "q": "laptop"}'

    first = list(itertools.islice(read_queries(endless(), "-"), 3))
    assert [q.line for q in first] == [1, 2, 3]


def test_the_mistakes_file_names_every_bad_line() -> None:
    path = SAMPLES / "mistakes.ndjson"
    with path.open("rb") as fh:
        items = list(read_queries(numbered_lines(fh), "mistakes.ndjson"))
    good = [i.id for i in items if isinstance(i, QuerySpec)]
    bad = {i.line: str(i) for i in items if isinstance(i, InputError)}
    assert good == ["ok-1", "ok-2", "ok-3"]
    assert sorted(bad) == [10, 12, 13, 14, 15, 16, 17]
    assert bad[10].startswith("mistakes.ndjson:10:52: invalid JSON")
    assert bad[12] == "mistakes.ndjson:12: expected a JSON object, got list"
    assert bad[13] == 'mistakes.ndjson:13: "index" is required and must be a non-empty string'
    assert bad[14].startswith("mistakes.ndjson:14: unknown key(s): query") and '"body"' in bad[14]
    assert bad[15] == 'mistakes.ndjson:15: "size" must be a non-negative integer'
    assert bad[16] == "mistakes.ndjson:16: unknown search parameter(s): scroll"
    assert bad[17] == 'mistakes.ndjson:17: "body" must be an object'
    # the comment block at the top of the file says the same line numbers
    header = path.read_text().split("\n{", 1)[0]
    for line in bad:
        assert f"line {line}:" in header


@pytest.mark.parametrize("name", ["products.ndjson", "products-full.ndjson"])
def test_sample_files_are_valid_with_unique_ids(name: str) -> None:
    with (SAMPLES / name).open("rb") as fh:
        items = list(read_queries(numbered_lines(fh), name))
    assert all(isinstance(i, QuerySpec) for i in items), [str(i) for i in items if isinstance(i, InputError)]
    assert len(items) >= 50
    assert len({i.id for i in items}) == len(items)
    assert all(i.index == "products" for i in items)  # type: ignore[union-attr]


def test_sample_short_and_full_files_say_the_same_thing() -> None:
    def load(name: str) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        with (SAMPLES / name).open("rb") as fh:
            return {q.id: (q.body, q.params) for q in read_queries(numbered_lines(fh), name)
                    if isinstance(q, QuerySpec)}

    short, full = load("products.ndjson"), load("products-full.ndjson")
    assert short == full
    raw = (SAMPLES / "products.ndjson").read_bytes()
    assert b'"body"' in raw and b'"q"' in raw  # both forms are in the main file


def test_bom_crlf_and_json_error_column() -> None:
    data = b'\xef\xbb\xbf{"index": "products", "q": "a"}\r\n  {"index": "products", "q": }\r\n'
    items = list(read_queries(numbered_lines(_bytes_io(data)), "w.ndjson"))
    assert isinstance(items[0], QuerySpec) and items[0].body == build_short_body({"q": "a"})
    assert isinstance(items[1], InputError) and str(items[1]).startswith("w.ndjson:2:30: invalid JSON")


def test_parameter_values_must_be_scalars() -> None:
    item = parse_query_line(b'{"index": "p", "params": {"routing": ["a"]}}', 4, "p")
    assert isinstance(item, InputError) and str(item) == 'p:4: params "routing" must be a string, number or boolean'


def test_async_reader_on_a_pipe_matches_the_sync_reader() -> None:
    lines = [orjson.dumps({"id": i, "index": "products", "q": "x" * (i % 7)}) for i in range(5000)]
    lines[10] = b"# comment"
    lines[20] = b"{broken"
    data = b"\n".join(lines)  # no newline at the end: the last line still counts
    expected = [(x.line, str(x)) if isinstance(x, InputError) else (x.line, x.id)
                for x in read_queries(numbered_lines(_bytes_io(data)), "<stdin>")]
    rfd, wfd = os.pipe()

    def feed() -> None:
        with os.fdopen(wfd, "wb") as w:
            for i in range(0, len(data), 4093):  # odd chunks split lines anywhere
                w.write(data[i:i + 4093])

    threading.Thread(target=feed, daemon=True).start()

    async def collect() -> list[tuple[int, str]]:
        with os.fdopen(rfd, "rb") as r:
            return [(x.line, str(x)) if isinstance(x, InputError) else (x.line, x.id)
                    async for x in aread_queries(anumbered_lines(r), "<stdin>")]

    assert asyncio.run(collect()) == expected
    assert len(expected) == 4999


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)
