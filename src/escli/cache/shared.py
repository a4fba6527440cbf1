"""The shared level: Redis, through redis-py's asyncio client, for several machines warming and reading one cache.

    shared = SharedCache(SharedConfig("redis://127.0.0.1:6379/0", password=None, timeout=0.2), warn)
    shared.get(key)              # CacheEntry(level="shared") or None; never raises for Redis's sake
    shared.set(key, value, ttl, index); shared.clear(index); shared.stats(); shared.close()

Layout (JSON bytes under a versioned prefix, never pickle):
    escli:v1:e:<key>      a hash: v = the response's JSON bytes, s = stored at, x = expires at (epoch seconds as
                          text), i = the index; the key expires with the entry (PEXPIREAT)
    escli:v1:i:<index>    a set of the keys stored for that index, so `cache clear --index` finds them with SSCAN;
                          it lives as long as its longest-lived entry
Clearing everything walks `escli:v1:*` with SCAN (never KEYS, which blocks the server).

The shared level never fails a search: the first error, or an answer slower than `timeout` (default 200 ms),
gives one warning and turns the level off for the rest of the run; the local levels go on. redis-py's own
retries are off, so the timeout is the most one search can lose to it.

Why a thread: the cache's API is synchronous (a hit in `escli search` is served before any event loop exists,
and warm-cache reads it from inside its own loop), so the Redis client runs on an event loop in one daemon
thread, started on first use. Reads wait for their answer (at most `timeout`); writes are handed over and not
waited for, and `close()` lets the pending ones finish (again within `timeout`). redis is imported only then, so
a run without a shared level, or one served by the memory or disk level, never pays for it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escli.cache.base import CacheEntry, Warn, _stderr_warning, looks_like_json_object, new_entry
from escli.cache.keys import normalise_index

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

PREFIX = "escli:v1:"
ENTRY = PREFIX + "e:"
INDEX_SET = PREFIX + "i:"
DEFAULT_TIMEOUT = 0.2
ADMIN_TIMEOUT = 10.0  # stats and clear walk the keyspace: a longer allowance than one lookup
SCAN_PAGE = 500
FIELDS = ("v", "s", "x", "i")


@dataclass(frozen=True)
class SharedConfig:
    url: str  # redis://HOST:PORT/DB or rediss:// (never with a password in it)
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    ca_certs: str | None = None

    @property
    def shown(self) -> str:
        return self.url


class _Down(Exception):
    """The level is (now) off: nothing more is sent."""


def entry_key(key: str) -> str:
    return ENTRY + key


def index_set(index: str) -> str:
    return INDEX_SET + normalise_index(index)


def decode_entry(fields: list[Any]) -> CacheEntry | None:
    """A hash's v, s, x, i fields as an entry; None when absent; ValueError when it is not what escli writes."""
    value, stored, expires, index = fields
    if value is None:
        return None
    if not isinstance(value, bytes) or not looks_like_json_object(value):
        raise ValueError("not a JSON object (refused; escli never unpickles)")
    try:
        stored_at = float(stored) if stored is not None else time.time()
        expires_at = float(expires) if expires is not None else float("inf")
    except ValueError:
        raise ValueError("its times are not numbers") from None
    return CacheEntry(value, stored_at, expires_at, (index or b"").decode("utf-8", "replace"), "shared")


class SharedCache:
    enabled = True
    name = "shared"
    path: Path | None = None

    def __init__(self, config: SharedConfig, warn: Warn | None = None) -> None:
        self.config = config
        self.timeout = config.timeout
        self.warn = warn or _stderr_warning
        self.down_reason: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._write_error: str | None = None  # set on the loop thread, reported on the caller's
        self._warned: set[str] = set()

    # - the loop thread and the failure rule

    def _start(self) -> None:
        import asyncio

        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="escli-shared-cache", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        kwargs: dict[str, Any] = {
            "password": self.config.password,
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),  # no retries: the timeout is what a search may lose, once
            "retry_on_timeout": False,
            "health_check_interval": 0,
        }
        if self.config.url.startswith("rediss://") and self.config.ca_certs:
            kwargs["ssl_ca_certs"] = self.config.ca_certs

        async def make() -> Any:
            return Redis.from_url(self.config.url, **kwargs)

        self._client = asyncio.run_coroutine_threadsafe(make(), loop).result()

    def _fail(self, reason: str) -> None:
        if self.down_reason is None:
            self.down_reason = reason
            self.warn(f"shared cache {self.config.shown}: {reason}; going on with the local cache levels")

    def _warn_once(self, what: str, text: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            self.warn(text)

    def _check(self) -> None:
        if self._write_error is not None:
            self._fail(self._write_error)
        if self.down_reason is not None:
            raise _Down
        if self._loop is None:
            try:
                self._start()
            except Exception as exc:  # e.g. a malformed URL that redis-py refuses
                self._fail(_reason(exc))
                raise _Down from None

    def _submit(self, make: Callable[[Any], Coroutine[Any, Any, Any]], timeout: float) -> concurrent.futures.Future[
            Any]:
        import asyncio

        client = self._client

        async def bounded() -> Any:
            return await asyncio.wait_for(make(client), timeout)

        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(bounded(), self._loop)

    def _call(self, make: Callable[[Any], Coroutine[Any, Any, Any]], timeout: float | None = None) -> Any:
        """Run make(client) on the loop thread and wait for it; a Redis or network error turns the level off."""
        import concurrent.futures

        from redis.exceptions import ResponseError

        self._check()
        limit = self.timeout if timeout is None else timeout
        future = self._submit(make, limit)
        try:
            return future.result(limit + 0.05)
        except ResponseError:
            raise  # the server answered: a problem with this entry, not with the level
        except (TimeoutError, concurrent.futures.TimeoutError):
            future.cancel()
            self._fail(f"no answer within {limit * 1000:.0f} ms")
        except Exception as exc:
            self._fail(_reason(exc, limit))
        raise _Down

    # - the Cache protocol

    def get(self, key: str) -> CacheEntry | None:
        from redis.exceptions import ResponseError

        name = entry_key(key)
        try:
            fields = self._call(lambda r: r.hmget(name, FIELDS))
        except _Down:
            return None
        except ResponseError as exc:  # WRONGTYPE: not a hash, so not written by escli (a pickled string, say)
            self._discard(key, str(exc).split(" ", 1)[0] or "not a hash")
            return None
        try:
            entry = decode_entry(fields)
        except ValueError as exc:
            self._discard(key, str(exc))
            return None
        if entry is not None and entry.expires_at <= time.time():
            return None
        return entry

    def _discard(self, key: str, reason: str) -> None:
        self._warn_once("entry", f"shared cache entry {key[:12]} is not escli's ({reason}); dropped it")
        self.delete(key)

    def set(self, key: str, value: bytes, ttl: float, index: str) -> None:
        self.put(key, new_entry(value, ttl, index, self.name))

    def put(self, key: str, entry: CacheEntry) -> None:
        """Hand the write to the loop thread and return: a write never waits for Redis."""
        ms = int((entry.expires_at - time.time()) * 1000)
        if ms <= 0 or entry.expires_at == float("inf"):
            return
        try:
            self._check()
        except _Down:
            return
        name, members = entry_key(key), index_set(entry.index)
        mapping = {"v": entry.value, "s": repr(entry.stored_at), "x": repr(entry.expires_at), "i": entry.index}

        async def write(r: Any) -> None:
            async with r.pipeline(transaction=True) as pipe:
                pipe.hset(name, mapping=mapping)
                pipe.pexpire(name, ms)
                pipe.sadd(members, key)
                pipe.pexpire(members, ms, nx=True)  # a new set: its first entry's life
                pipe.pexpire(members, ms, gt=True)  # then as long as its longest-lived entry
                await pipe.execute()

        future = self._submit(write, self.timeout)
        self._pending.add(future)
        future.add_done_callback(self._written)

    def _written(self, future: concurrent.futures.Future[Any]) -> None:
        self._pending.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None and self._write_error is None:
            self._write_error = _reason(exc, self.timeout)

    def delete(self, key: str) -> None:
        with contextlib.suppress(_Down):
            self._call(lambda r: r.unlink(entry_key(key)))

    def clear(self, index: str | None = None) -> int:
        """Remove every escli entry (SCAN) or those of one index (SSCAN of its set); -1 when Redis failed."""

        async def everything(r: Any) -> int:
            removed = 0
            batch: list[bytes] = []
            async for name in r.scan_iter(match=PREFIX + "*", count=SCAN_PAGE):
                batch.append(name)
                if len(batch) >= SCAN_PAGE:
                    removed += await _unlink_entries(r, batch)
                    batch = []
            return removed + (await _unlink_entries(r, batch) if batch else 0)

        async def one_index(r: Any) -> int:
            members = index_set(index or "")
            removed = 0
            batch: list[str] = []
            async for key in r.sscan_iter(members, count=SCAN_PAGE):
                batch.append(entry_key(key.decode()))
                if len(batch) >= SCAN_PAGE:
                    removed += int(await r.unlink(*batch))
                    batch = []
            if batch:
                removed += int(await r.unlink(*batch))
            await r.unlink(members)
            return removed

        try:
            removed: int = self._call(everything if index is None else one_index, max(self.timeout, ADMIN_TIMEOUT))
        except _Down:
            return -1
        return removed

    def stats(self) -> dict[str, Any]:
        async def collect(r: Any) -> dict[str, Any]:
            indices: dict[str, dict[str, int]] = {}
            async for page in _pages(r, ENTRY + "*"):
                pipe = r.pipeline(transaction=False)
                for name in page:
                    pipe.hstrlen(name, "v")
                    pipe.hget(name, "i")
                answers = await pipe.execute(raise_on_error=False)
                for size, index in zip(answers[::2], answers[1::2], strict=True):
                    if not isinstance(size, int):  # not a hash: not escli's, not counted
                        continue
                    name = index.decode("utf-8", "replace") if isinstance(index, bytes) else "?"
                    row = indices.setdefault(name, {"entries": 0, "bytes": 0})
                    row["entries"] += 1
                    row["bytes"] += size
            return {"entries": sum(v["entries"] for v in indices.values()),
                    "bytes": sum(v["bytes"] for v in indices.values()), "indices": dict(sorted(indices.items()))}

        base: dict[str, Any] = {"enabled": True, "url": self.config.shown, "timeout_ms": round(self.timeout * 1000)}
        try:
            collected = self._call(collect, max(self.timeout, ADMIN_TIMEOUT))
        except _Down:
            return {**base, "usable": False, "error": self.down_reason}
        return {**base, "usable": True, **collected}

    def flush(self) -> None:
        """Wait (within the timeout) for the writes handed over so far."""
        import concurrent.futures

        if self._pending:
            _done, not_done = concurrent.futures.wait(list(self._pending), timeout=self.timeout + 0.05)
            for future in not_done:
                future.cancel()
            if not_done and self._write_error is None:
                self._write_error = f"no answer within {self.timeout * 1000:.0f} ms"
        if self._write_error is not None:
            self._fail(self._write_error)

    def close(self) -> None:
        if self._loop is None:
            return
        import asyncio

        self.flush()
        loop, client = self._loop, self._client
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(self.timeout)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(1.0)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = self._client = None


async def _pages(r: Any, match: str) -> Any:
    cursor = 0
    while True:
        cursor, names = await r.scan(cursor, match=match, count=SCAN_PAGE)
        if names:
            yield names
        if cursor == 0:
            return


async def _unlink_entries(r: Any, names: list[bytes]) -> int:
    """Unlink a page of names; only entries are counted (index sets are bookkeeping)."""
    counted = sum(1 for n in names if n.startswith(ENTRY.encode()))
    pipe = r.pipeline(transaction=False)
    for n in names:
        pipe.unlink(n)
    results = await pipe.execute()
    return sum(int(res) for n, res in zip(names, results, strict=True) if n.startswith(ENTRY.encode())) \
        if counted else 0


def _reason(exc: BaseException, timeout: float | None = None) -> str:
    import sys

    errors = sys.modules.get("redis.exceptions")
    timeouts: tuple[type[BaseException], ...] = (TimeoutError, errors.TimeoutError) if errors else (TimeoutError,)
    if timeout is not None and isinstance(exc, timeouts):
        return f"no answer within {timeout * 1000:.0f} ms"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200].rstrip(".")
