"""Every command against OpenSearch 2.x (`ENGINE=opensearch scripts/es.sh up`; make test starts it).

The same commands and output shapes as on Elasticsearch; what differs (no product header, so one `GET /`; the
point-in-time endpoints; no `_shard_doc`, so export pages by `_index, _id`) is es/api.py's and es/paging.py's
business. The set itself, shared with 7.17 and 3.x: tests/support/engine_smoke.py.
"""

from __future__ import annotations

import pytest

from tests.support.engine_smoke import OPENSEARCH2, EngineSmoke

pytestmark = pytest.mark.opensearch


class TestOpenSearch2(EngineSmoke):
    spec = OPENSEARCH2
