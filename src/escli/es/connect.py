"""The one place a transport is chosen and an `Es` is made.

    async with open_es(settings, pooled=False) as es:        # search on a miss, health, cache, completion
        resp = await es.search("products", body)
    async with open_es(settings, pooled=True, concurrency=8) as es:   # batch, export, import, profile, warm
        ...

Light for commands that make one or a few requests (no aiohttp or elastic_transport import: they cost ~0.35 s
of start-up), pooled for commands that make many. Settings, credentials, TLS and error mapping are the same on
both (es.transport.target_for); the transport is always closed, also on errors and Ctrl-C.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from escli.errors import translate
from escli.es.api import Es, RequestLog
from escli.es.transport import Transport, target_for
from escli.settings import Settings

# "light" or "pooled": every command uses that transport (profile's measured requests always go on es.wire).
ENV_TRANSPORT = "ESCLI_TRANSPORT"


def make_transport(settings: Settings, *, pooled: bool, concurrency: int = 1, retries: int = 0) -> Transport:
    if settings.members:
        # Several clusters: one transport each (light or pooled as asked), a RoutedTransport over them. Each
        # member gets the whole concurrency: after a failover one of them carries every request.
        from escli.es.routing import Member, RoutedTransport

        members = [Member(m.cluster or ",".join(m.urls),
                          make_transport(m, pooled=pooled, concurrency=concurrency, retries=retries), m.weight)
                   for m in settings.members]
        return RoutedTransport(members, settings.strategy or "failover")
    target = target_for(settings)
    forced = os.environ.get(ENV_TRANSPORT, "")
    if forced in ("light", "pooled"):
        pooled = forced == "pooled"  # tests run the same commands on both transports
    if pooled or settings.sniff:
        from escli.es.pooled import PooledTransport

        return PooledTransport(target, connections=max(settings.connections, concurrency), sniff=settings.sniff,
                               retries=retries)
    from escli.es.light import LightTransport

    return LightTransport(target)


@asynccontextmanager
async def open_es(settings: Settings, *, pooled: bool, concurrency: int = 1, retries: int = 0,
                  on_request: RequestLog | None = None) -> AsyncIterator[Es]:
    """`retries`: the pooled transport resends 429/502/503/504 and connection failures at once, to another node
    (bulk and export pages); commands that pause between retries (es.retry.with_backoff) leave it at 0."""
    es = Es(make_transport(settings, pooled=pooled, concurrency=concurrency, retries=retries),
            on_request=on_request)
    try:
        yield es
    except BaseException as exc:
        new = translate(exc)
        if new is exc:
            raise
        raise new from exc
    finally:
        await es.close()
