"""`escli health` against the real engine: Nagios exit codes, every format parses, --all, a node stopped."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import THREE_NODE_PORT, Result, es_script

# The same tests on both transports (es/light.py and es/pooled.py).
pytestmark = pytest.mark.usefixtures("both_transports")

Cli = Callable[..., Result]
UNREACHABLE = "http://127.0.0.1:9"
# Nagios plugin guidelines: 'label'=value[UOM];[warn];[crit];[min];[max], separated by spaces
PERF = re.compile(r"^('([^']|'')+'|[^'= ][^= ]*)=(-?[0-9.]+|U)(s|ms|us|%|B|KB|MB|TB|c)?(;(-?[0-9.]*)){0,4}$")
NAGIOS = re.compile(r"^ESCLI (OK|WARNING|CRITICAL|UNKNOWN) - ([^|]+) \| (.+)$")


def nagios_parts(line: str) -> tuple[str, str, list[str]]:
    m = NAGIOS.match(line)
    assert m, line
    perf = m.group(3).split(" ")
    for item in perf:
        assert PERF.match(item), item
    return m.group(1), m.group(2), perf


def health_json(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    r = cli("health", *args, "--format", "json")
    return r.code, json.loads(r.stdout)


@pytest.fixture()
def yellow_index(es: httpx.Client, index_name: Callable[[str], str]) -> str:
    """A one-node cluster with an index that wants a replica: yellow."""
    name = index_name("replica")
    es.put(f"/{name}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 1}}).raise_for_status()
    es.get(f"/_cluster/health/{name}", params={"wait_for_status": "yellow", "timeout": "30s"})
    return name


def test_single_node_with_a_replica_is_yellow_warning(cli: Cli, yellow_index: str) -> None:
    r = cli("health", "--format", "nagios")
    assert r.code == 1, r.out + r.stderr
    state, text, perf = nagios_parts(r.out.strip())
    assert state == "WARNING" and " yellow: " in text and "unassigned" in text
    assert "status=1;1;2;0;3" in perf
    unassigned = next(p for p in perf if p.startswith("unassigned_shards="))
    assert int(unassigned.split("=")[1].split(";")[0]) >= 1
    code, doc = health_json(cli)
    assert code == 1 and doc["status"] == "yellow" and doc["state"] == "WARNING" and doc["unassigned_shards"] >= 1
    table = cli("health", "--format", "table")
    assert table.code == 1 and table.out.startswith("WARNING ") and "round trip ms" in table.out


def test_wait_for_green_times_out_on_yellow(cli: Cli, yellow_index: str) -> None:
    code, doc = health_json(cli, "--wait-for-status", "green", "--timeout", "1s")
    assert code == 1 and doc["timed_out"] is True and doc["wait_for_status"] == "green"
    r = cli("health", "--wait-for-status", "yellow", "--timeout", "5s", "--format", "nagios")
    assert r.code == 1 and "timed out" not in r.out


def test_every_format_parses(cli: Cli, sample_index: str) -> None:
    code, doc = health_json(cli)
    assert code in (0, 1) and doc["cluster_name"] and doc["number_of_nodes"] >= 1
    (node,) = doc["nodes"]
    for key in ("heap_used_percent", "cpu_percent", "load_1m", "disk_used_percent", "round_trip_ms"):
        assert isinstance(node[key], (int, float)), key
    assert 0 <= node["heap_used_percent"] <= 100 and 0 <= node["disk_used_percent"] <= 100
    assert node["round_trip_ms"] > 0

    r = cli("health", "--format", "nagios")
    assert r.out.count("\n") == 1
    state, _, perf = nagios_parts(r.out.strip())
    assert r.code == ["OK", "WARNING", "CRITICAL", "UNKNOWN"].index(state)
    assert any(p.startswith("node-0_rtt=") and "ms;" in p for p in perf)

    r = cli("health", "--format", "prometheus")
    families = {f.name: f for f in text_string_to_metric_families(r.out)}
    assert r.code == code
    for name in ("escli_cluster_up", "escli_cluster_status", "escli_cluster_nodes", "escli_cluster_shards",
                 "escli_cluster_pending_tasks", "escli_node_heap_used_ratio", "escli_node_round_trip_seconds",
                 "escli_node_disk_used_ratio"):
        assert name in families, name
        for s in families[name].samples:
            assert s.labels["cluster"] == doc["cluster_name"]
    assert families["escli_cluster_up"].samples[0].value == 1
    assert families["escli_cluster_status"].samples[0].value == code
    assert {s.labels["state"] for s in families["escli_cluster_shards"].samples} == {
        "active", "unassigned", "relocating", "initializing"}
    assert all(0 <= s.value <= 1 for s in families["escli_node_heap_used_ratio"].samples)


def test_unreachable_is_unknown_3_in_every_format(cli: Cli) -> None:
    for fmt in ("nagios", "json", "prometheus", "table"):
        r = cli("--url", UNREACHABLE, "health", "--format", fmt, "--timeout", "5s")
        assert r.code == 3, (fmt, r.out, r.stderr)
        assert "Traceback" not in r.stderr
        if fmt == "nagios":
            state, text, perf = nagios_parts(r.out.strip())
            assert state == "UNKNOWN" and "unreachable" in text and perf == ["status=3;1;2;0;3"]
        elif fmt == "json":
            doc = json.loads(r.out)
            assert doc["state"] == "UNKNOWN" and doc["code"] == 3 and "unreachable" in doc["error"]
        elif fmt == "prometheus":
            fams = {f.name: f for f in text_string_to_metric_families(r.out)}
            assert fams["escli_cluster_up"].samples[0].value == 0
            assert fams["escli_cluster_status"].samples[0].value == 3
        else:
            assert r.out.startswith("UNKNOWN") and "cluster unreachable" in r.stderr


def test_bad_options_are_usage_errors(cli: Cli) -> None:
    for args, message in ((["--format", "xml"], "--format xml: choose one of table, json, nagios, prometheus"),
                          (["--wait-for-status", "red"], "--wait-for-status red: choose green or yellow"),
                          (["--timeout", "later"], "--timeout later: expected a duration"),
                          (["--all"], "--all: no [clusters.NAME] tables in")):
        r = cli("health", *args)
        assert r.code == 2 and message in r.stderr, (args, r.stderr)


def test_all_checks_every_configured_cluster_and_exits_with_the_worst(cli: Cli, es_url: str,
                                                                      isolated_env: dict[str, str]) -> None:
    cfg = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'[clusters.main]\nurls = ["{es_url}"]\ndefault = true\n\n'
                   f'[clusters.gone]\nurls = ["{UNREACHABLE}"]\n\n'
                   '[clusters.nopass]\nurls = ["http://127.0.0.1:9200"]\nusername = "bob"\n'
                   'password_env = "ESCLI_TEST_UNSET_PASSWORD"\n')
    r = cli("health", "--all", "--format", "json", "--timeout", "10s")
    doc = json.loads(r.out)
    by = {c["label"]: c for c in doc["clusters"]}
    assert set(by) == {"main", "gone", "nopass"}
    assert by["main"]["state"] in ("OK", "WARNING") and by["main"]["nodes"]
    assert by["gone"]["state"] == "UNKNOWN" and by["nopass"]["state"] == "UNKNOWN"
    assert "ESCLI_TEST_UNSET_PASSWORD" in by["nopass"]["error"]
    assert r.code == 3 == doc["code"] == max(c["code"] for c in doc["clusters"])

    r = cli("health", "--all", "--format", "nagios", "--timeout", "10s")
    lines = r.out.strip().splitlines()
    assert r.code == 3 and len(lines) == 4
    state, text, perf = nagios_parts(lines[0])
    assert state == "UNKNOWN" and text.startswith("3 clusters: ")
    assert "gone_status=3;1;2;0;3" in perf and any(p.startswith("main_status=") for p in perf)
    assert any(line.startswith("UNKNOWN - gone: ") for line in lines[1:])

    r = cli("health", "--all", "--format", "prometheus", "--timeout", "10s")
    fams = {f.name: f for f in text_string_to_metric_families(r.out)}
    up = {s.labels["cluster"]: s.value for s in fams["escli_cluster_up"].samples}
    assert up == {"main": 1, "gone": 0, "nopass": 0}

    r = cli("--url", es_url, "health", "--all")
    assert r.code == 2 and "--all checks every configured cluster" in r.stderr


@pytest.mark.es8
def test_health_against_elasticsearch_8(cli: Cli, es8: httpx.Client) -> None:
    code, doc = health_json(cli, "--url", str(es8.base_url).rstrip("/"))
    assert doc["cluster_name"] and doc["nodes"] and code == {"green": 0, "yellow": 1, "red": 2}[doc["status"]]


@pytest.mark.slow
def test_three_nodes_green_then_a_stopped_node_turns_it_yellow(cli: Cli, three_nodes: str) -> None:
    idx = "t-health-three-nodes"
    httpx.put(f"{three_nodes}/{idx}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 2}})
    try:
        green = httpx.get(f"{three_nodes}/_cluster/health", params={"wait_for_status": "green", "timeout": "90s"},
                          timeout=120).json()
        assert green["status"] == "green"
        code, doc = health_json(cli, "--url", three_nodes)
        assert code == 0 and doc["state"] == "OK" and doc["number_of_nodes"] == 3
        assert sorted(n["name"] for n in doc["nodes"]) == ["node-0", "node-1", "node-2"]
        assert all(n["round_trip_ms"] and n["round_trip_ms"] > 0 for n in doc["nodes"])
        r = cli("--url", three_nodes, "health", "--format", "nagios")
        assert r.code == 0 and nagios_parts(r.out.strip())[0] == "OK"

        stopped = es_script("stop-node", "2", NODES="3", ES_PORT=THREE_NODE_PORT)
        assert stopped.returncode == 0, stopped.stderr
        try:
            # Until the cluster notices (and, if node-2 was master, elects another) the answer may be UNKNOWN
            # or still green; it must settle on yellow: the second replica has nowhere to go.
            deadline = time.monotonic() + 120
            seen: list[int] = []
            while time.monotonic() < deadline:
                r = cli("--url", three_nodes, "health", "--format", "nagios", "--wait-for-status", "yellow",
                        "--timeout", "10s")
                seen.append(r.code)
                if r.code == 1:
                    break
                time.sleep(1)
            assert seen[-1] == 1, seen
            state, text, _ = nagios_parts(r.out.strip())
            assert state == "WARNING" and "2 nodes" in text
            code, doc = health_json(cli, "--url", three_nodes)
            assert code == 1 and doc["number_of_nodes"] == 2 and doc["unassigned_shards"] >= 1
        finally:
            started = es_script("start-node", "2", NODES="3", ES_PORT=THREE_NODE_PORT)
            assert started.returncode == 0, started.stderr
            back = httpx.get(f"{three_nodes}/_cluster/health",
                             params={"wait_for_status": "green", "wait_for_nodes": "3", "timeout": "150s"},
                             timeout=180).json()
            assert back["status"] == "green", back
    finally:
        httpx.delete(f"{three_nodes}/{idx}")


@pytest.mark.secure
def test_refused_credentials_are_unknown(cli: Cli, secure_engine: tuple[httpx.Client, str, Path]) -> None:
    admin, password, ca = secure_engine
    url = str(admin.base_url).rstrip("/")
    r = cli("--url", url, "--ca-certs", str(ca), "health", "-F", "nagios",
            env={"ESCLI_USERNAME": "elastic", "ESCLI_PASSWORD": password})
    assert r.code in (0, 1) and nagios_parts(r.out.strip())[0] in ("OK", "WARNING")
    r = cli("--url", url, "--ca-certs", str(ca), "health", "-F", "nagios",
            env={"ESCLI_USERNAME": "elastic", "ESCLI_PASSWORD": "not-the-password"})
    assert r.code == 3
    state, text, _ = nagios_parts(r.out.strip())
    assert state == "UNKNOWN" and "401" in text and "not-the-password" not in r.out
