"""core/digest.py: the canonical document hash and the combinable bucket digest (property tests, `ci` profile)."""

from __future__ import annotations

import json
import random

import orjson
from hypothesis import given
from hypothesis import strategies as st

from escli.core.digest import (
    BYTES,
    VALUES,
    Digest,
    DocKey,
    bucket_of,
    canonical_value,
    combine,
    decode_raw_answer,
    diff,
    differing_docs,
    doc_hash,
    fold,
)

keys = st.text(max_size=6)
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4),
                      max_leaves=12)
documents = st.dictionaries(keys, values, max_size=6)


def spell(value: object, rnd: random.Random) -> str:
    """JSON text of `value` with its keys in a random order and its numbers spelled one of several equal ways."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return "{" + ",".join(f"{json.dumps(k)}:{spell(v, rnd)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(spell(v, rnd) for v in value) + "]"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int):
        if abs(value) < 2**53:  # exactly a double: may be spelled as one
            return rnd.choice([str(value), f"{value}.0", f"{value}.00", f"{value}e0", f"{value * 10}e-1"])
        return str(value)
    assert isinstance(value, float)
    if value == 0.0:
        return rnd.choice(["0", "-0.0", "0.0", "0e5"])
    return rnd.choice([repr(value), f"{value:.17g}", f"{value:.17e}"])


def hash_of(text: str, doc_id: str = "1", routing: str | None = None) -> int:
    return doc_hash(doc_id, routing, canonical_value(text.encode()))


@given(documents, st.integers(min_value=0, max_value=2**32))
def test_key_order_and_number_spelling_do_not_matter(doc: dict[str, object], seed: int) -> None:
    rnd = random.Random(seed)
    assert hash_of(spell(doc, rnd)) == hash_of(spell(doc, rnd)) == hash_of(json.dumps(doc))


def test_number_spellings_of_one_value() -> None:
    one = {hash_of(f'{{"a": {s}}}') for s in ("1", "1.0", "1e0", "1.00", "10e-1", "0.1e1")}
    assert len(one) == 1
    assert hash_of('{"a": -0.0}') == hash_of('{"a": 0}')
    assert hash_of('{"a": 1e20}') == hash_of('{"a": 100000000000000000000}')
    assert hash_of('{"a": 0.1}') == hash_of('{"a": 0.10000000000000000555}')  # the same double
    # an integer spelling is exact at any size; a fraction or an exponent is read as a double
    assert hash_of('{"a": 9007199254740993}') != hash_of('{"a": 9007199254740993.0}')
    assert hash_of('{"a": 9007199254740992}') == hash_of('{"a": 9007199254740993.0}')
    assert hash_of('{"a": 1e400}') == hash_of('{"a": 10e399}') != hash_of('{"a": 1e401}')


def test_values_that_differ() -> None:
    base = hash_of('{"a": [1, 2], "b": "x"}')
    for other in ('{"a": [2, 1], "b": "x"}', '{"a": [1, 2], "b": "X"}', '{"a": [1, 2], "b": "x", "c": null}',
                  '{"a": [1, 2]}', '{"a": [1, 2.5], "b": "x"}', '{"a": [1, 2], "b": ["x"]}',
                  '{"a": [1, 2], "b": "x "}', '{"a": {"0": 1, "1": 2}, "b": "x"}', '{"a": [1, "2"], "b": "x"}'):
        assert hash_of(other) != base, other
    assert hash_of('{"s": "\\u00e9"}') == hash_of('{"s": "é"}')  # escapes are spelling
    assert hash_of('{"s": "e\\u0301"}') != hash_of('{"s": "é"}')  # no Unicode normalization
    assert hash_of('{"a": true}') != hash_of('{"a": 1}')
    assert hash_of("{}", "1") != hash_of("{}", "2")
    assert hash_of("{}", "1", None) != hash_of("{}", "1", "r") != hash_of("{}", "1", "s")
    assert hash_of("{}", "1", "") != hash_of("{}", "1", None)


def same_value(a: object, b: object) -> bool:
    """JSON equality without Python's True == 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return type(a) is type(b) and a == b  # numbers are canonical: an integral value is always an int


@given(documents, documents)
def test_different_documents_hash_apart(a: dict[str, object], b: dict[str, object]) -> None:
    same = same_value(canonical_value(json.dumps(a).encode()), canonical_value(json.dumps(b).encode()))
    assert (hash_of(json.dumps(a)) == hash_of(json.dumps(b))) == same


docs_with_keys = st.lists(st.tuples(st.text(min_size=1, max_size=5), st.none() | st.sampled_from(["r1", "r2"]),
                                    documents), max_size=30, unique_by=lambda t: (t[0], t[1]))


def answer(docs: list[tuple[str, str | None, dict[str, object]]]) -> bytes:
    hits = [{"_id": i, **({"_routing": r} if r is not None else {}), "_source": s} for i, r, s in docs]
    return json.dumps({"hits": {"hits": hits}}).encode()


@given(docs_with_keys, st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=6),
       st.sampled_from([1, 7, 64]))
def test_combine_is_one_pass_in_any_order_and_split(docs: list[tuple[str, str | None, dict[str, object]]],
                                                    seed: int, parts: int, buckets: int) -> None:
    whole = fold(decode_raw_answer(answer(docs)).hits.hits, buckets, VALUES).digest
    rnd = random.Random(seed)
    shuffled = list(docs)
    rnd.shuffle(shuffled)
    pieces: list[list[tuple[str, str | None, dict[str, object]]]] = [[] for _ in range(parts)]
    for d in shuffled:
        pieces[rnd.randrange(parts)].append(d)
    folded = [fold(decode_raw_answer(answer(p)).hits.hits, buckets, VALUES).digest for p in pieces]
    rnd.shuffle(folded)
    combined = combine(folded)
    assert combined == whole
    assert combined.count == len(docs)
    assert combined.total == whole.total
    assert Digest.from_dict(orjson.loads(orjson.dumps(combined.as_dict()))) == whole
    # the same documents one at a time
    one = Digest(buckets, VALUES)
    for i, r, s in docs:
        one.add_doc(i, r, canonical_value(json.dumps(s).encode()))
    assert one == whole


@given(docs_with_keys.filter(lambda d: len(d) >= 3), st.sampled_from([1, 16, 1024]))
def test_diff_locates_missing_extra_and_changed(docs: list[tuple[str, str | None, dict[str, object]]],
                                               buckets: int) -> None:
    missing, changed, kept = docs[0], docs[1], docs[2:]
    extra = ("extra-doc", None, {"x": 1})
    source_docs = [missing, changed, *kept]
    target_docs = [(changed[0], changed[1], {**changed[2], "changed!": True}), *kept, extra]
    watch = frozenset(range(buckets))
    src = fold(decode_raw_answer(answer(source_docs)).hits.hits, buckets, VALUES, watch=watch)
    dst = fold(decode_raw_answer(answer(target_docs)).hits.hits, buckets, VALUES, watch=watch)
    buckets_differing = diff(src.digest, dst.digest)
    for i, r, _ in (missing, changed, extra):
        assert bucket_of(i, r, buckets) in buckets_differing
    found = {(d.kind, d.key) for d in differing_docs(src.docs, dst.docs)}
    assert found == {("missing", DocKey(missing[0], missing[1])), ("changed", DocKey(changed[0], changed[1])),
                     ("extra", DocKey("extra-doc"))}
    assert not diff(src.digest, src.digest.copy())


def test_differing_docs_are_limited() -> None:
    source = {DocKey(str(i)): i for i in range(50)}
    assert len(differing_docs(source, {}, limit=10)) == 10
    assert differing_docs(source, dict(source)) == []


def test_a_document_counted_twice_is_a_difference() -> None:
    once, twice = Digest(8), Digest(8)
    once.add_doc("a", None, {"x": 1})
    for _ in range(2):
        twice.add_doc("a", None, {"x": 1})
    assert diff(once, twice) == [bucket_of("a", None, 8)]


def test_answer_without_source_and_with_problems() -> None:
    raw = b'{"hits":{"hits":[{"_id":"a","_routing":"r"}]},"_shards":{"failed":1},"timed_out":false}'
    ans = decode_raw_answer(raw)
    assert ans.shards.failed == 1
    assert bytes(ans.hits.hits[0].source) == b"null" and ans.hits.hits[0].routing == "r"


def test_bytes_form_sees_spelling_values_form_does_not() -> None:
    a = decode_raw_answer(b'{"hits":{"hits":[{"_id":"1","_source":{"a":1,"b":2}}]}}').hits.hits
    b = decode_raw_answer(b'{"hits":{"hits":[{"_id":"1","_source":{"b":2.0,"a":1}}]}}').hits.hits
    assert diff(fold(a, 16, BYTES).digest, fold(b, 16, BYTES).digest) == [bucket_of("1", None, 16)]
    assert fold(a, 16, VALUES).digest == fold(b, 16, VALUES).digest
    one = Digest(16, BYTES)
    one.add_doc("1", None, b'{"a":1,"b":2}')
    assert one == fold(a, 16, BYTES).digest
    only = fold(a, 16, VALUES, only=frozenset({(bucket_of("1", None, 16) + 1) % 16}))
    assert only.rows == 0 and only.digest.count == 0
