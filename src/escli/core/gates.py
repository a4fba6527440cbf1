"""`profile --fail-if EXPR`: latency gates for CI, evaluated on a finished profile's JSON form. Pure functions.

EXPR is `[ID:]METRIC OP NUMBER[UNIT]`: `p99>200ms`, `p50>20ms`, `max>1s`, `mean>5ms`, `errors>0.1%` (rate),
`errors>5` (count), `throughput<500` (successful requests per second), `q1:p99>50ms` (one query id).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from escli.core.thresholds import Metric, Rule, parse_rule
from escli.profiler import percentile_label

_MS = Metric("ms", {"": (1.0, ""), "ms": (1.0, ""), "s": (1000.0, ""), "us": (0.001, ""), "µs": (0.001, "")})
GATE_METRICS: dict[str, Metric] = {
    "p50": _MS, "p90": _MS, "p95": _MS, "p99": _MS, "p99.9": _MS, "max": _MS, "mean": _MS,
    "errors": Metric("", {"": (1.0, "count"), "%": (0.01, "rate")}),
    "throughput": Metric("/s", {"": (1.0, ""), "/s": (1.0, "")}),
}
_PERCENTILE = re.compile(r"p(100|[0-9]{1,2}(\.[0-9]+)?)")


@dataclass(frozen=True)
class Gate:
    rule: Rule

    @property
    def percentile(self) -> float | None:
        """The latency percentile the gate reads (p99 -> 99.0, max -> 100.0), None for the others."""
        m = self.rule.metric
        if m == "max":
            return 100.0
        return float(m[1:]) if _PERCENTILE.fullmatch(m) else None


def parse_gates(texts: Sequence[str], query_ids: Collection[str]) -> list[Gate]:
    """--fail-if expressions; a bad one (or an unknown query id) is a UsageError naming it."""
    return [Gate(parse_rule(t, "--fail-if", GATE_METRICS, scopes=lambda s: s in query_ids,
                            metric_pattern=_PERCENTILE, pattern_metric=_MS)) for t in texts]


def gate_percentiles(gates: Sequence[Gate]) -> tuple[float, ...]:
    """Percentiles the gates read, so the run computes (and the table shows) them."""
    return tuple(p for g in gates if (p := g.percentile) is not None)


def evaluate_gates(doc: Mapping[str, Any], gates: Sequence[Gate]) -> list[dict[str, Any]]:
    """Each gate with what was measured: `{"expr", "query", "metric", "observed", "limit", "unit", "passed",
    "note"}`. A percentile the sample is too small for is read as the max (never kinder than the truth)."""
    out: list[dict[str, Any]] = []
    for g in gates:
        r = g.rule
        stats = doc["overall"] if r.scope is None else doc["queries"][r.scope]
        note = None
        unit = "ms"
        metric = r.metric
        if r.metric == "errors":
            errors = sum((stats.get("errors") or {}).values())
            if r.kind == "rate":
                observed: float | None = float(stats.get("error_rate") or 0.0)
                unit = "rate"
            else:
                observed, unit = float(errors), ""
        elif r.metric == "throughput":
            observed, unit = float(stats.get("throughput") or 0.0), "/s"
        else:
            lat = stats.get("latency_ms") or {}
            label = metric = r.metric if r.metric in ("mean", "max") else percentile_label(g.percentile or 0.0)
            observed = lat.get(label)
            if observed is None and lat.get("count"):
                observed = lat.get("max")
                note = f"{label} needs more samples than {lat['count']:,}: read as the max"
        passed = observed is not None and not r.breached(observed)
        if observed is None:
            note = "no successful request to measure"
        out.append({"expr": r.text, "query": r.scope, "metric": metric, "observed": observed,
                    "limit": r.value, "unit": unit, "passed": passed, "note": note})
    return out
