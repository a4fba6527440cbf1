"""Durations given on the command line (`--duration`, `--warmup`, health's `--timeout`).

A module of its own so that `escli health` parses its `--timeout` without importing the profiler.
"""

from __future__ import annotations

from escli.errors import UsageError


def parse_duration(text: str, option: str) -> float:
    """`30s`, `500ms`, `2m`, `1h` or a plain number of seconds; UsageError naming the option otherwise."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(ms|s|m|h)?\s*", text.lower())
    if m is None:
        raise UsageError(f"{option} {text}: expected a duration such as 30s, 500ms or 2m")
    number, factor = m.group(1), {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}[m.group(2)]
    try:
        value = float(number) * factor
    except ValueError:
        raise UsageError(f"{option} {text}: expected a duration such as 30s, 500ms or 2m") from None
    if not value > 0 or value != value or value == float("inf"):
        raise UsageError(f"{option} {text}: must be a positive duration")
    return value
