"""scripts/es.sh, the engine behind `make es-up` / `make es-down`."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from tests.conftest import THREE_NODE_PORT, es_script

# Ports of the engines these tests start and stop themselves (9230 is the OpenSearch smoke engine's).
_BASE = int(os.environ.get("ESCLI_TEST_SCRIPT_PORT", "9240"))
UP_PORT, OTHER_PORT, TAKEN_PORT = str(_BASE), str(_BASE + 1), str(_BASE + 2)

pytestmark = pytest.mark.slow


def _pids(port: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"escli-{port}|run/{port}/node-"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_up_twice_is_harmless_and_down_leaves_nothing() -> None:
    env = {"ES_PORT": UP_PORT, "ES_HEAP": "512m"}
    first = es_script("up", **env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.strip() == f"http://127.0.0.1:{UP_PORT}"
    pids = _pids(UP_PORT)
    assert pids
    second = es_script("up", **env)
    assert second.returncode == 0 and "already running" in second.stderr
    assert _pids(UP_PORT) == pids  # no second engine
    health = httpx.get(f"http://127.0.0.1:{UP_PORT}/_cluster/health", timeout=120).json()
    assert health["number_of_nodes"] == 1
    down = es_script("down", **env)
    assert down.returncode == 0
    assert _pids(UP_PORT) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{UP_PORT}/")


def test_down_stops_only_its_own_cluster(es: httpx.Client) -> None:
    # Stopping a cluster on another port must leave the main engine alone.
    assert es_script("down", ES_PORT=OTHER_PORT).returncode == 0
    assert es.get("/_cluster/health").status_code == 200


def test_three_nodes_report_three_and_go_green(three_nodes: str) -> None:
    assert three_nodes == f"http://127.0.0.1:{THREE_NODE_PORT}"
    nodes = httpx.get(f"{three_nodes}/_cat/nodes?format=json", timeout=120).json()
    assert sorted(n["name"] for n in nodes) == ["node-0", "node-1", "node-2"]
    idx = f"t-replicas-{os.getpid()}"
    httpx.put(f"{three_nodes}/{idx}", json={"settings": {"number_of_shards": 2, "number_of_replicas": 1}},
              timeout=120)
    try:
        health = httpx.get(f"{three_nodes}/_cluster/health/{idx}",
                           params={"wait_for_status": "green", "timeout": "60s"}, timeout=90).json()
        assert health["status"] == "green" and health["active_shards"] == 4
    finally:
        httpx.delete(f"{three_nodes}/{idx}", timeout=120)


def test_port_taken_by_someone_else_is_refused() -> None:
    server = subprocess.Popen(["python3", "-m", "http.server", TAKEN_PORT, "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                httpx.get(f"http://127.0.0.1:{TAKEN_PORT}/")
                break
            except httpx.ConnectError:
                import time

                time.sleep(0.1)
        out = es_script("up", ES_PORT=TAKEN_PORT, ES_HEAP="512m")
        assert out.returncode != 0
        assert f"port {TAKEN_PORT} is taken by something this script did not start" in out.stderr
        assert server.poll() is None  # left alone
    finally:
        server.terminate()
        server.wait()


@pytest.mark.parametrize(("env", "wanted"), [
    ({"ENGINE": "opensearch", "OPENSEARCH_VERSION": "3.9.0"}, "no Java 21 or newer found for OpenSearch 3.9.0"),
    ({"ES_VERSION": "7.17.29"}, "no Java 17 found for Elasticsearch 7.17.29"),
])
def test_no_suitable_java_is_one_line_before_anything_starts(env: dict[str, str], wanted: str) -> None:
    out = es_script("up", ES_PORT=OTHER_PORT, JVM_DIR="/nonexistent-jvm-dir", **env)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        out.stderr.strip()] and wanted in out.stderr and "set ES_JAVA_HOME" in out.stderr, out.stderr
    assert _pids(OTHER_PORT) == []
