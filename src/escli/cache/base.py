"""What every cache level shares: the entry, the protocol commands use, the null cache and the warning sink."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

Warn = Callable[[str], None]


def _stderr_warning(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"escli: warning: {text}\n")


@dataclass(frozen=True, slots=True)
class CacheEntry:
    value: bytes  # orjson JSON bytes of the Elasticsearch response
    stored_at: float  # epoch seconds
    expires_at: float  # epoch seconds
    index: str = ""  # the (normalised) index it was stored for: `cache clear --index` and filling other levels
    level: str = "disk"  # the level it was read from: memory, disk or shared

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.stored_at)

    def ttl_left(self, now: float | None = None) -> float:
        return max(0.0, self.expires_at - (time.time() if now is None else now))


def new_entry(value: bytes, ttl: float, index: str, level: str = "disk") -> CacheEntry:
    """The entry a write stores: JSON bytes only (never an object that something would pickle), stored now."""
    if type(value) is not bytes:
        raise TypeError("escli caches JSON bytes only, never pickled objects")
    from escli.cache.keys import normalise_index

    now = time.time()
    return CacheEntry(value, now, now + ttl, normalise_index(index), level)


class Cache(Protocol):
    """What commands use; `CacheLevels`, each level (`MemoryCache`, `DiskCache`, `SharedCache`) and `NullCache`
    implement it."""

    enabled: bool
    path: Path | None

    def get(self, key: str) -> CacheEntry | None: ...

    def set(self, key: str, value: bytes, ttl: float, index: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def clear(self, index: str | None = None) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class Level(Cache, Protocol):
    """One level behind `CacheLevels`: it also takes an entry as it is (a fill keeps stored_at and expires_at)."""

    name: str

    def put(self, key: str, entry: CacheEntry) -> None: ...


def looks_like_json_object(value: bytes) -> bool:
    """Cheap guard before parsing: escli only ever stores a JSON object (a pickle starts with 0x80)."""
    head = value.lstrip()[:1]
    tail = value.rstrip()[-1:]
    return head == b"{" and tail == b"}"


class NullCache:
    """--no-cache: nothing is read or written."""

    enabled = False

    def __init__(self, path: Path | None = None) -> None:
        self.path = path

    def get(self, key: str) -> CacheEntry | None:
        return None

    def set(self, key: str, value: bytes, ttl: float, index: str) -> None:
        return None

    def delete(self, key: str) -> None:
        return None

    def clear(self, index: str | None = None) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {"enabled": False, "path": str(self.path) if self.path else None}

    def close(self) -> None:
        return None
