"""The disk level: diskcache (SQLite) holding orjson bytes, never pickle.

On disk: `$XDG_CACHE_HOME/escli` (or --cache-dir), directory 0700, every file 0600 (the SQLite database, its
WAL and shared-memory files, and value files for large responses). Values are stored as bytes, so diskcache never
pickles them; the Disk subclass below refuses anything else, and never unpickles what it finds. A corrupt entry or
a corrupt database is reported once (through `warn`) and rebuilt; the cache is never a reason for a command to fail.
The entry's tag is its index, for `escli cache clear --index`. Nothing here imports elasticsearch, and diskcache
itself is imported on first use.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from escli.cache.base import CacheEntry, Warn, _stderr_warning, looks_like_json_object
from escli.cache.keys import normalise_index

DB_NAME = "cache.db"
# Each value starts with a line saying when the answer was stored (its age survives copies between levels):
# diskcache's public API does not expose its own store time.
STAMP = b"#escli1 "
DB_FILES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal")


class CorruptEntry(Exception):
    """An entry that is not what escli writes (not bytes, or pickled)."""


def _ensure_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        path.chmod(0o700)


def _touch_private(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist; tighten it if it does (it is ours)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        st = path.stat()
        if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
            path.chmod(0o600)
    else:
        os.close(fd)


def _disk_class() -> type[Any]:
    """A diskcache Disk that stores bytes only (raw in SQLite, or 0600 files for large ones) and never unpickles."""
    import diskcache

    class JsonBytesDisk(diskcache.Disk):  # type: ignore[misc]
        def put(self, key: Any) -> tuple[Any, bool]:
            if type(key) is not str:
                raise TypeError("escli cache keys are strings")
            return super().put(key)  # type: ignore[no-any-return]

        def get(self, key: Any, raw: bool) -> Any:
            if not raw:
                raise CorruptEntry("pickled key")
            return super().get(key, raw)

        def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> tuple[int, int, str | None, Any]:
            if type(value) is not bytes:
                raise TypeError("escli caches JSON bytes only, never pickled objects")
            # Large values go to files diskcache creates: under umask 077 they are born 0600 (directories 0700),
            # with no window in which another user could open them, and without reaching into diskcache's writer.
            old = os.umask(0o077)
            try:
                return super().store(value, read, key)  # type: ignore[no-any-return]
            finally:
                os.umask(old)

        def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
            if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY) or read:
                raise CorruptEntry(f"unexpected storage mode {mode}")
            return super().fetch(mode, filename, value, read)

    return JsonBytesDisk


class DiskCache:
    """The cache in a directory; diskcache is imported and the database opened on first use."""

    enabled = True
    name = "disk"

    def __init__(self, path: Path, size_limit: int = 512 * 1024 * 1024, warn: Warn | None = None) -> None:
        self.path: Path | None = path
        self.dir = path
        self.size_limit = size_limit
        self.warn = warn or _stderr_warning
        self._dc: Any = None
        self._broken = False  # the database could not be opened or rebuilt: behave like a NullCache
        self._warned: set[str] = set()

    # - opening, corruption and rebuilding

    def _warn_once(self, what: str, text: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            self.warn(text)

    def _open(self) -> Any:
        import diskcache

        _ensure_private_dir(self.dir)
        _touch_private(self.dir / DB_NAME)
        return diskcache.Cache(
            str(self.dir),
            disk=_disk_class(),
            timeout=5,
            size_limit=self.size_limit,
            eviction_policy="least-recently-used",
            tag_index=True,
            statistics=False,
        )

    def _cache(self) -> Any:
        if self._dc is None and not self._broken:
            try:
                self._dc = self._open()
            except Exception as exc:
                self._recover(exc, "opening")
        return self._dc

    def _recover(self, exc: BaseException, doing: str) -> None:
        """A database error: rebuild when the database is corrupt, otherwise carry on without the cache."""
        import sqlite3

        if self._dc is not None:
            with contextlib.suppress(Exception):
                self._dc.close()
            self._dc = None
        locked = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
        timeout = type(exc).__name__ == "Timeout"
        if locked or timeout:
            self._warn_once("locked", f"cache at {self.dir} is busy; going on without it this time")
            self._broken = True
            return
        corrupt = (isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)) or (
            isinstance(exc, sqlite3.OperationalError) and "no such" in str(exc))
        if not corrupt:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._warn_once("unusable", f"cache at {self.dir} cannot be used ({first}); going on without it")
            self._broken = True
            return
        self._warn_once("corrupt", f"cache database {self.dir / DB_NAME} was corrupt ({exc}); rebuilt it empty")
        try:
            self._wipe()
            self._dc = self._open()
        except Exception as again:
            first = str(again).splitlines()[0] if str(again) else type(again).__name__
            self._warn_once("unusable", f"cache at {self.dir} cannot be rebuilt ({first}); going on without it")
            self._broken = True

    def _wipe(self) -> None:
        """Remove escli's files from the cache directory (only those: --cache-dir may point anywhere)."""
        for name in DB_FILES:
            (self.dir / name).unlink(missing_ok=True)
        hexdir = re.compile(r"^[0-9a-f]{2}$")
        for top in self.dir.iterdir():
            if not (top.is_dir() and hexdir.match(top.name)):
                continue
            for sub in top.iterdir():
                if sub.is_dir() and hexdir.match(sub.name):
                    for f in sub.glob("*.val"):
                        f.unlink(missing_ok=True)
                    _rmdir_quietly(sub)
            _rmdir_quietly(top)

    def _run(self, doing: str, fn: Callable[[Any], Any], default: Any) -> Any:
        """Run fn(diskcache) once; on a database error recover (maybe rebuild) and retry once."""
        for attempt in (1, 2):
            dc = self._cache()
            if dc is None:
                return default
            try:
                return fn(dc)
            except CorruptEntry:
                raise
            except Exception as exc:
                import sqlite3

                if not isinstance(exc, (sqlite3.Error, OSError)) and type(exc).__name__ != "Timeout":
                    raise
                self._recover(exc, doing)
                if attempt == 2:
                    return default
        return default

    # - the Cache protocol

    def get(self, key: str) -> CacheEntry | None:
        def read(dc: Any) -> CacheEntry | None:
            value, expires_at, tag = dc.get(key, default=None, expire_time=True, tag=True)
            if value is None:
                return None
            if not isinstance(value, bytes):
                raise CorruptEntry("not bytes")
            stored_at, value = unstamp(value)
            if not looks_like_json_object(value):
                raise CorruptEntry("not a JSON object")
            return CacheEntry(value=value, stored_at=stored_at,
                              expires_at=float(expires_at) if expires_at is not None else float("inf"),
                              index=str(tag or ""), level="disk")

        try:
            result: CacheEntry | None = self._run("reading", read, None)
        except CorruptEntry as exc:
            self.discard(key, str(exc))
            return None
        return result

    def discard(self, key: str, reason: str) -> None:
        """Drop a corrupt entry, saying so once."""
        self._warn_once("entry", f"cache entry {key[:12]} was corrupt ({reason}); dropped it")
        self.delete(key)

    def set(self, key: str, value: bytes, ttl: float, index: str) -> None:
        if type(value) is not bytes:
            raise TypeError("escli caches JSON bytes only")
        data = stamp(time.time(), value)
        self._run("writing", lambda dc: dc.set(key, data, expire=ttl, tag=normalise_index(index)), None)

    def put(self, key: str, entry: CacheEntry) -> None:
        """Store an entry read from another level as it is: same expiry, same time of storing."""
        ttl = entry.expires_at - time.time()
        if ttl <= 0 or type(entry.value) is not bytes:
            return

        data = stamp(entry.stored_at, entry.value)  # the entry's age is that of the answer, not of this copy
        self._run("writing", lambda dc: dc.set(key, data, expire=ttl, tag=normalise_index(entry.index)), None)

    def delete(self, key: str) -> None:
        def drop(dc: Any) -> None:
            dc.delete(key)  # diskcache's own delete also removes a large entry's value file

        self._run("deleting", drop, None)

    def clear(self, index: str | None = None) -> int:
        if index is None:
            removed: int = self._run("clearing", lambda dc: dc.clear(), 0)
        else:
            removed = self._run("clearing", lambda dc: dc.evict(normalise_index(index)), 0)
        return removed

    def stats(self) -> dict[str, Any]:
        def collect(dc: Any) -> dict[str, Any]:
            # Through the public API: every key, and for each its value and tag; a key whose value is gone by
            # now is an expired entry diskcache has not culled yet (its index is not known any more).
            indices: dict[str, dict[str, int]] = {}
            expired = 0
            for key in list(dc.iterkeys()):
                value, _, tag = dc.get(key, default=None, expire_time=True, tag=True)
                if value is None:
                    expired += 1
                    continue
                per = indices.setdefault(str(tag or ""), {"entries": 0, "bytes": 0})
                per["entries"] += 1
                per["bytes"] += len(value) if isinstance(value, bytes) else 0
            return {
                "entries": sum(v["entries"] for v in indices.values()) + expired,
                "expired": expired,
                "bytes_on_disk": int(dc.volume()),
                "size_limit": self.size_limit,
                "indices": dict(sorted(indices.items())),
            }

        base: dict[str, Any] = {"enabled": True, "path": str(self.dir)}
        collected = self._run("reading stats", collect, None)
        if collected is None:
            return {**base, "usable": False}
        return {**base, "usable": True, **collected}

    def close(self) -> None:
        if self._dc is not None:
            with contextlib.suppress(Exception):
                self._dc.close()
            self._dc = None


def stamp(stored_at: float, value: bytes) -> bytes:
    return STAMP + b"%.6f\n" % stored_at + value


def unstamp(data: bytes) -> tuple[float, bytes]:
    """(stored_at, the JSON bytes); a value written before the stamp counts as stored now."""
    if data.startswith(STAMP):
        end = data.find(b"\n", len(STAMP))
        if end > 0:
            try:
                return float(data[len(STAMP):end]), data[end + 1:]
            except ValueError:
                pass
    return time.time(), data


def _rmdir_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()
