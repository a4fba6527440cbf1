"""How many requests a command keeps in flight: as many as the cluster serves, fewer the moment it refuses.

    pace = Pace(start=8, cap=8, on_change=msgs.info)
    async with pace:                 # waits while `limit` requests are in flight
        answer = await send(...)
    pace.answered(seconds) / pace.refused("429 from the server")

The transport (es/transport.py) holds one for export, import, batch and warm-cache (never for profile, which
measures at the load it was asked for). The rule is AIMD, as TCP's congestion control and Netflix's
concurrency-limits library do it, with a memory of where the cluster said no:
- it starts at `start` and doubles per round trip up to `cap` until the first refusal (TCP's slow start: a
  cluster that refuses above 2 sees two refusals, not the whole first wave);
- a refusal (429, es_rejected_execution_exception, a bulk item rejected, a rising search queue) halves the limit
  at once; refusals of requests that were already in flight then count as the same one (one step per round trip);
- while answers come back, the limit grows by one per round trip (`limit` answers) up to the level that was
  refused last (`ceiling`); above it only after a probing wait that doubles with each refusal at that level, so a
  cluster that refuses above N in flight sees a refusal rarely, not once per cycle;
- while the latency of answers rises well above the best seen (4x: the engine is queueing our requests, not
  serving more of them) the limit does not grow.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType

from escli.es.wire import wait_in_line

PROBE_WAIT = 32  # answers at the ceiling's level below it before the next probe above it (doubles per refusal)
LATENCY_HOLD = 4.0  # no growth while the recent latency is this many times the best one


class Pace:
    def __init__(self, start: int, cap: int | None = None,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.limit = max(1, start)
        self.cap = max(self.limit, cap or self.limit)
        self.slow_start = True  # until the first refusal
        self.on_change = on_change
        self.in_flight = 0
        self.refusals = 0  # every refusal heard
        self.decreases = 0  # times the limit was cut
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._answers = 0  # since the last change of the limit
        self._quiet_until = 0  # answers to let pass after a cut before another cut (those already in flight)
        self._ceiling: int | None = None  # the limit at which the last refusal came
        self._probe_wait = PROBE_WAIT
        self._best = float("inf")
        self._recent: float | None = None  # exponentially weighted latency

    # -- slots ---------------------------------------------------------------------------------------------------
    async def __aenter__(self) -> Pace:
        while self.in_flight >= self.limit:
            await wait_in_line(self._waiters)
        self.in_flight += 1
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    # -- what the cluster says -----------------------------------------------------------------------------------
    def answered(self, seconds: float) -> None:
        self._best = min(self._best, seconds)
        self._recent = seconds if self._recent is None else 0.8 * self._recent + 0.2 * seconds
        self._answers += 1
        if self._quiet_until:
            self._quiet_until -= 1
        if self._answers < self.limit or self.limit >= self.cap:
            return
        if self._recent > LATENCY_HOLD * self._best and self.limit > 1:
            return
        if self._ceiling is not None:
            if self.limit >= self._ceiling:
                self._ceiling = None  # a round trip above the refused level went through: it was passing
            elif self.limit + 1 >= self._ceiling and self._answers < self._probe_wait:
                return  # just below the level the cluster refused: probe it only now and then
        self._set(self.limit * 2 if self.slow_start else self.limit + 1, None)

    def refused(self, reason: str) -> None:
        self.refusals += 1
        self.slow_start = False
        if self._quiet_until:
            self._quiet_until -= 1
            return  # sent before the last cut: the same congestion
        if self._ceiling is not None and self.limit >= self._ceiling - 1:
            self._probe_wait = min(self._probe_wait * 2, 4096)
        self._ceiling = self.limit
        self.decreases += 1
        self._set(max(1, self.limit // 2), reason)
        self._quiet_until = self.in_flight

    def _set(self, limit: int, reason: str | None) -> None:
        old, self.limit = self.limit, min(limit, self.cap)
        self._answers = 0
        if reason is not None and self.on_change is not None and self.limit != old:
            self.on_change(f"slowed down to {self.limit} request{'s' if self.limit != 1 else ''} in flight "
                           f"(from {old}): {reason}")
        self._wake()
