"""es/paging.py: the export order per product (pure; the behaviour on real engines is in test_export*.py and
test_opensearch.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from escli.es.api import ELASTICSEARCH, OPENSEARCH, ProductInfo
from escli.es.paging import DOC_BITS, ELASTICSEARCH_ORDER, OPENSEARCH_ORDER, page_order


def test_each_product_gets_its_order() -> None:
    assert page_order(ProductInfo(ELASTICSEARCH, "9.5.4")) is ELASTICSEARCH_ORDER
    assert page_order(ProductInfo(OPENSEARCH, "2.19.6")) is OPENSEARCH_ORDER
    assert page_order(OPENSEARCH).sort == [{"_index": "asc"}, {"_id": "asc"}]
    assert "_shard_doc" not in str(OPENSEARCH_ORDER.sort)  # OpenSearch 2.x refuses to sort on it
    assert page_order(ELASTICSEARCH).sort == [{"_seq_no": "asc"}, {"_shard_doc": "asc"}]


@given(st.integers(0, 2**31 - 1), st.integers(0, 1000), st.integers(0, DOC_BITS))
def test_an_elasticsearch_position_keeps_shard_and_seq_no(seq_no: int, shard: int, doc: int) -> None:
    after = ELASTICSEARCH_ORDER.stable_after(["x", seq_no, (shard << 32) | doc])
    assert after[:2] == ["x", seq_no] and after[2] >> 32 == shard and after[2] & 0xFFFFFFFF == DOC_BITS


def test_an_opensearch_position_is_already_stable() -> None:
    assert OPENSEARCH_ORDER.stable_after([3.5, "products", "p0001"]) == [3.5, "products", "p0001"]
