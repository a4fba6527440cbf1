"""Small asyncio helpers shared by the use cases."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def together(*steps: Awaitable[Any] | None) -> list[Any]:
    """Await the steps at once (None: a step not needed, None back) and every one to its end: the first failure in
    argument order is raised once none is still running (a step left running could open a PIT nobody closes)."""
    tasks = [None if s is None else asyncio.ensure_future(s) for s in steps]
    live = [t for t in tasks if t is not None]
    try:
        if live:
            await asyncio.wait(live)
    except BaseException:
        for t in live:
            t.cancel()
        await asyncio.gather(*live, return_exceptions=True)
        raise
    failures = [exc for exc in (t.exception() for t in live) if exc is not None]  # each one read: none is
    if failures:  # logged later as "never retrieved"
        raise failures[0]
    return [None if t is None else t.result() for t in tasks]
