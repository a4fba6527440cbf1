"""`escli export --since FIELD --state FILE` against the real engine: each version of a document exactly once."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.test_export import assert_released
from tests.support.fault_proxy import FaultProxy
from tests.support.indices import make_index, put_docs

N = 3_000
BASE = datetime(2024, 1, 1, tzinfo=UTC)
MAPPING = {"settings": {"number_of_shards": 3},
           "mappings": {"properties": {"updated_at": {"type": "date"}, "seq": {"type": "long"},
                                       "stamp": {"type": "date_nanos"}, "name": {"type": "keyword"}}}}
Cli = Callable[..., Any]


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def doc(i: int, version: int = 0, at: datetime | None = None) -> dict[str, Any]:
    when = at or BASE + timedelta(seconds=i + version * 100_000)
    return {"name": f"doc {i} v{version}", "updated_at": iso(when), "seq": i + version * 100_000,
            "stamp": f"{when:%Y-%m-%dT%H:%M:%S}.{i % 1000:03d}123456Z"}  # nanoseconds beyond a double's reach




@pytest.fixture()
def index(es: httpx.Client, index_name: Callable[[str], str]) -> Iterator[str]:
    yield make_index(es, index_name("since"), MAPPING, {f"d{i:05d}": doc(i) for i in range(N)})


def ids(path: Path) -> list[str]:
    raw = path.read_bytes()
    raw = gzip.decompress(raw) if path.suffix == ".gz" else raw
    return [orjson.loads(line)["_id"] for line in raw.splitlines() if line]


def run(cli: Cli, index: str, out: Path, *extra: str) -> Any:
    r = cli("export", index, "--out", str(out), "--page-size", "200", *extra)
    return r


def test_added_and_updated_documents_come_out_exactly_once(cli: Cli, es: httpx.Client, index: str,
                                                           tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = tmp_path / "1.ndjson"
    r = run(cli, index, first, "--since", "updated_at", "--state", str(state))
    assert r.code == 0, r.stderr
    got = ids(first)
    assert len(got) == N and set(got) == {f"d{i:05d}" for i in range(N)}
    saved = orjson.loads(state.read_bytes())
    assert saved["mark"] == iso(BASE + timedelta(seconds=N - 1, milliseconds=0)).replace("Z", ".000Z")
    assert saved["index"] == index and saved["field"] == "updated_at" and saved["escli_version"]
    assert {"query", "finished_at"} <= set(saved)
    assert state.stat().st_mode & 0o777 == 0o600

    updated = {f"d{i:05d}": doc(i, version=1) for i in range(0, N, 97)}
    added = {f"n{i:05d}": doc(N + i, version=1) for i in range(40)}
    put_docs(es, index, {**updated, **added})
    second = tmp_path / "2.ndjson"
    r = run(cli, index, second, "--since", "updated_at", "--state", str(state))
    assert r.code == 0, r.stderr
    got = ids(second)
    assert sorted(got) == sorted({**updated, **added})  # each changed document once, nothing else

    before, stat = state.read_bytes(), state.stat()
    third = tmp_path / "3.ndjson"
    r = run(cli, index, third, "--since", "updated_at", "--state", str(state))
    assert r.code == 0, r.stderr
    assert ids(third) == [] and "nothing new" in r.stderr
    assert state.read_bytes() == before and state.stat().st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize("field", ["seq", "stamp"])
def test_numbers_and_nanoseconds_keep_their_exact_mark(cli: Cli, es: httpx.Client, index: str, tmp_path: Path,
                                                      field: str) -> None:
    """A long's or a date_nanos' mark is exact (a max aggregation's double would cut it and lose documents)."""
    state = tmp_path / "state.json"
    assert run(cli, index, tmp_path / "1.ndjson", "--since", field, "--state", str(state)).code == 0
    assert len(ids(tmp_path / "1.ndjson")) == N
    mark = orjson.loads(state.read_bytes())["mark"]
    if field == "seq":
        assert mark == N - 1
    else:
        assert mark.endswith("123456Z") and len(mark.split(".")[1]) == 10  # nine digits and Z
    put_docs(es, index, {"late": doc(N + 5, version=1)})
    r = run(cli, index, tmp_path / "2.ndjson", "--since", field, "--state", str(state))
    assert r.code == 0, r.stderr
    assert ids(tmp_path / "2.ndjson") == ["late"]


def test_a_failed_run_leaves_the_state_and_a_repeat_gives_the_same_result(cli: Cli, es: httpx.Client, index: str,
                                                                         es_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    assert run(cli, index, tmp_path / "0.ndjson", "--since", "updated_at", "--state", str(state)).code == 0
    before = state.read_bytes()
    changed = {f"d{i:05d}": doc(i, version=1) for i in range(0, N, 5)}
    put_docs(es, index, changed)
    with FaultProxy(es_url, lifetime=600) as proxy:
        # every second page of a unit fails (503, no retries left): the run stops after some pages were written
        proxy.fail(503, times=100_000, match=b"search_after")
        r = cli("--url", proxy.url, "--max-retries", "0", "export", index, "--out", str(tmp_path / "x.ndjson"),
                "--page-size", "50", "--since", "updated_at", "--state", str(state))
        assert r.code in (3, 4), r.stderr
        assert proxy.injected > 0
    assert state.read_bytes() == before and not (tmp_path / "x.ndjson").exists()
    r = run(cli, index, tmp_path / "x.ndjson", "--since", "updated_at", "--state", str(state))
    assert r.code == 0, r.stderr
    assert sorted(ids(tmp_path / "x.ndjson")) == sorted(changed)


def test_resume_exports_the_window_the_run_began_with(cli: Cli, es: httpx.Client, index: str, es_url: str,
                                                     tmp_path: Path) -> None:
    state, ckpt, out = tmp_path / "state.json", tmp_path / "ckpt", tmp_path / "out.ndjson"
    with FaultProxy(es_url, lifetime=600) as proxy:
        proxy.fail(503, times=100_000, match=b"search_after")
        r = cli("--url", proxy.url, "--max-retries", "0", "export", index, "--out", str(out), "--page-size", "50",
                "--since", "updated_at", "--state", str(state), "--checkpoint", str(ckpt))
        assert r.code in (3, 4), r.stderr
    recorded = orjson.loads(ckpt.read_bytes())["request"]["since"]
    assert recorded["taken"] and recorded["mark"] is not None and recorded["last_mark"] is None
    assert not state.exists()
    # written after the window was taken: not part of this run (the next one takes it)
    put_docs(es, index, {"later": doc(N + 10, version=1)})
    r = cli("export", index, "--out", str(out), "--page-size", "50", "--since", "updated_at", "--state", str(state),
            "--checkpoint", str(ckpt), "--resume")
    assert r.code == 0, r.stderr
    got = ids(out)
    assert len(got) == N and len(set(got)) == N and "later" not in got
    r = run(cli, index, tmp_path / "next.ndjson", "--since", "updated_at", "--state", str(state))
    assert r.code == 0 and ids(tmp_path / "next.ndjson") == ["later"]


def test_partitions_together_give_the_same_set(cli: Cli, es: httpx.Client, index: str, tmp_path: Path) -> None:
    def both(tag: str) -> list[list[str]]:
        out = []
        for k in (1, 2):
            path = tmp_path / f"{tag}-{k}.ndjson"
            r = run(cli, index, path, "--since", "updated_at", "--state", str(tmp_path / f"state-{k}.json"),
                    "--partition", f"{k}/2")
            assert r.code == 0, r.stderr
            out.append(ids(path))
        return out

    one, two = both("a")
    assert one and two and not set(one) & set(two)
    assert sorted(one + two) == sorted(f"d{i:05d}" for i in range(N))
    changed = {f"d{i:05d}": doc(i, version=1) for i in range(0, N, 7)}
    changed.update({f"n{i}": doc(N + i, version=1) for i in range(30)})
    put_docs(es, index, changed)
    one, two = both("b")
    assert not set(one) & set(two)
    assert sorted(one + two) == sorted(changed)
    assert orjson.loads((tmp_path / "state-1.json").read_bytes())["partition"] == "1/2"


def test_since_value_and_lag(cli: Cli, es: httpx.Client, index: str, tmp_path: Path) -> None:
    out = tmp_path / "o.ndjson"
    start = iso(BASE + timedelta(seconds=N - 11))
    r = run(cli, index, out, "--since", "updated_at", "--since-value", start)
    assert r.code == 0, r.stderr
    assert sorted(ids(out)) == [f"d{i:05d}" for i in range(N - 10, N)]
    r = run(cli, index, out, "--since", "seq", "--since-value", str(N - 4))
    assert r.code == 0 and sorted(ids(out)) == [f"d{i:05d}" for i in range(N - 3, N)]
    # --lag: documents newer than now - lag wait for a later run
    now = datetime.now(UTC)
    put_docs(es, index, {"recent": doc(0, version=2, at=now - timedelta(minutes=5)),
                    "older": doc(0, version=2, at=now - timedelta(hours=3))})
    state = tmp_path / "lag.json"
    r = run(cli, index, out, "--since", "updated_at", "--since-value", start, "--lag", "1h", "--state", str(state))
    assert r.code == 0, r.stderr
    got = ids(out)
    assert "older" in got and "recent" not in got
    mark = datetime.fromisoformat(orjson.loads(state.read_bytes())["mark"].replace("Z", "+00:00"))
    assert now - timedelta(hours=1, minutes=1) < mark <= now - timedelta(minutes=59)
    r = run(cli, index, out, "--since", "updated_at", "--state", str(state))
    assert r.code == 0 and ids(out) == ["recent"]


@pytest.mark.parametrize(("args", "needle"), [
    (["--state", "s.json"], "--state needs --since"),
    (["--lag", "1h"], "--lag needs --since"),
    (["--since", "nope"], "--since nope: not a field"),
    (["--since", "name"], "--since name: a keyword field"),
    (["--since", "seq", "--lag", "1h"], "--lag: seq is a long field"),
    (["--since", "updated_at", "--since-value", "yesterday"], "--since-value yesterday"),
    (["--since", "updated_at", "--lag", "soon"], "--lag soon"),
    (["--since", "updated_at", "--max-docs", "5"], "--max-docs"),
])
def test_bad_since_options_are_one_line_exit_2(cli: Cli, index: str, tmp_path: Path, args: list[str],
                                               needle: str) -> None:
    r = cli("export", index, "--out", str(tmp_path / "o.ndjson"), *args)
    assert r.code == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("field", ["nope", "name"])
def test_a_refused_since_field_leaves_no_point_in_time_open(cli: Cli, es: httpx.Client, index: str,
                                                           tmp_path: Path, field: str) -> None:
    """The field is checked against the mapping fetched while the PIT opens (both at once): the PIT is closed."""
    r = cli("-v", "export", index, "--out", str(tmp_path / "o.ndjson"), "--since", field)
    assert r.code == 2, r.stderr
    assert f"--since {field}:" in r.stderr
    assert_released(es, r.stderr)


def test_a_state_for_another_export_is_refused(cli: Cli, index: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    assert run(cli, index, tmp_path / "o.ndjson", "--since", "updated_at", "--state", str(state)).code == 0
    r = run(cli, index, tmp_path / "o.ndjson", "--since", "seq", "--state", str(state))
    assert r.code == 2 and "--state" in r.stderr and "field" in r.stderr
    r = run(cli, index, tmp_path / "o.ndjson", "--since", "updated_at", "--state", str(state), "--query", "name:x")
    assert r.code == 2 and "query" in r.stderr


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_every_format_and_out_dir(cli: Cli, es: httpx.Client, index: str, tmp_path: Path, fmt: str) -> None:
    state = tmp_path / "state.json"
    d = tmp_path / "dir"
    r = cli("export", index, "--out-dir", str(d), "--format", fmt, "--since", "updated_at", "--state", str(state)) \
        if fmt != "json" else cli("export", index, "--out", str(tmp_path / "o.json"), "--since", "updated_at",
                                   "--state", str(state))
    assert r.code == 0, r.stderr
    put_docs(es, index, {"d00001": doc(1, version=1)})
    r = cli("export", index, "--out", str(tmp_path / f"o2.{fmt}"), "--since", "updated_at", "--state", str(state))
    assert r.code == 0, r.stderr
    import duckdb

    reader = {"csv": "read_csv", "json": "read_json", "parquet": "read_parquet"}[fmt]
    rows = duckdb.sql(f"select _id from {reader}('{tmp_path / f'o2.{fmt}'}')").fetchall()
    assert rows == [("d00001",)]


@pytest.mark.opensearch
def test_since_on_opensearch(cli: Cli, opensearch: httpx.Client, index_name: Callable[[str], str],
                             tmp_path: Path) -> None:
    """OpenSearch pages in its own stable order (one stream per slice): the window rides in the query all the same."""
    name = make_index(opensearch, index_name("os"), MAPPING, {f"d{i:05d}": doc(i) for i in range(300)})
    url = str(opensearch.base_url).rstrip("/")
    state = tmp_path / "state.json"
    try:
        r = cli("--url", url, "export", name, "--out", str(tmp_path / "1.ndjson"), "--since", "updated_at",
                "--state", str(state))
        assert r.code == 0, r.stderr
        assert len(ids(tmp_path / "1.ndjson")) == 300
        put_docs(opensearch, name, {"d00003": doc(3, version=1), "new": doc(400, version=1)})
        r = cli("--url", url, "export", name, "--out", str(tmp_path / "2.ndjson"), "--since", "updated_at",
                "--state", str(state))
        assert r.code == 0, r.stderr
        assert sorted(ids(tmp_path / "2.ndjson")) == ["d00003", "new"]
        before = state.read_bytes()
        r = cli("--url", url, "export", name, "--out", str(tmp_path / "3.ndjson"), "--since", "updated_at",
                "--state", str(state))
        assert r.code == 0 and ids(tmp_path / "3.ndjson") == [] and state.read_bytes() == before
    finally:
        opensearch.delete(f"/{name}", params={"ignore_unavailable": "true"})
