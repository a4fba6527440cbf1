"""Retries with exponential backoff and full jitter, inside an overall deadline.

elastic_transport retries at once, without waiting; a cluster answering 429 or 503 needs a pause. Commands that
make a few requests (search) build their client with `max_retries=0` and wrap each call in `with_backoff`, so
every retry waits, goes to the next node (round robin; dead nodes back off in the node pool) and the whole call,
retries included, ends within `deadline` seconds: an unreachable cluster fails within the --timeout.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from escli.errors import RefusedError, UnreachableError, translate

T = TypeVar("T")
RETRY_ON_STATUS = frozenset({429, 502, 503, 504})


def is_retryable(exc: BaseException) -> bool:
    """A connection error, a timeout, or one of 429/502/503/504."""
    shown = translate(exc)
    if isinstance(shown, UnreachableError):
        return True
    return isinstance(shown, RefusedError) and shown.status in RETRY_ON_STATUS


def backoff_delay(attempt: int, base: float = 0.25, cap: float = 4.0, rng: random.Random | None = None) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)]."""
    return (rng or random).uniform(0.0, min(cap, base * (2 ** attempt)))


async def with_backoff(call: Callable[[float], Awaitable[T]], *, retries: int, deadline: float,
                       base: float = 0.25, cap: float = 4.0,
                       on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """Run `call(seconds_left)` up to 1 + retries times; the argument is the time left for that attempt.

    Only retryable errors are retried; the last error is raised (translated into an escli error).
    """
    started = time.monotonic()
    attempt = 0
    while True:
        left = deadline - (time.monotonic() - started)
        try:
            return await call(max(left, 0.05))
        except Exception as exc:
            shown = translate(exc)
            delay = backoff_delay(attempt, base, cap)
            elapsed = time.monotonic() - started
            if attempt >= retries or not is_retryable(exc) or elapsed + delay >= deadline:
                if shown is exc:
                    raise
                raise shown from exc
            if on_retry is not None:
                on_retry(attempt + 1, shown, delay)
            attempt += 1
            await asyncio.sleep(delay)
