"""How export orders documents, per product, so that a position read in one point in time means the same in another.

    order = page_order(await es.product())
    sort = [*user_sort, *order.tiebreak]
    after = order.stable_after(last_hit["sort"])   # where a slice continues in a new PIT (expired, node lost)

Elasticsearch: the tiebreak is `_seq_no` then `_shard_doc` ((shard << 32) | Lucene doc id), which is total inside
one PIT and cheap (no field data); doc ids change between PITs, so a position moves to "this seq_no, this shard,
any doc id" (`_seq_no` is unique within a shard for live documents), which skips exactly what was read.

OpenSearch 3.3 and later take `_shard_doc` as Elasticsearch does (opensearch-project/OpenSearch#18924), and a slice
without a field on a PIT picks whole shards there too: checked by hand on 3.9.0 (three shards, `slice {id: s,
max: 3}` gave exactly shard s's documents, `_shard_doc` = (s << 32) | doc), so they get Elasticsearch's order.
The version comes with every 3.x answer (`X-OpenSearch-Version`, es/api.py); when it is unknown, the order below.

OpenSearch 2.x has no `_shard_doc` (the sort is refused) and refuses `preference` on a PIT search, so no shard can
be named in the order. The tiebreak is `_index` then `_id` instead: ids are unique within an index, so the order is
total, and it does not depend on the PIT at all, so a position is already stable (`stable_after` is the identity).
Its price: sorting on `_id` loads the ids' field data on the heap (about 9 bytes a document on 2.19, counted by
the fielddata circuit breaker). Checked by hand on 2.19.6: a PIT search with `slice: {field: _seq_no}` and this
sort pages correctly; `POST /INDEX/_search/point_in_time` answers `pit_id`, searches return it as `pit_id` too.

Export (core/export.py) is to take its tiebreak and resume position from here once it reads through `Es`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from escli.es.api import OPENSEARCH, ProductInfo

DOC_BITS = 0x7FFFFFFF  # the largest Lucene doc id: "after every document of this shard with this seq_no"
SHARD_MASK = ~0xFFFFFFFF


def shard_doc_stable_after(after: Sequence[Any]) -> list[Any]:
    """An Elasticsearch position (last value `_shard_doc`) made valid in any PIT of the same data."""
    values = list(after)
    values[-1] = (int(values[-1]) & SHARD_MASK) | DOC_BITS
    return values


def _same(after: Sequence[Any]) -> list[Any]:
    return list(after)


@dataclass(frozen=True)
class PageOrder:
    tiebreak: tuple[dict[str, str], ...]  # appended to the user's sort
    stable_after: Callable[[Sequence[Any]], list[Any]]

    @property
    def sort(self) -> list[dict[str, str]]:
        return [dict(item) for item in self.tiebreak]


ELASTICSEARCH_ORDER = PageOrder(({"_seq_no": "asc"}, {"_shard_doc": "asc"}), shard_doc_stable_after)
OPENSEARCH_ORDER = PageOrder(({"_index": "asc"}, {"_id": "asc"}), _same)


SHARD_DOC_SINCE = {OPENSEARCH: (3, 3)}  # the first version of a product whose PIT sorts on `_shard_doc`


def page_order(product: ProductInfo | str) -> PageOrder:
    info = ProductInfo(product) if isinstance(product, str) else product
    since = SHARD_DOC_SINCE.get(info.name)
    if since is None or info.at_least(*since):
        return ELASTICSEARCH_ORDER
    return OPENSEARCH_ORDER
