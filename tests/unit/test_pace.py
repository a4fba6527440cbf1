"""The pace (es/pace.py) against a simulated cluster that refuses above N requests in flight: a pure model of
the fault proxy's `limit_in_flight`, stepped deterministically (no clock, no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from escli.es.pace import Pace


def simulate(workers: int, limit: int, requests: int, pace: Pace) -> tuple[int, int, int]:
    """(refused, answered, the most in flight the cluster saw). Each request takes one loop turn."""
    state = {"in_flight": 0, "most": 0, "refused": 0, "answered": 0, "left": requests}

    async def worker() -> None:
        while state["left"] > 0:
            state["left"] -= 1
            while True:
                async with pace:
                    if state["in_flight"] >= limit:
                        state["refused"] += 1
                        pace.refused("429 from the server")
                        await asyncio.sleep(0)
                        continue
                    state["in_flight"] += 1
                    state["most"] = max(state["most"], state["in_flight"])
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                    state["in_flight"] -= 1
                    pace.answered(0.01)
                    state["answered"] += 1
                    break

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(workers)))

    asyncio.run(main())
    return state["refused"], state["answered"], state["most"]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_a_cluster_that_refuses_above_n_is_refused_rarely(limit: int) -> None:
    notes: list[str] = []
    pace = Pace(2, 8, on_change=notes.append)
    refused, answered, _ = simulate(8, limit, 2000, pace)
    assert answered == 2000
    assert refused <= 0.03 * (refused + answered)  # the target: <= 3% of requests refused
    assert notes and "slowed down to" in notes[0] and "429 from the server" in notes[0]


def test_a_cluster_that_never_refuses_keeps_every_slot_busy() -> None:
    pace = Pace(2, 8)
    refused, answered, most = simulate(8, 100, 500, pace)
    assert (refused, answered, most) == (0, 500, 8) and pace.limit == 8  # 2, 4, 8: slow start


def test_the_limit_grows_back_after_a_refusal_while_answers_come() -> None:
    pace = Pace(8, 8)
    pace.refused("429")
    assert pace.limit == 4
    for _ in range(200):
        pace.answered(0.01)
    assert pace.limit == 8


def test_rising_latency_holds_the_growth() -> None:
    pace = Pace(8, 8)
    pace.answered(0.01)
    pace.refused("429")
    for _ in range(200):
        pace.answered(0.2)  # 20x the best: the engine queues our requests
    assert pace.limit == 4
