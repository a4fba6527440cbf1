"""The cluster's own disk watermarks, and where each node's disk stands against them. Pure functions, no I/O.

Elasticsearch and OpenSearch stop putting shards on a node above the low watermark, move shards away above the
high one, and make every index with a shard on the node read-only at the flood stage. Each watermark is a
percentage (`90%`), a ratio (`0.9`) or an absolute amount of free space (`500mb`, meaning "less than 500 MB
free"); Elasticsearch 8.5+ also caps the free space a percentage asks for with `max_headroom` (150 GB for
high by default), so on a large disk the effective limit is not the percentage. escli health reads them with
`GET _cluster/settings?include_defaults=true` and compares each node's `fs.total` with them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "cluster.routing.allocation.disk."
LEVELS = ("low", "high", "flood_stage")  # in rising order
# The _cluster/settings filter: the three watermarks, their headrooms and the on/off switch.
# `**`: a headroom set next to its watermark comes back nested under it (`high: {max_headroom: ...}`).
SETTINGS_FILTER = ",".join(f"*.{PREFIX}{key}" for key in ("watermark.**", "threshold_enabled"))
_BYTE_UNITS = {"b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30,
               "t": 1 << 40, "tb": 1 << 40, "p": 1 << 50, "pb": 1 << 50}
_BYTES = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)\s*$")
_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)\s*$")


def parse_bytes(text: str) -> int | None:
    """An Elasticsearch byte size (`500mb`, `1.5gb`, `0b`; binary units as the engine reads them), else None."""
    m = _BYTES.match(text.lower())
    if m is None or m.group(2) not in _BYTE_UNITS:
        return None
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2)])


@dataclass(frozen=True)
class Watermark:
    """One level as the cluster set it: a used ratio (from `90%` or `0.9`) or a free-space floor in bytes."""

    level: str  # low | high | flood_stage
    text: str  # as the cluster wrote it, for messages
    used_ratio: float | None = None
    free_bytes: int | None = None
    max_headroom: int | None = None  # caps the free space a ratio asks for; None: no cap

    def required_free(self, total: int) -> float:
        """Bytes that must stay free on a disk of `total` bytes for this level not to be crossed."""
        if self.free_bytes is not None:
            return float(self.free_bytes)
        need = (1.0 - (self.used_ratio or 0.0)) * total
        return min(need, float(self.max_headroom)) if self.max_headroom is not None else need

    def used_percent_limit(self, total: int) -> float:
        """The same limit as disk used % on that disk (what perfdata shows), within 0..100: a free-space floor
        larger than the disk is crossed at any use."""
        if total <= 0:
            return math.nan
        return round(min(max(100.0 * (1.0 - self.required_free(total) / total), 0.0), 100.0), 1)


def parse_watermark(level: str, text: str, headroom: str | None = None) -> Watermark | None:
    """`90%`, `0.9` or `500mb` for one level (None when the value is none of them: nothing is compared then).

    A bare number is a ratio only within 0..1, as the engine reads it; `85` alone is not a valid watermark.
    """
    cap = parse_bytes(headroom) if headroom else None  # `-1` (unset) parses as None: no cap
    m = _NUMBER.match(text)
    if m is not None:
        value = float(m.group(1))
        ratio = value / 100.0 if m.group(2) else value
        if 0.0 <= ratio <= 1.0:
            return Watermark(level, text.strip(), used_ratio=ratio, max_headroom=cap)
        return None
    free = parse_bytes(text)
    return Watermark(level, text.strip(), free_bytes=free) if free is not None else None


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested settings (`{"cluster": {"routing": ...}}`) as dotted keys; flat ones stay as they are."""
    if not isinstance(obj, Mapping):
        return {prefix: obj} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def effective_settings(body: Any) -> dict[str, str]:
    """A `_cluster/settings?include_defaults=true` answer as one dict: transient over persistent over defaults."""
    merged: dict[str, str] = {}
    if isinstance(body, Mapping):
        for section in ("defaults", "persistent", "transient"):
            for key, value in flatten(body.get(section) or {}).items():
                if value is not None:
                    merged[key] = str(value)
    return merged


def watermarks_from_settings(body: Any) -> tuple[Watermark, ...]:
    """The levels the cluster enforces, lowest first; none when the disk threshold decider is switched off."""
    s = effective_settings(body)
    if s.get(f"{PREFIX}threshold_enabled", "true").lower() == "false":
        return ()
    out = []
    for level in LEVELS:
        text = s.get(f"{PREFIX}watermark.{level}")
        if text is None:
            continue
        mark = parse_watermark(level, text, s.get(f"{PREFIX}watermark.{level}.max_headroom"))
        if mark is not None:
            out.append(mark)
    return tuple(out)


def crossed(total: int | None, available: int | None, marks: tuple[Watermark, ...]) -> Watermark | None:
    """The highest level a disk is beyond (less free than the level asks for), or None."""
    if not total or available is None or total <= 0:
        return None
    beyond = [m for m in marks if available < m.required_free(total)]
    return max(beyond, key=lambda m: LEVELS.index(m.level), default=None)
