"""The cache levels against a real Redis (ESCLI_TEST_REDIS_URL, started by `make test`) and the real engine:
two cache directories sharing one Redis, Redis failing from the start or in the middle of a run, clearing every
level, refusing what escli did not write, and batch answering repeats from memory."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from escli.cache import CacheEntry, CacheLevels, DiskCache, MemoryCache
from escli.cache.shared import ENTRY, INDEX_SET, SharedCache, SharedConfig
from escli.settings import resolve
from tests.conftest import ROOT, Result

REDIS_URL = os.environ.get("ESCLI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
Cli = Callable[..., Result]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def rds() -> Iterator[redis.Redis]:
    """The test Redis, emptied: a test that cannot reach it fails (never skips)."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); `make redis-up` (make test starts it)",
                    pytrace=False)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture()
def own_redis() -> Iterator[str]:
    """A Redis of this test's own, started by scripts/redis.sh, that the test may stop."""
    port = free_port()
    env = {**os.environ, "REDIS_PORT": str(port)}
    script = str(ROOT / "scripts" / "redis.sh")
    up = subprocess.run(["bash", script, "up"], env=env, capture_output=True, text=True, check=False)
    assert up.returncode == 0, up.stderr
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        subprocess.run(["bash", script, "down"], env=env, capture_output=True, check=False)


def stop_redis(url: str) -> None:
    port = url.rsplit(":", 1)[1].split("/")[0]
    down = subprocess.run(["bash", str(ROOT / "scripts" / "redis.sh"), "down"], env={**os.environ,
                          "REDIS_PORT": port}, capture_output=True, text=True, check=False)
    assert down.returncode == 0, down.stderr


def meta(r: Result) -> dict[str, Any]:
    assert r.code == 0, r.stderr
    block: dict[str, Any] = json.loads(r.out)["_escli"]
    return block


def env_for(tmp_path: Path, name: str, url: str) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / name), "ESCLI_CACHE_URL": url}


def shared_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning: shared cache" in line]


def test_two_cache_directories_share_one_redis(cli: Cli, sample_index: str, rds: redis.Redis,
                                               tmp_path: Path) -> None:
    machine_a, machine_b = env_for(tmp_path, "a", REDIS_URL), env_for(tmp_path, "b", REDIS_URL)
    args = ("search", sample_index, "lamp", "-n", "3", "-o", "json")
    first = cli(*args, env=machine_a)
    assert meta(first)["cache"] == "miss"
    key = meta(first)["key"]
    assert rds.exists(ENTRY + key) and rds.sismember(INDEX_SET + sample_index, key)
    assert rds.hget(ENTRY + key, "v") == orjson.dumps({k: v for k, v in json.loads(first.out).items()
                                                       if k != "_escli"})
    assert 0 < rds.pttl(ENTRY + key) <= 300_000
    other = cli(*args, env=machine_b)
    assert meta(other)["cache"] == "hit-shared" and "cache hit-shared:" in other.stderr
    assert json.loads(other.out)["hits"] == json.loads(first.out)["hits"]
    # the entry as it was stored (its time of storing), not a copy's time
    assert meta(other)["stored_at"] == pytest.approx(float(rds.hget(ENTRY + key, "s") or 0), abs=0.001)
    assert meta(cli(*args, env=machine_b))["cache"] == "hit-disk"  # the hit filled B's disk level
    # warm-cache on A fills the shared level; B's searches of those queries are shared hits
    queries = tmp_path / "q.ndjson"
    queries.write_text("".join(json.dumps({"id": f"q{i}", "index": sample_index, "q": word, "size": 2}) + "\n"
                               for i, word in enumerate(("chair", "kettle", "desk"))))
    warm = cli("warm-cache", str(queries), "--ttl", "120", env=machine_a)
    assert warm.code == 0 and json.loads(warm.out)["refreshed"] == 3, warm.stderr
    for word in ("chair", "kettle", "desk"):
        m = meta(cli("search", sample_index, word, "-n", "2", "-o", "json", env=machine_b))
        assert m["cache"] == "hit-shared" and m["expires_in_s"] <= 120
    # B's warm-cache finds them fresh (in its disk level now) and asks nothing
    again = cli("warm-cache", str(queries), "--ttl", "120", env=machine_b)
    assert json.loads(again.out)["fresh"] == 3


def test_an_unreachable_redis_from_the_start_is_one_warning(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    env = env_for(tmp_path, "c", f"redis://127.0.0.1:{free_port()}/0")
    first = cli("search", sample_index, "sofa", "-o", "json", env=env)
    assert meta(first)["cache"] == "miss" and first.code == 0
    assert len(shared_warnings(first.stderr)) == 1, first.stderr
    assert "going on with the local cache levels" in first.stderr
    second = cli("search", sample_index, "sofa", "-o", "json", env=env)
    assert meta(second)["cache"] == "hit-disk" and not shared_warnings(second.stderr)
    queries = tmp_path / "q.ndjson"
    queries.write_text("".join(json.dumps({"id": f"q{i}", "index": sample_index, "q": f"w{i}"}) + "\n"
                               for i in range(10)))
    warm = cli("warm-cache", str(queries), env=env)
    assert warm.code == 0 and json.loads(warm.out)["refreshed"] == 10
    assert len(shared_warnings(warm.stderr)) == 1, warm.stderr


def test_a_redis_slower_than_its_timeout_is_one_warning(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    """A server that accepts connections and never answers: the lookup gives up after the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        env = env_for(tmp_path, "d", f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        started = time.monotonic()
        r = cli("search", sample_index, "mirror", "-o", "json", env=env)
        took = time.monotonic() - started
        assert meta(r)["cache"] == "miss"
        warnings = shared_warnings(r.stderr)
        assert len(warnings) == 1 and "no answer within 200 ms" in warnings[0], r.stderr
    assert took >= 0.2  # it did wait for the timeout (an upper bound would be a time limit: none here)


def test_redis_stopped_in_the_middle_of_a_run(sample_index: str, own_redis: str, isolated_env: dict[str, str],
                                              tmp_path: Path) -> None:
    """warm-cache reads its queries from a pipe; Redis is stopped after the first half is in it."""
    env = {**isolated_env, "ESCLI_CACHE_URL": own_redis}
    client = redis.Redis.from_url(own_redis)
    lines = [json.dumps({"id": f"q{i}", "index": sample_index, "q": f"mid{i}", "size": 1}) + "\n" for i in range(20)]
    proc = subprocess.Popen([str(Path(sys.executable).parent / "escli"), "warm-cache", "-", "-j", "2"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    proc.stdin.write("".join(lines[:10]).encode())
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while len(list(client.scan_iter(match=ENTRY + "*"))) < 10:
        assert proc.poll() is None and time.monotonic() < deadline, "the first half never reached Redis"
        time.sleep(0.05)
    client.close()
    stop_redis(own_redis)
    out, err = proc.communicate("".join(lines[10:]).encode(), timeout=120)
    stderr = err.decode()
    assert proc.returncode == 0, stderr
    assert json.loads(out)["refreshed"] == 20 and json.loads(out)["failed"] == 0
    assert len(shared_warnings(stderr)) == 1, stderr
    # the local levels have every answer
    settings = resolve(env=isolated_env)
    disk = DiskCache(settings.cache_dir)
    try:
        assert disk.stats()["entries"] == 20
    finally:
        disk.close()


def test_an_in_process_run_goes_on_when_redis_stops(own_redis: str, tmp_path: Path) -> None:
    warnings: list[str] = []
    value = orjson.dumps({"took": 1, "hits": {"hits": []}})
    levels = CacheLevels([MemoryCache(), DiskCache(tmp_path / "c", warn=warnings.append),
                          SharedCache(SharedConfig(own_redis), warnings.append)])
    try:
        for i in range(5):
            levels.set(f"{i:064x}", value, 60, "p")
        shared = levels.level("shared")
        assert shared is not None
        shared.flush()  # type: ignore[attr-defined]
        assert shared.get(f"{0:064x}") is not None
        stop_redis(own_redis)
        for i in range(5, 10):
            levels.set(f"{i:064x}", value, 60, "p")
            got = levels.get(f"{i:064x}")
            assert got is not None and got.level == "memory"
        assert levels.get(f"{99:064x}") is None
        assert len(warnings) == 1 and "going on with the local cache levels" in warnings[0]
    finally:
        levels.close()
    assert len(warnings) == 1


def test_cache_clear_index_empties_every_level(cli: Cli, sample_index: str, rds: redis.Redis, tmp_path: Path,
                                               isolated_env: dict[str, str]) -> None:
    # in-process, all three levels
    warnings: list[str] = []
    value = orjson.dumps({"took": 1, "hits": {"hits": []}})
    levels = CacheLevels([MemoryCache(), DiskCache(tmp_path / "c"), SharedCache(SharedConfig(REDIS_URL),
                                                                                   warnings.append)])
    try:
        for i in range(4):
            levels.set(f"{i:064x}", value, 60, "gone" if i % 2 else "kept")
        levels.level("shared").flush()  # type: ignore[union-attr]
        assert levels.clear_levels("gone") == {"memory": 2, "disk": 2, "shared": 2}
        for name in ("memory", "disk", "shared"):
            level = levels.level(name)
            assert level is not None
            assert [i for i in range(4) if level.get(f"{i:064x}") is not None] == [0, 2], name
        assert not rds.exists(INDEX_SET + "gone") and rds.exists(INDEX_SET + "kept")
    finally:
        levels.close()
    assert not warnings
    # through the CLI: search fills disk and shared, `cache clear --index` empties both, the other index stays
    env = {"ESCLI_CACHE_URL": REDIS_URL}
    for q in ("lamp", "desk"):
        assert meta(cli("search", sample_index, q, "-o", "json", env=env))["cache"] == "miss"
    stats = json.loads(cli("cache", "stats", "-o", "json", env=env).out)
    assert stats["levels"]["shared"]["indices"][sample_index]["entries"] == 2
    assert stats["levels"]["disk"]["indices"][sample_index]["entries"] == 2
    assert stats["levels"]["memory"]["size_limit"] > 0
    r = cli("cache", "clear", "--index", sample_index, "-o", "json", env=env)
    assert r.code == 0, r.stderr
    assert json.loads(r.out)["levels"] == {"disk": 2, "shared": 2}
    stats = json.loads(cli("cache", "stats", "-o", "json", env=env).out)
    assert sample_index not in stats["levels"]["shared"]["indices"] and stats["entries"] == 0
    assert "kept" in stats["levels"]["shared"]["indices"]
    assert meta(cli("search", sample_index, "lamp", "-o", "json", env=env))["cache"] == "miss"
    r = cli("cache", "clear", "-o", "json", env=env)
    assert json.loads(r.out)["levels"]["shared"] == 3  # `kept`'s two and lamp again
    assert list(rds.scan_iter(match="escli:v1:*")) == []


def test_cache_clear_with_redis_unreachable_says_so(cli: Cli, tmp_path: Path) -> None:
    r = cli("cache", "clear", env={"ESCLI_CACHE_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert r.code == 1 and "could not be cleared" in r.stderr and len(shared_warnings(r.stderr)) == 1


def test_a_pickled_value_in_redis_is_refused_never_loaded(cli: Cli, sample_index: str, rds: redis.Redis,
                                                          isolated_env: dict[str, str]) -> None:
    args = ("search", sample_index, "clock", "-o", "json")
    env = {"ESCLI_CACHE_URL": REDIS_URL}
    key = meta(cli(*args, env=env))["key"]
    payload = pickle.dumps({"took": 1, "hits": {"hits": [{"_id": "evil"}]}})
    now = time.time()
    rds.hset(ENTRY + key, mapping={"v": payload, "s": repr(now), "x": repr(now + 60), "i": sample_index})
    rds.expire(ENTRY + key, 60)
    # this machine's disk level still has the JSON entry: ask from another cache directory
    other = {**env, "XDG_CACHE_HOME": isolated_env["XDG_CACHE_HOME"] + "-other"}
    r = cli(*args, env=other)
    assert meta(r)["cache"] == "miss" and "evil" not in r.out
    assert "is not escli's (not a JSON object (refused; escli never unpickles))" in r.stderr
    assert rds.hget(ENTRY + key, "v") != payload  # dropped, then stored again as JSON by the miss
    # a string where escli keeps a hash (what a pickling client would write) is refused the same way
    rds.set(ENTRY + key, payload, ex=60)
    third = {**env, "XDG_CACHE_HOME": isolated_env["XDG_CACHE_HOME"] + "-third"}
    r = cli(*args, env=third)
    assert meta(r)["cache"] == "miss" and "WRONGTYPE" in r.stderr


def test_a_repeated_query_in_a_batch_hits_memory(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    queries = tmp_path / "q.ndjson"
    line = {"index": sample_index, "q": "laptop", "size": 3}
    queries.write_text("".join(json.dumps({**line, "id": f"q{i}"}) + "\n" for i in range(6)))
    r = cli("batch", str(queries), "-j", "1", "--ordered")
    assert r.code == 0, r.stderr
    results = [json.loads(x) for x in r.out.splitlines()]
    assert [x["id"] for x in results] == [f"q{i}" for i in range(6)]
    assert "cache" not in results[0] and all(x["cache"] == "hit-memory" for x in results[1:])
    assert all(x["hits"] == results[0]["hits"] for x in results)
    assert "1 requests, 5 from the memory cache" in r.stderr
    off = cli("--no-cache", "batch", str(queries), "-j", "1")
    assert off.code == 0 and "6 requests" in off.stderr and "memory cache" not in off.stderr


def test_entry_survives_as_is_through_the_shared_level(rds: redis.Redis) -> None:
    shared = SharedCache(SharedConfig(REDIS_URL))
    try:
        entry = CacheEntry(b'{"a": 1}', time.time() - 5, time.time() + 30, "idx", "disk")
        shared.put("k" * 64, entry)
        shared.flush()
        got = shared.get("k" * 64)
        assert got is not None and (got.value, got.index, got.level) == (entry.value, "idx", "shared")
        assert got.stored_at == pytest.approx(entry.stored_at) and got.expires_at == pytest.approx(entry.expires_at)
        assert 0 < rds.pttl(ENTRY + "k" * 64) <= 30_000
    finally:
        shared.close()


def test_redis_script_is_idempotent_runs_unprivileged_and_refuses_a_taken_port() -> None:
    port = free_port()
    env = {**os.environ, "REDIS_PORT": str(port)}
    script = ["bash", str(ROOT / "scripts" / "redis.sh")]

    def sh(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*script, *args], env={**env, **extra}, capture_output=True, text=True, check=False)

    try:
        assert sh("up").returncode == 0
        again = sh("up")
        assert again.returncode == 0 and "already running" in again.stderr
        status = sh("status")
        assert status.returncode == 0 and status.stdout.startswith(f"redis://127.0.0.1:{port}/0 pid ")
        pid = status.stdout.split()[-1]
        owner = subprocess.run(["ps", "-o", "user=", "-p", pid], capture_output=True, text=True, check=True)
        if os.getuid() == 0:
            assert owner.stdout.strip() in ("escli-redis", "escli-r+")  # ps may shorten long names
        assert redis.Redis(port=port).ping()
    finally:
        down = sh("down")
    assert down.returncode == 0 and "stopped" in down.stderr
    assert sh("down").returncode == 0  # nothing to stop is not an error
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = sh("up", REDIS_PORT=str(taken.getsockname()[1]))
    assert busy.returncode != 0 and "in use by another process" in busy.stderr
