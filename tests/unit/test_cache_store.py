"""The on-disk cache itself (diskcache on a temporary directory): bytes only, permissions, expiry, corruption."""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
import time
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from escli.cache import DEFAULT_TTL, DiskCache, NullCache, open_cache
from escli.settings import Settings

RESPONSE = {"took": 1, "hits": {"total": {"value": 1, "relation": "eq"}, "hits": [{"_id": "a", "_score": 1.0}]}}


@pytest.fixture()
def warnings() -> list[str]:
    return []


@pytest.fixture()
def cache(tmp_path: Path, warnings: list[str]) -> DiskCache:
    c = DiskCache(tmp_path / "escli", warn=warnings.append)
    yield c  # type: ignore[misc]
    c.close()


def modes(root: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return out


def test_round_trip_and_entry_times(cache: DiskCache) -> None:
    value = orjson.dumps(RESPONSE)
    before = time.time()
    cache.set("k1", value, ttl=DEFAULT_TTL, index="products")
    entry = cache.get("k1")
    assert entry is not None and entry.value == value
    assert before - 1 <= entry.stored_at <= time.time() + 1
    assert entry.expires_at == pytest.approx(entry.stored_at + DEFAULT_TTL, abs=1)
    assert cache.get("nope") is None


def test_expired_entries_are_misses(cache: DiskCache, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.set("k", orjson.dumps(RESPONSE), ttl=60, index="products")
    assert cache.get("k") is not None
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    assert cache.get("k") is None
    assert cache.stats()["expired"] == 1


def test_clear_by_index_and_stats(cache: DiskCache) -> None:
    for i in range(3):
        cache.set(f"p{i}", orjson.dumps(RESPONSE), ttl=60, index="products")
    cache.set("o", orjson.dumps(RESPONSE), ttl=60, index="other")
    stats = cache.stats()
    assert stats["entries"] == 4 and set(stats["indices"]) == {"products", "other"}
    assert stats["indices"]["products"]["entries"] == 3
    assert cache.clear("products") == 3
    assert cache.get("p0") is None and cache.get("o") is not None
    assert cache.clear() == 1
    assert cache.stats()["entries"] == 0


def test_directory_0700_and_every_file_0600_large_values_included(tmp_path: Path) -> None:
    os.umask(0o022)
    c = DiskCache(tmp_path / "escli")
    big = orjson.dumps({"hits": {"hits": [{"_source": {"text": "x" * 100_000}}]}})  # a file, not a row
    c.set("big", big, ttl=60, index="products")
    c.set("small", orjson.dumps(RESPONSE), ttl=60, index="products")
    assert c.get("big") is not None and c.get("big").value == big  # type: ignore[union-attr]
    found = modes(tmp_path / "escli")
    c.close()
    assert any(name.endswith(".val") for name in found), found
    for name, mode in found.items():
        is_dir = (tmp_path / "escli" / name).is_dir() if name != "." else True
        assert mode == (0o700 if is_dir else 0o600), (name, oct(mode))


def test_existing_loose_directory_is_tightened(tmp_path: Path) -> None:
    d = tmp_path / "escli"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    c = DiskCache(d)
    c.set("k", b"{}", ttl=60, index="i")
    c.close()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_only_bytes_are_stored_never_pickle(cache: DiskCache) -> None:
    with pytest.raises(TypeError):
        cache.set("k", RESPONSE, ttl=60, index="i")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.set("k", "text", ttl=60, index="i")  # type: ignore[arg-type]


class Boom:
    """Unpickling this would run code: the cache must never do it."""

    ran: ClassVar[list[str]] = []

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Boom.ran.append, ("unpickled",))


def test_a_pickled_entry_is_dropped_not_loaded(tmp_path: Path, warnings: list[str]) -> None:
    import diskcache

    d = tmp_path / "escli"
    plain = diskcache.Cache(str(d))  # someone else's diskcache in our directory, with a pickled value
    plain.set("evil", Boom())
    plain.close()
    assert Boom.ran == []
    c = DiskCache(d, warn=warnings.append)
    assert c.get("evil") is None
    assert Boom.ran == []
    assert len(warnings) == 1 and "corrupt" in warnings[0]
    c.close()
    assert pickle.dumps(1)  # pickle itself is fine; the cache just never loads it


def test_a_corrupt_entry_is_reported_once_and_dropped(cache: DiskCache, warnings: list[str]) -> None:
    cache.set("k1", orjson.dumps(RESPONSE), ttl=60, index="i")
    cache.set("k2", orjson.dumps(RESPONSE), ttl=60, index="i")
    cache.close()
    with sqlite3.connect(cache.dir / "cache.db") as con:
        con.execute("UPDATE Cache SET value = ? WHERE key IN ('k1', 'k2')", (b"\x00garbage",))
    assert cache.get("k1") is None
    assert cache.get("k2") is None
    assert len(warnings) == 1 and "cache entry" in warnings[0] and "corrupt" in warnings[0]
    assert cache.stats()["entries"] == 0
    cache.set("k1", orjson.dumps(RESPONSE), ttl=60, index="i")
    assert cache.get("k1") is not None


def test_a_corrupt_database_is_reported_once_and_rebuilt(tmp_path: Path, warnings: list[str]) -> None:
    d = tmp_path / "escli"
    c = DiskCache(d, warn=warnings.append)
    c.set("k", orjson.dumps(RESPONSE), ttl=60, index="i")
    c.close()
    (d / "cache.db").write_bytes(b"this is not an SQLite database" * 200)
    for name in ("cache.db-wal", "cache.db-shm"):
        (d / name).unlink(missing_ok=True)
    c2 = DiskCache(d, warn=warnings.append)
    assert c2.get("k") is None
    c2.set("k", orjson.dumps(RESPONSE), ttl=60, index="i")
    assert c2.get("k") is not None
    c2.close()
    assert len(warnings) == 1 and "corrupt" in warnings[0] and "rebuilt" in warnings[0]
    assert stat.S_IMODE((d / "cache.db").stat().st_mode) == 0o600


def test_an_unusable_directory_is_not_fatal(tmp_path: Path, warnings: list[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    c = DiskCache(blocker / "escli", warn=warnings.append)
    assert c.get("k") is None
    c.set("k", b"{}", ttl=60, index="i")
    assert c.clear() == 0
    assert c.stats()["usable"] is False
    assert len(warnings) == 1 and "going on without it" in warnings[0]


def test_null_cache_and_open_cache(tmp_path: Path) -> None:
    off = open_cache(Settings(use_cache=False, cache_dir=tmp_path / "c"))
    assert isinstance(off, NullCache) and not off.enabled
    off.set("k", b"{}", ttl=1, index="i")
    assert off.get("k") is None and off.clear() == 0
    assert not (tmp_path / "c").exists()
    on = open_cache(Settings(cache_dir=tmp_path / "c"))
    assert isinstance(on, DiskCache) and on.enabled
    assert not (tmp_path / "c").exists()  # opened on first use, not before
    on.close()


def test_delete_leaves_no_value_file_behind(cache: DiskCache) -> None:
    big = orjson.dumps({"hits": {"hits": [{"_id": str(i), "_source": {"text": "x" * 100}} for i in range(2000)]}})
    assert len(big) > 64 * 1024  # above diskcache's threshold: the value lives in a file of its own
    cache.set("big", big, ttl=60, index="products")
    files = [p for p in cache.dir.rglob("*.val")]
    assert len(files) == 1
    cache.delete("big")
    assert cache.get("big") is None
    assert not [p for p in cache.dir.rglob("*.val")]


def test_the_stamp_keeps_the_answers_age_and_old_values_still_read() -> None:
    from escli.cache.disk import stamp, unstamp

    value = orjson.dumps(RESPONSE)
    assert unstamp(stamp(1733112345.25, value)) == (1733112345.25, value)
    before = time.time()
    stored_at, same = unstamp(value)  # written before the stamp: counted as stored now, the bytes untouched
    assert same == value and stored_at >= before


def test_only_diskcache_public_api() -> None:
    """No private diskcache names (`_sql`, the Disk's `_write`, ...) anywhere in escli's cache code."""
    import re
    from pathlib import Path

    import escli.cache

    for path in Path(escli.cache.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"\bdc\._[a-z]|diskcache\.[A-Za-z.]*\._|def _write\b|\._sql\b", text), path.name
