"""What `escli verify` and `copy --verify` compare: a canonical hash per document and an order-independent digest
of many documents, combinable over slices, readers and partitions, split into buckets to locate a difference.

The document's value. A document is (`_id`, `_routing`, `_source`), the `_source` taken as JSON values, not bytes:
- objects: key order does not matter (keys are sorted by code point); a key repeated in one object keeps its
  last value (what the engines' parsers keep);
- numbers: an integer spelling (`1`, `-7`, `123456789012345678901234567890`) is its exact value at any size; a
  spelling with a fraction or an exponent (`1.0`, `1e0`, `1.00`, `0.1`) is read as a 64-bit double (what the
  engines index), and a double with no fraction is the integer of the same value. So 1, 1.0, 1e0 and 1.00 are one
  value, 1e20 equals 100000000000000000000, -0.0 equals 0, and 0.1 equals 0.10000000000000000555 (the same
  double); but 9007199254740993 (exact) differs from 9007199254740993.0 (the double 2^53). A literal beyond the
  double's range (1e400) keeps its exact decimal value;
- strings are compared exactly, after JSON unescaping (`"\\u00e9"` is `"é"`), with no Unicode normalization;
- arrays keep their order; `null` is a value: `{"a": null}` differs from `{}`; a document without `_source`
  (the mapping disables it) is a null source, so only its `_id` and `_routing` count;
- no `_routing` is not the same as any routing value.

Hashing: the canonical form is the compact JSON of `[_id, _routing, _source]` with sorted keys and the numbers
above, hashed with BLAKE2b to 128 bits (hashlib: C, in every Python). A document's bucket is a CRC-32 of its
`_id` and `_routing` alone, so a document changed in place stays in its bucket on both sides.

Two forms. Building every `_source` as Python values folds 30-90k docs/s of `products` pages on one core here
(2 shared cores, other work running), as slow as the copy it checks; hashing each `_source` as the bytes the
engine returns folds 100-200k docs/s, and the engines return a document's bytes as they were indexed, so a
faithful copy has the same bytes. So a first pass hashes BYTES, and only the buckets whose bytes differ are read
again and hashed as VALUES (core/verify.py): a bucket with equal bytes has equal values; one with different bytes
(keys reordered, numbers spelled otherwise) is decided by its values.

The digest: per bucket, the count of documents and the sum of their 128-bit hashes modulo 2^128. Sums commute,
so pages may arrive in any order and any number of readers or partitions are combined by adding their digests;
a document counted twice or missing changes both count and sum (XOR would let pairs cancel).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from hashlib import blake2b
from typing import Any

import msgspec

HASH_BITS = 128
MOD = 1 << HASH_BITS
MASK = MOD - 1
DEFAULT_BUCKETS = 4096
DIGEST_VERSION = 1
BYTES, VALUES = "bytes", "values"  # what a digest hashed of each `_source`: its bytes as returned, or its value


def _number(text: str) -> int | float | Decimal:
    """A JSON number with a fraction or exponent (msgspec's float_hook; integer spellings never come here)."""
    value = float(text)
    if value.is_integer():
        return int(value)  # 1.0, 1e0, 1.00, -0.0 -> the integer; exact (a double's integer value is exact)
    if value != value or value in (float("inf"), float("-inf")):
        return Decimal(text).normalize()  # beyond the double's range: keep the exact decimal (written as a number)
    return value


_DECODE_VALUE = msgspec.json.Decoder(float_hook=_number)
_ENCODE = msgspec.json.Encoder(order="sorted", decimal_format="number")


class _RawHit(msgspec.Struct, rename={"id": "_id", "routing": "_routing", "source": "_source"}):
    id: str
    routing: str | None = None
    source: msgspec.Raw = msgspec.Raw(b"null")
    sort: list[Any] | None = None


class _RawHits(msgspec.Struct):
    hits: list[_RawHit] = msgspec.field(default_factory=list)


class _Shards(msgspec.Struct):
    failed: int = 0


class RawAnswer(msgspec.Struct, rename={"scroll_id": "_scroll_id", "shards": "_shards"}):
    """A search answer with each hit's `_source` as its bytes (the fast first pass)."""

    hits: _RawHits = msgspec.field(default_factory=_RawHits)
    pit_id: str | None = None
    scroll_id: str | None = None
    timed_out: bool = False
    shards: _Shards = msgspec.field(default_factory=_Shards)


_DECODE_RAW = msgspec.json.Decoder(RawAnswer)


def decode_raw_answer(raw: bytes) -> RawAnswer:
    """Raises msgspec.DecodeError for an answer of another shape."""
    return _DECODE_RAW.decode(raw)


def canonical_value(raw: bytes) -> Any:
    """A JSON text as the digest's values (for tests, and documents that did not come in a search answer)."""
    return _DECODE_VALUE.decode(raw)


def canonical(doc_id: str, routing: str | None, source: Any) -> bytes:
    """The canonical bytes of a document whose `source` was decoded by this module (numbers already canonical).
    Plain Python values work too when their floats are canonical already (see `normalize`)."""
    return _ENCODE.encode((doc_id, routing, source))


def normalize(value: Any) -> Any:
    """Values built in Python (not decoded here) with the digest's numbers: floats with no fraction -> int."""
    if isinstance(value, float):
        return _number(repr(value))
    if isinstance(value, Mapping):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    return value


def doc_hash(doc_id: str, routing: str | None, source: Any) -> int:
    return int.from_bytes(blake2b(canonical(doc_id, routing, source), digest_size=16).digest(), "little")


def bucket_of(doc_id: str, routing: str | None, buckets: int) -> int:
    return zlib.crc32(_ENCODE.encode((doc_id, routing))) % buckets


def raw_hash(doc_id: str, routing: str | None, source: bytes) -> int:
    """The BYTES form's hash: the `_source` bytes as the engine returned them."""
    return int.from_bytes(blake2b(_ENCODE.encode((doc_id, routing)) + bytes(source), digest_size=16).digest(),
                          "little")


@dataclass(frozen=True)
class DocKey:
    id: str
    routing: str | None = None

    def __str__(self) -> str:
        return self.id if self.routing is None else f"{self.id} (routing {self.routing})"


@dataclass
class Digest:
    """Counts and sums mod 2^128 of document hashes, per bucket. Empty buckets are left out."""

    buckets: int = DEFAULT_BUCKETS
    form: str = VALUES
    counts: dict[int, int] = field(default_factory=dict)
    sums: dict[int, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    @property
    def total(self) -> int:
        """The sum over all buckets: the digest of the whole, whatever the bucket count."""
        return sum(self.sums.values()) & MASK

    def add(self, bucket: int, h: int) -> None:
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        self.sums[bucket] = (self.sums.get(bucket, 0) + h) & MASK

    def add_doc(self, doc_id: str, routing: str | None, source: Any) -> None:
        """A document whose `source` is its bytes (BYTES) or its value as decoded by this module (VALUES)."""
        h = raw_hash(doc_id, routing, source) if self.form == BYTES else doc_hash(doc_id, routing, source)
        self.add(bucket_of(doc_id, routing, self.buckets), h)

    def merge(self, other: Digest) -> None:
        """Add `other` into this digest (in place)."""
        _comparable(self, other)
        counts, sums = self.counts, self.sums
        for b, n in other.counts.items():
            counts[b] = counts.get(b, 0) + n
            sums[b] = (sums.get(b, 0) + other.sums.get(b, 0)) & MASK

    def copy(self) -> Digest:
        return Digest(self.buckets, self.form, dict(self.counts), dict(self.sums))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return self.buckets == other.buckets and self.form == other.form and not diff(self, other)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (sums as hex: a JSON number above 2^53 is not safe everywhere)."""
        return {"version": DIGEST_VERSION, "buckets": self.buckets, "form": self.form, "count": self.count,
                "total": f"{self.total:032x}",
                "counts": {str(b): n for b, n in sorted(self.counts.items())},
                "sums": {str(b): f"{s:032x}" for b, s in sorted(self.sums.items())}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Digest:
        if d.get("version") != DIGEST_VERSION:
            raise ValueError(f"not a digest of version {DIGEST_VERSION}")
        return cls(int(d["buckets"]), str(d.get("form", VALUES)), {int(b): int(n) for b, n in d["counts"].items()},
                   {int(b): int(s, 16) for b, s in d["sums"].items()})


def _comparable(a: Digest, b: Digest) -> None:
    if a.buckets != b.buckets or a.form != b.form:
        raise ValueError(f"a digest of {a.buckets} buckets ({a.form}) and one of {b.buckets} ({b.form}) do not "
                         "combine")


def combine(digests: Iterable[Digest]) -> Digest:
    """The digest of the union of the documents the digests saw (slices, readers, partitions): order-free."""
    out: Digest | None = None
    for d in digests:
        if out is None:
            out = Digest(d.buckets, d.form)
        out.merge(d)
    return out if out is not None else Digest()


def diff(a: Digest, b: Digest) -> list[int]:
    """The buckets whose count or sum differ, in bucket order."""
    _comparable(a, b)
    keys = set(a.counts) | set(b.counts)
    return sorted(k for k in keys
                  if a.counts.get(k, 0) != b.counts.get(k, 0) or a.sums.get(k, 0) != b.sums.get(k, 0))


# --- folding search answers -----------------------------------------------------------------------------------

@dataclass
class Fold:
    """One page's (or one unit's) share: its digest, and the documents of the watched buckets, hash by key."""

    digest: Digest
    docs: dict[DocKey, int] = field(default_factory=dict)
    rows: int = 0

    def merge(self, other: Fold) -> None:
        self.digest.merge(other.digest)
        self.docs.update(other.docs)
        self.rows += other.rows


def fold(hits: Sequence[_RawHit], buckets: int, form: str = BYTES, only: frozenset[int] | None = None,
         watch: frozenset[int] = frozenset()) -> Fold:
    """Hash the hits of one page into a new Fold.

    `form` BYTES hashes each `_source` as its bytes (the first pass: no document is built); VALUES hashes its
    canonical value (decoded here). `only`: the buckets to hash (others are skipped before any decoding);
    `watch`: the buckets whose documents' hashes are kept by key (to name the documents that differ)."""
    d = Digest(buckets, form)
    counts, sums = d.counts, d.sums
    docs: dict[DocKey, int] = {}
    encode, crc, decode = _ENCODE.encode, zlib.crc32, _DECODE_VALUE.decode
    values = form == VALUES
    n = 0
    for h in hits:
        doc_id, routing = h.id, h.routing
        key = encode((doc_id, routing))
        b = crc(key) % buckets
        if only is not None and b not in only:
            continue
        n += 1
        if values:
            hashed = blake2b(encode((doc_id, routing, decode(h.source))), digest_size=16)
        else:
            hashed = blake2b(key, digest_size=16)
            hashed.update(h.source)  # type: ignore[arg-type]  # msgspec.Raw is a buffer
        value = int.from_bytes(hashed.digest(), "little")
        counts[b] = counts.get(b, 0) + 1
        sums[b] = sums.get(b, 0) + value  # reduced once per page, below: a page adds ~10 bits at most
        if b in watch:
            docs[DocKey(doc_id, routing)] = value
    for b in sums:
        sums[b] &= MASK
    return Fold(d, docs, n)


def fold_answer(raw: bytes, buckets: int = DEFAULT_BUCKETS) -> Digest:
    """A search answer's hits as a BYTES digest: what a copy folds from each page it sends, for verify_copy's
    `source_digests` (the copy then adds the pages' digests, leaving out a unit it reads again)."""
    return fold(decode_raw_answer(raw).hits.hits, buckets, BYTES).digest


@dataclass(frozen=True)
class Difference:
    kind: str  # "missing" (on the source only) | "extra" (on the target only) | "changed"
    key: DocKey

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "_id": self.key.id, "_routing": self.key.routing}


def differing_docs(source: Mapping[DocKey, int], target: Mapping[DocKey, int],
                   limit: int = 10) -> list[Difference]:
    """Up to `limit` documents that differ between two sides' per-document hashes, in a stable order."""
    return list(_differences(source, target, limit))


def _differences(source: Mapping[DocKey, int], target: Mapping[DocKey, int], limit: int) -> Iterator[Difference]:
    def order(k: DocKey) -> tuple[str, str]:
        return k.id, k.routing or ""

    found = 0
    for key in sorted(set(source) | set(target), key=order):
        if found >= limit:
            return
        if key not in target:
            yield Difference("missing", key)
        elif key not in source:
            yield Difference("extra", key)
        elif source[key] != target[key]:
            yield Difference("changed", key)
        else:
            continue
        found += 1
