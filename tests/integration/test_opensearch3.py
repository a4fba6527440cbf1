"""Every command against OpenSearch 3.x (make test starts it on OPENSEARCH3_PORT:
`make es-up ENGINE=opensearch OPENSEARCH_VERSION=3.9.0`).

Lucene 10, Java 21+. Unlike 2.x it names itself and its version on every answer (`X-OpenSearch-Version`), so
escli never needs `GET /` there, and from 3.3 on it sorts a point in time on `_shard_doc` with whole-shard
slices, so export reads it as it reads Elasticsearch (es/paging.py). The set itself: tests/support/engine_smoke.py.
"""

from __future__ import annotations

import pytest

from tests.support.engine_smoke import OPENSEARCH3, EngineSmoke

pytestmark = pytest.mark.opensearch3


class TestOpenSearch3(EngineSmoke):
    spec = OPENSEARCH3
