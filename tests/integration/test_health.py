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

# The tests run the path the CLI runs (the one request path, es/transport.py).

Cli = Callable[..., Result]
UNREACHABLE = "http://127.0.0.1:9"
# Nagios plugin guidelines: 'label'=value[UOM];[warn];[crit];[min];[max], separated by spaces; warn and crit are
# ranges ([@]start:end, start omitted when 0, `~` for minus infinity, end omitted for infinity).
NUM = r"-?[0-9]+(\.[0-9]+)?"
RANGE = rf"(@?((~|{NUM}):)?({NUM})?)"
PERF = re.compile(rf"^('([^']|'')+'|[^'= ][^= ]*)=({NUM}|U)(s|ms|us|%|B|KB|MB|TB|c)?"
                  rf"(;{RANGE}?(;{RANGE}?(;({NUM})?(;({NUM})?)?)?)?)?$")
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
        # health is a Nagios plugin: a bad argument is UNKNOWN (3), not escli's usual 2 (CRITICAL to Nagios)
        assert r.code == 3 and message in r.stderr, (args, r.stderr)


def test_all_without_a_config_file_still_writes_the_prometheus_file(cli: Cli, tmp_path: Path) -> None:
    """The file is written whatever the status (issue 36: --all with no config wrote none, so an alert on
    escli_cluster_up == 0 never fired)."""
    prom = tmp_path / "escli.prom"
    r = cli("health", "--all", "-F", "nagios", "--prometheus-file", str(prom))
    assert r.code == 3 and r.out.startswith("ESCLI UNKNOWN - config: no health answer: --all: no [clusters.NAME]")
    fams = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    assert fams["escli_cluster_up"].samples[0].value == 0 and fams["escli_health_state"].samples[0].value == 3


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
    assert r.code == 3 and "--all checks every configured cluster" in r.stderr


@pytest.mark.es8
def test_health_against_elasticsearch_8(cli: Cli, es8: httpx.Client) -> None:
    code, doc = health_json(cli, "--url", str(es8.base_url).rstrip("/"))
    assert doc["cluster_name"] and doc["nodes"] and code == {"green": 0, "yellow": 1, "red": 2}[doc["status"]]


@pytest.mark.slow
def test_three_nodes_green_then_a_stopped_node_turns_it_yellow(cli: Cli, three_nodes: str) -> None:
    idx = "t-health-three-nodes"
    httpx.put(f"{three_nodes}/{idx}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 2}},
              timeout=120)
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
        httpx.delete(f"{three_nodes}/{idx}", timeout=120)


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


def perf_item(perf: list[str], label: str) -> list[str]:
    """The fields of one perfdata item: [value with UOM, warn, crit, min, max]."""
    item = next(p for p in perf if p.startswith(label + "="))
    return item.split("=", 1)[1].split(";")


def test_thresholds_that_must_trip_and_must_not(cli: Cli, sample_index: str) -> None:
    r = cli("health", "--format", "nagios", "--warn", "heap>1")
    state, text, perf = nagios_parts(r.out.strip())
    assert r.code == 1 and state == "WARNING", r.out + r.stderr
    assert text.startswith("WARNING: node-0 heap ") and "(heap>1)" in text
    assert perf_item(perf, "node-0_heap")[1:3] == ["1", ""]

    r = cli("health", "--format", "nagios", "--warn", "heap>99", "--crit", "disk>99.9")
    state, text, perf = nagios_parts(r.out.strip())
    assert r.code == 0 and state == "OK" and "heap>" not in text, r.out
    assert perf_item(perf, "node-0_heap")[1] == "99" and perf_item(perf, "node-0_disk_used")[2] == "99.9"

    # one node: nodes<3 is CRITICAL, and the CRITICAL wins over a WARNING on the same run
    r = cli("health", "--format", "nagios", "--crit", "nodes<3", "--warn", "rtt_ms>0", "--warn", "unassigned>1000")
    state, text, perf = nagios_parts(r.out.strip())
    assert r.code == 2 and state == "CRITICAL", r.out
    assert text.startswith("CRITICAL: nodes 1 (nodes<3); WARNING: node-0 rtt_ms ") and "unassigned" in text
    assert perf_item(perf, "nodes")[1:3] == ["", "3:"] and perf_item(perf, "unassigned_shards")[1] == "1000"

    code, doc = health_json(cli, "--crit", "active_shards_percent<=100", "--warn", "load1>=0")
    assert code == 2 and doc["state"] == "CRITICAL" and doc["status"] in ("green", "yellow")
    assert {(b["level"], b["metric"]) for b in doc["breaches"]} == {("CRITICAL", "active_shards_percent"),
                                                                    ("WARNING", "load1")}
    assert doc["thresholds"] == {"active_shards_percent": {"crit": "@~:100"}, "load1": {"warn": "@0:"}}

    r = cli("health", "--format", "prometheus", "--warn", "heap>1")
    fams = {f.name: f for f in text_string_to_metric_families(r.out)}
    assert fams["escli_health_state"].samples[0].value == 1
    (b,) = fams["escli_health_threshold_breached"].samples
    assert b.labels == {"cluster": doc["cluster_name"], "metric": "heap", "node": "node-0", "level": "warning"}


def test_a_bad_threshold_is_unknown_with_one_line(cli: Cli) -> None:
    for args, message in ((["--warn", "heapp>85"], "--warn heapp>85: unknown metric 'heapp'"),
                          (["--crit", "heap=85"], "--crit heap=85: expected METRIC OP NUMBER"),
                          (["--crit", "heap>85ms"], "--crit heap>85ms: unit 'ms' does not fit heap"),
                          (["--warn", "q1:heap>85"], "--warn q1:heap>85: --warn takes no SCOPE: prefix")):
        r = cli("health", *args, "--format", "nagios")
        assert r.code == 3, (args, r.out, r.stderr)
        assert message in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert r.out.startswith("ESCLI UNKNOWN - bad argument: ") and r.out.count("\n") == 1
    r = cli("health", "--no-such-option", "--format", "nagios")
    assert r.code == 3 and "No such option" in r.stderr and r.out.startswith("ESCLI UNKNOWN - bad argument")
    # the format given first (issue 36: click's parser had consumed it when the error was caught: empty stdout)
    for args, out in ((["-F", "nagios", "--bogus"], "No such option: --bogus\n"),
                      (["--format=nagios", "-w"], "Option '-w' requires an argument.\n"),
                      (["-F", "nagios", "--wran", "x"], "No such option: --wran (Possible options: --warn)\n")):
        r = cli("health", *args)
        assert r.code == 3 and r.out == "ESCLI UNKNOWN - bad argument: " + out, (args, r.out)


def test_index_health(cli: Cli, yellow_index: str, sample_index: str) -> None:
    code, doc = health_json(cli, "--index", sample_index)
    assert code == 0 and doc["status"] == "green" and doc["index"] == sample_index and doc["active_shards"] >= 1
    code, doc = health_json(cli, "--index", yellow_index)
    assert code == 1 and doc["status"] == "yellow" and doc["unassigned_shards"] == 1
    # Elasticsearch's colours: a missing name is red (escli does not wait the API's default 30 s for it to
    # appear), a pattern that matches nothing is green; both say so.
    started = time.monotonic()
    r = cli("health", "--index", "escli-no-such-index", "--format", "nagios")
    state, text, _ = nagios_parts(r.out.strip())
    assert r.code == 2 and state == "CRITICAL" and "red: no index matches escli-no-such-index" in text
    assert time.monotonic() - started < 25
    r = cli("health", "--index", "escli-no-such-index-*", "--format", "nagios")
    state, text, _ = nagios_parts(r.out.strip())
    assert r.code == 0 and "green: no index matches escli-no-such-index-*" in text


def test_prometheus_file_is_written_whatever_the_status(cli: Cli, tmp_path: Path, yellow_index: str) -> None:
    import stat
    import subprocess

    target = tmp_path / "escli_health.prom"
    for url, want in ((None, 1), (UNREACHABLE, 3)):
        args = ["--url", url] if url else []
        r = cli(*args, "health", "--format", "json", "--timeout", "5s", "--prometheus-file", str(target))
        assert r.code == want, r.stderr
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        text = target.read_text()
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        assert fams["escli_cluster_status"].samples[0].value == want
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left behind
    r = cli("health", "--prometheus-file", str(tmp_path / "missing" / "x.prom"))
    assert r.code == 3 and "directory" in r.stderr


def test_prometheus_passes_promtool(cli: Cli, sample_index: str) -> None:
    import subprocess

    r = cli("health", "--format", "prometheus", "--warn", "heap>1", "--index", sample_index)
    check = subprocess.run(["promtool", "check", "metrics"], input=r.out, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for line in r.out.splitlines():
        if not line.startswith("#"):
            value = line.rsplit(" ", 1)[1]
            assert len(value) < 16, line  # written as measured, not 0.0033610000000000003


def test_the_documented_textfile_recipe_publishes_even_when_unreachable(tmp_path: Path,
                                                                        isolated_env: dict[str, str]) -> None:
    """docs/commands/health.md's cron line, run as written (only the directory and the cluster list changed)."""
    import os
    import subprocess
    import sys

    doc = (Path(__file__).resolve().parents[2] / "docs" / "commands" / "health.md").read_text()
    (line,) = [ln for ln in doc.splitlines() if ln.startswith("* * * * * escli health") and "--prometheus-file" in ln]
    command = line.removeprefix("* * * * * ").replace("/var/lib/node_exporter/textfile", str(tmp_path))
    command = command.replace("--all ", "")  # the test's cluster comes from ESCLI_URL, not a config file
    bin_dir = str(Path(sys.executable).parent)  # where the installed `escli` is
    env = {**isolated_env, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "ESCLI_URL": UNREACHABLE}
    r = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True)
    assert r.returncode == 3 and r.stdout == ""
    prom = tmp_path / "escli_health.prom"
    fams = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    assert fams["escli_cluster_up"].samples[0].value == 0
    assert oct(prom.stat().st_mode & 0o777) == "0o644"
