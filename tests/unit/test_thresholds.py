"""Threshold expressions (health --warn/--crit, profile --fail-if) and Prometheus numbers: pure functions."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.core.health import (
    HEALTH_METRICS,
    ClusterHealth,
    NodeHealth,
    State,
    apply_thresholds,
    parse_thresholds,
)
from escli.core.thresholds import parse_rule
from escli.errors import UsageError
from escli.output.prometheus import number

NUM = r"-?[0-9]+(\.[0-9]+)?"
RANGE = re.compile(rf"^@?((~|{NUM}):)?({NUM})?$")
values = st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda v: round(v, 3))


@given(st.sampled_from(list(HEALTH_METRICS)), st.sampled_from([">", "<", ">=", "<="]), values, values)
def test_a_rule_and_its_nagios_range_agree(metric: str, op: str, limit: float, seen: float) -> None:
    rule = parse_rule(f"{metric}{op}{limit}", "--warn", HEALTH_METRICS)
    rng = rule.nagios_range()
    assert RANGE.match(rng), rng
    # Nagios: alert when outside start..end, or inside it with a leading @
    inside = rng.startswith("@")
    body = rng.lstrip("@")
    start_s, _, end_s = body.rpartition(":") if ":" in body else ("0", "", body)
    start = float("-inf") if start_s == "~" else float(start_s or 0)
    end = float(end_s) if end_s else float("inf")
    in_range = start <= seen <= end
    assert rule.breached(seen) == (in_range if inside else not in_range), (rule, rng, seen)


def test_units_and_kinds() -> None:
    assert parse_rule("rtt_ms>0.5s", "--warn", HEALTH_METRICS).value == 500.0
    assert parse_rule("heap > 85%", "--warn", HEALTH_METRICS).value == 85.0
    with pytest.raises(UsageError, match=r"--crit disk>9GB: unit 'GB' does not fit disk \(use %\)"):
        parse_rule("disk>9GB", "--crit", HEALTH_METRICS)
    with pytest.raises(UsageError, match="expected METRIC OP NUMBER"):
        parse_rule("heap", "--warn", HEALTH_METRICS)


def test_evaluation_on_every_node_and_the_worst_state() -> None:
    nodes = [NodeHealth(id=str(i), name=f"n{i}", heap_used_percent=h) for i, h in enumerate((50.0, 91.0, 97.0))]
    c = ClusterHealth(label="", url="u", status="green", cluster_name="es", number_of_nodes=3, nodes=nodes)
    apply_thresholds([c], parse_thresholds(["heap>90", "nodes<3"], ["heap>95"]))
    assert [(b.level, b.node) for b in c.breaches] == [("CRITICAL", "n2"), ("WARNING", "n1")]
    assert c.state is State.CRITICAL and c.thresholds == {"heap": {"warn": "90", "crit": "95"},
                                                          "nodes": {"warn": "3:"}}
    down = ClusterHealth(label="", url="u", error="unreachable")
    apply_thresholds([down], parse_thresholds(["nodes<3"], []))
    assert down.breaches == [] and down.state is State.UNKNOWN


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_prometheus_numbers_round_trip_to_nine_decimals(v: float) -> None:
    text = number(v)
    assert abs(float(text) - v) <= 5e-10 * max(1.0, abs(v)) or float(text) == v
    assert "e" not in text or abs(v) < 1e-4 or abs(v) >= 1e16


def test_prometheus_numbers_read_as_measured() -> None:
    assert number(3.361 / 1000) == "0.003361"
    assert number(0.1 + 0.2) == "0.3" and number(2.0) == "2" and number(7) == "7" and number(1e-12) == "1e-12"
