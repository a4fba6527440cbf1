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
(a probe), and if it fails too the request fails with UnreachableError (exit 3). The retry policy wraps the
routing (a retry may go to another member); the members never retry themselves. batch's prepared sends and
profile's timed sends are the same Transport methods here as on one cluster. Every answer says who gave it: the
`x-escli-cluster` header of a Response, `cluster` of an Answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from escli.errors import UnreachableError
from escli.es.nodes import Prepared, prepare
from escli.es.pace import Pace
from escli.es.retry import NO_RETRY, OnRetry, RetryPolicy, retrying
from escli.es.target import JSON
from escli.es.transport import Answer, HttpTransport, Response, TransportStats, response
from escli.strategies import FAILOVER, FAN_OUT, ROUND_ROBIN

CLUSTER_HEADER = "x-escli-cluster"
BACKOFF_BASE = 1.0  # seconds a member stays down after its first failure; doubles per failure in a row
BACKOFF_CAP = 60.0
ANY_STATUS = range(100, 600)  # members hand every answer back; the router decides what is a failure

T = TypeVar("T")


@dataclass(eq=False)
class Member:
    name: str
    transport: HttpTransport
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
        if len(healthy) == 1 or self.strategy in (FAILOVER, FAN_OUT):
            return healthy
        if self.strategy == ROUND_ROBIN:
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
    return Response(resp.status, {**resp.headers, CLUSTER_HEADER: name}, resp.body, resp.url)


class RoutedTransport:
    """The Transport protocol over several clusters' transports (see the module doc). The members try once; the
    retry policy is applied here, around the routing, so a retry may go to another member."""

    def __init__(self, members: Sequence[Member], strategy: str, *, policy: RetryPolicy = NO_RETRY,
                 on_retry: OnRetry | None = None, **router_options: float) -> None:
        self.router = Router(members, strategy, **router_options)  # type: ignore[arg-type]
        self.policy = policy
        self.on_retry = on_retry
        self.stats = TransportStats()
        self.pace: Pace | None = None  # each member paces its own requests

    @property
    def members(self) -> list[Member]:
        return self.router.members

    @property
    def strategy(self) -> str:
        return self.router.strategy

    def prepare(self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: bytes | None = None,
                content_type: str = JSON) -> Prepared:
        return prepare(method, path, params, body, content_type)

    async def send(self, p: Prepared, *, timeout: float | None = None, retry: bool = True,
                   stop: Callable[[], bool] | None = None) -> Answer:
        limit = self.members[0].transport.target.timeout if timeout is None else timeout
        tries = 0

        async def attempt(left: float) -> Answer:
            nonlocal tries
            tries += 1

            async def one(m: Member) -> Answer:
                self.stats.requests += 1
                return await m.transport.send(p, timeout=left, retry=False)

            m, answer = await self.router.route(one, lambda a: a.status)
            answer.cluster = m.name
            return answer

        def counted(n: int, reason: str, wait: float) -> None:
            self.stats.retries += 1
            if self.on_retry is not None:
                self.on_retry(n, reason, wait)

        answer = await retrying(attempt, self.policy if retry else NO_RETRY, time.monotonic() + limit,
                                on_retry=counted, stop=stop)
        answer.attempts = tries
        return answer

    async def send_once(self, p: Prepared, timeout: float | None = None) -> Answer:
        """profile: the strategy's member, one try, no failover (each failure is counted); its health noted."""
        m = self.router.order()[0]
        self.stats.requests += 1
        try:
            answer = await m.transport.send_once(p, timeout)
        except UnreachableError as exc:
            self.router.failed(m, exc.kind)
            exc.cluster = m.name
            raise
        if is_failure(answer.status):
            self.router.failed(m, f"HTTP {answer.status}")
        else:
            self.router.succeeded(m)
        answer.cluster = m.name
        return answer

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: bytes | None = None, content_type: str = JSON, timeout: float | None = None,
                      ignore: Collection[int] = ()) -> Response:
        answer = await self.send(self.prepare(method, path, params=params, body=body, content_type=content_type),
                                 timeout=timeout)
        return tagged(response(answer, ignore), answer.cluster)

    async def request_on(self, m: Member, method: str, path: str, *, params: Mapping[str, str] | None = None,
                         body: bytes | None = None, content_type: str = JSON,
                         timeout: float | None = None) -> Response:
        """One request to one member, whatever its status (fan-out), retried by the policy; its health is updated
        like any other."""
        p = self.prepare(method, path, params=params, body=body, content_type=content_type)

        async def attempt(left: float) -> Answer:
            self.stats.requests += 1
            return await m.transport.send(p, timeout=left, retry=False)

        limit = m.transport.target.timeout if timeout is None else timeout
        try:
            answer = await retrying(attempt, self.policy, time.monotonic() + limit)
        except UnreachableError as exc:
            self.router.failed(m, str(exc))
            raise
        if is_failure(answer.status):
            self.router.failed(m, f"HTTP {answer.status}")
        else:
            self.router.succeeded(m)
        return tagged(response(answer, ANY_STATUS), m.name)

    async def close(self) -> None:
        for m in self.members:
            await m.transport.close()
