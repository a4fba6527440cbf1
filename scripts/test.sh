#!/usr/bin/env bash
# Everything the tests need, then the whole suite against real Elasticsearch:
#   9.x single node on 9200 (main engine, sample data), 8.x on 9250 (compatibility smoke set),
#   9.x secured with TLS on 9210 (credentials), OpenSearch 2.19 on 9230 (OpenSearch smoke set), a second 9.x on
#   9260 (another cluster, for several-cluster tests), Elasticsearch 7.17 on 9270 and OpenSearch 3.x on 9280 (the
#   engines people migrate between: their smoke sets and the copy tests).
#   The three-node and engine-script tests start their own.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
ES8_VERSION=${ES8_VERSION:-8.19.21}
ES7_VERSION=${ES7_VERSION:-7.17.29}
OPENSEARCH3_VERSION=${OPENSEARCH3_VERSION:-3.9.0}
# Ports can be moved (e.g. to run a second copy of the suite beside a running one).
MAIN_PORT=${MAIN_PORT:-9200}
ES8_PORT=${ES8_PORT:-9250}
SECURE_PORT=${SECURE_PORT:-9210}
OPENSEARCH_PORT=${OPENSEARCH_PORT:-9230}
OTHER_PORT=${OTHER_PORT:-9260}
ES7_PORT=${ES7_PORT:-9270}
OPENSEARCH3_PORT=${OPENSEARCH3_PORT:-9280}
REDIS_PORT=${REDIS_PORT:-6379}
scripts/test-deps.sh  # promtool and chromium for the output checks
ES_PORT=$MAIN_PORT scripts/es.sh up >/dev/null
ES_VERSION=$ES8_VERSION ES_PORT=$ES8_PORT ES_HEAP=512m scripts/es.sh up >/dev/null
SECURE=1 TLS=1 ES_PORT=$SECURE_PORT ES_HEAP=512m scripts/es.sh up >/dev/null
ENGINE=opensearch ES_PORT=$OPENSEARCH_PORT ES_HEAP=512m scripts/es.sh up >/dev/null
ES_PORT=$OTHER_PORT ES_HEAP=512m scripts/es.sh up >/dev/null
ES_VERSION=$ES7_VERSION ES_PORT=$ES7_PORT ES_HEAP=512m scripts/es.sh up >/dev/null
ENGINE=opensearch OPENSEARCH_VERSION=$OPENSEARCH3_VERSION ES_PORT=$OPENSEARCH3_PORT ES_HEAP=512m scripts/es.sh up >/dev/null
export ESCLI_TEST_URL=http://127.0.0.1:$MAIN_PORT
export ESCLI_TEST_ES8_URL=http://127.0.0.1:$ES8_PORT
export ESCLI_TEST_SECURE_URL=https://127.0.0.1:$SECURE_PORT
export ESCLI_TEST_SECURE_DIR=$(ES_PORT=$SECURE_PORT scripts/es.sh rundir)
export ESCLI_TEST_ES8_VERSION=$ES8_VERSION
export ESCLI_TEST_OPENSEARCH_URL=http://127.0.0.1:$OPENSEARCH_PORT
export ESCLI_TEST_OTHER_URL=http://127.0.0.1:$OTHER_PORT
export ESCLI_TEST_ES7_URL=http://127.0.0.1:$ES7_PORT
export ESCLI_TEST_OPENSEARCH3_URL=http://127.0.0.1:$OPENSEARCH3_PORT
# the shared cache level's tests (tests/integration/test_cache_levels.py)
REDIS_PORT=$REDIS_PORT scripts/redis.sh up
export ESCLI_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
ES_URL=$ESCLI_TEST_URL DOCS=${DOCS:-20000} scripts/sample_data.sh
set +e
# Not a time limit on any test: a guard so that a hung run ends with pytest's own report (SIGINT) well inside
# CI's budget, instead of being killed silently. The whole suite takes about 6 minutes here.
timeout --signal=INT --kill-after=60s "${TEST_GUARD:-45m}" $BIN/python -m pytest "$@"
rc=$?
[ $rc = 124 ] && echo "test run stopped by the ${TEST_GUARD:-45m} guard: something hung" >&2
set -e
[ $rc = 5 ] && { echo "pytest collected no tests" >&2; exit 1; }
exit $rc
