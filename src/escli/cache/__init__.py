"""escli's response cache, in levels: memory (in-process LRU, bounded in bytes) -> disk (diskcache) -> shared
(Redis, optional). Values are JSON bytes everywhere, never pickle.

    cache = open_cache(settings, warn, memory=True)   # a NullCache when settings.use_cache is False
    key = cache_key(settings.identity, index, body, params)
    reason = cache_bypass_reason(body, params)        # e.g. `now` date math: do not cache unless forced
    entry = cache.get(key)                            # CacheEntry(value, stored_at, expires_at, index, level)
    cache.set(key, orjson.dumps(response), ttl=DEFAULT_TTL, index=index)
    cache.clear(index="products"); cache.stats(); cache.close()

Modules: keys (key and bypass rules), base (entry, protocol, NullCache), memory, disk, shared (imports redis only
when used), levels (the levels in front of one another, open_cache). Nothing here imports elasticsearch: a cache
hit is served without the client.
"""

from escli.cache.base import Cache, CacheEntry, Level, NullCache, Warn
from escli.cache.disk import DB_FILES, DB_NAME, CorruptEntry, DiskCache
from escli.cache.keys import (
    DEFAULT_TTL,
    KEY_VERSION,
    cache_bypass_reason,
    cache_key,
    canonical_json,
    normalise_index,
    normalise_params,
    uses_now,
)
from escli.cache.levels import CacheLevels, open_cache
from escli.cache.memory import MemoryCache

__all__ = [
    "DB_FILES", "DB_NAME", "DEFAULT_TTL", "KEY_VERSION", "Cache", "CacheEntry", "CacheLevels", "CorruptEntry",
    "DiskCache", "Level", "MemoryCache", "NullCache", "Warn", "cache_bypass_reason", "cache_key", "canonical_json",
    "normalise_index", "normalise_params", "open_cache", "uses_now",
]
