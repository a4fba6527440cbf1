"""The memory level (an LRU bounded in bytes) and the levels in front of one another (memory -> disk)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.cache import CacheEntry, CacheLevels, DiskCache, MemoryCache, NullCache, open_cache
from escli.cache.memory import ENTRY_OVERHEAD
from escli.settings import Settings

VALUE = orjson.dumps({"took": 1, "hits": {"hits": []}})


def key(i: int) -> str:
    return f"{i:064x}"


def test_the_bound_counts_bytes_and_evicts_least_recently_used() -> None:
    one = len(VALUE) + 64 + ENTRY_OVERHEAD
    mem = MemoryCache(limit_bytes=3 * one)
    for i in range(3):
        mem.set(key(i), VALUE, 60, "products")
    assert len(mem) == 3 and mem.bytes == 3 * one
    assert mem.get(key(0)) is not None  # 0 is now the most recently used
    mem.set(key(3), VALUE, 60, "products")
    assert mem.get(key(1)) is None and mem.get(key(0)) is not None and mem.get(key(3)) is not None
    assert mem.bytes <= mem.limit and mem.evictions == 1


def test_an_entry_larger_than_the_bound_is_not_kept_and_evicts_nothing() -> None:
    mem = MemoryCache(limit_bytes=2_000)
    mem.set(key(1), VALUE, 60, "a")
    mem.set(key(2), b"{" + b" " * 5_000 + b"}", 60, "a")
    assert mem.get(key(2)) is None and mem.get(key(1)) is not None


def test_expired_entries_are_misses_and_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    mem = MemoryCache()
    mem.set(key(1), VALUE, 5, "a")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 6)
    assert mem.get(key(1)) is None and len(mem) == 0 and mem.bytes == 0


def test_clear_by_index_delete_and_stats() -> None:
    mem = MemoryCache()
    mem.set(key(1), VALUE, 60, "a")
    mem.set(key(2), VALUE, 60, " a ")  # the index as search normalises it
    mem.set(key(3), VALUE, 60, "b")
    assert mem.stats()["indices"]["a"]["entries"] == 2
    assert mem.clear("a") == 2 and len(mem) == 1
    mem.delete(key(3))
    assert mem.stats()["entries"] == 0 and mem.bytes == 0
    with pytest.raises(TypeError):
        mem.set(key(4), {"not": "bytes"}, 60, "a")  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3_000), st.booleans()), max_size=200),
       st.integers(0, 20_000))
def test_the_bound_always_holds(ops: list[tuple[int, int, bool]], limit: int) -> None:
    mem = MemoryCache(limit_bytes=limit)
    for k, size, read in ops:
        if read:
            mem.get(key(k))
        else:
            mem.set(key(k), b"{" + b"x" * size + b"}", 60, "i")
        assert mem.bytes <= limit
        assert mem.bytes == sum(MemoryCache.cost(k2, e) for k2, e in mem._entries.items())


def test_levels_fill_the_faster_ones_with_the_entry_as_it_is(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / "c")
    mem = MemoryCache()
    levels = CacheLevels([mem, disk])
    stored = time.time() - 30
    disk.put(key(1), CacheEntry(VALUE, stored, stored + 90, "products", "disk"))
    first = levels.get(key(1))
    assert first is not None and first.level == "disk"
    second = levels.get(key(1))
    assert second is not None and second.level == "memory"
    assert second.stored_at == pytest.approx(stored) and second.expires_at == pytest.approx(stored + 90)
    assert second.index == "products"
    # writes go to every level with the same times; clear empties every level
    levels.set(key(2), VALUE, 60, "other")
    got_mem, got_disk = mem.get(key(2)), disk.get(key(2))
    assert got_mem is not None and got_disk is not None
    assert abs(got_mem.stored_at - got_disk.stored_at) < 0.01 and got_disk.index == "other"
    assert levels.clear_levels("products") == {"memory": 1, "disk": 1}
    assert levels.get(key(1)) is None and levels.get(key(2)) is not None
    levels.close()


def test_a_disk_fill_keeps_the_time_of_storing(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / "c")
    stored = time.time() - 100
    disk.put(key(1), CacheEntry(VALUE, stored, stored + 300, "p", "shared"))
    got = disk.get(key(1))
    assert got is not None and got.level == "disk" and got.stored_at == pytest.approx(stored, abs=0.01)
    disk.put(key(2), CacheEntry(VALUE, stored - 300, stored, "p", "shared"))  # already expired: not stored
    assert disk.get(key(2)) is None
    disk.close()


def test_open_cache_chooses_the_levels(tmp_path: Path) -> None:
    s = Settings(cache_dir=tmp_path / "c")
    assert isinstance(open_cache(s), DiskCache)
    levels = open_cache(s, memory=True)
    assert isinstance(levels, CacheLevels) and levels.names == ["memory", "disk"]
    with_shared = open_cache(s.with_(cache_url="redis://127.0.0.1:1/0"), memory=True)
    assert isinstance(with_shared, CacheLevels) and with_shared.names == ["memory", "disk", "shared"]
    with_shared.close()  # never used: redis was not even imported for it
    assert isinstance(open_cache(s.with_(use_cache=False), memory=True), NullCache)
