"""Several clusters behind the seam: RoutedTransport picks a healthy member per request, by strategy.

    -c a -c b --strategy round-robin     ->  RoutedTransport(members a, b)  ->  a's transport or b's, per request

Strategies (settings.STRATEGIES): `failover` sends to the first healthy member in the order given; `round-robin`
rotates over the healthy ones; `weighted` is smooth weighted round robin (nginx's: deterministic, each member's
share exact over sum(weights) requests, no bursts); `fan-out` sends a search to every healthy member
(core/fanout.py) and any other request as failover does.

Health lives here and only here (`Router`): a member that fails a request (no connection, a timeout, or a 5xx
answer) is marked down for a backoff that doubles from 1 s to 60 s and is cleared by its next success, and the
same request goes to the next healthy member, so no query is lost and none is answered twice. Nothing goes to a
down member while a healthy one remains; when every member is down, the one whose backoff ends first is tried
(a probe), and if it fails too the request fails with UnreachableError (exit 3). batch's fast path (core/batch.py
Sender) and profile's load send on their own connections but choose members and report outcomes through
`Router.route` / `Router.order`, so the policy is the same everywhere. Every answer says who gave it: the
`x-escli-cluster` header of the Response.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from escli.errors import UnreachableError
from escli.es.transport import JSON, Response, Transport, refused
from escli.settings import FAN_OUT

CLUSTER_HEADER = "x-escli-cluster"
BACKOFF_BASE = 1.0  # seconds a member stays down after its first failure; doubles per failure in a row
BACKOFF_CAP = 60.0
ANY_STATUS = range(100, 600)  # members hand every answer back; the router decides what is a failure

T = TypeVar("T")


@dataclass(eq=False)
class Member:
    name: str
    transport: Transport
    weight: float = 1.0
    down_until: float = 0.0  # monotonic seconds; 0: healthy
    failures: int = 0  # in a row; the backoff grows with it
    current: float = 0.0  # smooth weighted round robin state
    last_error: str = ""

    def down(self, now: float) -> bool:
        return now < self.down_until


def is_failure(status: int) -> bool:
    """An answer that says the cluster, not the query, is in trouble: try another member."""
    return status >= 500


class Router:
    """Which member gets the next request, and what a failure or success does to a member's health."""

    def __init__(self, members: Sequence[Member], strategy: str, *, clock: Callable[[], float] = time.monotonic,
                 base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> None:
        if not members:
            raise ValueError("a router needs at least one member")
        self.members = list(members)
        self.strategy = strategy
        self.clock = clock
        self.base = base
        self.cap = cap
        self._next = 0

    # -- health --

    def healthy(self) -> list[Member]:
        now = self.clock()
        return [m for m in self.members if not m.down(now)]

    def failed(self, m: Member, reason: str) -> None:
        now = self.clock()
        m.last_error = reason
        if m.down(now):
            return  # requests that were in flight when it went down: one outage, one step of backoff
        m.failures += 1
        m.down_until = now + min(self.cap, self.base * 2 ** (m.failures - 1))

    def succeeded(self, m: Member) -> None:
        if m.failures or m.down_until:
            m.failures = 0
            m.down_until = 0.0

    def probe(self) -> Member:
        """Every member is down: the one whose backoff ends first."""
        return min(self.members, key=lambda m: m.down_until)

    # -- choice --

    def order(self) -> list[Member]:
        """The members to try for one request, best first: the strategy's pick among the healthy ones, then the
        other healthy ones in the order given; a probe when none is healthy."""
        healthy = self.healthy()
        if not healthy:
            return [self.probe()]
        if len(healthy) == 1 or self.strategy in ("failover", FAN_OUT):
            return healthy
        if self.strategy == "round-robin":
            start = self._next % len(healthy)
            self._next += 1
            return healthy[start:] + healthy[:start]
        # weighted: smooth weighted round robin over the healthy members
        total = 0.0
        best = healthy[0]
        for m in healthy:
            m.current += m.weight
            total += m.weight
            if m.current > best.current:
                best = m
        best.current -= total
        return [best] + [m for m in healthy if m is not best]

    async def route(self, send: Callable[[Member], Awaitable[T]], status_of: Callable[[T], int]) -> tuple[Member, T]:
        """Send with `send(member)` to the members of `order()` until one answers without failing; returns who
        answered and what. `send` raises UnreachableError for no answer. When every member tried gave a 5xx, the
        last answer is returned (the caller treats it as any error answer); when none answered, UnreachableError.
        """
        last: tuple[Member, T] | None = None
        errors: list[str] = []
        for m in self.order():
            try:
                result = await send(m)
            except UnreachableError as exc:
                self.failed(m, str(exc))
                errors.append(f"{m.name}: {exc}")
                continue
            status = status_of(result)
            if is_failure(status):
                self.failed(m, f"HTTP {status}")
                last = (m, result)
                continue
            self.succeeded(m)
            return m, result
        if last is not None:
            return last
        raise UnreachableError("every cluster failed: " + "; ".join(errors),
                               timed_out=all("within the timeout" in e for e in errors))


def tagged(resp: Response, name: str) -> Response:
    return Response(resp.status, {**resp.headers, CLUSTER_HEADER: name}, resp.body)


class RoutedTransport:
    """The Transport protocol over several clusters' transports (see the module doc)."""

    def __init__(self, members: Sequence[Member], strategy: str, **router_options: float) -> None:
        self.router = Router(members, strategy, **router_options)  # type: ignore[arg-type]

    @property
    def members(self) -> list[Member]:
        return self.router.members

    @property
    def strategy(self) -> str:
        return self.router.strategy

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: bytes | None = None, content_type: str = JSON, timeout: float | None = None,
                      ignore: Collection[int] = ()) -> Response:
        async def send(m: Member) -> Response:
            return await m.transport.request(method, path, params=params, body=body, content_type=content_type,
                                             timeout=timeout, ignore=ANY_STATUS)

        m, resp = await self.router.route(send, lambda r: r.status)
        if resp.status >= 400 and resp.status not in ignore:
            raise refused(resp.status, resp.body, resp.headers)
        return tagged(resp, m.name)

    async def request_on(self, m: Member, method: str, path: str, *, params: Mapping[str, str] | None = None,
                         body: bytes | None = None, content_type: str = JSON,
                         timeout: float | None = None) -> Response:
        """One request to one member, whatever its status (fan-out); its health is updated like any other."""
        try:
            resp = await m.transport.request(method, path, params=params, body=body, content_type=content_type,
                                             timeout=timeout, ignore=ANY_STATUS)
        except UnreachableError as exc:
            self.router.failed(m, str(exc))
            raise
        if is_failure(resp.status):
            self.router.failed(m, f"HTTP {resp.status}")
        else:
            self.router.succeeded(m)
        return tagged(resp, m.name)

    async def close(self) -> None:
        for m in self.members:
            await m.transport.close()
