"""es/paging.py: the export order per product (pure; the behaviour on real engines is in test_export*.py and
test_opensearch.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from escli.es.api import ELASTICSEARCH, OPENSEARCH, ProductInfo, product_from_headers
from escli.es.paging import DOC_BITS, ELASTICSEARCH_ORDER, OPENSEARCH_ORDER, page_order


def test_each_product_gets_its_order() -> None:
    assert page_order(ProductInfo(ELASTICSEARCH, "9.5.4")) is ELASTICSEARCH_ORDER
    assert page_order(ProductInfo(ELASTICSEARCH, "7.17.29")) is ELASTICSEARCH_ORDER
    assert page_order(ProductInfo(ELASTICSEARCH)) is ELASTICSEARCH_ORDER
    assert page_order(ProductInfo(OPENSEARCH, "2.19.6")) is OPENSEARCH_ORDER
    # OpenSearch sorts a PIT on `_shard_doc` from 3.3 on; an unknown version keeps the order every version takes
    assert page_order(ProductInfo(OPENSEARCH, "3.2.0")) is OPENSEARCH_ORDER
    assert page_order(ProductInfo(OPENSEARCH, "3.3.0")) is ELASTICSEARCH_ORDER
    assert page_order(ProductInfo(OPENSEARCH, "3.9.0")) is ELASTICSEARCH_ORDER
    assert page_order(ProductInfo(OPENSEARCH, "10.0.0-alpha1")) is ELASTICSEARCH_ORDER
    assert page_order(ProductInfo(OPENSEARCH)) is OPENSEARCH_ORDER
    assert page_order(ProductInfo(OPENSEARCH, "x.y")) is OPENSEARCH_ORDER
    assert page_order(OPENSEARCH).sort == [{"_index": "asc"}, {"_id": "asc"}]
    assert "_shard_doc" not in str(OPENSEARCH_ORDER.sort)  # OpenSearch 2.x refuses to sort on it
    assert page_order(ELASTICSEARCH).sort == [{"_seq_no": "asc"}, {"_shard_doc": "asc"}]


@given(st.integers(0, 2**31 - 1), st.integers(0, 1000), st.integers(0, DOC_BITS))
def test_an_elasticsearch_position_keeps_shard_and_seq_no(seq_no: int, shard: int, doc: int) -> None:
    after = ELASTICSEARCH_ORDER.stable_after(["x", seq_no, (shard << 32) | doc])
    assert after[:2] == ["x", seq_no] and after[2] >> 32 == shard and after[2] & 0xFFFFFFFF == DOC_BITS


def test_an_opensearch_position_is_already_stable() -> None:
    assert OPENSEARCH_ORDER.stable_after([3.5, "products", "p0001"]) == [3.5, "products", "p0001"]


def test_the_product_from_an_answers_headers() -> None:
    assert product_from_headers({"x-elastic-product": "Elasticsearch"}) == ProductInfo(ELASTICSEARCH)
    assert product_from_headers({"x-opensearch-version": "OpenSearch/3.9.0 (opensearch)"}) == \
        ProductInfo(OPENSEARCH, "3.9.0")
    assert product_from_headers({"x-opensearch-version": "OpenSearch/"}) == ProductInfo(OPENSEARCH)
    assert product_from_headers({"x-opensearch-version": "Other/1.0"}) is None
    assert product_from_headers({}) is None  # OpenSearch 2.x, or a proxy's own answer
