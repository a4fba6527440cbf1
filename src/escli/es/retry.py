"""The one retry policy: which failures are retried, how long to wait, how often.

Every request of every command goes through `retrying` (es/transport.py calls it; nothing above es/ retries a
request): 429, 502, 503 and 504 answers, connection failures and timeouts are tried again up to `retries` times,
after a pause drawn with full jitter (uniform in [0, min(cap, base * 2**attempt)], AWS architecture blog) and never
shorter than the answer's Retry-After asks (capped). The whole call, pauses included, stays inside the caller's
deadline (--timeout), so an unreachable cluster fails within it.

Callers that retry something that is not a request (a bulk item refused inside a 200, a page whose shards failed)
ask the same policy for the pause (`RetryPolicy.delay`), so the waits are the same everywhere.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from escli.errors import UnreachableError

RETRY_ON_STATUS = frozenset({429, 502, 503, 504})
A = TypeVar("A", bound="HasStatus")


class HasStatus(Protocol):
    @property
    def status(self) -> int: ...

    def header(self, name: str) -> str | None: ...


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3
    base: float = 0.25  # seconds; attempt k waits uniform(0, min(cap, base * 2**k))
    cap: float = 4.0
    retry_after_cap: float = 30.0  # never wait longer than this for one Retry-After

    def delay(self, attempt: int, retry_after: str | float | None = None,
              rng: random.Random | None = None) -> float:
        wait = (rng or random).uniform(0.0, min(self.cap, self.base * (2 ** attempt)))
        after = retry_after_seconds(retry_after) if isinstance(retry_after, str) else retry_after
        if after is not None:
            wait = max(wait, min(after, self.retry_after_cap))
        return wait


NO_RETRY = RetryPolicy(retries=0)

# (attempt number of the retry about to happen (1-based), what went wrong, the pause in seconds)
OnRetry = Callable[[int, str, float], None]


async def retrying(attempt: Callable[[float], Awaitable[A]], policy: RetryPolicy, deadline: float, *,
                   on_retry: OnRetry | None = None, stop: Callable[[], bool] | None = None) -> A:
    """Call `attempt(seconds_left)` until it answers with a status that is not retryable, retries run out, the
    deadline (monotonic seconds) would pass, or `stop()` says so. An answer is returned whatever its status (the
    last one when retries ran out); UnreachableError (no answer) is raised when the last try had none."""
    n = 0
    while True:
        left = deadline - time.monotonic()
        answer: A | None = None
        failure: UnreachableError | None = None
        try:
            answer = await attempt(max(left, 0.05))
        except UnreachableError as exc:
            if not exc.retryable:  # an answer escli cannot use (es/answers.py): the same request gets it again
                raise
            failure = exc
        if answer is not None:
            if answer.status not in RETRY_ON_STATUS:
                return answer
            reason, retry_after = f"HTTP {answer.status}", answer.header("retry-after")
        else:
            reason, retry_after = str(failure), None
        wait = policy.delay(n, retry_after)
        if n >= policy.retries or time.monotonic() + wait >= deadline or (stop is not None and stop()):
            if answer is not None:
                return answer
            assert failure is not None
            raise failure
        n += 1
        if on_retry is not None:
            on_retry(n, reason, wait)
        await asyncio.sleep(wait)
