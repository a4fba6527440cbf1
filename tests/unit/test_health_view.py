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
