"""Where requests go and as whom: endpoints, the Target built from Settings (the one place that reads them for
the request path), and the bytes every request to a node starts with.

Plain `application/json` is sent (no compatibility mimetype): Elasticsearch 8.x and 9.x and OpenSearch 2.x all
accept it, while each major of elasticsearch-py's mimetype is refused by one of them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from escli.errors import UsageError
from escli.settings import DEFAULT_MAX_ANSWER, Settings

if TYPE_CHECKING:
    import ssl

JSON = "application/json"
NDJSON = "application/x-ndjson"


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
    max_answer: int = DEFAULT_MAX_ANSWER  # bytes one answer may have, inflated (es/wire.py)


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
    return Target(endpoints, headers, settings.ca_certs, settings.verify_certs, settings.timeout,
                  settings.max_answer)


def request_target(path: str, params: Mapping[str, str] | None) -> str:
    """Path plus query string, each parameter percent-encoded (commas and wildcards kept readable)."""
    if not params:
        return path
    query = "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe=',*:')}" for k, v in params.items())
    return f"{path}?{query}"


def index_path(index: str, endpoint_name: str) -> str:
    """`/INDEX/_search` with the index names percent-encoded (commas and wildcards stay)."""
    return f"/{quote(index, safe=',*')}/{endpoint_name}"


def ssl_context(target: Target) -> ssl.SSLContext:
    import ssl

    ctx = ssl.create_default_context(cafile=target.ca_certs)
    if not target.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def head_prefix(target: Target, e: Endpoint) -> bytes:
    """The header lines every request to `e` carries (Host, Accept, auth, user agent), encoded once."""
    default = 443 if e.scheme == "https" else 80
    host = e.host if e.port == default else f"{e.host}:{e.port}"
    lines = [f"Host: {host}", "Accept: application/json", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in target.headers.items()]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def request_bytes(prefix: bytes, head: bytes, method: str, target: str, body: bytes | None, ctype: str) -> bytes:
    first = f"{method} {prefix.decode()}{target} HTTP/1.1\r\n".encode()
    if body is not None:
        return first + head + f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    if method in ("POST", "PUT"):
        return first + head + b"Content-Length: 0\r\n\r\n"
    return first + head + b"\r\n"
