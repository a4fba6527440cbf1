"""Durations given on the command line and in the config file: the one parser (`--duration`, `--warmup`, health's
`--timeout`, `--cache-ttl`, warm-cache's `--ttl` and `--refresh-ahead`, `timeout`/`ttl` in config.toml).

A module of its own so that `escli health` parses its `--timeout` without importing the profiler.
"""

from __future__ import annotations

import re

from escli.errors import UsageError

# ASCII digits only ([0-9], not \d, which takes '٣'); `fullmatch`, so a trailing newline is not taken either.
_DURATION = re.compile(r"[ \t]*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)[ \t]*(ms|s|m|h|d)?[ \t]*")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
EXPECTED = "expected a duration such as 30s, 500ms, 2m, 1h or 1d (a plain number is seconds)"


def parse_duration(text: str, option: str, *, allow_zero: bool = False) -> float:
    """`30s`, `500ms`, `2m`, `1h`, `1d` or a plain number of seconds; UsageError naming the option otherwise.

    Finite and more than 0 (0 or more with `allow_zero`)."""
    m = _DURATION.fullmatch(text.lower())
    if m is None:
        raise UsageError(f"{option} {text}: {EXPECTED}")
    value = float(m.group(1)) * _FACTORS[m.group(2)]
    if not (value >= 0 if allow_zero else value > 0) or value == float("inf"):
        raise UsageError(f"{option} {text}: must be {'0 or more' if allow_zero else 'more than 0'} and finite")
    return value
