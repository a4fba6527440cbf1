"""The seam between escli and a search engine: one request shape, two transports, errors mapped in one place.

    Transport.request(method, path, params=..., body=bytes, ...) -> Response(status, headers, body bytes)

`es.light.LightTransport` (HTTP/1.1 on asyncio streams) serves commands that make a few requests and must start
fast; `es.pooled.PooledTransport` (elastic_transport's aiohttp nodes) serves commands that make thousands. Both
send plain `application/json` (accepted by Elasticsearch 8.x, 9.x and OpenSearch 2.x alike, unlike the client's
compatibility mimetypes), never parse the body, never retry (callers wrap calls in `es.retry.with_backoff`) and
raise only escli errors: `UnreachableError` for connection failures and timeouts, `RefusedError` for a status of
400 or more that the caller did not list in `ignore`. Nothing here imports aiohttp or elastic_transport.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import orjson

from escli.errors import STATUS_HINTS, RefusedError, UnreachableError, UsageError
from escli.settings import Settings

JSON = "application/json"
NDJSON = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


class Transport(Protocol):
    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: bytes | None = None, content_type: str = JSON, timeout: float | None = None,
                      ignore: Collection[int] = ()) -> Response: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One node's base URL, split: scheme, host, port and a path prefix ("" or "/prefix")."""

    scheme: str
    host: str
    port: int
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.prefix}"


@dataclass(frozen=True)
class Target:
    """Where requests go and as whom: what both transports are built from (one place reads Settings)."""

    endpoints: tuple[Endpoint, ...]
    headers: Mapping[str, str] = field(repr=False)  # authentication and user agent; never logged
    ca_certs: str | None = None
    verify: bool = True
    timeout: float = 30.0


def endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url}: must look like http(s)://HOST[:PORT]")
    port = parts.port or (443 if parts.scheme == "https" else 9200)
    return Endpoint(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def cloud_endpoint(cloud_id: str) -> Endpoint:
    """The Elasticsearch endpoint a Cloud ID names: `name:base64(host[:port]$es_uuid$kibana_uuid)`."""
    _, _, encoded = cloud_id.partition(":")
    try:
        parts = base64.b64decode(encoded.encode()).decode().split("$")
    except (binascii.Error, UnicodeDecodeError):
        raise UsageError("Cloud ID: not a valid Cloud ID (ESCLI_CLOUD_ID or cloud_id in the config)") from None
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UsageError("Cloud ID: not a valid Cloud ID (ESCLI_CLOUD_ID or cloud_id in the config)")
    host, _, port = parts[0].partition(":")
    return Endpoint("https", f"{parts[1]}.{host}", int(port or 443))


def target_for(settings: Settings) -> Target:
    from escli import __version__

    creds = settings.credentials
    headers = {"user-agent": f"escli/{__version__}"}
    if creds.api_key:
        headers["authorization"] = f"ApiKey {creds.api_key}"
    elif creds.username:
        token = base64.b64encode(f"{creds.username}:{creds.password or ''}".encode()).decode()
        headers["authorization"] = f"Basic {token}"
    if creds.cloud_id:
        endpoints: tuple[Endpoint, ...] = (cloud_endpoint(creds.cloud_id),)
    else:
        endpoints = tuple(endpoint(u) for u in settings.urls)
    return Target(endpoints, headers, settings.ca_certs, settings.verify_certs, settings.timeout)


def request_target(path: str, params: Mapping[str, str] | None) -> str:
    """Path plus query string, each parameter percent-encoded (commas and wildcards kept readable)."""
    if not params:
        return path
    query = "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe=',*:')}" for k, v in params.items())
    return f"{path}?{query}"


def index_path(index: str, endpoint_name: str) -> str:
    """`/INDEX/_search` with the index names percent-encoded (commas and wildcards stay)."""
    return f"/{quote(index, safe=',*')}/{endpoint_name}"


def error_summary(status: int, body: Any) -> tuple[str, str]:
    """(error type, reason) of an error answer, read defensively; the reason names the index when known."""
    etype, reason = f"HTTP {status}", ""
    err = body.get("error") if isinstance(body, dict) else body
    if isinstance(err, dict):
        root = (err.get("root_cause") or [err])[0]
        if not isinstance(root, dict):
            root = err
        etype = str(root.get("type") or err.get("type") or etype)
        reason = str(root.get("reason") or err.get("reason") or "")
        index = root.get("index") or err.get("index")
        if index and str(index) not in reason:
            reason = f"{reason} [index: {index}]"
    elif isinstance(err, str):
        reason = err
    elif isinstance(body, dict) and "result" in body:  # e.g. a 404 from GET /INDEX/_doc/ID
        reason = str(body["result"])
    return etype, (reason or etype)


def refused(status: int, raw: bytes, headers: Mapping[str, str] | None = None) -> RefusedError:
    try:
        body: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = raw.decode("utf-8", "replace").strip()[:500] or None
    etype, reason = error_summary(status, body)
    hint = STATUS_HINTS.get(status, "")
    return RefusedError(f"Elasticsearch refused the request ({status} {etype}): {reason}{hint}", status, body,
                        (headers or {}).get("retry-after"))


def unreachable(where: str, reason: str, *, timed_out: bool = False) -> UnreachableError:
    what = "no answer within the timeout" if timed_out else "cluster unreachable"
    return UnreachableError(f"{what}: {where}: {reason}", timed_out=timed_out)
