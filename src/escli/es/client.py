"""The one place an AsyncElasticsearch is made.

Pooled aiohttp node sized to the command's concurrency, orjson serializer, retries on 429/502/503/504 and on
connection errors, explicit timeouts. The 8.x client is used on purpose: it speaks to 8.x and 9.x servers alike.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from escli.errors import translate
from escli.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

RETRY_ON_STATUS = (429, 502, 503, 504)


def client_kwargs(settings: Settings, concurrency: int = 1) -> dict[str, Any]:
    """The keyword arguments for AsyncElasticsearch; a pure function so tests can check it."""
    from elasticsearch import OrjsonSerializer

    creds = settings.credentials
    kwargs: dict[str, Any] = {
        "connections_per_node": max(settings.connections, concurrency),
        "request_timeout": settings.timeout,
        "max_retries": settings.max_retries,
        "retry_on_status": RETRY_ON_STATUS,
        "retry_on_timeout": True,
        "serializer": OrjsonSerializer(),
        "verify_certs": settings.verify_certs,
        "dead_node_backoff_factor": 0.5,
        "max_dead_node_backoff": 30.0,
    }
    if creds.cloud_id:
        kwargs["cloud_id"] = creds.cloud_id
    else:
        kwargs["hosts"] = list(settings.urls)
    if creds.api_key:
        kwargs["api_key"] = creds.api_key
    elif creds.username:
        kwargs["basic_auth"] = (creds.username, creds.password or "")
    if settings.ca_certs:
        kwargs["ca_certs"] = settings.ca_certs
    if not settings.verify_certs:
        kwargs["ssl_show_warn"] = False
    if settings.sniff:
        kwargs.update(sniff_on_start=True, sniff_before_requests=False, sniff_on_node_failure=True,
                      min_delay_between_sniffing=60)
    return kwargs


def make_client(settings: Settings, concurrency: int = 1) -> AsyncElasticsearch:
    """The client."""
    from elasticsearch import AsyncElasticsearch

    kwargs = client_kwargs(settings, concurrency)
    with warnings.catch_warnings():
        # The insecure warning is ours to give (once, on stderr), not urllib3's on every request.
        warnings.simplefilter("ignore")
        return AsyncElasticsearch(**kwargs)


@asynccontextmanager
async def open_client(settings: Settings, concurrency: int = 1) -> AsyncIterator[AsyncElasticsearch]:
    """A client that is always closed, and whose errors leave as escli errors (cause kept)."""
    client = make_client(settings, concurrency)
    try:
        yield client
    except BaseException as exc:
        new = translate(exc)
        if new is exc:
            raise
        raise new from exc
    finally:
        await client.close()
