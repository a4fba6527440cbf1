"""The one error map: an answer's status and body, or a failed connection, to escli's errors and their one line.

Words are product-neutral unless the answer says who sent it: "Elasticsearch refused the request" only when the
answer carries `X-Elastic-Product: Elasticsearch`, "OpenSearch refused the request" when it carries OpenSearch
3.x's `X-OpenSearch-Version: OpenSearch/...`, "the server refused the request" otherwise (OpenSearch 2.x, a
proxy, a load balancer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from escli.errors import STATUS_HINTS, RefusedError, UnreachableError, error_summary


def who(headers: Mapping[str, str] | None) -> str:
    """Who refused: the product when the answer names it, else the server."""
    if (headers or {}).get("x-elastic-product", "").lower() == "elasticsearch":
        return "Elasticsearch"
    if (headers or {}).get("x-opensearch-version", "").lower().startswith("opensearch/"):
        return "OpenSearch"
    return "the server"


def refused(status: int, raw: bytes, headers: Mapping[str, str] | None = None) -> RefusedError:
    try:
        body: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = raw.decode("utf-8", "replace").strip()[:500] or None
    etype, reason = error_summary(status, body)
    hint = STATUS_HINTS.get(status, "")
    return RefusedError(f"{who(headers)} refused the request ({status} {etype}): {reason}{hint}", status, body,
                        (headers or {}).get("retry-after"))


def unreachable(where: str, reason: str, *, timed_out: bool = False) -> UnreachableError:
    what = "no answer within the timeout" if timed_out else "cluster unreachable"
    return UnreachableError(f"{what}: {where}: {reason}", timed_out=timed_out)


def connection_reason(exc: BaseException) -> str:
    """The one line that says why a connection failed: the first line of the error, or its class."""
    if isinstance(exc, UnreachableError):
        text = str(exc)
        for prefix in ("cluster unreachable: ", "no answer within the timeout: "):
            text = text.removeprefix(prefix)
        return text
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
