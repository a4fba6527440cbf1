"""Es: the requests escli makes, on either transport, aware of which product answers.

Elasticsearch 7.17, 8.x and 9.x and OpenSearch 2.x and 3.x share most of the REST API; where they differ (point in
time, the product check, data streams) the difference lives in a method here, so the commands above never ask
which one they talk to. The product is learnt from the first answer: Elasticsearch (7.14 and later) marks every
answer with `X-Elastic-Product`, OpenSearch 3.x with `X-OpenSearch-Version: OpenSearch/3.9.0 (opensearch)`, which
names the version too; OpenSearch 2.x marks nothing, so there `GET /` says `version.distribution: opensearch`.
Measured differences (each on the versions README's "Supported servers" names):
- point in time: Elasticsearch `POST /INDEX/_pit` answering `id` (7.17's test build has it: x-pack-core is in it),
  OpenSearch `POST /INDEX/_search/point_in_time` answering `pit_id`; a cluster without either gets scroll.
- `GET /_data_stream/NAME`: 404 for a name that is no data stream where data streams exist; Elasticsearch's test
  build answers 400 (9.x, no handler) or 405 (7.17, only a POST handler at that path): no data streams at all.
- 7.x still names the mapping type in some answers (`_type: _doc` on hits and bulk items); nothing escli reads
  depends on it: `_mapping` answers have no type level unless asked for one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from escli.errors import UnreachableError
from escli.es.nodes import Prepared
from escli.es.retry import RetryPolicy
from escli.es.target import JSON, NDJSON, index_path
from escli.es.transport import Answer, Response, Transport, TransportStats
from escli.text import is_digits

ELASTICSEARCH = "elasticsearch"
OPENSEARCH = "opensearch"


@dataclass(frozen=True)
class ProductInfo:
    name: str  # ELASTICSEARCH or OPENSEARCH
    version: str | None = None

    @property
    def major(self) -> int | None:
        head = (self.version or "").split(".", 1)[0]
        return int(head) if is_digits(head) else None

    def at_least(self, major: int, minor: int = 0) -> bool:
        """Whether the version is known and is major.minor or later (unknown: False, the cautious answer)."""
        parts = (self.version or "").split(".")
        if len(parts) < 2 or not (is_digits(parts[0]) and is_digits(parts[1])):
            return False
        return (int(parts[0]), int(parts[1])) >= (major, minor)


def product_from_root(body: Any) -> ProductInfo:
    version = body.get("version") if isinstance(body, dict) else None
    if isinstance(version, dict):
        number = str(version.get("number")) if version.get("number") else None
        if version.get("distribution") == OPENSEARCH:
            return ProductInfo(OPENSEARCH, number)
        return ProductInfo(ELASTICSEARCH, number)
    raise UnreachableError("the server at the URL is neither Elasticsearch nor OpenSearch (GET / said no version)")


def product_from_headers(headers: Mapping[str, str]) -> ProductInfo | None:
    """What an answer's own headers say: `X-Elastic-Product` (Elasticsearch 7.14+) or `X-OpenSearch-Version`
    (OpenSearch 3.x: `OpenSearch/3.9.0 (opensearch)`); None when neither is there (OpenSearch 2.x, a proxy)."""
    if headers.get("x-elastic-product", "").lower() == "elasticsearch":
        return ProductInfo(ELASTICSEARCH)
    marked = headers.get("x-opensearch-version", "")
    if marked:
        name, _, rest = marked.partition("/")
        if name.strip().lower() == OPENSEARCH:
            return ProductInfo(OPENSEARCH, rest.split(" ", 1)[0] or None)
    return None


# Elasticsearch reads at most 4 KB of a request line (http.max_initial_line_length): a long list of index names
# (a pattern's hundreds) goes in several requests of this many URL characters at most.
NAMES_PER_LINE = 3000


def name_lists(names: Iterable[str], limit: int = NAMES_PER_LINE) -> Iterator[str]:
    """Names joined by commas, each line within `limit` characters once percent-encoded (one name alone may be
    longer: it is never split)."""
    line: list[str] = []
    size = 0
    for name in names:
        cost = len(quote(name, safe="")) + 1
        if line and size + cost > limit:
            yield ",".join(line)
            line, size = [], 0
        line.append(name)
        size += cost
    if line:
        yield ",".join(line)


PRODUCT_PROBE_IGNORE = frozenset(range(400, 500)) - {429}
# No data streams at this path: Elasticsearch's test build has no handler (9.x: 400) or only a POST one (7.17: 405).
NO_DATA_STREAMS = (400, 404, 405)

# (method, path, status or None when no answer came, seconds): for -vv request logs.
RequestLog = Callable[[str, str, "int | None", float], None]


class Es:
    def __init__(self, transport: Transport, product: ProductInfo | None = None,
                 on_request: RequestLog | None = None) -> None:
        self.transport = transport
        self._product = product
        self._expected: str | None = None
        self.on_request = on_request

    # -- the raw request, and the product it tells us about ---------------------------------------------------
    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: bytes | None = None, content_type: str = JSON, timeout: float | None = None,
                      ignore: Collection[int] = ()) -> Response:
        started = time.perf_counter()
        try:
            resp = await self.transport.request(method, path, params=params, body=body,
                                                content_type=content_type, timeout=timeout, ignore=ignore)
        except Exception as exc:
            if self.on_request is not None:
                self.on_request(method, path, getattr(exc, "status", None), time.perf_counter() - started)
            raise
        if self.on_request is not None:
            self.on_request(method, path, resp.status, time.perf_counter() - started)
        self.learn(resp)
        return resp

    def learn(self, resp: Response) -> None:
        """What an answer says about the product (also for answers that came another way: a fan-out's)."""
        if self._product is None:
            marked = product_from_headers(resp.headers)
            if marked is not None:
                self._product = marked
            elif self._expected == OPENSEARCH and 200 <= resp.status < 300:
                # OpenSearch never sends the header: a success without it confirms what the caller remembered
                # (an Elasticsearch 8+ marks every success), so no `GET /` is needed to know the product.
                self._product = ProductInfo(OPENSEARCH)

    def expect(self, product: str | None) -> None:
        """The product the caller remembers for this server (cache/product.py); answers confirm or correct it."""
        self._expected = product

    async def json(self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None,
                   timeout: float | None = None, ignore: Collection[int] = ()) -> Any:
        data = None if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        return (await self.request(method, path, params=params, body=data, timeout=timeout, ignore=ignore)).json()

    async def product(self) -> ProductInfo:
        if self._product is None:
            # Any answer will do: Elasticsearch marks even a refusal (the test distribution has no `GET /`). Not a
            # 429 or 5xx, though: those are retried by the transport and, when they persist, refused as such (a
            # proxy's 429 carries no product header and says nothing about what is behind it).
            resp = await self.request("GET", "/", ignore=PRODUCT_PROBE_IGNORE)
            if self._product is None:
                self._product = product_from_root(resp.json() if resp.status == 200 else None)
        return self._product

    # -- the fast paths: a request encoded once, sent many times (batch), or timed (profile) -----------------------
    def prepare(self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: bytes | None = None,
                content_type: str = JSON) -> Prepared:
        return self.transport.prepare(method, path, params=params, body=body, content_type=content_type)

    async def send(self, p: Prepared, *, timeout: float | None = None,
                   stop: Callable[[], bool] | None = None) -> Answer:
        """Any status back, after the retry policy; UnreachableError when no answer came."""
        return await self.transport.send(p, timeout=timeout, stop=stop)

    async def send_once(self, p: Prepared, timeout: float | None = None) -> Answer:
        """One try, never retried; the answer's sent_at/done_at are where the bytes moved."""
        return await self.transport.send_once(p, timeout)

    @property
    def stats(self) -> TransportStats:
        return self.transport.stats

    def refused(self, reason: str) -> None:
        """A refusal inside an answer (bulk items rejected): the pace slows down as for a 429."""
        if self.transport.pace is not None:
            self.transport.pace.refused(reason)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The one policy (es/retry.py), for callers that retry what is not a request (bulk items, pages)."""
        return self.transport.policy

    @property
    def known_product(self) -> ProductInfo | None:
        """The product if an answer has already told it (no request)."""
        return self._product

    # -- search --------------------------------------------------------------------------------------------------
    async def search(self, index: str | None, body: Mapping[str, Any] | bytes, params: Mapping[str, str] | None = None,
                     timeout: float | None = None) -> Response:
        """POST /INDEX/_search (or /_search without an index, as a PIT search must be); raw bytes back."""
        path = index_path(index, "_search") if index else "/_search"
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return await self.request("POST", path, params=params, body=data, timeout=timeout)

    async def msearch(self, ndjson: bytes, params: Mapping[str, str] | None = None,
                      timeout: float | None = None) -> Response:
        return await self.request("POST", "/_msearch", params=params, body=ndjson, content_type=NDJSON,
                                  timeout=timeout)

    async def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        body = {"query": query} if query else None
        data = await self.json("POST", index_path(index, "_count"), body=body)
        return int(data["count"])

    async def mapping(self, index: str) -> dict[str, Any]:
        data = await self.json("GET", index_path(index, "_mapping"))
        return data if isinstance(data, dict) else {}

    # -- point in time and scroll --------------------------------------------------------------------------------
    async def open_pit(self, index: str, keep_alive: str) -> str:
        product = await self.product()
        if product.name == OPENSEARCH:
            data = await self.json("POST", index_path(index, "_search/point_in_time"),
                                   params={"keep_alive": keep_alive})
            return str(data["pit_id"])
        data = await self.json("POST", index_path(index, "_pit"), params={"keep_alive": keep_alive})
        return str(data["id"])

    async def close_pit(self, pit_id: str, timeout: float | None = None) -> None:
        """Close one PIT (ours); an already expired one is not an error."""
        product = await self.product()
        if product.name == OPENSEARCH:
            await self.json("DELETE", "/_search/point_in_time", body={"pit_id": [pit_id]}, timeout=timeout,
                            ignore=(404,))
        else:
            await self.json("DELETE", "/_pit", body={"id": pit_id}, timeout=timeout, ignore=(404,))

    async def scroll(self, scroll_id: str, keep_alive: str) -> Response:
        return await self.request("POST", "/_search/scroll",
                                  body=orjson.dumps({"scroll": keep_alive, "scroll_id": scroll_id}))

    async def clear_scroll(self, scroll_id: str, timeout: float | None = None) -> None:
        await self.json("DELETE", "/_search/scroll", body={"scroll_id": [scroll_id]}, timeout=timeout,
                        ignore=(404,))

    # -- indices and documents -----------------------------------------------------------------------------------
    async def bulk(self, ndjson: bytes, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        resp = await self.request("POST", "/_bulk", params=params, body=ndjson, content_type=NDJSON)
        data = resp.json()
        return data if isinstance(data, dict) else {}

    async def is_data_stream(self, name: str) -> bool:
        """Whether `name` is a data stream now; an engine without data streams says no (NO_DATA_STREAMS)."""
        return bool(await self.data_streams(name))

    async def create_index(self, index: str, body: Mapping[str, Any]) -> None:
        await self.json("PUT", index_path(index, "").rstrip("/"), body=dict(body))

    async def refresh(self, index: str, *, ignore_unavailable: bool = False) -> None:
        params = {"ignore_unavailable": "true"} if ignore_unavailable else None
        await self.json("POST", index_path(index, "_refresh"), params=params)

    # -- index metadata (copy) -----------------------------------------------------------------------------------
    async def version(self) -> ProductInfo:
        """The product with its version number. The test build of Elasticsearch has no `GET /`: a node says it."""
        product = await self.product()
        if product.version is None:
            data = await self.json("GET", "/_nodes/_local", params={"filter_path": "nodes.*.version"})
            nodes = data.get("nodes") if isinstance(data, dict) else None
            versions = [n.get("version") for n in nodes.values() if isinstance(n, dict)] if isinstance(nodes, dict) \
                else []
            if versions and versions[0]:
                self._product = product = ProductInfo(product.name, str(versions[0]))
        return product

    async def cluster_uuid(self) -> str:
        """The cluster's own id: two Es on one cluster (two URLs, a load balancer) answer the same."""
        data = await self.json("GET", "/_cluster/state/metadata",
                               params={"filter_path": "metadata.cluster_uuid"})
        meta = data.get("metadata") if isinstance(data, dict) else None
        return str(meta.get("cluster_uuid") or "") if isinstance(meta, dict) else ""

    async def resolve_index(self, expr: str, *, ignore_unavailable: bool = False) -> dict[str, Any]:
        """GET /_resolve/index/EXPR (open, not hidden): {indices, aliases, data_streams}. A name that matches
        nothing is a RefusedError (404) unless `ignore_unavailable`; a pattern that matches nothing is empty."""
        params = {"expand_wildcards": "open"}
        if ignore_unavailable:
            params["ignore_unavailable"] = "true"
        data = await self.json("GET", "/_resolve/index" + index_path(expr, "").rstrip("/"), params=params)
        return data if isinstance(data, dict) else {}

    async def index_metadata(self, index: str) -> dict[str, Any]:
        """{settings (flat keys), mappings, aliases} of one concrete index, in one request."""
        data = await self.json("GET", index_path(index, "").rstrip("/"), params={"flat_settings": "true"})
        return data.get(index, {}) if isinstance(data, dict) else {}

    async def existing(self, names: Collection[str]) -> dict[str, dict[str, Any]]:
        """Which of these names are indices (or data streams' backing indices) now: name -> its metadata."""
        out: dict[str, dict[str, Any]] = {}
        for names_line in name_lists(names):
            data = await self.json("GET", index_path(names_line, "").rstrip("/"),
                                   params={"flat_settings": "true", "ignore_unavailable": "true",
                                           "allow_no_indices": "true"})
            out.update(data if isinstance(data, dict) else {})
        return out

    async def resolve_names(self, names: Collection[str]) -> dict[str, list[Any]]:
        """resolve_index over many names (missing ones left out), in as many requests as the URL needs."""
        out: dict[str, list[Any]] = {"indices": [], "aliases": [], "data_streams": []}
        for names_line in name_lists(names):
            data = await self.resolve_index(names_line, ignore_unavailable=True)
            for key, found in out.items():
                more = data.get(key)
                found += more if isinstance(more, list) else []
        return out

    async def simulate_template(self, body: Mapping[str, Any]) -> str | None:
        """POST /_index_template/_simulate: None when the target would take the template (its settings and
        mappings are validated as at index creation, and nothing is created), else the deepest reason given."""
        resp = await self.request("POST", "/_index_template/_simulate", body=orjson.dumps(body), ignore=(400,))
        if resp.status < 300:
            return None
        err = resp.json().get("error") if isinstance(resp.json(), dict) else None
        reason = f"HTTP {resp.status}"
        while isinstance(err, dict):
            if err.get("reason"):
                reason = f"{err.get('type')}: {err['reason']}"
            err = err.get("caused_by")
        return reason

    async def put_mapping(self, index: str, body: Mapping[str, Any]) -> None:
        await self.json("PUT", index_path(index, "_mapping"), body=dict(body))

    async def put_settings(self, index: str, settings: Mapping[str, Any]) -> None:
        await self.json("PUT", index_path(index, "_settings"), body=dict(settings))

    async def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        await self.json("POST", "/_aliases", body={"actions": actions})

    async def data_streams(self, name: str) -> list[dict[str, Any]]:
        """GET /_data_stream/NAME; no such stream, or an engine without data streams (NO_DATA_STREAMS): []."""
        resp = await self.request("GET", "/_data_stream" + index_path(name, "").rstrip("/"), ignore=NO_DATA_STREAMS)
        data = resp.json() if resp.status == 200 else None
        streams = data.get("data_streams") if isinstance(data, dict) else None
        return [s for s in streams if isinstance(s, dict)] if isinstance(streams, list) else []

    async def has_data_streams(self) -> bool:
        """Whether the engine has data streams (Elasticsearch's test build has not: `_data_stream` is an index
        name to it, refused with 400)."""
        resp = await self.request("GET", "/_data_stream", ignore=NO_DATA_STREAMS)
        return resp.status == 200

    async def aliases(self, names: Collection[str]) -> dict[str, dict[str, Any]]:
        """GET /_alias/NAMES: index -> {alias: spec} for the aliases of these names that exist (none: {})."""
        out: dict[str, dict[str, Any]] = {}
        for names_line in name_lists(names):
            data = await self.json("GET", "/_alias" + index_path(names_line, "").rstrip("/"), ignore=(404,))
            for index, entry in (data.items() if isinstance(data, dict) else ()):
                if isinstance(entry, dict) and isinstance(entry.get("aliases"), dict):
                    out.setdefault(str(index), {}).update(entry["aliases"])
        return out

    async def create_data_stream(self, name: str) -> None:
        await self.json("PUT", "/_data_stream" + index_path(name, "").rstrip("/"))

    async def index_template(self, name: str) -> dict[str, Any] | None:
        """The composable template's body, or None when there is none of that name."""
        return await self._template("index_template", name)

    async def component_template(self, name: str) -> dict[str, Any] | None:
        return await self._template("component_template", name)

    async def _template(self, kind: str, name: str) -> dict[str, Any] | None:
        data = await self.json("GET", f"/_{kind}" + index_path(name, "").rstrip("/"), ignore=(404,))
        found = data.get(f"{kind}s") if isinstance(data, dict) else None
        if isinstance(found, list) and found and isinstance(found[0], dict):
            body = found[0].get(kind)
            return body if isinstance(body, dict) else None
        return None

    async def put_index_template(self, name: str, body: Mapping[str, Any]) -> None:
        await self.json("PUT", "/_index_template" + index_path(name, "").rstrip("/"), body=dict(body))

    async def put_component_template(self, name: str, body: Mapping[str, Any]) -> None:
        await self.json("PUT", "/_component_template" + index_path(name, "").rstrip("/"), body=dict(body))

    # -- cluster -------------------------------------------------------------------------------------------------
    async def cluster_health(self, params: Mapping[str, str] | None = None, index: str | None = None,
                             timeout: float | None = None) -> dict[str, Any]:
        """GET /_cluster/health[/INDEX]; a wait that times out answers 408 with the health body: an answer."""
        path = "/_cluster/health" + (index_path(index, "").rstrip("/") if index else "")
        data = await self.json("GET", path, params=params, timeout=timeout, ignore=(408,))
        return data if isinstance(data, dict) else {}

    async def nodes_stats(self, metric: str, filter_path: str | None = None) -> dict[str, Any]:
        params = {"filter_path": filter_path} if filter_path else None
        data = await self.json("GET", f"/_nodes/stats/{metric}", params=params)
        return data if isinstance(data, dict) else {}

    async def pending_tasks(self) -> dict[str, Any]:
        data = await self.json("GET", "/_cluster/pending_tasks")
        return data if isinstance(data, dict) else {}

    async def close(self) -> None:
        await self.transport.close()
