"""Every command against Elasticsearch 7.17 (make test starts it on ES7_PORT: `make es-up ES_VERSION=7.17.29`).

The last 7.x, which people copy their indices off (a 9.x node cannot open them). Its test build has `GET /`, the
point in time and `_shard_doc` (x-pack-core is in it), no data streams (`GET /_data_stream/X` answers 405), and
`_type: _doc` on hits; es/api.py and es/paging.py hold those facts. The set itself: tests/support/engine_smoke.py.
"""

from __future__ import annotations

import pytest

from tests.support.engine_smoke import ES7, EngineSmoke

pytestmark = pytest.mark.es7


class TestElasticsearch7(EngineSmoke):
    spec = ES7
