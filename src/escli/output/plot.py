"""`profile --plot`: a compact latency percentile chart for the terminal, in plain text (pipes and logs keep it).

One bar per "nine" (p0, p50, p90, p99, p99.9, ... as far as the sample supports, then max), read from the
run's percentile distribution; with --compare a `│` marks the baseline's value on each bar.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from typing import Any

NINES = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 99.9999)
EIGHTHS = " ▏▎▍▌▋▊▉"


def value_at(points: Sequence[Sequence[float]], p: float) -> float | None:
    """The first distribution point at or above percentile p (the distribution is nearest-rank already)."""
    for q, v in points:
        if q >= p - 1e-9:
            return float(v)
    return None


def _rows(points: Sequence[Sequence[float]]) -> list[tuple[str, float]]:
    if not points:
        return []
    top = points[-2][0] if len(points) > 1 else 0.0  # the last supported percentile before max
    rows = [(_label(p), v) for p in NINES if p <= top + 1e-9 and (v := value_at(points, p)) is not None]
    return [*rows, ("max", float(points[-1][1]))]


def _label(p: float) -> str:
    return "p" + f"{p:.4f}".rstrip("0").rstrip(".")


def _bar(value: float, scale: float, width: int) -> str:
    eighths = round(value / scale * width * 8) if scale > 0 else 0
    if value > 0:
        eighths = max(eighths, 1)  # a spike at the max must not make the other rows' bars vanish
    full, part = divmod(min(eighths, width * 8), 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


def percentile_plot(doc: Mapping[str, Any], baseline: Mapping[str, Any] | None = None,
                    width: int | None = None) -> str:
    points = ((doc.get("distribution") or {}).get("overall")) or []
    rows = _rows(points)
    if not rows:
        return "latency percentiles: no successful request to draw\n"
    base_points = ((baseline or {}).get("distribution") or {}).get("overall") or []
    base = {label: value_at(base_points, 100.0 if label == "max" else float(label[1:])) for label, _ in rows} \
        if base_points else {}
    top = max([v for _, v in rows] + [v for v in base.values() if v is not None])
    cols = width or shutil.get_terminal_size((100, 24)).columns
    bar_width = max(20, min(60, cols - 30))
    title = "latency percentiles, ms" + (" (│ baseline)" if base else "")
    out = [title]
    for label, v in rows:
        bar = list(_bar(v, top, bar_width))
        b = base.get(label)
        if b is not None:
            pos = min(int(b / top * bar_width), bar_width - 1) if top > 0 else 0
            bar[pos] = "│"
        tail = f"{v:,.3f}" + (f"  (baseline {b:,.3f})" if b is not None else "")
        out.append(f"{label:>9} {''.join(bar)} {tail}")
    return "\n".join(out) + "\n"
