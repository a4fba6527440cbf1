"""The memory level: an in-process LRU of cache entries, bounded in bytes.

For commands that run many searches in one process (batch, warm-cache): a search that repeats hits here without
touching SQLite or the network. The bound counts each entry's value bytes, its key and a fixed overhead for the
bookkeeping objects, so many tiny entries cannot outgrow it either; an entry larger than the whole bound is not
kept. Expired entries are misses and are dropped when met. Not thread-safe: one event loop uses it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from escli.cache.base import CacheEntry, new_entry
from escli.cache.keys import normalise_index

DEFAULT_MEMORY_LIMIT = 64 * 1024 * 1024
# Per entry besides its value: the key string (~113 bytes for 64 hex chars), the CacheEntry, the dict slot and
# the LRU links. Measured with sys.getsizeof on CPython 3.11-3.13 at about 300 bytes; 320 keeps the bound honest.
ENTRY_OVERHEAD = 320


class MemoryCache:
    enabled = True
    name = "memory"
    path: Path | None = None

    def __init__(self, limit_bytes: int = DEFAULT_MEMORY_LIMIT) -> None:
        self.limit = max(0, int(limit_bytes))
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    @staticmethod
    def cost(key: str, entry: CacheEntry) -> int:
        return len(entry.value) + len(key) + ENTRY_OVERHEAD

    def get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= time.time():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def set(self, key: str, value: bytes, ttl: float, index: str) -> None:
        self.put(key, new_entry(value, ttl, index, self.name))

    def put(self, key: str, entry: CacheEntry) -> None:
        if entry.level != self.name:
            entry = CacheEntry(entry.value, entry.stored_at, entry.expires_at, entry.index, self.name)
        size = self.cost(key, entry)
        if key in self._entries:
            self._drop(key)
        if size > self.limit:
            return  # larger than the whole bound: keeping it would evict everything else for one entry
        self._entries[key] = entry
        self.bytes += size
        while self.bytes > self.limit:
            old_key, old = self._entries.popitem(last=False)
            self.bytes -= self.cost(old_key, old)
            self.evictions += 1

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= self.cost(key, entry)

    def delete(self, key: str) -> None:
        self._drop(key)

    def clear(self, index: str | None = None) -> int:
        if index is None:
            removed = len(self._entries)
            self._entries.clear()
            self.bytes = 0
            return removed
        wanted = normalise_index(index)
        keys = [k for k, e in self._entries.items() if e.index == wanted]
        for k in keys:
            self._drop(k)
        return len(keys)

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, Any]:
        now = time.time()
        indices: dict[str, dict[str, int]] = {}
        for key, entry in self._entries.items():
            row = indices.setdefault(entry.index, {"entries": 0, "bytes": 0, "expired": 0})
            row["entries"] += 1
            row["bytes"] += self.cost(key, entry)
            row["expired"] += entry.expires_at <= now
        return {"enabled": True, "entries": len(self._entries), "bytes": self.bytes, "size_limit": self.limit,
                "evictions": self.evictions, "indices": dict(sorted(indices.items()))}

    def close(self) -> None:
        return None
