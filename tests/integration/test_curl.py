"""`--curl` on search, export and health: the printed commands, run by sh, give escli's answer; escli sends
nothing; credentials stay variables."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import ES_URL, Result
from tests.support.fault_proxy import FaultProxy

Cli = Callable[..., Result]
SECRETS = {"ESCLI_API_KEY": "key-value-not-to-print", "ESCLI_USERNAME": "user-not-to-print",
           "ESCLI_PASSWORD": "password-not-to-print"}


def sh(script: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False, timeout=60,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout


def hits(answer: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(h["_id"], h["_source"]) for h in answer["hits"]["hits"]]


def test_search_curl_gives_the_same_hits(cli: Cli, sample_index: str) -> None:
    args = ("search", sample_index, "wireless speaker", "-f", "name^2", "-f", "description", "--filter",
            "category=audio", "--range", "price=gte:10,lt:500", "--sort", "price:desc", "-n", "7",
            "--source", "name,price")
    printed = cli(*args, "--curl")
    assert printed.code == 0, printed.stderr
    assert printed.out.startswith("curl ") and printed.out.count("\n") == 1
    own = json.loads(cli("--no-cache", *args, "-o", "json").out)
    assert hits(json.loads(sh(printed.out))) == hits(own) and own["hits"]["hits"]


def test_health_curl_gives_the_cluster_health(cli: Cli, es: httpx.Client, sample_index: str) -> None:
    printed = cli("health", "--index", sample_index, "--curl")
    assert printed.code == 0, printed.stderr
    answer = json.loads(sh(printed.out))
    own = json.loads(cli("health", "--index", sample_index, "--format", "json").out)
    assert answer["cluster_name"] == own["cluster_name"] and answer["status"] == own["status"]
    assert answer["active_primary_shards"] == es.get(f"/_cluster/health/{sample_index}").json()[
        "active_primary_shards"]
    waited = cli("health", "--wait-for-status", "yellow", "--timeout", "10s", "--curl")
    assert "wait_for_status=yellow" in waited.out
    assert json.loads(sh(waited.out))["status"] in ("green", "yellow")


def test_export_curl_script_reads_the_first_page(cli: Cli, es: httpx.Client, index_name: Callable[[str], str]
                                                 ) -> None:
    index = index_name("cx")
    es.put(f"/{index}", json={"settings": {"number_of_shards": 2, "number_of_replicas": 0}}).raise_for_status()
    lines = "".join(f'{{"index":{{"_index":"{index}","_id":"d{i}"}}}}\n{{"n":{i},"tag":"t{i % 3}"}}\n'
                    for i in range(12))
    es.post("/_bulk", params={"refresh": "true"}, content=lines,
            headers={"content-type": "application/x-ndjson"}).raise_for_status()
    args = ("export", index, "--query", "tag:t1 OR tag:t2", "--fields", "n", "--page-size", "50")
    printed = cli(*args, "--curl")
    assert printed.code == 0, printed.stderr
    page = json.loads(sh(printed.out))
    own = [json.loads(x) for x in cli(*args, "--format", "ndjson").out.splitlines()]
    assert sorted((h["_id"], h["_source"]) for h in page["hits"]["hits"]) == \
        sorted((d["_id"], d["_source"]) for d in own) and len(own) == 8
    # the script closed its own point in time
    assert es.get("/_nodes/stats/indices/search").json()["nodes"]  # the engine still answers
    assert "DELETE" in printed.out and "_pit" in printed.out


def test_curl_sends_nothing_and_never_prints_a_secret(cli: Cli, sample_index: str) -> None:
    with FaultProxy(ES_URL, lifetime=120) as proxy:
        for env in ({"ESCLI_API_KEY": SECRETS["ESCLI_API_KEY"]},
                    {"ESCLI_USERNAME": SECRETS["ESCLI_USERNAME"], "ESCLI_PASSWORD": SECRETS["ESCLI_PASSWORD"]}):
            for args in (("search", sample_index, "laptop"), ("export", sample_index), ("health",),
                         ("health", "--index", sample_index)):
                r = cli("--url", proxy.url, *args, "--curl", env=env)
                assert r.code == 0, r.stderr
                assert proxy.url in r.out
                assert not any(value in r.out or value in r.stderr for value in SECRETS.values())
                assert ("$ESCLI_API_KEY" in r.out) == ("ESCLI_API_KEY" in env)
                assert ("$ESCLI_USERNAME:$ESCLI_PASSWORD" in r.out) == ("ESCLI_USERNAME" in env)
        assert proxy.requests == []
    # the variables are expanded by the shell that runs the command (security is off on the test engine, so a
    # key it is sent is ignored: what counts is that the command runs as printed)
    printed = cli("search", sample_index, "laptop", "-n", "1", "--curl", env=SECRETS)
    assert json.loads(sh(printed.out, SECRETS))["hits"]["hits"]
