"""The one place a transport is made from Settings, and an `Es` around it.

    async with open_es(settings, ui, concurrency=8) as es:
        resp = await es.search("products", body)

The UI (escli/ui.py) hears what the request path has to say: the server's Warning headers, the pace's changes (a
paced command), a retry and, at -vv, each request.

One cluster: an HttpTransport (es/transport.py) with `max(connections, concurrency)` keep-alive connections per
node and the retry policy of --max-retries. Several clusters: one HttpTransport per member, tried once each, and a
RoutedTransport over them that owns the retries (es/routing.py), so a retry can go to another member. The
transport is always closed, also on errors and Ctrl-C.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from escli.es.api import Es
from escli.es.pace import Pace
from escli.es.retry import NO_RETRY, OnRetry, RetryPolicy
from escli.es.target import target_for
from escli.es.transport import HttpTransport, Transport
from escli.settings import Settings
from escli.strategies import FAILOVER
from escli.ui import UI


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(retries=settings.max_retries)


def make_transport(settings: Settings, *, concurrency: int = 1, on_warning: Callable[[str], None] | None = None,
                   on_retry: OnRetry | None = None, paced: bool = False,
                   on_pace: Callable[[str], None] | None = None) -> Transport:
    policy = retry_policy(settings)

    def pace() -> Pace | None:
        # from 2 in flight, doubling per round trip to `concurrency` unless the cluster refuses
        return Pace(min(2, concurrency), concurrency, on_change=on_pace) if paced and concurrency > 1 else None

    if settings.members:
        from escli.es.routing import Member, RoutedTransport

        # Each member gets the whole concurrency: after a failover one of them carries every request.
        members = [Member(m.cluster or ",".join(m.urls),
                          HttpTransport(target_for(m), connections=max(m.connections, concurrency), policy=NO_RETRY,
                                        sniff=m.sniff, on_warning=on_warning, pace=pace()), m.weight)
                   for m in settings.members]
        return RoutedTransport(members, settings.strategy or FAILOVER, policy=policy, on_retry=on_retry)
    return HttpTransport(target_for(settings), connections=max(settings.connections, concurrency), policy=policy,
                         sniff=settings.sniff, on_warning=on_warning, on_retry=on_retry, pace=pace())


@asynccontextmanager
async def open_es(settings: Settings, ui: UI, *, concurrency: int = 1, paced: bool = False) -> AsyncIterator[Es]:
    """`paced`: at most `concurrency` requests in flight, fewer while the cluster refuses (es/pace.py): export,
    import, batch and warm-cache; never profile, which measures at the load it was asked for."""

    def on_retry(attempt: int, reason: str, delay: float) -> None:
        ui.detail(f"retry {attempt} of {settings.max_retries} in {delay:.2f}s: {reason}")

    def on_request(method: str, path: str, status: int | None, seconds: float) -> None:
        # -vv: one line per request. Paths never carry credentials (settings refuses them in URLs).
        ui.detail(f"{method} {path} [status:{status if status is not None else 'N/A'} duration:{seconds:.3f}s]")

    es = Es(make_transport(settings, concurrency=concurrency, on_warning=ui.server_warning, on_retry=on_retry,
                           paced=paced, on_pace=ui.info), on_request=on_request if ui.verbose >= 2 else None)
    try:
        yield es
    finally:
        await es.close()
