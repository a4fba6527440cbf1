"""`escli health` probes, thread pools, watermarks and -w/-c against the real engine (and OpenSearch).

A slow probe is made slow by the fault proxy's delay, matched on the probe's own search text, so the health
calls themselves are never delayed; thresholds keep a wide margin from the delay so a slow machine cannot flip
them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import OPENSEARCH_URL, Result
from tests.integration.test_health import nagios_parts, perf_item
from tests.support.fault_proxy import FaultProxy

Cli = Callable[..., Result]
DELAY = 2.0  # seconds added to each slow probe search
SLOW_CRIT = "probe_p50>700ms"  # far below DELAY (cannot miss) and far above a loopback search (cannot trip)


def health_json(cli: Cli, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    r = cli("health", *args, "--format", "json", env=env)
    assert r.stdout, r.stderr
    return r.code, json.loads(r.stdout)


def promtool(text: str) -> None:
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture()
def proxy(es_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(es_url, lifetime=600) as p:
        yield p


def plausible(p: dict[str, Any], searches: int) -> None:
    assert p["searches"] == searches and p["errors"] == 0, p
    assert 0 < p["p50_ms"] <= p["p95_ms"] <= p["max_ms"], p
    assert p["sum_ms"] >= p["max_ms"]


def test_probe_numbers_are_present_and_plausible(cli: Cli, sample_index: str, proxy: FaultProxy,
                                                 isolated_env: dict[str, str]) -> None:
    code, doc = health_json(cli, "--url", proxy.url, "--probe", f"{sample_index} laptop", "--probe-count", "7")
    assert code in (0, 1), doc
    (p,) = doc["probes"]
    assert p["id"] == f"{sample_index} laptop" and p["index"] == sample_index and p["request_cache"] is False
    plausible(p, 7)
    # Real searches, after the health calls, with the shard request cache off, never through escli's cache.
    targets = [r.target for r in proxy.requests]
    searches = [t for t in targets if "/_search" in t]
    assert len(searches) == 7 and all(t == f"/{sample_index}/_search?request_cache=false" for t in searches)
    assert targets.index(searches[0]) > max(i for i, t in enumerate(targets) if t.startswith("/_cluster/health"))
    assert not (Path(isolated_env["XDG_CACHE_HOME"]) / "escli").exists()

    proxy.clear()
    code, doc = health_json(cli, "--url", proxy.url, "--probe", sample_index, "--probe-request-cache",
                            "--probe-count", "2")
    assert doc["probes"][0]["request_cache"] is True and doc["probes"][0]["id"] == sample_index
    assert [r.target for r in proxy.requests if "/_search" in r.target] == [
        f"/{sample_index}/_search?request_cache=true"] * 2


def test_a_slow_probe_trips_its_thresholds_and_a_fast_one_does_not(cli: Cli, sample_index: str,
                                                                   proxy: FaultProxy) -> None:
    proxy.delay(DELAY, match=b"slowprobe")
    args = ("--url", proxy.url, "--probe", f"{sample_index} slowprobe", "--probe", f"{sample_index} laptop",
            "--probe-count", "3", "-c", SLOW_CRIT, "-w", "probe_max>600ms", "-c", "probe_errors>0")
    r = cli("health", "--format", "nagios", *args)
    state, text, perf = nagios_parts(r.out.strip())
    assert r.code == 2 and state == "CRITICAL", r.out + r.stderr
    slow = f"{sample_index}_slowprobe"
    assert text.startswith(f"CRITICAL: probe {sample_index} slowprobe probe_p50 "), text
    assert f"({SLOW_CRIT})" in text and f"probe {sample_index} laptop probe_p50" not in text
    value, warn, crit, lo = perf_item(perf, f"{slow}_probe_p50")[:4]
    assert value.endswith("ms") and float(value[:-2]) >= DELAY * 1000 and (warn, crit, lo) == ("", "700", "0")
    assert perf_item(perf, f"{slow}_probe_max")[1] == "600"
    assert perf_item(perf, f"{slow}_probe_errors") == ["0", "", "0", "0", "3"]
    assert perf_item(perf, f"{sample_index}_laptop_probe_errors")[0] == "0"

    code, doc = health_json(cli, *args)
    assert code == 2 and doc["state"] == "CRITICAL"
    by = {p["id"]: p for p in doc["probes"]}
    plausible(by[f"{sample_index} slowprobe"], 3)
    assert by[f"{sample_index} slowprobe"]["p50_ms"] >= DELAY * 1000
    assert {(b["level"], b["probe"], b["metric"]) for b in doc["breaches"]} >= {
        ("CRITICAL", f"{sample_index} slowprobe", "probe_p50")}
    assert all(b["probe"] != f"{sample_index} laptop" for b in doc["breaches"] if b["metric"] == "probe_p50")

    r = cli("health", "--format", "prometheus", *args)
    promtool(r.out)
    fams = {f.name: f for f in text_string_to_metric_families(r.out)}
    lat = {(s.labels["probe"], s.labels["quantile"]): s.value for s in fams["escli_probe_latency_seconds"].samples
           if s.name == "escli_probe_latency_seconds"}
    assert lat[(f"{sample_index} slowprobe", "0.5")] >= DELAY
    assert lat[(f"{sample_index} laptop", "0.5")] <= lat[(f"{sample_index} laptop", "0.95")] \
        <= lat[(f"{sample_index} laptop", "1")]
    breached = [s.labels for s in fams["escli_health_threshold_breached"].samples]
    assert {"cluster": doc["cluster_name"], "metric": "probe_p50", "probe": f"{sample_index} slowprobe",
            "level": "critical"} in breached


def test_a_failing_probe_is_an_error_not_a_crash(cli: Cli, sample_index: str, proxy: FaultProxy) -> None:
    # index missing: five errors by type; the check itself answers (green), exit 0 without a probe threshold
    code, doc = health_json(cli, "--probe", "escli-no-such-index laptop")
    (p,) = doc["probes"]
    assert p["searches"] == 5 and p["errors"] == 5 and p["p50_ms"] is None
    assert p["error_types"] == {"index_not_found_exception": 5} and "escli-no-such-index" in p["last_error"]
    r = cli("health", "-F", "nagios", "--probe", "escli-no-such-index laptop", "-c", "probe_errors>0")
    _state, text, perf = nagios_parts(r.out.strip())
    assert r.code == 2 and text.startswith("CRITICAL: probe escli-no-such-index laptop probe_errors 5")
    assert "probe_p50=U;;;0" in perf and "probe_errors=5;;0;0;5" in perf

    # refused by something in front of the cluster, every time (so whatever the retry policy, each search fails)
    proxy.fail(503, times=1000, match=b"refusedprobe")
    code, doc = health_json(cli, "--url", proxy.url, "--probe", f"{sample_index} refusedprobe", "--probe-count", "3")
    (p,) = doc["probes"]
    assert p["errors"] == 3 and p["searches"] == 3 and p["p50_ms"] is None and "503" in p["last_error"], p
    assert code in (0, 1) and doc["error"] is None  # no probe threshold: the colour decides

    # slower than the check's --timeout: the searches left are errors, and the health part still answers
    proxy.clear()
    proxy.delay(30.0, match=b"stuckprobe")
    _code, doc = health_json(cli, "--url", proxy.url, "--probe", f"{sample_index} stuckprobe", "--timeout", "4s")
    (p,) = doc["probes"]
    assert doc["status"] in ("green", "yellow") and doc["error"] is None
    assert p["errors"] == 5 and p["error_types"] == {"timeout": 5}, p


def test_probe_file_and_bad_probe_arguments_are_unknown(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    qf = tmp_path / "probes.ndjson"
    qf.write_text(f'# probes\n{{"id":"short","index":"{sample_index}","q":"laptop","fields":["name^2"]}}\n'
                  f'{{"id":"full","index":"{sample_index}","body":{{"query":{{"match_all":{{}}}},"size":1}}}}\n')
    _code, doc = health_json(cli, "--probe-file", str(qf), "--probe-count", "2", "--probe", f"{sample_index} tv")
    assert [p["id"] for p in doc["probes"]] == [f"{sample_index} tv", "short", "full"]
    for p in doc["probes"]:
        plausible(p, 2)

    bad = tmp_path / "bad.ndjson"
    bad.write_text(f'{{"id":"a","index":"{sample_index}"}}\n{{"id":"b"}}\n')
    for args, message in ((["--probe-file", str(bad)], f"{bad}:2: \"index\" is required"),
                          (["--probe-file", str(tmp_path / "none")], "no such file"),
                          (["--probe", " "], "--probe ' ': expected 'INDEX TEXT'"),
                          (["--probe", "a b", "--probe", "a  b"], "--probe a b: given twice"),
                          (["--probe", "a", "--probe-count", "0"], "--probe-count 0: give 1 to 1000"),
                          (["-c", "probe_p95>1s"], "probe_p95>1s: a probe threshold needs --probe"),
                          (["--probe", "a", "-w", "probe_p50>1GB"], "unit 'GB' does not fit probe_p50")):
        r = cli("health", *args, "--format", "nagios")
        assert r.code == 3, (args, r.out, r.stderr)
        assert message in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)
        assert r.out.startswith("ESCLI UNKNOWN - bad argument: ")


def test_all_probes_every_cluster(cli: Cli, es_url: str, sample_index: str, isolated_env: dict[str, str]) -> None:
    cfg = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'[clusters.one]\nurls = ["{es_url}"]\n\n[clusters.two]\nurls = ["{es_url}"]\n\n'
                   '[clusters.gone]\nurls = ["http://127.0.0.1:9"]\n')
    r = cli("health", "--all", "--format", "json", "--timeout", "10s", "--probe", f"{sample_index} laptop",
            "--probe-count", "2")
    doc = json.loads(r.out)
    by = {c["label"]: c for c in doc["clusters"]}
    for name in ("one", "two"):
        plausible(by[name]["probes"][0], 2)
    assert by["gone"]["state"] == "UNKNOWN" and by["gone"]["probes"] == [] and r.code == 3
    r = cli("health", "--all", "--format", "prometheus", "--timeout", "10s", "--probe", f"{sample_index} laptop",
            "--probe-count", "2")
    promtool(r.out)
    fams = {f.name: f for f in text_string_to_metric_families(r.out)}
    assert {s.labels["cluster"] for s in fams["escli_probe_searches"].samples} == {"one", "two"}
    r = cli("health", "--all", "--format", "nagios", "--timeout", "10s", "--probe", f"{sample_index} laptop",
            "--probe-count", "2")
    _, _, perf = nagios_parts(r.out.splitlines()[0])
    assert any(p.startswith("one_probe_p50=") for p in perf) and any(p.startswith("two_probe_p95=") for p in perf)


def test_thread_pools_in_every_format(cli: Cli, sample_index: str) -> None:
    _code, doc = health_json(cli)
    (node,) = doc["nodes"]
    for pool in ("search", "write"):
        figures = node["thread_pools"][pool]
        assert set(figures) == {"queue", "rejected"} and all(isinstance(v, int) and v >= 0 for v in figures.values())
    table = cli("health", "--format", "table")
    assert "search q/rej" in table.out and "write q/rej" in table.out

    r = cli("health", "-F", "nagios", "-c", "search_rejected>=0", "-w", "write_rejected>=0",
            "-w", "search_queue>100000")
    _state, text, perf = nagios_parts(r.out.strip())
    assert r.code == 2 and text.startswith("CRITICAL: node-0 search_rejected "), text
    assert "WARNING: node-0 write_rejected " in text and "search_queue" not in text.split(";")[0]
    assert perf_item(perf, "node-0_search_rejected")[0].endswith("c")
    assert perf_item(perf, "node-0_search_rejected")[2] == "@0:"
    assert perf_item(perf, "node-0_search_queue")[1] == "100000"

    r = cli("health", "--format", "prometheus")
    promtool(r.out)
    fams = {f.name: f for f in text_string_to_metric_families(r.out)}
    assert fams["escli_node_thread_pool_rejected"].type == "counter"
    assert "escli_node_thread_pool_rejected_total" in r.out
    assert {s.labels["pool"] for s in fams["escli_node_thread_pool_queue"].samples} == {"search", "write"}


@pytest.fixture()
def byte_watermarks(es: httpx.Client) -> Iterator[None]:
    """Free-space watermarks no disk can meet for low and high, none for the flood stage (1 byte free), so
    nothing is made read-only; reset afterwards."""
    keys = [f"cluster.routing.allocation.disk.watermark.{k}" for k in ("low", "high", "flood_stage")]
    es.put("/_cluster/settings", json={"persistent": dict(zip(keys, ("1000tb", "900tb", "1b"), strict=True))}
           ).raise_for_status()
    try:
        yield
    finally:
        es.put("/_cluster/settings", json={"persistent": dict.fromkeys(keys)}).raise_for_status()


def test_disk_against_the_clusters_own_watermarks(cli: Cli, sample_index: str) -> None:
    _code, doc = health_json(cli)
    assert set(doc["watermarks"]) == {"low", "high", "flood_stage"}
    limits = doc["nodes"][0]["disk_watermarks"]
    assert 0 <= limits["low"] <= limits["high"] <= limits["flood_stage"] <= 100, limits


def test_crossing_the_high_watermark_is_a_warning(cli: Cli, sample_index: str, byte_watermarks: None) -> None:
    r = cli("health", "-F", "nagios", "--index", sample_index)
    state, text, perf = nagios_parts(r.out.strip())
    assert r.code == 1 and state == "WARNING", r.out
    assert text.startswith("WARNING: node-0 disk ") and "(high watermark 900tb)" in text
    assert perf_item(perf, "node-0_disk_used")[1:3] == ["0", "100"]  # 900 TB free is asked at any use; 1 B never
    _code, doc = health_json(cli, "--index", sample_index)
    assert doc["watermarks"] == {"low": "1000tb", "high": "900tb", "flood_stage": "1b"}
    assert doc["nodes"][0]["disk_watermark"] == "high"
    assert "disk" in cli("health", "-F", "table", "--index", sample_index).out
    # a disk rule of one's own replaces the watermarks
    r = cli("health", "-F", "nagios", "--index", sample_index, "-c", "disk>100")
    assert r.code == 0 and "watermark" not in r.out, r.out


def test_w_and_c_after_the_command_cluster_before_it(cli: Cli, es_url: str, isolated_env: dict[str, str]) -> None:
    r = cli("health", "-F", "nagios", "-w", "nodes<2", "-c", "nodes<3")
    _state, text, perf = nagios_parts(r.out.strip())
    assert r.code == 2 and text.startswith("CRITICAL: nodes 1 (nodes<3)") and perf_item(perf, "nodes")[1:3] == [
        "2:", "3:"]
    cfg = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'[clusters.prod]\nurls = ["{es_url}"]\n')
    env = {"ESCLI_URL": "http://127.0.0.1:9"}  # nothing there: only --cluster prod finds the engine
    r = cli("-c", "prod", "health", "-F", "json", "-c", "nodes<3", env=env)
    doc = json.loads(r.out)
    assert doc["label"] == "prod" and doc["url"] == es_url and r.code == 2 and doc["breaches"][0]["rule"] == "nodes<3"
    r = cli("health", "--cluster", "prod", "-F", "json", env=env)
    assert json.loads(r.out)["label"] == "prod"


@pytest.mark.opensearch
def test_a_probe_on_opensearch(cli: Cli, opensearch: httpx.Client, index_name: Callable[[str], str]) -> None:
    name = index_name("os-probe")
    opensearch.put(f"/{name}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 0}}
                   ).raise_for_status()
    try:
        opensearch.post(f"/{name}/_doc", params={"refresh": "true"}, json={"name": "laptop"}).raise_for_status()
        env = {"ESCLI_URL": OPENSEARCH_URL}
        code, doc = health_json(cli, "--probe", f"{name} laptop", "-w", "probe_errors>0", env=env)
        assert code in (0, 1) and doc["state"] != "UNKNOWN", doc
        plausible(doc["probes"][0], 5)
        assert set(doc["nodes"][0]["thread_pools"]) == {"search", "write"}
        assert set(doc["watermarks"]) == {"low", "high", "flood_stage"}
        r = cli("health", "-F", "prometheus", "--probe", f"{name} laptop", env=env)
        promtool(r.out)
        r = cli("health", "-F", "nagios", "--probe", f"{name} laptop", env=env)
        _, _, perf = nagios_parts(r.out.strip())
        assert perf_item(perf, "probe_errors")[0] == "0"
    finally:
        opensearch.delete(f"/{name}")
