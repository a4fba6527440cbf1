"""Profile at scale against the real engine: --workers, profile merge, --slowlog replay, --find-max, --repeat.

Assertions are counts and relations between figures of the same run, never a duration.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from escli.core.slowlog import read_slowlog
from escli.profiler import Histogram, RequestStats
from tests.conftest import ROOT, Result
from tests.support.fault_proxy import FaultProxy

Cli = Callable[..., Result]
Proc = Callable[..., subprocess.CompletedProcess[bytes]]


def _json(p: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    assert p.returncode == 0, p.stderr.decode()
    doc: dict[str, Any] = json.loads(p.stdout)
    return doc


def test_workers_counts_add_up_closed_and_open(escli_proc: Proc, sample_index: str) -> None:
    doc = _json(escli_proc("profile", sample_index, "laptop", "-n", "101", "-j", "3", "--workers", "2",
                           "--warmup", "5", "-F", "json"))
    assert doc["workers"] == 2 and doc["concurrency"] == 3
    assert doc["overall"]["requests"] == doc["overall"]["ok"] == 101
    assert doc["overall"]["latency_ms"]["count"] == 101 and doc["warmup"]["sent"] == 5
    assert sum(r["ok"] for r in doc["timeline"]["overall"]) == 101
    assert doc["client"]["cpu_seconds"] > 0
    doc = _json(escli_proc("profile", sample_index, "phone", "-n", "60", "--rate", "200", "--workers", "3",
                           "--warmup", "0", "-F", "json"))
    assert doc["workers"] == 3 and doc["mode"] == "open" and doc["rate"] == 200
    assert doc["overall"]["requests"] == 60 and doc["client"]["late_sends"] is not None


def test_ctrl_c_stops_every_worker_and_reports_what_was_measured(isolated_env: dict[str, str], es: httpx.Client,
                                                                index_name: Callable[[str], str]) -> None:
    # An index of its own: its search count moves only with this run's load (other tests search `products`).
    index = index_name("ctrlc")
    es.put(f"/{index}", json={"settings": {"number_of_shards": 1}}).raise_for_status()
    es.post(f"/{index}/_doc?refresh=true", json={"name": "laptop"}).raise_for_status()

    def searches() -> int:
        stats = es.get(f"/{index}/_stats/search").json()
        return int(stats["_all"]["total"]["search"]["query_total"])

    before = searches()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "escli"), "profile", index, "laptop",
                             "-d", "120s", "-j", "2", "--workers", "2", "--warmup", "0", "-F", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=isolated_env)
    while searches() < before + 50:  # the load runs (the engine counts its searches): now interrupt it
        assert proc.poll() is None, proc.communicate()[1].decode()
        time.sleep(0.05)  # not a limit: how often to look
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate()
    assert proc.returncode == 130, err.decode()
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["workers"] == 2 and doc["overall"]["requests"] > 0


def test_merge_of_two_saved_runs_is_exact(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path, text, n in ((a, "laptop", "120"), (b, "phone", "80")):
        r = cli("profile", sample_index, text, "-n", n, "--rate", "300", "--save", str(path), "-F", "json")
        assert r.code == 0, r.stderr
    saved = [json.loads(p.read_text()) for p in (a, b)]
    r = cli("profile", "merge", str(a), str(b), "-F", "json", "--fail-if", "errors>0",
            "--report", str(tmp_path / "m.html"))
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["merged"] == [str(a), str(b)] and doc["workers"] == 2 and doc["rate"] == 600
    assert doc["overall"]["requests"] == 200 and set(doc["queries"]) == {"laptop", "phone"}
    assert doc["gates"][0]["passed"] and (tmp_path / "m.html").stat().st_size > 1000
    every = Histogram()
    for s in saved:
        for q in s["state"]["queries"].values():
            every.merge(RequestStats.from_dict(q).latency)
    for label, p in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)):
        assert doc["overall"]["latency_ms"][label] == round(every.value_at(p) / 1000, 3)
    # a saved file without its histograms is refused in one line
    old = {k: v for k, v in saved[0].items() if k != "state"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    r = cli("profile", "merge", str(a), str(tmp_path / "old.json"))
    assert r.code == 2 and "old.json: saved without its histograms" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_merge_is_a_subcommand_and_an_index_named_merge_can_be_profiled(cli: Cli, sample_index: str) -> None:
    """`merge` was a magic INDEX value: `escli profile run merge` now sends its searches to an index named merge
    (none here: the engine's 404 names it), and `escli profile INDEX` is still a run."""
    r = cli("profile", "run", "merge", "-n", "3", "--warmup", "0")
    assert r.code == 4 and "no such index [merge]" in r.stderr, r.stderr
    r = cli("profile", sample_index, "laptop", "-n", "3", "--warmup", "0", "-F", "json")
    assert r.code == 0 and json.loads(r.stdout)["overall"]["requests"] == 3, r.stderr
    r = cli("profile", "merge")
    assert r.code == 2 and "Missing argument 'FILE'" in r.stderr


def _slowlog_file(es_url: str) -> Path:
    port = es_url.rsplit(":", 1)[-1].strip("/")
    return ROOT / ".cache" / "es" / "run" / port / "node-0" / "logs" / f"escli-{port}_index_search_slowlog.json"


def test_slowlog_of_searches_replays_those_searches(cli: Cli, es: httpx.Client, es_url: str,
                                                   index_name: Callable[[str], str], tmp_path: Path) -> None:
    """The test engine (integ-test-zip) writes the JSON search slowlog as the default distribution does."""
    name = index_name("slow")
    es.put(f"/{name}", json={"settings": {"number_of_shards": 2, "number_of_replicas": 0,
                                          "index.search.slowlog.threshold.query.trace": "0ms",
                                          "index.search.slowlog.threshold.fetch.trace": "0ms"}}).raise_for_status()
    docs = "".join(json.dumps({"index": {}}) + "\n" + json.dumps({"t": w, "n": i}) + "\n"
                   for i, w in enumerate(["red apple", "green apple", "red car", "blue car"] * 5))
    es.post(f"/{name}/_bulk", params={"refresh": "true"}, content=docs,
            headers={"content-type": "application/x-ndjson"}).raise_for_status()
    bodies = {"apple": {"query": {"match": {"t": "apple"}}, "size": 3},
              "car": {"query": {"match": {"t": "car"}}, "sort": [{"n": "asc"}], "size": 2}}
    sent = {"apple": 3, "car": 1}
    for key, times in sent.items():
        for _ in range(times):
            r = cli("search", name, "--body", "-", "-o", "json", "--no-cache", stdin=json.dumps(bodies[key]).encode())
            assert r.code == 0, r.stderr
    log = _slowlog_file(es_url)
    wanted = sum(sent.values()) * 2  # one query-phase line per shard per search
    mine: list[bytes] = []
    while len([x for x in mine if b"slowlog.query" in x]) < wanted:  # the engine writes each line at once
        mine = [x for x in log.read_bytes().splitlines() if f'"[{name}]['.encode() in x]
    own = tmp_path / "slow.json"
    own.write_bytes(b"\n".join(mine) + b"\n")
    specs = read_slowlog(enumerate(own.read_bytes().splitlines(), start=1), str(own))
    assert sorted(s.weight for s in specs) == [1.0, 3.0] and {s.index for s in specs} == {name}
    for spec in specs:  # each replayed body finds what the search the test made found
        key = "apple" if spec.weight == 3.0 else "car"
        orig = es.post(f"/{name}/_search", json=bodies[key]).json()["hits"]["hits"]
        again = es.post(f"/{name}/_search", json=spec.body).json()["hits"]["hits"]
        assert [h["_id"] for h in again] == [h["_id"] for h in orig]
    r = cli("profile", "--slowlog", str(own), "-n", "40", "--seed", "1", "--warmup", "0", "-F", "json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["overall"]["requests"] == doc["overall"]["ok"] == 40
    weights = {q["weight"] for q in doc["queries"].values()}
    assert weights == {1.0, 3.0}
    counts = {q["weight"]: q["requests"] for q in doc["queries"].values()}
    assert counts[3.0] > counts[1.0]  # with this seed: picked by weight


def test_find_max_lands_between_a_passing_and_a_failing_rate(cli: Cli, es_url: str, sample_index: str) -> None:
    """0.2 s in front of every search and at most 2 in flight: no client can be served above 10/s, so a rate
    of 20/s or more queues for a second within a 2 s step and breaks p99>600ms whatever the machine's speed."""
    with FaultProxy(es_url, lifetime=600) as proxy:
        proxy.delay(0.2, match=b"_search")
        r = cli("--url", proxy.url, "profile", sample_index, "laptop", "--find-max", "--rate", "2", "-j", "2",
                "-d", "2s", "--warmup", "0", "--fail-if", "p99>600ms", "-F", "json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    steps = doc["steps"]
    best = doc["max_rate"]
    assert best is not None and steps[0]["rate"] == 2.0 and best < 20
    assert any(s["passed"] and s["rate"] == best for s in steps)
    above = [s for s in steps if s["rate"] > best]
    assert above and not any(s["passed"] for s in above)
    assert all("p99" in s["latency_ms"] or "max" in s["latency_ms"] for s in steps)
    assert doc["rate"] == best and all(g["passed"] for g in doc["gates"])


def test_find_max_needs_a_gate(cli: Cli, sample_index: str) -> None:
    r = cli("profile", sample_index, "--find-max")
    assert r.code == 2 and "--find-max needs at least one --fail-if" in r.stderr


def test_repeat_spread_is_computed_from_the_runs(cli: Cli, sample_index: str) -> None:
    r = cli("profile", sample_index, "laptop", "-n", "50", "--repeat", "3", "--warmup", "2", "-F", "json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["repeat"] == 3 and len(doc["runs"]) == 3
    assert doc["overall"]["requests"] == 150 and all(run["overall"]["requests"] == 50 for run in doc["runs"])
    sp = doc["spread"]["overall"]
    tps = [run["overall"]["throughput"] for run in doc["runs"]]
    assert sp["throughput"]["values"] == tps and sp["throughput"]["median"] == sorted(tps)[1]
    p50s = [run["overall"]["latency_ms"]["p50"] for run in doc["runs"]]
    assert sp["latency_ms"]["p50"]["median"] == sorted(p50s)[1] and sp["latency_ms"]["p50"]["cv"] is not None
    table = cli("profile", sample_index, "laptop", "-n", "20", "--repeat", "2", "--warmup", "0", "-F", "table")
    assert table.code == 0 and "median" in table.out and "cv" in table.out


@pytest.mark.parametrize("bad", ["0", "two", "-1"])
def test_bad_workers_is_one_line(cli: Cli, sample_index: str, bad: str) -> None:
    r = cli("profile", sample_index, "--workers", bad)
    assert r.code == 2 and "--workers" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_save_keeps_the_histograms(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    r = cli("profile", sample_index, "-n", "30", "--save", str(out), "-F", "json")
    assert r.code == 0, r.stderr
    saved = orjson.loads(out.read_bytes())
    assert saved["state"]["version"] == 1
    assert sum(RequestStats.from_dict(q).requests for q in saved["state"]["queries"].values()) == 30
