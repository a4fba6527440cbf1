"""The cache levels in front of one another: memory -> disk -> shared, behind the one `Cache` protocol.

    cache = open_cache(settings, warn, memory=True)   # the levels these settings ask for (NullCache with --no-cache)
    entry = cache.get(key)      # the first level that has it; entry.level says which ("memory", "disk", "shared")
    cache.set(key, value, ttl, index)                  # every level, with the entry's own TTL
    cache.clear(index); cache.clear_levels(index)      # every level; the latter counts per level

A hit fills the faster levels in front of the one that had it, with the entry as it is (same time of storing,
same expiry), so the next lookup stops earlier. Each level keeps its own failure rules (the disk level rebuilds a
corrupt database, the shared level turns itself off after one warning): nothing here raises for a level's sake.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from escli.cache.base import Cache, CacheEntry, Level, NullCache, Warn, new_entry
from escli.cache.disk import DiskCache
from escli.cache.memory import MemoryCache

if TYPE_CHECKING:
    from escli.settings import Settings


class CacheLevels:
    enabled = True

    def __init__(self, levels: list[Level]) -> None:
        if not levels:
            raise ValueError("at least one cache level")
        self.levels = levels
        self.path: Path | None = next((lv.path for lv in levels if lv.path is not None), None)

    def level(self, name: str) -> Level | None:
        return next((lv for lv in self.levels if lv.name == name), None)

    @property
    def names(self) -> list[str]:
        return [lv.name for lv in self.levels]

    def get(self, key: str) -> CacheEntry | None:
        for i, level in enumerate(self.levels):
            entry = level.get(key)
            if entry is not None:
                for faster in self.levels[:i]:
                    faster.put(key, entry)
                return entry
        return None

    def set(self, key: str, value: bytes, ttl: float, index: str) -> None:
        entry = new_entry(value, ttl, index)  # one entry: the same times in every level
        for level in self.levels:
            level.put(key, entry)

    def delete(self, key: str) -> None:
        for level in self.levels:
            level.delete(key)

    def discard(self, key: str, reason: str) -> None:
        """An entry that is not valid JSON after all: out of every level (the disk level says so once)."""
        for level in self.levels:
            drop = getattr(level, "discard", None)
            if drop is not None:
                drop(key, reason)
            else:
                level.delete(key)

    def clear_levels(self, index: str | None = None) -> dict[str, int]:
        """Entries removed per level; -1 for a level that could not be reached."""
        return {level.name: level.clear(index) for level in self.levels}

    def clear(self, index: str | None = None) -> int:
        return sum(n for n in self.clear_levels(index).values() if n > 0)

    def stats(self) -> dict[str, Any]:
        return {"levels": {level.name: level.stats() for level in self.levels}}

    def close(self) -> None:
        for level in self.levels:
            level.close()


def shared_level(settings: Settings, warn: Warn | None) -> Level | None:
    if not settings.cache_url:
        return None
    from escli.cache.shared import SharedCache, SharedConfig

    return SharedCache(SharedConfig(settings.cache_url, settings.cache_password, settings.cache_timeout,
                                    settings.cache_ca_certs), warn)


def open_cache(settings: Settings, warn: Warn | None = None, *, memory: bool = False, disk: bool = True,
               shared: bool = True) -> Cache:
    """The cache for these settings: memory (when asked: commands that run many searches), the disk level under
    settings.cache_dir, and the shared level when a cache URL is configured; a NullCache with --no-cache."""
    if not settings.use_cache:
        return NullCache(settings.cache_dir)
    levels: list[Level] = []
    if memory:
        levels.append(MemoryCache(settings.cache_memory_limit))
    if disk:
        levels.append(DiskCache(settings.cache_dir, settings.cache_size_limit, warn))
    shared_cache = shared_level(settings, warn) if shared else None
    if shared_cache is not None:
        levels.append(shared_cache)
    if len(levels) == 1 and isinstance(levels[0], DiskCache):
        return levels[0]  # the common case: no wrapper in the way (a hit reports level "disk" all the same)
    return CacheLevels(levels)
