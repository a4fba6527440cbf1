"""Disk watermarks (core/watermarks.py) and how health turns them into states: pure functions, no engine."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from escli.core.health import ClusterHealth, NodeHealth, State, apply_thresholds, parse_thresholds, place_on_watermarks
from escli.core.watermarks import (
    Watermark,
    crossed,
    parse_bytes,
    parse_watermark,
    watermarks_from_settings,
)

GB = 1 << 30
# What Elasticsearch 9 answers to _cluster/settings?include_defaults=true with the filter health sends.
ES9_DEFAULTS = {"defaults": {"cluster": {"routing": {"allocation": {"disk": {
    "threshold_enabled": "true",
    "watermark": {"flood_stage.frozen.max_headroom": "20GB", "flood_stage": "95%", "high": "90%", "low": "85%",
                  "flood_stage.frozen": "95%", "flood_stage.max_headroom": "100GB", "low.max_headroom": "200GB",
                  "high.max_headroom": "150GB"}}}}}}}


def test_byte_sizes_as_the_engine_reads_them() -> None:
    assert parse_bytes("500mb") == 500 << 20 and parse_bytes("20GB") == 20 * GB and parse_bytes("1.5kb") == 1536
    assert parse_bytes("0b") == 0 and parse_bytes("7") is None and parse_bytes("-1") is None
    assert parse_bytes("12 parsecs") is None


def test_percentages_ratios_and_byte_values() -> None:
    assert parse_watermark("high", "90%") == Watermark("high", "90%", used_ratio=0.9)
    assert parse_watermark("high", "0.9") == Watermark("high", "0.9", used_ratio=0.9)
    assert parse_watermark("low", "500mb") == Watermark("low", "500mb", free_bytes=500 << 20)
    assert parse_watermark("high", "90%", "150GB") == Watermark("high", "90%", used_ratio=0.9,
                                                               max_headroom=150 * GB)
    # a bare number is a ratio only within 0..1 (the engine refuses `85`); nonsense is not compared at all
    assert parse_watermark("low", "85") is None and parse_watermark("low", "lots") is None
    assert parse_watermark("low", "85%", "-1") == Watermark("low", "85%", used_ratio=0.85)


def test_the_defaults_of_elasticsearch_9_with_their_headroom() -> None:
    marks = watermarks_from_settings(ES9_DEFAULTS)
    assert [(m.level, m.text, m.max_headroom) for m in marks] == [
        ("low", "85%", 200 * GB), ("high", "90%", 150 * GB), ("flood_stage", "95%", 100 * GB)]
    small = 100 * GB  # a small disk: the percentages hold
    assert crossed(small, int(small * 0.20), marks) is None
    assert crossed(small, int(small * 0.12), marks).level == "low"  # type: ignore[union-attr]
    assert crossed(small, int(small * 0.08), marks).level == "high"  # type: ignore[union-attr]
    assert crossed(small, int(small * 0.04), marks).level == "flood_stage"  # type: ignore[union-attr]
    big = 10_000 * GB  # a large disk: the headroom caps the free space asked for (92% used is fine)
    assert crossed(big, int(big * 0.08), marks) is None
    assert crossed(big, 120 * GB, marks).level == "high"  # type: ignore[union-attr]
    assert [m.used_percent_limit(small) for m in marks] == [85.0, 90.0, 95.0]
    assert marks[1].used_percent_limit(big) == 98.5


def test_set_values_win_over_defaults_and_the_switch_turns_them_off() -> None:
    body = {"persistent": {"cluster": {"routing": {"allocation": {"disk": {"watermark": {
                "low": "96%", "high": "0.97", "flood_stage": "0.98"}}}}}},
            "transient": {"cluster.routing.allocation.disk.watermark.low": "95%"},
            "defaults": {"cluster": {"routing": {"allocation": {"disk": {"threshold_enabled": "true", "watermark": {
                "low": {"max_headroom": "-1"}, "high": {"max_headroom": "-1"},
                "flood_stage": {"frozen": "95%", "max_headroom": "-1"}}}}}}}}
    marks = watermarks_from_settings(body)
    assert [(m.level, m.used_ratio, m.max_headroom) for m in marks] == [
        ("low", 0.95, None), ("high", 0.97, None), ("flood_stage", 0.98, None)]
    off = {"persistent": {"cluster.routing.allocation.disk.threshold_enabled": "false"}, **ES9_DEFAULTS}
    assert watermarks_from_settings(off) == ()
    assert watermarks_from_settings(None) == () and watermarks_from_settings({}) == ()


def test_free_space_floors_and_unknown_disks() -> None:
    marks = (Watermark("low", "1000tb", free_bytes=1000 << 40), Watermark("high", "10gb", free_bytes=10 * GB),
             Watermark("flood_stage", "1gb", free_bytes=GB))
    assert crossed(100 * GB, 20 * GB, marks).level == "low"  # type: ignore[union-attr]
    assert crossed(100 * GB, 5 * GB, marks).level == "high"  # type: ignore[union-attr]
    assert crossed(100 * GB, GB // 2, marks).level == "flood_stage"  # type: ignore[union-attr]
    assert crossed(None, 5, marks) is None and crossed(100, None, marks) is None and crossed(0, 0, marks) is None
    assert marks[0].used_percent_limit(100 * GB) == 0.0 and marks[1].used_percent_limit(100 * GB) == 90.0


@given(st.integers(min_value=1, max_value=1 << 50), st.data())
def test_a_fuller_disk_never_stands_lower(total: int, data: st.DataObject) -> None:
    marks = watermarks_from_settings(ES9_DEFAULTS)
    a = data.draw(st.integers(min_value=0, max_value=total))
    b = data.draw(st.integers(min_value=0, max_value=a))  # less free than a
    rank = {None: -1, "low": 0, "high": 1, "flood_stage": 2}
    ma, mb = crossed(total, a, marks), crossed(total, b, marks)
    assert rank[mb.level if mb else None] >= rank[ma.level if ma else None]


def _cluster(used: dict[str, float]) -> ClusterHealth:
    marks = watermarks_from_settings(ES9_DEFAULTS)
    nodes = []
    for name, pct in used.items():
        total = 100 * GB
        n = NodeHealth(id=name, name=name, disk_used_percent=pct, disk_total_bytes=total,
                       disk_available_bytes=int(total * (100 - pct) / 100))
        place_on_watermarks(n, marks)
        nodes.append(n)
    return ClusterHealth(label="", url="u", status="green", cluster_name="es", number_of_nodes=len(nodes),
                         nodes=nodes, watermarks={m.level: m.text for m in marks})


def test_high_is_warning_flood_stage_critical_low_a_note() -> None:
    c = _cluster({"a": 50.0, "b": 87.0, "c": 92.0, "d": 97.0})
    apply_thresholds([c], parse_thresholds([], []))
    assert [(b.level, b.node, b.rule) for b in c.breaches] == [("CRITICAL", "d", "flood stage watermark 95%"),
                                                               ("WARNING", "c", "high watermark 90%")]
    assert c.state is State.CRITICAL and c.notes == ["b disk 87% above the low watermark 85%"]
    assert c.nodes[0].disk_watermarks == {"low": 85.0, "high": 90.0, "flood_stage": 95.0}


def test_a_disk_rule_replaces_the_watermarks() -> None:
    c = _cluster({"d": 97.0})
    apply_thresholds([c], parse_thresholds(["disk>98"], []))
    assert c.breaches == [] and c.state is State.OK and c.notes == []
    apply_thresholds([c], parse_thresholds([], ["disk>96"]))
    assert [(b.level, b.rule) for b in c.breaches] == [("CRITICAL", "disk>96")]
