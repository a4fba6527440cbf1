"""Our point in time: opened once, reopened by one task when it is gone, only our own ids closed; and the shards'
highest `_seq_no`, which export's units are cut on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from escli.errors import RefusedError

if TYPE_CHECKING:
    from escli.es.api import Es


class PitUnavailable(Exception):
    """The cluster has no point-in-time API (or refuses it): fall back to scroll."""


class Pit:
    """Our point in time: opened once, reopened (by one task) when it is gone, always closed by us."""

    def __init__(self, es: Es, index: str, keep_alive: str, log: Callable[[str], None] = lambda s: None) -> None:
        self.es = es
        self.log = log
        self.index = index
        self.keep_alive = keep_alive
        self.id: str | None = None
        self.generation = 0
        self.reopened = 0
        self.lock = asyncio.Lock()
        self.opened_ids: list[str] = []

    async def open(self) -> None:
        try:
            pit_id = await self.es.open_pit(self.index, self.keep_alive)
        except RefusedError as exc:
            text = str(exc)
            if exc.status in (400, 404, 405, 501) and "index_not_found" not in text:
                raise PitUnavailable(text) from exc
            raise
        self.id = pit_id
        self.log(f"opened point in time {self.id}")
        self.opened_ids.append(self.id)
        self.generation += 1

    async def reopen(self, seen_generation: int) -> None:
        async with self.lock:
            if self.generation != seen_generation:
                return  # another reader already did it
            old = self.id
            await self.open()
            self.reopened += 1
            if old is not None:
                await self._close_id(old)

    def update(self, new_id: str | None, generation: int) -> None:
        if new_id and generation == self.generation and new_id != self.id:
            if self.id in self.opened_ids:
                self.opened_ids.remove(self.id)
            self.id = new_id
            self.opened_ids.append(new_id)

    async def _close_id(self, pit_id: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.es.close_pit(pit_id, timeout=10), timeout=10)
            self.log(f"closed point in time {pit_id}")

    async def close(self) -> None:
        """Close only the PIT ids escli opened or was handed by the checkpoint; never all PITs."""
        ids, self.opened_ids = list(dict.fromkeys(self.opened_ids)), []
        for pit_id in ids:
            await self._close_id(pit_id)


async def shard_seq_nos(es: Es, index: str) -> list[int]:
    """max_seq_no of every primary shard the target names, in the order a PIT numbers them (index, shard)."""
    from escli.es.target import index_path

    data = await es.json("GET", index_path(index, "_stats/docs"),
                         params={"level": "shards", "filter_path": "indices.*.shards.*.routing.primary,"
                                 "indices.*.shards.*.seq_no.max_seq_no"})
    out: list[int] = []
    for name in sorted((data or {}).get("indices") or {}):
        shards = data["indices"][name].get("shards") or {}
        for num in sorted(shards, key=int):
            primaries = [c for c in shards[num] if (c.get("routing") or {}).get("primary")]
            copy = (primaries or shards[num] or [{}])[0]
            out.append(int((copy.get("seq_no") or {}).get("max_seq_no", -1)))
    return out
