"""`escli profile` against the real engine: closed and open loop, the stall, sample sizes, --compare, --shards.

No figure here is compared with a fixed duration: the assertions are relations between figures of the same run.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Result
from tests.support.delay_proxy import DelayProxy

Cli = Callable[..., Result]


def profile_json(cli: Cli, *args: str) -> dict[str, Any]:
    r = cli("profile", *args, "--format", "json")
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def write_queries(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_closed_loop_counts_and_orders_the_three_times(cli: Cli, sample_index: str) -> None:
    doc = profile_json(cli, sample_index, "laptop", "-n", "300", "-j", "2", "--warmup", "5")
    o = doc["overall"]
    assert doc["mode"] == "closed" and doc["concurrency"] == 2
    assert o["requests"] == o["ok"] == 300 and o["errors"] == {}
    assert doc["warmup"]["sent"] == 5
    lat, svc, took = o["latency_ms"], o["service_time_ms"], o["took_ms"]
    assert lat["count"] == svc["count"] == took["count"] == 300
    for p in ("p50", "p90", "p95", "p99", "max"):
        # service time is part of latency; took (whole ms, server side) is part of service time
        assert svc[p] <= lat[p]
        assert took[p] <= svc[p] + 1.0
        assert o["overhead_ms"][p] <= lat[p]
    assert o["throughput"] > 0 and doc["seconds"] > 0
    client = doc["client"]
    assert client["rss_bytes"] > 10 * 2**20 and client["cpu_seconds"] >= 0
    assert doc["cache"]["hit_ratio"] is None and "bypasses" in doc["cache"]["note"]


def test_open_loop_runs_on_a_poisson_schedule(cli: Cli, sample_index: str) -> None:
    doc = profile_json(cli, sample_index, "phone", "--rate", "200", "-n", "200", "--schedule", "poisson",
                       "--seed", "7", "--warmup", "0")
    assert doc["mode"] == "open" and doc["schedule"] == "poisson" and doc["rate"] == 200
    assert doc["overall"]["requests"] == 200 and doc["overall"]["ok"] == 200
    assert doc["warmup"]["sent"] == 0
    assert doc["client"]["late_sends"] is not None


def test_duration_and_warmup_by_time(cli: Cli, sample_index: str) -> None:
    doc = profile_json(cli, sample_index, "-d", "1s", "--warmup", "300ms", "-j", "2")
    assert doc["duration"] == 1.0 and doc["iterations"] is None
    assert doc["overall"]["requests"] > 0 and doc["warmup"]["sent"] > 0


@pytest.mark.parametrize("loop", [["-j", "2"], ["--rate", "100"]])
@pytest.mark.parametrize("warmup", ["1s", "300ms", "40"])
def test_the_warmup_is_never_counted_in_iterations(cli: Cli, sample_index: str, loop: list[str],
                                                   warmup: str) -> None:
    """-n N measures N requests whatever the warm-up's form: a warm-up by time used to eat into them (-n 100
    --warmup 1s measured 0 and exited 0). The first request always goes out during the warm-up, so it sent some."""
    doc = profile_json(cli, sample_index, "laptop", "-n", "60", "--warmup", warmup, *loop)
    assert doc["overall"]["requests"] == doc["overall"]["latency_ms"]["count"] == 60
    assert doc["warmup"]["sent"] == 40 if warmup == "40" else doc["warmup"]["sent"] >= 1


def test_a_run_that_measured_nothing_is_an_error_not_a_pass(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    """Nothing measured must never exit 0 (a CI job without --fail-if would read it as a pass): a saved run
    that holds no request, merged, is refused with exit 1 and one line saying why."""
    saved = tmp_path / "run.json"
    r = cli("profile", sample_index, "laptop", "-n", "5", "--warmup", "0", "--save", str(saved), "-F", "json")
    assert r.code == 0, r.stderr
    doc = json.loads(saved.read_text())
    state = doc["state"]
    empty = tmp_path / "empty.json"
    from escli.profiler import RequestStats

    state["queries"] = {q: RequestStats().to_dict() for q in state["queries"]}
    empty.write_text(json.dumps({**doc, "state": state}))
    r = cli("profile", "merge", str(empty), "-F", "json")
    assert r.code == 1
    assert "measured no request" in r.stderr.strip().splitlines()[-1]
    assert json.loads(r.stdout)["overall"]["requests"] == 0  # the (empty) report is still written


def test_injected_stall_shows_in_open_loop_latency_not_in_closed_loop(cli: Cli, es_url: str,
                                                                       sample_index: str) -> None:
    """A 1 s server pause: the open loop counts the queue behind it, the closed loop does not even see it."""
    figures = {}
    for name, load in (("open", ["--rate", "150", "-j", "2"]), ("closed", ["-j", "2"])):
        with DelayProxy(es_url, stall_at=100, stall_seconds=1.0) as proxy:
            doc = profile_json(cli, "--url", proxy.url, sample_index, "laptop", "-n", "600", "--warmup", "10",
                               *load)
            assert proxy.stalled >= 1 and proxy.requests > 100  # the stall happened while measuring
        o = doc["overall"]
        assert o["ok"] == 600
        figures[name] = (o["latency_ms"]["p99"], o["service_time_ms"]["p99"], o["service_time_ms"]["max"])
    open_lat, open_svc, open_svc_max = figures["open"]
    closed_lat, closed_svc, closed_svc_max = figures["closed"]
    # Both loops saw the pause in some request's service time ...
    assert open_svc_max > open_svc and closed_svc_max > closed_svc
    # ... the open loop's latency holds the requests queued behind it, far above its service time ...
    assert open_lat > 3 * open_svc
    # ... while in the closed loop latency stays with service time: nothing was sent during the pause.
    assert closed_lat >= closed_svc
    assert (closed_lat - closed_svc) * 10 < (open_lat - open_svc)


def test_sample_size_rule_hides_unsupported_percentiles_and_says_why(cli: Cli, sample_index: str) -> None:
    doc = profile_json(cli, sample_index, "laptop", "-n", "50", "--percentiles", "50,90,95,99,99.9,max")
    lat = doc["overall"]["latency_ms"]
    assert {"p50", "p90", "p95", "max"} <= set(lat)
    assert "p99" not in lat and "p99.9" not in lat
    assert lat["not_shown"] == {"p99": "p99 needs at least 100 samples, have 50",
                                "p99.9": "p99.9 needs at least 1,000 samples, have 50"}
    table = cli("profile", sample_index, "laptop", "-n", "50", "-F", "table")
    assert table.code == 0, table.stderr
    assert "p99 n/a: needs at least 100 samples (have (all) 50)" in table.out
    assert "p99.9 n/a: needs at least 1,000 samples" in table.out


def test_weighted_query_file_reports_each_query(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    qf = write_queries(tmp_path / "q.ndjson", [
        "# weighted workload",
        {"id": "laptop", "index": sample_index, "q": "laptop", "fields": ["name^2", "description"], "weight": 4},
        "",
        {"id": "everything", "index": sample_index, "body": {"query": {"match_all": {}}, "size": 3}},
    ])
    doc = profile_json(cli, "--queries", str(qf), "-n", "400", "-j", "3", "--seed", "1")
    q = doc["queries"]
    assert set(q) == {"laptop", "everything"}
    assert q["laptop"]["requests"] + q["everything"]["requests"] == doc["overall"]["requests"] == 400
    assert q["laptop"]["requests"] > 2 * q["everything"]["requests"]
    assert q["laptop"]["weight"] == 4


def test_compare_shows_changes_in_percent(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    r = cli("profile", sample_index, "laptop", "-n", "200", "--save", str(base), "-F", "json")
    assert r.code == 0, r.stderr
    assert stat.S_IMODE(base.stat().st_mode) == 0o600
    old = json.loads(base.read_text())
    # the saved file is the JSON output plus the exact histograms `profile merge` needs
    assert old["state"]["version"] == 1 and {k: v for k, v in old.items() if k != "state"} == json.loads(r.stdout)
    new = profile_json(cli, sample_index, "laptop", "-n", "200", "--compare", str(base))
    deltas = new["compare"]["overall"]
    for fig in ("latency_ms", "service_time_ms"):
        for p in ("p50", "p90", "max"):
            want = round((new["overall"][fig][p] - old["overall"][fig][p]) / old["overall"][fig][p] * 100, 2)
            assert deltas[fig][p] == want
    assert "throughput" in deltas
    table = cli("profile", sample_index, "laptop", "-n", "200", "--compare", str(base), "-F", "table")
    assert table.code == 0 and "%)" in table.out and "change against the baseline" in table.out


def test_compare_with_a_bad_baseline_names_the_file(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a profile"}')
    r = cli("profile", sample_index, "-n", "5", "--compare", str(bad))
    assert r.code == 2 and f"--compare {bad}: not a profile saved by `escli profile --save`" in r.stderr
    r = cli("profile", sample_index, "-n", "5", "--compare", str(tmp_path / "none.json"))
    assert r.code == 2 and "none.json: no such file" in r.stderr


def test_shards_shows_the_profile_tree_per_shard(cli: Cli, sample_index: str, es: httpx.Client) -> None:
    shards = int(es.get(f"/{sample_index}/_settings").json()[sample_index]["settings"]["index"]["number_of_shards"])
    doc = profile_json(cli, sample_index, "laptop", "--shards")
    (p,) = doc["profiles"]
    assert p["id"] == "laptop" and len(p["shards"]) == shards
    assert all(s["searches"][0]["query"] for s in p["shards"])
    r = cli("profile", sample_index, "laptop", "--shards", "-F", "table")
    assert r.code == 0, r.stderr
    assert r.out.count("shard [") == shards
    assert "collector" in r.out and "rewrite" in r.out
    assert p["shards"][0]["searches"][0]["query"][0]["type"] in r.out


def test_prometheus_file_is_valid_textfile_format(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    prom = tmp_path / "escli_profile.prom"
    r = cli("profile", sample_index, "laptop", "-n", "120", "--prometheus-file", str(prom), "-F", "json")
    assert r.code == 0, r.stderr
    # node_exporter runs as another user: a textfile is readable by all (it holds no secret)
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644
    check = subprocess.run(["promtool", "check", "metrics"], input=prom.read_text(), capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    lat = families["escli_profile_latency_seconds"]
    assert lat.type == "summary"
    quantiles = {s.labels["quantile"]: s.value for s in lat.samples
                 if s.labels.get("query") == "_all" and "quantile" in s.labels}
    assert {"0.5", "0.99", "1.0"} <= set(quantiles) and "0.999" not in quantiles  # 120 samples cannot give p99.9
    counts = [s.value for s in lat.samples if s.name.endswith("_count") and s.labels["query"] == "_all"]
    assert counts == [120]
    assert families["escli_profile_requests"].samples
    assert all(len(line.rsplit(" ", 1)[1]) < 18 for line in prom.read_text().splitlines()
               if not line.startswith("#"))  # numbers as measured (0.003361, not 0.0033610000000000003)
    os.chmod(prom, 0o600)  # rewritten: readable again
    assert cli("profile", sample_index, "-n", "10", "--prometheus-file", str(prom), "-F", "json").code == 0
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644


def test_errors_name_the_option_or_line(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    cases = [
        (["profile", sample_index, "-n", "5", "-d", "1s"], "--iterations and --duration: choose one"),
        (["profile", sample_index, "--percentiles", "50,abc"], "--percentiles 50,abc: 'abc' is not a number"),
        (["profile", sample_index, "--duration", "soon"], "--duration soon: expected a duration"),
        (["profile", sample_index, "--warmup", "x1"], "--warmup x1:"),
        (["profile", sample_index, "--schedule", "poisson"], "--schedule applies to the open loop"),
        (["profile"], "missing INDEX (or --queries FILE, or --slowlog FILE)"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.code == 2 and message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    qf = write_queries(tmp_path / "bad.ndjson", [{"id": "a", "index": sample_index, "q": "x"}, "{broken"])
    r = cli("profile", "--queries", str(qf), "-n", "5")
    assert r.code == 2 and f"{qf}:2:" in r.stderr and "invalid JSON" in r.stderr


def test_missing_index_is_refused_before_the_load(cli: Cli, tmp_path: Path) -> None:
    qf = write_queries(tmp_path / "q.ndjson", [{"id": "gone", "index": "t-no-such-index-xyz", "q": "x"}])
    r = cli("profile", "--queries", str(qf), "-n", "50")
    assert r.code == 4
    assert "query gone (line 1): Elasticsearch refused it (404 index_not_found_exception)" in r.stderr


def test_unreachable_cluster_exits_3(cli: Cli) -> None:
    r = cli("--url", "http://127.0.0.1:9", "profile", "products", "-n", "5")
    assert r.code == 3 and "cluster unreachable" in r.stderr


@pytest.mark.es8
def test_profile_against_elasticsearch_8(cli: Cli, es8: httpx.Client) -> None:
    idx = "t-profile-es8"
    es8.put(f"/{idx}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    try:
        es8.post(f"/{idx}/_doc?refresh=true", json={"name": "laptop bag"})
        doc = profile_json(cli, "--url", str(es8.base_url).rstrip("/"), idx, "laptop", "-n", "50")
        assert doc["overall"]["ok"] == 50
    finally:
        es8.delete(f"/{idx}")


def test_ctrl_c_reports_what_was_measured_and_exits_130(isolated_env: dict[str, str], sample_index: str,
                                                         es: httpx.Client) -> None:
    import signal
    import subprocess
    import sys
    import time

    def searches() -> int:
        stats = es.get(f"/{sample_index}/_stats/search").json()
        return int(stats["_all"]["primaries"]["search"]["query_total"])

    exe = str(Path(sys.executable).parent / "escli")
    for load in ([], ["--rate", "100"]):
        before = searches()
        proc = subprocess.Popen([exe, "profile", sample_index, "laptop", "-d", "60s", "-F", "json", *load],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=isolated_env)
        try:
            # the event: the engine has answered well past start-up, preflight and warm-up (bounded poll, not a
            # guess at how long those take on this machine)
            for _ in range(1200):
                if searches() - before >= 300 or proc.poll() is not None:
                    break
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        doc = json.loads(out)
        assert doc["interrupted"] is True and doc["overall"]["requests"] > 0
        assert doc["seconds"] < 60
        assert "interrupted" in err.decode() and "Traceback" not in err.decode()


@pytest.mark.secure
def test_profile_on_the_secured_engine_reuses_the_clients_credentials(
        cli: Cli, secure_engine: tuple[httpx.Client, str, Path]) -> None:
    admin, password, ca = secure_engine
    idx = "t-profile-secure"
    admin.put(f"/{idx}", json={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    try:
        env = {"ESCLI_USERNAME": "elastic", "ESCLI_PASSWORD": password}
        r = cli("--url", str(admin.base_url).rstrip("/"), "--ca-certs", str(ca), "profile", idx, "-n", "50",
                "--rate", "100", "-F", "json", env=env)
        assert r.code == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["overall"]["ok"] == 50 and doc["overall"]["errors"] == {}  # every measured request authenticated
        assert password not in r.stdout.decode() and password not in r.stderr
    finally:
        admin.delete(f"/{idx}")
