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
from tests.support.delay_proxy import DelayProxy

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


SERIAL_DELAY = 0.2  # the proxy passes one request at a time, 0.2 s each: a capacity of exactly 5 per second
FIND_MAX = ("--fail-if", "p90>1s", "-j", "4", "-d", "5s", "--warmup", "1s", "-F", "json")


def _profile(cli: Cli, url: str, index: str, *args: str) -> dict[str, Any]:
    r = cli("--url", url, "profile", index, "laptop", *args, *FIND_MAX)
    doc: dict[str, Any] = json.loads(r.stdout)
    doc["exit"] = r.code
    return doc


def test_find_max_half_holds_and_twice_fails_three_times_out_of_three(cli: Cli, es_url: str,
                                                                      sample_index: str) -> None:
    """The capacity is the test's, not the machine's: a proxy lets one request through at a time, each held
    0.2 s, so nothing passes faster than C = 5/s however fast or busy the machine (the engine's own time adds
    latency outside the gate, never capacity). The gate, p90 > 1 s, is five times the 0.2 s a request costs:

    * Below C nothing queues, so p90 is 0.2 s plus the engine and the client; breaking 1 s would take the machine
      stalling 10 % of the requests by 0.8 s each. So every step at or below C passes.
    * Above C the queue at the proxy grows by (r/C - 1) s every second. A 5 s step plus its 1 s warm-up (whose
      backlog carries over) breaks p90 > 1 s once r/C - 1 > ~0.8/5, so the found maximum M lies between about
      C (everything below passes) and 1.2 C.
    * Half of it, M/2 <= 0.6 C: no queue at all, p90 about 0.2 s: five times inside the gate.
      Twice it, 2M >= 2 C: the queue grows a second every second, p90 of 4-5 s: four times past the gate.

    Neither margin depends on the machine's speed, and p90 needs 10 samples, which even the slowest step (3/s
    for 5 s) has several times over, so every step decides on a sample that supports it."""
    with DelayProxy(es_url, serial_delay=SERIAL_DELAY, lifetime=900) as proxy:
        found = _profile(cli, proxy.url, sample_index, "--find-max")
        assert found["exit"] == 0, found
        best, low = found["max_rate"], found["min_failing_rate"]
        capacity = found["capacity"]
        assert 0 < capacity["throughput"] <= 1 / SERIAL_DELAY * 1.02 and capacity["concurrency"] == 4
        assert found["start_rate"] == found["steps"][0]["rate"]  # the search starts from the measured capacity
        assert best is not None and low is not None and best < low <= best * 1.1
        rates = [s["rate"] for s in found["steps"]]
        assert any(r > rates[0] for r in rates) and any(r < max(rates) for r in rates)  # it moved both ways
        for step in found["steps"]:
            assert step["outcome"] in ("pass", "fail") and step["requests"] >= step["needed"] >= 10
            assert all(t["latency_ms"]["count"] >= 10 and "p90" in t["latency_ms"] for t in step["tries"])
            if step["outcome"] == "fail":  # confirmed before the bound moved
                assert [t["outcome"] for t in step["tries"]].count("fail") >= 2
            assert all(t["warmup_sent"] >= 1 for t in step["tries"])  # each try warmed up on its own
        for _ in range(3):
            half = _profile(cli, proxy.url, sample_index, "--rate", f"{best / 2:g}")
            assert half["exit"] == 0 and all(g["passed"] for g in half["gates"]), half["gates"]
            twice = _profile(cli, proxy.url, sample_index, "--rate", f"{best * 2:g}")
            assert twice["exit"] == 1 and not twice["gates"][0]["passed"], twice["gates"]


def test_find_max_does_not_decide_on_a_sample_too_small_for_its_percentile(cli: Cli, sample_index: str) -> None:
    """p99 needs 100 samples (125 planned): at 2/s that is over a minute, more than --max-step 10s allows, so the
    step is undecided rather than read from 20 samples, and no maximum is claimed."""
    r = cli("profile", sample_index, "laptop", "--find-max", "--rate", "2", "--max-step", "10s", "-d", "1s",
            "--fail-if", "p99>5s", "--warmup", "0", "-F", "json")
    assert r.code == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["max_rate"] is None and doc["undecided_rates"] == [2.0]
    assert doc["steps"][0]["outcome"] == "undecided" and doc["steps"][0]["needed"] == 125
    assert "undecided" in r.stderr and "--max-step" in r.stderr


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


def test_profile_merge_help_is_merges_own(escli_proc: Proc) -> None:
    """`escli profile merge --help` showed profile's usage (issue 36): merge is an INDEX value to click."""
    p = escli_proc("profile", "merge", "--help")
    out = p.stdout.decode()
    assert p.returncode == 0 and out.startswith("Usage: escli profile merge [OPTIONS] FILE..."), out
    assert "--fail-if" in out and "--report" in out and "--rate" not in out and "--find-max" not in out
