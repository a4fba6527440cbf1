"""Search through the cache levels: the one path `escli search`, `batch` and `warm-cache` read and fill it by.

    from escli.cache import DEFAULT_TTL, open_cache
    from escli.core.search import search_with_cache

    cache = open_cache(settings)
    identity = await cache_identity(client, settings)   # cluster, user and product (cache/product.py)
    outcome = await search_with_cache(client, cache, identity, "products", body, params, DEFAULT_TTL)
    outcome.response      # the Elasticsearch response, a dict
    outcome.cache_hit     # True when it came from the cache (no request was made)
    outcome.key           # the cache key (None when the cache is off)
    outcome.expires_at    # epoch seconds the cached entry expires at (None when nothing is cached)
    outcome.status        # "hit-memory", "hit-disk", "hit-shared", "miss", "stored" or "bypass" (SearchOutcome)

`search_with_cache(client, cache, identity, index, body, params, ttl, *, force=False, refresh=False,
defer_store=False) -> SearchOutcome`:
- a fresh entry is returned without a request, unless `refresh` (warm-cache --refresh-ahead: ask again, store);
- a search that `cache_bypass_reason` rejects (`now` date math, per-user preference or routing, ...) is neither
  read from nor written to the cache unless `force`; `outcome.bypass_reason` says why;
- otherwise the response is stored for `ttl` seconds, tagged with the index (for `escli cache clear --index`).
  With `defer_store=True` nothing is written: call `store(cache, outcome, ttl)` once the result is out, to keep
  the cache write (diskcache's p99 is in ms) off the latency path.
Errors are escli's (RefusedError, UnreachableError, raised by the transport, which has already retried them by
the one policy of es/retry.py): nothing is retried here.

`lookup(cache, identity, index, body, params, *, force=False) -> SearchOutcome | None` is the read half, usable
before any client exists: this module does not import elasticsearch, so a hit costs no client import at all.
`es_search(es, index, body, params, request_timeout=None)` is the bare request (POST /INDEX/_search); it keeps
the answer's bytes, so caching it costs no second encoding.
Nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from escli.cache import Cache, CacheEntry, cache_bypass_reason, cache_key
from escli.es.queries import param_text

if TYPE_CHECKING:
    from escli.es.api import Es
    from escli.es.query_builder import BuiltSearch
    from escli.settings import Settings
    from escli.ui import UI

CACHE_OFF = "the cache is off (--no-cache)"
FANOUT_FAILED = "a cluster of the fan-out failed"


def bypass_note(reason: str | None) -> str:
    """The -v line of a search the cache left alone; `--cache` is advised only where it would change that (a
    `now` range, a custom preference), not when the user turned the cache off or a fan-out lost a cluster."""
    advice = "" if reason in (CACHE_OFF, FANOUT_FAILED) else " (--cache to cache it anyway)"
    return f"cache bypass: {reason}{advice}"


@dataclass(frozen=True)
class SearchOutcome:
    """One search's result and how the cache took part.

    status: "hit-memory", "hit-disk" or "hit-shared" (served from that cache level), "stored" (asked
    Elasticsearch and cached the answer; with defer_store, "miss" until `store` is called), "bypass" (not
    cacheable, or the cache is off: see bypass_reason). `meta()` reports "stored" as "miss": the answer came from
    Elasticsearch.
    """

    response: dict[str, Any]
    cache_hit: bool
    key: str | None
    expires_at: float | None
    stored_at: float | None = None
    status: str = "miss"
    bypass_reason: str | None = None
    latency_ms: float | None = None  # round trip to Elasticsearch; None on a hit
    index: str = ""
    raw: bytes | None = None  # the response as JSON bytes, as the cache holds it
    # Several clusters: who answered ({"cluster": "a"}), or a fan-out's {"strategy", "clusters", "failed"}
    routing: dict[str, Any] | None = None

    @property
    def failed_clusters(self) -> list[str]:
        return list((self.routing or {}).get("failed") or [])

    def meta(self, now: float | None = None) -> dict[str, Any]:
        """The `_escli` block of json output."""
        now = time.time() if now is None else now
        out: dict[str, Any] = {"cache": "miss" if self.status == "stored" else self.status}
        if self.key is not None:
            out["key"] = self.key
        if self.stored_at is not None:
            out["stored_at"] = round(self.stored_at, 3)
            out["age_s"] = round(max(0.0, now - self.stored_at), 3)
        if self.expires_at is not None:
            out["expires_at"] = round(self.expires_at, 3)
            out["expires_in_s"] = round(max(0.0, self.expires_at - now), 3)
        if self.bypass_reason is not None:
            out["bypass_reason"] = self.bypass_reason
        if self.latency_ms is not None:
            out["latency_ms"] = round(self.latency_ms, 3)
        if self.routing:
            out.update(self.routing)
        return out


@dataclass(frozen=True)
class CachePlan:
    key: str | None
    bypass_reason: str | None  # set when the cache must be skipped
    enabled: bool

    @property
    def usable(self) -> bool:
        return self.enabled and self.key is not None and self.bypass_reason is None


def plan(cache: Cache, identity: str, index: str, body: Mapping[str, Any], params: Mapping[str, Any], *,
         force: bool = False) -> CachePlan:
    if not cache.enabled:
        return CachePlan(None, None, False)
    reason = None if force else cache_bypass_reason(body, params)
    return CachePlan(cache_key(identity, index, body, params), reason, True)


def _from_entry(entry: CacheEntry, key: str, index: str, cache: Cache) -> SearchOutcome | None:
    try:
        response = orjson.loads(entry.value)
    except orjson.JSONDecodeError as exc:
        discard = getattr(cache, "discard", None)
        if discard is not None:
            discard(key, f"invalid JSON: {exc.msg}")
        else:
            cache.delete(key)
        return None
    if not isinstance(response, dict):
        cache.delete(key)
        return None
    return SearchOutcome(response=response, cache_hit=True, key=key, expires_at=entry.expires_at,
                         stored_at=entry.stored_at, status=f"hit-{entry.level}", index=index, raw=entry.value)


def lookup(cache: Cache, identity: str, index: str, body: Mapping[str, Any], params: Mapping[str, Any], *,
           force: bool = False) -> SearchOutcome | None:
    """A fresh cached response, or None (also when the search must bypass the cache). No client needed."""
    p = plan(cache, identity, index, body, params, force=force)
    if not p.usable or p.key is None:
        return None
    entry = cache.get(p.key)
    return None if entry is None else _from_entry(entry, p.key, index, cache)


async def es_search(es: Es, index: str, body: Mapping[str, Any], params: Mapping[str, Any],
                    request_timeout: float | None = None) -> tuple[dict[str, Any], bytes]:
    """POST /INDEX/_search with the body and URL parameters as given: (parsed answer, its bytes)."""
    result, raw, _ = await routed_search(es, index, body, params, request_timeout)
    return result, raw


async def routed_search(es: Es, index: str, body: Mapping[str, Any], params: Mapping[str, Any],
                        request_timeout: float | None = None) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """es_search plus what the `_escli` block says about several clusters: who answered, or (fan-out) each
    cluster's took, total and error. One cluster: an empty dict."""
    from escli.strategies import FAN_OUT

    text_params = {k: param_text(v) for k, v in params.items()} or None
    from escli.es.routing import CLUSTER_HEADER, RoutedTransport

    routed = es.transport if isinstance(es.transport, RoutedTransport) else None
    if routed is not None and routed.strategy == FAN_OUT:
        from escli.core.fanout import fan_out_search
        from escli.es.target import index_path

        fan = await fan_out_search(routed, index_path(index, "_search"), body, text_params, request_timeout,
                                   on_answer=es.learn)
        raw = orjson.dumps(fan.response)
        return fan.response, raw, {"strategy": FAN_OUT, "clusters": fan.clusters, "failed": fan.failed}
    from escli.es.answers import SEARCH, parsed

    resp = await es.search(index, dict(body), text_params, timeout=request_timeout)
    result: dict[str, Any] = parsed(resp.status, resp.body, resp.url, SEARCH)
    who = resp.headers.get(CLUSTER_HEADER)
    return result, resp.body, ({"cluster": who, "strategy": routed.strategy} if routed is not None and who else {})


async def cache_identity(es: Es, settings: Settings) -> str:
    """The identity to key entries by when filling the cache for many searches (warm-cache): the product is
    asked once (free on Elasticsearch once an answer came, else `GET /`) and remembered for later lookups."""
    from escli.cache.product import product_identity, remember_product

    product = (await es.product()).name
    remember_product(settings, product)
    return product_identity(settings.identity, product)


def rekey(outcome: SearchOutcome, identity: str, body: Mapping[str, Any], params: Mapping[str, Any]) -> SearchOutcome:
    """A deferred outcome keyed under another identity (the product learnt from the answer: cache/product.py)."""
    if outcome.key is None or outcome.status != "miss":
        return outcome
    return replace(outcome, key=cache_key(identity, outcome.index, body, params))


def store(cache: Cache, outcome: SearchOutcome, ttl: float) -> SearchOutcome:
    """Write a deferred outcome to the cache (no-op unless it came from Elasticsearch and may be cached)."""
    if outcome.cache_hit or outcome.key is None or outcome.status not in ("miss", "stored"):
        return outcome
    raw = outcome.raw if outcome.raw is not None else orjson.dumps(outcome.response)
    now = time.time()
    cache.set(outcome.key, raw, ttl, outcome.index)
    return replace(outcome, status="stored", stored_at=now, expires_at=now + ttl, raw=raw)


async def search_with_cache(client: Es, cache: Cache, identity: str, index: str,
                            body: Mapping[str, Any], params: Mapping[str, Any], ttl: float, *, force: bool = False,
                            refresh: bool = False, defer_store: bool = False,
                            request_timeout: float | None = None) -> SearchOutcome:
    """Serve from the cache when fresh (unless refresh), else ask Elasticsearch and cache the answer."""
    p = plan(cache, identity, index, body, params, force=force)
    if p.usable and p.key is not None and not refresh:
        entry = cache.get(p.key)
        if entry is not None:
            hit = _from_entry(entry, p.key, index, cache)
            if hit is not None:
                return hit
    started = time.perf_counter()
    response, raw, routing = await routed_search(client, index, body, params, request_timeout)
    latency_ms = (time.perf_counter() - started) * 1000.0
    if not p.enabled:
        return SearchOutcome(response, False, None, None, status="bypass", bypass_reason=CACHE_OFF,
                             latency_ms=latency_ms, index=index, raw=raw, routing=routing or None)
    if routing.get("failed"):  # a fan-out missing a cluster's hits is not the answer to keep
        return SearchOutcome(response, False, p.key, None, status="bypass", latency_ms=latency_ms, index=index,
                             bypass_reason=FANOUT_FAILED, raw=raw, routing=routing)
    if not p.usable:
        return SearchOutcome(response, False, p.key, None, status="bypass", bypass_reason=p.bypass_reason,
                             latency_ms=latency_ms, index=index, raw=raw, routing=routing or None)
    outcome = SearchOutcome(response, False, p.key, None, status="miss", latency_ms=latency_ms, index=index,
                            raw=raw, routing=routing or None)
    return outcome if defer_store else store(cache, outcome, ttl)


class Memo:
    """The cache as commands that run many searches use it per query (batch: the memory level).

    `key()` is None when the search must bypass the cache (the same rules as `escli search`); `get()` gives the
    parsed response of a fresh entry; `put()` stores an answer for `ttl` seconds, from its bytes when the caller
    still has them (no second encoding)."""

    def __init__(self, cache: Cache, identity: str, ttl: float) -> None:
        self.cache = cache
        self.identity = identity
        self.ttl = ttl

    def key(self, index: str, body: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
        if not self.cache.enabled or cache_bypass_reason(body, params) is not None:
            return None
        return cache_key(self.identity, index, body, params)

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.cache.get(key)
        if entry is None:
            return None
        try:
            response = orjson.loads(entry.value)
        except orjson.JSONDecodeError:
            self.cache.delete(key)
            return None
        return response if isinstance(response, dict) else None

    def put(self, key: str, response: dict[str, Any], index: str, raw: bytes | None = None) -> None:
        self.cache.set(key, raw if raw is not None else orjson.dumps(response), self.ttl, index)


# ---------------------------------------------------------------------------------------------------------------
# `escli search`'s use case: the cache and product flow, the answer shown, then stored

CSV_COLUMNS = ":csv-columns"  # the cache key of a CSV search's columns: the answer's key plus this


@dataclass(frozen=True, eq=False, repr=False)  # fewer generated methods: defined on every search's start-up
class SearchRequest:
    """One `escli search`: what to send (a BuiltSearch), how the cache takes part, and whether a CSV of the hits
    wants the index mapping's columns (`mapping_columns`: -o csv without --fields)."""

    built: BuiltSearch
    ttl: float
    force: bool = False  # --cache: cache even what is bypassed by default
    mapping_columns: bool = False


Show = Callable[[SearchOutcome, "list[str] | None"], None]


def run_search(settings: Settings, req: SearchRequest, ui: UI, show: Show) -> SearchOutcome:
    """Look the search up in the cache levels before any client exists (a hit imports no client and sends
    nothing), else ask the cluster; hand the outcome and the CSV columns to `show`, then store a miss (the cache
    write stays off the time to the first byte out).

    The key includes the product; before any request only the memo can say which (cache/product.py). With none
    (a fresh machine sharing a Redis level, a cleared cache directory) an entry keyed by either product was stored
    from an answer of that product, so either may serve."""
    from escli.cache import open_cache
    from escli.cache.product import PRODUCTS, product_identity, remembered_product

    built = req.built
    cache = open_cache(settings, warn=ui.warn)
    try:
        product = remembered_product(settings) if cache.enabled else None
        outcome = None
        for candidate in (product,) if product else PRODUCTS if cache.enabled else ():
            outcome = lookup(cache, product_identity(settings.identity, candidate), built.index, built.body,
                             built.params, force=req.force)
            if outcome is not None:
                break
        if outcome is None:
            import asyncio  # only now: a hit sends nothing, and asyncio's import is ~30 ms of its run

            outcome = asyncio.run(_ask(settings, cache, req, ui, product))
        show(outcome, _csv_columns(settings, cache, req, outcome, ui) if req.mapping_columns else None)
        if outcome.status == "miss":
            store(cache, outcome, req.ttl)
    finally:
        cache.close()
    return outcome


async def _ask(settings: Settings, cache: Cache, req: SearchRequest, ui: UI, product: str | None) -> SearchOutcome:
    from escli.cache.product import product_identity, remember_product
    from escli.es.connect import open_es

    built = req.built
    # The transport retries by the one policy (es/retry.py), pauses included, within --timeout.
    async with open_es(settings, ui) as es:
        es.expect(product)
        identity = product_identity(settings.identity, product or "unknown")  # re-keyed below once known
        outcome = await search_with_cache(es, cache, identity, built.index, built.body, built.params, req.ttl,
                                          force=req.force, refresh=True, defer_store=True)
        if not cache.enabled:
            return outcome
        # Known from the answer (Elasticsearch's header, or OpenSearch as remembered); a `GET /` only for the
        # first search of an identity on OpenSearch, or when the answer contradicts the memo.
        answered = es.known_product or await es.product()
        remember_product(settings, answered.name)
        if answered.name != product:  # first search, or the server changed product: key by what answered
            outcome = rekey(outcome, product_identity(settings.identity, answered.name), built.body, built.params)
        return outcome


def _csv_columns(settings: Settings, cache: Cache, req: SearchRequest, outcome: SearchOutcome,
                 ui: UI) -> list[str] | None:
    """The fields after _id and _score of a CSV of hits: the index mapping's (as export chooses them), so that
    every search on an index has one header and CSV files of several searches append. What the request itself
    narrows (--source, --stored-fields) and a CSV of aggregation rows keep their own columns (None). The
    mapping's columns are cached beside the answer (same key plus a suffix, same index, as long as it lives), so
    a hit asks the cluster nothing."""
    built = req.built
    if (outcome.response.get("aggregations") or "_source" in built.body or "stored_fields" in built.body
            or "stored_fields" in built.params):
        return None
    import contextlib

    key = f"{outcome.key}{CSV_COLUMNS}" if outcome.key and outcome.status != "bypass" else None
    entry = cache.get(key) if key is not None and outcome.cache_hit else None
    if entry is not None:
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
            cached = orjson.loads(entry.value).get("columns")  # an object: every cache level holds JSON objects
            if isinstance(cached, list) and all(isinstance(c, str) for c in cached):
                return [str(c) for c in cached]
    import asyncio

    from escli.core.columns import choose_columns
    from escli.es.connect import open_es

    async def read() -> dict[str, Any]:
        async with open_es(settings, ui) as es:
            return await es.mapping(built.index)

    columns = choose_columns(asyncio.run(read()), None)
    if key is not None:
        left = outcome.expires_at - time.time() if outcome.cache_hit and outcome.expires_at else req.ttl
        if left > 0:
            cache.set(key, orjson.dumps({"columns": columns}), left, outcome.index or built.index)
    return columns
