"""Which product answers at a cluster identity, remembered beside the cache so that a hit needs no request.

    product = remembered_product(settings)         # "elasticsearch", "opensearch" or None (never asked yet)
    key = cache_key(product_identity(settings.identity, product), index, body, params)
    remember_product(settings, "opensearch")       # after an answer told it

Cache keys include the product: the same URL (a localhost port, a load balancer name) can serve Elasticsearch
one day and OpenSearch the next, and their answers differ in shape, so an entry stored from one must never be
served for the other. A hit is served before any request, so the product it is keyed by comes from this memo:
`products.json` in the cache directory, one line per identity (cluster name or URLs, and user; never a secret),
written when a request first learns the product or sees it change. Without a memo there is nothing to hit yet:
the first search asks the server (one `GET /` on OpenSearch, nothing extra on Elasticsearch, whose answers say
`X-Elastic-Product`), stores the answer and the memo. Each later miss checks the memo against the answer and
rewrites it if the product changed; entries stored under the old product are then simply never hit again.
With no memo (a fresh machine that shares a Redis level, a removed cache directory), `escli search` looks the
key up under each product: an entry keyed by a product was stored from that product's answer.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import orjson

from escli.files import write_private

if TYPE_CHECKING:
    from escli.settings import Settings

MEMO_NAME = "products.json"
PRODUCTS = ("elasticsearch", "opensearch")


def product_identity(identity: str, product: str) -> str:
    """The identity cache keys are made from: the cluster, the user and the product."""
    return f"{identity}|{product}"


def _read(settings: Settings) -> dict[str, str]:
    try:
        data = orjson.loads((settings.cache_dir / MEMO_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}  # no memo yet, or a damaged one: the next request rewrites it
    return {str(k): str(v) for k, v in data.items() if v in PRODUCTS} if isinstance(data, dict) else {}


def remembered_product(settings: Settings) -> str | None:
    return _read(settings).get(settings.identity)


def remember_product(settings: Settings, product: str) -> None:
    """Record the product for this identity (no write when it is already recorded). Never fails a command."""
    memo = _read(settings)
    if memo.get(settings.identity) == product:
        return
    memo[settings.identity] = product
    path = settings.cache_dir / MEMO_NAME
    with contextlib.suppress(OSError):
        settings.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # readers see the old memo or the new one, never half of one
        write_private(path, orjson.dumps(memo, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
