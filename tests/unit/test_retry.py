"""The one retry policy (es/retry.py) and the one error map's body reading (errors.error_summary)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.errors import UnreachableError, error_summary
from escli.es.retry import RetryPolicy, retry_after_seconds, retrying


def test_retry_after_seconds_and_dates() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = retry_after_seconds(formatdate(time.time() + 30, usegmt=True))
    assert later is not None and 25 < later <= 31


@given(st.integers(0, 12), st.one_of(st.none(), st.floats(0, 1000)), st.integers(0, 2**32))
def test_delay_is_full_jitter_and_honours_retry_after(attempt: int, retry_after: float | None, seed: int) -> None:
    policy = RetryPolicy(base=0.25, cap=4.0, retry_after_cap=30.0)
    delay = policy.delay(attempt, retry_after, random.Random(seed))
    assert 0 <= delay <= max(4.0, min(retry_after or 0, 30.0))
    if retry_after is not None:
        assert delay >= min(retry_after, 30.0)
    else:
        assert delay <= min(4.0, 0.25 * 2 ** attempt)


def test_delay_reads_a_retry_after_header_value() -> None:
    assert RetryPolicy(base=0.0).delay(0, "2") == 2.0
    assert RetryPolicy(base=0.0, retry_after_cap=1.0).delay(0, "2") == 1.0


@dataclass
class Answer:
    status: int
    retry_after: str | None = None

    def header(self, name: str) -> str | None:
        return self.retry_after if name == "retry-after" else None


def run_loop(outcomes: list[Answer | UnreachableError], retries: int, deadline: float = 60.0
             ) -> tuple[Answer | BaseException, int, list[str]]:
    calls = 0
    seen: list[str] = []

    async def attempt(left: float) -> Answer:
        nonlocal calls
        out = outcomes[min(calls, len(outcomes) - 1)]
        calls += 1
        if isinstance(out, UnreachableError):
            raise out
        return out

    async def main() -> Answer | BaseException:
        try:
            return await retrying(attempt, RetryPolicy(retries=retries, base=0.0), time.monotonic() + deadline,
                                  on_retry=lambda n, reason, wait: seen.append(reason))
        except UnreachableError as exc:
            return exc

    return asyncio.run(main()), calls, seen


def test_retryable_statuses_and_connection_failures_are_retried_until_an_answer() -> None:
    down = UnreachableError("cluster unreachable: x")
    result, calls, seen = run_loop([Answer(429, "0"), down, Answer(503), Answer(200)], retries=3)
    assert isinstance(result, Answer) and result.status == 200 and calls == 4
    assert seen == ["HTTP 429", "cluster unreachable: x", "HTTP 503"]


@pytest.mark.parametrize("status", [400, 404, 409, 500])
def test_other_answers_are_returned_at_once(status: int) -> None:
    result, calls, _ = run_loop([Answer(status), Answer(200)], retries=3)
    assert isinstance(result, Answer) and result.status == status and calls == 1


def test_retries_run_out_with_the_last_answer_or_failure() -> None:
    result, calls, _ = run_loop([Answer(429)], retries=2)
    assert isinstance(result, Answer) and result.status == 429 and calls == 3
    result, calls, _ = run_loop([UnreachableError("gone")], retries=0)
    assert isinstance(result, UnreachableError) and calls == 1


def test_no_retry_would_end_after_the_deadline() -> None:
    result, calls, _ = run_loop([Answer(429, "5")], retries=3, deadline=1.0)  # Retry-After 5 s > 1 s left
    assert isinstance(result, Answer) and result.status == 429 and calls == 1


def test_error_summary_prefers_the_root_cause() -> None:
    err = {"type": "search_phase_execution_exception", "reason": "all shards failed",
           "root_cause": [{"type": "index_not_found_exception", "reason": "no such index [x]", "index": "x"}]}
    assert error_summary(404, {"error": err}) == ("index_not_found_exception", "no such index [x]")
    assert error_summary(500, "plain text") == ("HTTP 500", "plain text")
    assert error_summary(502, None) == ("HTTP 502", "HTTP 502")
