"""Which export columns hold arrays, learned before the run from a sample of the documents it will export.

The mapping types a field but cannot say whether its values are arrays (Elasticsearch indexes `"a"` and
`["a", "b"]` alike), and a Parquet file needs one schema before its first row group. So `export --format parquet`
looks first: one search with the export's own query, scored by a seeded `random_score` so that the SAMPLE_SIZE
hits are spread over every shard and segment (not the first documents of shard 0, as a plain `size` would give),
its `_source` cut to the columns that could still become lists (the scalar-typed ones). Any field that holds a
list in a sampled document becomes a list column. The seed is fixed: the same index gives the same schema.

Cost (products, 20,000 documents, 1 shard): one search of ~40-60 ms for 2,000 hits; on a 1M-document index the
random scoring visits every matching document (~1M cheap hashes per run) and the fetch stays 2,000 documents.
An array the sample missed still goes to --errors (exit 1), and the summary names the field to add with
--array-fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

SAMPLE_SIZE = 2000  # documents looked at before a Parquet export (--array-sample N; off to skip the look)
MAX_SAMPLE = 10_000  # index.max_result_window's default: one search answers at most this many hits
SEED = 36  # a fixed seed: the same documents, and so the same schema, every run on an unchanged index

Column = tuple[str, str, bool]  # name, kind, list (output/parquet.Column)


class _Searcher(Protocol):
    async def search(self, index: str | None, body: Mapping[str, Any] | bytes,
                     params: Mapping[str, str] | None = None, timeout: float | None = None) -> Any: ...


def parse_sample_size(text: str) -> int:
    """`--array-sample 5000` or `off` (also `0`, `none`): how many documents to look at, 0 for none."""
    from escli.errors import UsageError

    raw = text.strip().lower()
    if raw in ("off", "none", "no", "0"):
        return 0
    if raw.isascii() and raw.isdigit():
        return min(int(raw), MAX_SAMPLE)
    raise UsageError(f"--array-sample {text}: a number of documents (2000) or off")


def sample_body(query: Mapping[str, Any] | None, candidates: Sequence[str], size: int) -> dict[str, Any]:
    """The one search of the look: the export's query, randomly ordered (seeded), only the candidates' values."""
    return {"size": size, "track_total_hits": False, "_source": {"includes": list(candidates)},
            "query": {"function_score": {"query": dict(query) if query else {"match_all": {}},
                                         "random_score": {"seed": SEED, "field": "_seq_no"},
                                         "boost_mode": "replace"}}}


def arrays_in(sources: Iterable[Mapping[str, Any]], candidates: Iterable[str]) -> set[str]:
    """The candidate columns (dotted names) that hold a list in any of the `_source`s. An empty or one-element
    list counts: the field is written as an array, and the next document may hold two values."""
    wanted = set(candidates)
    found: set[str] = set()

    def walk(doc: Mapping[str, Any], prefix: str) -> None:
        for key, value in doc.items():
            name = prefix + key
            if name in wanted:
                if isinstance(value, list):
                    found.add(name)
            elif isinstance(value, Mapping):
                walk(value, name + ".")

    for src in sources:
        walk(src, "")
        if len(found) == len(wanted):
            break
    return found


async def sample_arrays(es: _Searcher, index: str, query: Mapping[str, Any] | None, candidates: Sequence[str],
                        size: int = SAMPLE_SIZE) -> tuple[set[str], int]:
    """The candidates that hold arrays in a sample of up to `size` documents matching `query` (one search), and
    how many documents the sample held."""
    if not candidates or size <= 0:
        return set(), 0
    answer = await es.search(index, sample_body(query, candidates, size))
    data = answer.json()
    hits = ((data.get("hits") or {}).get("hits") or []) if isinstance(data, dict) else []
    return arrays_in((h.get("_source") or {} for h in hits if isinstance(h, dict)), candidates), len(hits)


async def sampled_schema(es: _Searcher, index: str, query: Mapping[str, Any] | None,
                         build: Callable[[Sequence[str]], list[Column]], named: Sequence[str], size: int,
                         note: Callable[[str], None] = lambda s: None) -> list[Column]:
    """The Parquet columns: `build(array_fields)` with the fields named by the user (`named`) plus those the sample
    finds holding arrays among the columns still scalar (JSON columns hold any value already)."""
    schema = build(named)
    candidates = [n for n, kind, is_list in schema if not is_list and kind != "json" and n != "_id"]
    found, looked = await sample_arrays(es, index, query, candidates, size)
    if not found:
        return schema
    note(f"parquet: list columns from a sample of {looked} documents: {', '.join(sorted(found))}")
    return build([*named, *sorted(found)])
