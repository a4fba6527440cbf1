"""Rendering health checks: the Nagios line and perfdata, Prometheus exposition, for any cluster and node names."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from escli.core.health import ClusterHealth, NodeHealth, State, worst
from escli.output.health_view import render_nagios, render_prometheus, render_table

PERF = re.compile(r"^('([^']|'')+'|[^'= ][^= ]*)=(-?[0-9.]+|U)(s|ms|us|%|B|KB|MB|TB|c)?(;(-?[0-9.]*)){0,4}$")
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)


def check(label: str = "prod", node_name: str = "node-0", status: str = "yellow") -> dict[str, Any]:
    c = ClusterHealth(label=label, url="http://x:9200", status=status, cluster_name="es", number_of_nodes=1,
                      number_of_data_nodes=1, active_shards=5, unassigned_shards=1, active_shards_percent=83.33,
                      nodes=[NodeHealth(id="n0", name=node_name, roles=["data", "master"], heap_used_percent=40.0,
                                        cpu_percent=12.0, load_1m=0.5, disk_used_percent=61.2,
                                        round_trip_ms=1.25)])
    return c.as_dict()


def test_state_and_worst() -> None:
    assert ClusterHealth(label="a", url="u", status="red").state is State.CRITICAL
    assert ClusterHealth(label="a", url="u", status="green", error="boom").state is State.UNKNOWN
    assert worst([State.OK, State.WARNING]) is State.WARNING
    assert worst([State.CRITICAL, State.UNKNOWN, State.OK]) is State.UNKNOWN


@given(names, names)
def test_nagios_line_is_one_line_with_valid_perfdata(label: str, node: str) -> None:
    out = render_nagios([check(label, node)], 1)
    assert out.endswith("\n") and out.count("\n") == 1
    head, _, perf = out.strip().partition(" | ")
    assert head.startswith("ESCLI WARNING - ") and "|" not in head
    for item in perf.split(" "):
        assert PERF.match(item), item


@given(names, names)
def test_prometheus_parses_for_any_names(label: str, node: str) -> None:
    fams = {f.name: f for f in text_string_to_metric_families(render_prometheus([check(label, node)]))}
    (heap,) = fams["escli_node_heap_used_ratio"].samples
    assert heap.labels == {"cluster": label, "node": node} and heap.value == 0.4
    assert fams["escli_cluster_status"].samples[0].value == 1


def test_table_and_several_clusters() -> None:
    down = ClusterHealth(label="dr", url="http://y:9200", error="cluster unreachable: refused").as_dict()
    text = render_table([check(), down])
    assert "WARNING" in text and "UNKNOWN dr: no health answer: cluster unreachable" in text and "dm" in text
    lines = render_nagios([check(), down], 3).strip().splitlines()
    assert lines[0].startswith("ESCLI UNKNOWN - 2 clusters: 1 WARNING, 1 UNKNOWN | ")
    assert "dr_status=3;1;2;0;3" in lines[0] and lines[2].startswith("UNKNOWN - dr: ")


def probed(ids: list[str], errors: int = 0) -> dict[str, Any]:
    from escli.core.health import ProbeResult, apply_thresholds, parse_thresholds

    c = ClusterHealth(label="prod", url="http://x:9200", status="green", cluster_name="es", number_of_nodes=1,
                      nodes=[NodeHealth(id="n0", name="node-0", disk_used_percent=61.2,
                                        thread_pools={"search": {"queue": 3, "rejected": 12},
                                                      "write": {"queue": 0, "rejected": 0}},
                                        disk_watermarks={"low": 85.0, "high": 90.0, "flood_stage": 95.0})],
                      probes=[ProbeResult(id=i, index="products", searches=5, errors=errors,
                                          p50_ms=None if errors == 5 else 12.5, p95_ms=None if errors == 5 else 20.0,
                                          max_ms=None if errors == 5 else 20.0, sum_ms=0.0 if errors == 5 else 70.1)
                              for i in ids])
    apply_thresholds([c], parse_thresholds(["probe_p50>10ms", "search_queue>2"], ["probe_errors>0"]))
    return c.as_dict()


def test_probes_and_thread_pools_in_perfdata() -> None:
    out = render_nagios([probed(["products laptop"])], 1).strip()
    head, _, perf = out.partition(" | ")
    # in the order of the rules given
    assert head.startswith("ESCLI WARNING - WARNING: probe products laptop probe_p50 12.5 ms (probe_p50>10ms), "
                           "node-0 search_queue 3 (search_queue>2)")
    items = perf.split(" ")
    assert all(PERF.match(i) for i in items), items
    for want in ("probe_p50=12.5ms;10;;0", "probe_p95=20ms;;;0", "probe_max=20ms;;;0", "probe_errors=0;;0;0;5",
                 "node-0_search_queue=3;2;;0", "node-0_search_rejected=12c;;;0", "node-0_disk_used=61.2%;90;95;0;100"):
        assert want in items, (want, items)
    several = render_nagios([probed(["a b", "c"], errors=5)], 2).strip().partition(" | ")[2].split(" ")
    assert "a_b_probe_p50=U;10;;0" in several and "c_probe_errors=5;;0;0;5" in several


def test_probes_and_thread_pools_in_prometheus() -> None:
    fams = {f.name: f for f in text_string_to_metric_families(render_prometheus([probed(["a", "b"])]))}
    lat = fams["escli_probe_latency_seconds"]
    assert lat.type == "summary"
    q = {(s.labels["probe"], s.labels.get("quantile")): s.value for s in lat.samples if s.name == lat.name}
    assert q[("a", "0.5")] == 0.0125 and q[("a", "0.95")] == 0.02 and q[("b", "1")] == 0.02
    assert {s.value for s in lat.samples if s.name.endswith("_count")} == {5}
    assert fams["escli_probe_errors"].type == "counter"
    rejected = {s.labels["pool"]: s.value for s in fams["escli_node_thread_pool_rejected"].samples}
    assert rejected == {"search": 12, "write": 0}
    breached = {(s.labels.get("probe"), s.labels.get("node"), s.labels["metric"])
                for s in fams["escli_health_threshold_breached"].samples}
    assert breached == {("a", None, "probe_p50"), ("b", None, "probe_p50"), (None, "node-0", "search_queue")}
