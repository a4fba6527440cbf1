"""Several clusters: failover, round-robin, weighted and fan-out over two real engines (ESCLI_TEST_URL and
ESCLI_TEST_OTHER_URL), with the fault proxy in front of one of them for a cluster that dies mid-run."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ES_URL, OTHER_URL
from tests.support.fault_proxy import FaultProxy

Cli = Callable[..., Any]
WORDS = ["laptop", "kettle", "camera", "boots", "coffee", "chair", "lamp", "phone"]


def free_port() -> int:
    """A port nothing listens on (a cluster that is down from the start: connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEAD_URL = f"http://127.0.0.1:{free_port()}"


def docs(offset: int, n: int) -> list[dict[str, Any]]:
    return [{"name": f"{WORDS[i % len(WORDS)]} {WORDS[(i * 3) % len(WORDS)]} number {i}",
             "price": offset + i, "n": offset + i} for i in range(n)]


def load(client: httpx.Client, index: str, rows: list[dict[str, Any]], id_prefix: str) -> None:
    client.put(f"/{index}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                                  "mappings": {"properties": {"name": {"type": "text"},
                                                              "price": {"type": "integer"}}}}).raise_for_status()
    lines = "".join(json.dumps({"index": {"_id": f"{id_prefix}{i}"}}) + "\n" + json.dumps(r) + "\n"
                    for i, r in enumerate(rows))
    client.post(f"/{index}/_bulk", params={"refresh": "true"}, content=lines,
                headers={"content-type": "application/x-ndjson"}).raise_for_status()


@pytest.fixture()
def twin(es: httpx.Client, other_es: httpx.Client) -> Iterator[str]:
    """The same small index (same documents) on both clusters."""
    name = f"t-clusters-{uuid.uuid4().hex[:8]}"
    for client in (es, other_es):
        load(client, name, docs(0, 80), "d")
    yield name
    for client in (es, other_es):
        client.delete(f"/{name}", params={"ignore_unavailable": "true"})


@pytest.fixture()
def config(isolated_env: dict[str, str]) -> Callable[..., None]:
    """Write the config file: config(a=URL, b=URL, weights={"b": 3}, groups='...')."""

    def write(weights: dict[str, Any] | None = None, groups: str = "", **urls: str) -> None:
        path = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = ""
        for name, url in urls.items():
            text += f'[clusters.{name}]\nurls = ["{url}"]\n'
            if weights and name in weights:
                text += f"weight = {weights[name]}\n"
        path.write_text(text + groups)

    return write


def query_file(tmp_path: Path, index: str, n: int) -> Path:
    path = tmp_path / "queries.ndjson"
    path.write_text("".join(json.dumps({"id": f"q{i}", "index": index, "q": WORDS[i % len(WORDS)],
                                        "fields": ["name"], "size": 1}) + "\n" for i in range(n)))
    return path


def results(stdout: bytes) -> dict[str, dict[str, Any]]:
    """Result lines by id; a query answered twice fails here."""
    out: dict[str, dict[str, Any]] = {}
    for line in stdout.decode().splitlines():
        r = json.loads(line)
        assert r["id"] not in out, f"{r['id']} answered twice"
        out[r["id"]] = r
    return out


# -- failover ---------------------------------------------------------------------------------------------------

def test_failover_when_the_first_cluster_is_down_from_the_start(cli: Cli, config: Callable[..., None], twin: str,
                                                                tmp_path: Path) -> None:
    config(dead=DEAD_URL, b=OTHER_URL)
    r = cli("-c", "dead", "-c", "b", "--no-cache", "batch", str(query_file(tmp_path, twin, 300)), "-j", "8")
    assert r.code == 0, r.stderr
    got = results(r.stdout)
    assert len(got) == 300 and all(x["ok"] for x in got.values())
    assert Counter(x["cluster"] for x in got.values()) == {"b": 300}

    r = cli("-c", "dead", "-c", "b", "--no-cache", "search", twin, "kettle", "-o", "json")
    assert r.code == 0, r.stderr
    meta = json.loads(r.stdout)["_escli"]
    assert meta["cluster"] == "b" and meta["strategy"] == "failover"


def test_failover_when_the_first_cluster_dies_mid_batch(cli: Cli, config: Callable[..., None], twin: str,
                                                        tmp_path: Path) -> None:
    n = 1500
    with FaultProxy(ES_URL, lifetime=600) as proxy:
        config(a=proxy.url, b=OTHER_URL)
        done = threading.Event()

        def kill_after(forwarded: int) -> None:
            while not done.is_set() and proxy.forwarded < forwarded:
                time.sleep(0.001)
            proxy.stop()  # the cluster dies: open connections reset, new ones refused

        killer = threading.Thread(target=kill_after, args=(300,), daemon=True)
        killer.start()
        try:
            r = cli("-c", "a", "-c", "b", "--no-cache", "batch", str(query_file(tmp_path, twin, n)), "-j", "8")
        finally:
            done.set()
            killer.join(15)
        answered_by_a = proxy.forwarded
    assert r.code == 0, r.stderr
    got = results(r.stdout)
    assert len(got) == n and all(x["ok"] for x in got.values()), r.stderr  # none lost, none twice
    by = Counter(x["cluster"] for x in got.values())
    assert by["a"] >= 250 and by["b"] > 0 and by["a"] + by["b"] == n  # answers in flight when it died: resent
    assert by["a"] <= answered_by_a  # every line from a was a real answer of a


# -- shares -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("strategy", "weights", "share_a"), [("round-robin", None, 0.5),
                                                             ("weighted", {"a": 1, "b": 3}, 0.25)])
def test_shares_over_1000_queries(cli: Cli, config: Callable[..., None], twin: str, tmp_path: Path,
                                  strategy: str, weights: dict[str, int] | None, share_a: float) -> None:
    config(weights=weights, a=ES_URL, b=OTHER_URL)
    r = cli("-c", "a", "-c", "b", "--strategy", strategy, "--no-cache", "batch",
            str(query_file(tmp_path, twin, 1000)), "-j", "8")
    assert r.code == 0, r.stderr
    got = results(r.stdout)
    by = Counter(x["cluster"] for x in got.values())
    assert by["a"] + by["b"] == 1000
    assert abs(by["a"] / 1000 - share_a) <= 0.03, by


def test_a_group_names_its_clusters_and_strategy(cli: Cli, config: Callable[..., None], twin: str,
                                                 tmp_path: Path, isolated_env: dict[str, str]) -> None:
    config(a=ES_URL, b=OTHER_URL, groups='[groups.both]\nclusters = ["a", "b"]\nstrategy = "round-robin"\n')
    r = cli("-c", "both", "--no-cache", "batch", str(query_file(tmp_path, twin, 100)))
    assert r.code == 0, r.stderr
    assert Counter(x["cluster"] for x in results(r.stdout).values()) == {"a": 50, "b": 50}
    # ESCLI_STRATEGY beats the group's strategy; --strategy beats both
    env = {"ESCLI_STRATEGY": "failover"}
    r = cli("-c", "both", "--no-cache", "batch", str(query_file(tmp_path, twin, 20)), env=env)
    assert Counter(x["cluster"] for x in results(r.stdout).values()) == {"a": 20}
    r = cli("-c", "both", "--strategy", "round-robin", "--no-cache", "batch", str(query_file(tmp_path, twin, 20)),
            env=env)
    assert Counter(x["cluster"] for x in results(r.stdout).values()) == {"a": 10, "b": 10}


# -- fan-out ------------------------------------------------------------------------------------------------------

@pytest.fixture()
def split(es: httpx.Client, other_es: httpx.Client) -> Iterator[tuple[str, str]]:
    """(index, copy): `index` holds different documents on each cluster; `copy` (on the main one) holds the
    other cluster's documents, so `index,copy` on the main cluster is one search over both clusters' documents."""
    name = f"t-fan-{uuid.uuid4().hex[:8]}"
    a, b = docs(0, 70), docs(1000, 50)
    load(es, name, a, "a")
    load(other_es, name, b, "b")
    load(es, f"{name}-copy", b, "b")
    yield name, f"{name}-copy"
    for client, idx in ((es, name), (other_es, name), (es, f"{name}-copy")):
        client.delete(f"/{idx}", params={"ignore_unavailable": "true"})


def by_score(hits: list[dict[str, Any]]) -> list[tuple[float, frozenset[str]]]:
    """Scores in order, each with the ids that share it (ties may be broken differently)."""
    out: list[tuple[float, set[str]]] = []
    for h in hits:
        if out and out[-1][0] == h["_score"]:
            out[-1][1].add(h["_id"])
        else:
            out.append((h["_score"], {h["_id"]}))
    return [(s, frozenset(ids)) for s, ids in out]


@pytest.mark.parametrize("extra", [[], ["--from", "4", "--size", "7"], ["--sort", "price:desc", "--size", "15"]])
def test_fan_out_merges_like_one_search_over_both(cli: Cli, config: Callable[..., None], es: httpx.Client,
                                                  split: tuple[str, str], extra: list[str]) -> None:
    index, copy = split
    config(a=ES_URL, b=OTHER_URL)
    r = cli("-c", "a", "-c", "b", "--strategy", "fan-out", "search", index, "kettle camera", "-f", "name", *extra,
            "-o", "json")
    assert r.code == 0, r.stderr
    fan = json.loads(r.stdout)
    single = json.loads(cli("--url", ES_URL, "search", f"{index},{copy}", "kettle camera", "-f", "name", *extra,
                            "-o", "json").stdout)
    fan_hits, one_hits = fan["hits"]["hits"], single["hits"]["hits"]
    assert len(fan_hits) == len(one_hits) > 0
    if "--sort" in extra:
        assert [h["_id"] for h in fan_hits] == [h["_id"] for h in one_hits]
    else:
        assert by_score(fan_hits) == by_score(one_hits)
    assert fan["hits"]["total"] == single["hits"]["total"]
    assert {h["_cluster"] for h in fan_hits} <= {"a", "b"}
    assert all(h["_cluster"] == ("a" if h["_id"].startswith("a") else "b") for h in fan_hits)
    clusters = fan["_escli"]["clusters"]
    assert set(clusters) == {"a", "b"} and all(c["error"] is None and c["took"] is not None
                                               for c in clusters.values())
    assert clusters["a"]["total"] + clusters["b"]["total"] == fan["hits"]["total"]["value"]


def test_fan_out_with_one_cluster_down_gives_the_others_hits_and_exit_1(cli: Cli, config: Callable[..., None],
                                                                       split: tuple[str, str]) -> None:
    index, _ = split
    config(a=ES_URL, b=OTHER_URL, dead=DEAD_URL)
    r = cli("-c", "a", "-c", "dead", "-c", "b", "--strategy", "fan-out", "search", index, "kettle", "-o", "json")
    assert r.code == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["hits"]["hits"] and {h["_cluster"] for h in out["hits"]["hits"]} <= {"a", "b"}
    assert out["_escli"]["clusters"]["dead"]["error"]["type"] == "unreachable"
    assert out["_escli"]["failed"] == ["dead"]
    assert "dead" in r.stderr and "fan-out" in r.stderr and len(r.stderr.strip().splitlines()) <= 2

    # batch: every line still answered, marked partial; exit 1
    r = cli("-c", "a", "-c", "dead", "-c", "b", "--strategy", "fan-out", "batch", "-",
            stdin=b'{"id":"x","index":"%s","q":"kettle","fields":["name"]}\n' % index.encode())
    assert r.code == 1, r.stderr
    line = json.loads(r.stdout)
    assert line["ok"] and line["partial"] and line["clusters"]["dead"]["error"]
    assert line["hits"] and "fan-out" in r.stderr


def test_all_clusters_down_is_exit_3(cli: Cli, config: Callable[..., None], tmp_path: Path) -> None:
    config(x=DEAD_URL, y=f"http://127.0.0.1:{free_port()}")
    for strategy in ("failover", "fan-out"):
        r = cli("-c", "x", "-c", "y", "--strategy", strategy, "--max-retries", "0", "search", "idx", "kettle")
        assert r.code == 3, (strategy, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    r = cli("-c", "x", "-c", "y", "--max-retries", "0", "batch", str(query_file(tmp_path, "idx", 20)))
    assert r.code == 3, r.stderr


# -- cache identity and warm-cache -------------------------------------------------------------------------------

def test_the_cache_identity_covers_the_set_of_clusters(cli: Cli, config: Callable[..., None], twin: str,
                                                       tmp_path: Path) -> None:
    config(a=ES_URL, b=OTHER_URL)

    def status(*args: str) -> str:
        r = cli(*args, "search", twin, "kettle", "-o", "json")
        assert r.code == 0, r.stderr
        return str(json.loads(r.stdout)["_escli"]["cache"])

    assert status("-c", "a", "-c", "b") == "miss"
    assert status("-c", "b", "-c", "a") == "hit-disk"  # the same set, routed: the same answer
    assert status("-c", "a") == "miss"  # one cluster alone is not the set
    assert status("-c", "a", "-c", "b", "--strategy", "fan-out") == "miss"  # a merged answer is another one
    assert status("-c", "a", "-c", "b", "--strategy", "fan-out") == "hit-disk"

    # warm-cache over the set (round-robin) fills what a later search of the set reads
    path = tmp_path / "warm.ndjson"
    path.write_text(json.dumps({"id": "w", "index": twin, "q": "camera", "fields": ["name"]}) + "\n")
    r = cli("-c", "a", "-c", "b", "--strategy", "round-robin", "warm-cache", str(path))
    assert r.code == 0, r.stderr
    r = cli("-c", "b", "-c", "a", "search", twin, "camera", "-f", "name", "-o", "json")
    assert json.loads(r.stdout)["_escli"]["cache"] == "hit-disk"


def test_profile_reports_per_cluster(cli: Cli, config: Callable[..., None], twin: str) -> None:
    config(a=ES_URL, b=OTHER_URL)
    r = cli("-c", "a", "-c", "b", "--strategy", "round-robin", "profile", twin, "kettle", "--iterations", "200",
            "--concurrency", "2", "--format", "json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    clusters = doc["clusters"]
    assert list(clusters) == ["a", "b"]
    assert clusters["a"]["requests"] + clusters["b"]["requests"] == doc["overall"]["requests"] == 200
    assert abs(clusters["a"]["requests"] - 100) <= 5


# -- configuration errors: one line, exit 2 -----------------------------------------------------------------------

@pytest.mark.parametrize(("groups", "args", "expect"), [
    ('[groups.g]\nclusters = ["a", "nope"]\n', ["-c", "g"], r"\[groups.g\] clusters names nope"),
    ("", ["-c", "a", "-c", "b", "--strategy", "random"], r"--strategy random: choose failover"),
    ('[groups.g]\nclusters = ["a", "b"]\nstrategy = "fastest"\n', ["-c", "g"],
     r"\[groups.g\] strategy: \"fastest\" is not a strategy \(choose failover"),
    ("", ["-c", "a", "-c", "zz"], r"--cluster zz: no \[clusters.zz\]"),
])
def test_config_errors_are_one_line_exit_2(cli: Cli, config: Callable[..., None], groups: str, args: list[str],
                                           expect: str) -> None:
    import re

    config(a=ES_URL, b=OTHER_URL, groups=groups)
    r = cli(*args, "search", "idx", "x")
    assert r.code == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and re.search(expect, r.stderr), r.stderr


@pytest.mark.parametrize("weight", ["0", "-2", '"heavy"', "true", "inf"])
def test_bad_weight_is_one_line_exit_2(cli: Cli, config: Callable[..., None], weight: str) -> None:
    config(weights={"b": weight}, a=ES_URL, b=OTHER_URL)
    r = cli("-c", "a", "-c", "b", "search", "idx", "x")
    assert r.code == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "[clusters.b] weight: " in r.stderr


@pytest.mark.parametrize("command", [["export", "idx"], ["import", "idx", "-"]])
def test_import_and_export_refuse_several_clusters(cli: Cli, config: Callable[..., None], command: list[str]) -> None:
    config(a=ES_URL, b=OTHER_URL)
    r = cli("-c", "a", "-c", "b", *command, stdin=b"")
    assert r.code == 2 and f"{command[0]} works on one cluster" in r.stderr, r.stderr


def test_health_checks_each_cluster_of_a_set(cli: Cli, config: Callable[..., None]) -> None:
    config(a=ES_URL, b=OTHER_URL)
    r = cli("-c", "a", "-c", "b", "health", "--format", "json")
    assert r.code in (0, 1), r.stderr  # green or yellow
    assert [c["label"] for c in json.loads(r.out)["clusters"]] == ["a", "b"]  # the shape of --all
