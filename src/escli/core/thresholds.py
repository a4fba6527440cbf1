"""Threshold expressions shared by `health --warn/--crit` and `profile --fail-if`: parsing and comparing only.

An expression is `[SCOPE:]METRIC OP NUMBER[UNIT]`, e.g. `heap>85`, `nodes<3`, `p99>200ms`, `errors>0.1%`,
`q1:p99>50ms`. Which metrics exist, what unit each is in and how a unit converts are the caller's vocabulary
(`Metric`); this module only parses against it and compares. Pure functions, no I/O: unit-tested directly.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from escli.errors import UsageError

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le,
}
_EXPR = re.compile(
    r"^\s*(?:(?P<scope>.+):)?(?P<metric>[A-Za-z_][A-Za-z0-9_]*(?:\.[0-9]+)?)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?P<num>[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*(?P<unit>[A-Za-zµ%/]*)\s*$")


@dataclass(frozen=True)
class Metric:
    """A metric callers may name: its unit (for messages and perfdata) and the units accepted, with factors.

    `units` maps a written unit to (factor to the metric's own unit, kind); "" is the bare number. `kind`
    lets one metric take two meanings, such as `errors>5` (a count) and `errors>0.1%` (a rate).
    """

    unit: str = ""
    units: Mapping[str, tuple[float, str]] | None = None

    def convert(self, number: float, unit: str) -> tuple[float, str] | None:
        accepted = self.units if self.units is not None else {"": (1.0, ""), self.unit: (1.0, "")}
        return None if unit not in accepted else (number * accepted[unit][0], accepted[unit][1])


@dataclass(frozen=True)
class Rule:
    """One parsed expression; `value` is in the metric's own unit (kind says which meaning, see Metric)."""

    text: str
    metric: str
    op: str
    value: float
    scope: str | None = None
    kind: str = ""

    def breached(self, observed: float) -> bool:
        return OPS[self.op](observed, self.value)

    def nagios_range(self) -> str:
        """This rule as a Nagios plugin range (alert when the value is *outside* a plain range, inside an `@` one).

        `>N` is the plain range `N` (0..N is fine; values are never negative here), `<N` is `N:`, `>=N` is
        `@N:` (alert from N up) and `<=N` is `@~:N`.
        """
        n = number_text(self.value)
        return {">": n, "<": f"{n}:", ">=": f"@{n}:", "<=": f"@~:{n}"}[self.op]


def number_text(v: float) -> str:
    """A number as a person writes it: 85 not 85.0, 0.1 not 0.1000000000000001 (shortest repr of 9 decimals)."""
    if math.isfinite(v) and float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(round(float(v), 9))


def parse_rule(text: str, option: str, metrics: Mapping[str, Metric], scopes: Callable[[str], bool] | None = None,
               metric_pattern: re.Pattern[str] | None = None, pattern_metric: Metric | None = None) -> Rule:
    """Parse one expression for `option`; a UsageError names the option, the expression and what is wrong.

    `scopes`: whether `SCOPE:` is allowed and which scopes exist (None: no scope allowed). `metric_pattern`
    with `pattern_metric`: a family of metrics not worth listing (profile's p50, p99.9, ...).
    """
    m = _EXPR.match(text)
    where = f"{option} {text}"
    if m is None:
        known = ", ".join(metrics)
        raise UsageError(f"{where}: expected METRIC OP NUMBER such as {_example(metrics)} (OP is >, <, >= or <=; "
                         f"metrics: {known})")
    scope, metric, op, unit = m.group("scope"), m.group("metric").lower(), m.group("op"), m.group("unit")
    number = float(m.group("num"))
    spec = metrics.get(metric)
    if spec is None and metric_pattern is not None and metric_pattern.fullmatch(metric):
        spec = pattern_metric
    if spec is None:
        raise UsageError(f"{where}: unknown metric {metric!r}; choose one of {', '.join(metrics)}")
    if scope is not None:
        if scopes is None:
            raise UsageError(f"{where}: {option} takes no SCOPE: prefix")
        if not scopes(scope):
            raise UsageError(f"{where}: no query with id {scope!r}")
    converted = spec.convert(number, unit.lower() if unit != "µs" else unit)
    if converted is None:
        accepted = [u for u in (spec.units if spec.units is not None else (spec.unit,)) if u]
        raise UsageError(f"{where}: unit {unit!r} does not fit {metric} (use {' or '.join(accepted) or 'none'})")
    value, kind = converted
    return Rule(text=text.strip(), metric=metric, op=op, value=value, scope=scope, kind=kind)


def _example(metrics: Mapping[str, Metric]) -> str:
    name, spec = next(iter(metrics.items()))
    return f"{name}>{90 if spec.unit == '%' else 10}{spec.unit if spec.unit == '%' else ''}"
