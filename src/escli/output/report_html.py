"""`profile --report FILE.html`: one self-contained page (no script, no network, no CDN) with SVG drawn here.

Why SVG by hand: the pictures are three kinds of line chart; a plotting library (matplotlib ~40 MB, plotly's
3 MB of JavaScript inlined per report) would be the heaviest dependency escli has, for ~200 lines of code.
The page: the summary table (with --compare deltas and --fail-if marks), the latency percentile distribution
(HdrHistogram style: x = 1/(1-p) on a log axis up to the max), latency (p50, p99) and throughput per second
over time; one line per query and one for all, the baseline's dashed on the same axes.
Everything is drawn from the JSON form of a result (ProfileResult.as_dict), so a saved run draws the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
PLOT_BG = "#fafbfd"  # the plot areas' background (the browser test finds the charts by it)
ALL = "(all)"
W, H = 880, 330
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 52


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    colour: str
    dashed: bool = False
    width: float = 1.6


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 x 10^k) up to at least `top`."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _num(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else f"{v:.3g}"


def svg_chart(chart_id: str, series: Sequence[Series], *, x_label: str, y_label: str, x_log: bool = False,
              x_ticks: Sequence[tuple[float, str]] | None = None, x_max: float | None = None) -> str:
    """A line chart as an inline SVG element: axes, grid, tick labels, axis titles, a legend."""
    pts = [p for s in series for p in s.points]
    x_lo = 1.0 if x_log else 0.0
    x_hi = x_max or max((x for x, _ in pts), default=1.0)
    x_hi = max(x_hi, x_lo * 10 if x_log else x_lo + 1)
    y_ticks = nice_ticks(max((y for _, y in pts), default=1.0) * 1.05)
    y_hi = y_ticks[-1]
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(x: float) -> float:
        if x_log:
            return LEFT + pw * (math.log10(max(x, x_lo)) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo))
        return LEFT + pw * (x - x_lo) / (x_hi - x_lo)

    def sy(y: float) -> float:
        return TOP + ph * (1 - y / y_hi)

    out = [f'<svg id="{chart_id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(y_label)} by {escape(x_label)}">',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="{PLOT_BG}" stroke="#888"/>']
    for t in y_ticks:
        y = sy(t)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_num(t)}</text>')
    if x_ticks is None:
        x_ticks = [(t, _num(t)) for t in nice_ticks(x_hi, 8) if t <= x_hi]
    for t, label in x_ticks:
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + ph}" stroke="#e3e3e3"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<text class="axis-label" x="{LEFT + pw / 2}" y="{H - 10}" text-anchor="middle">'
               f'{escape(x_label)}</text>')
    out.append(f'<text class="axis-label" transform="translate(16,{TOP + ph / 2}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    for s in series:
        if not s.points:
            continue
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(s.points))
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(f'<path d="{path}" fill="none" stroke="{s.colour}" stroke-width="{s.width}"{dash}>'
                   f'<title>{escape(s.name)}</title></path>')
    out.append("</svg>")
    return "\n".join(out) + legend(series)


def legend(series: Sequence[Series]) -> str:
    """The key under a chart, in HTML so that it wraps however many lines there are."""
    items = []
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        items.append(f'<span class="key"><svg width="28" height="10"><line x1="0" x2="28" y1="5" y2="5" '
                     f'stroke="{s.colour}" stroke-width="2.5"{dash}/></svg>{escape(s.name)}</span>')
    return '<div class="legend">' + " ".join(items) + "</div>"


# --------------------------------------------------------------------------------------------------------------
# The page


def _runs(doc: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[tuple[str, Mapping[str, Any], bool]]:
    runs = [("", doc, False)]
    if baseline is not None:
        runs.append((" (baseline)", baseline, True))
    return runs


MAX_QUERY_LINES = 7  # per chart and run; more lines than colours cannot be told apart


def _names(doc: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> list[str]:
    """(all), then the queries to draw: every one up to MAX_QUERY_LINES (fewer with a baseline, whose lines
    double the count), else the slowest by p99 (the table lists all)."""
    queries = doc.get("queries") or {}
    if len(queries) < 2:
        return [ALL]
    limit = MAX_QUERY_LINES if baseline is None else 3

    def p99(q: str) -> float:
        lat = queries[q].get("latency_ms") or {}
        return float(lat.get("p99", lat.get("max", 0.0)) or 0.0)

    chosen = set(sorted(queries, key=p99, reverse=True)[:limit])
    return [ALL, *(q for q in queries if q in chosen)]


def _shown_note(doc: Mapping[str, Any], names: list[str]) -> str:
    n = len(doc.get("queries") or {})
    if n < 2 or len(names) - 1 == n:
        return ""
    return (f'<p class="meta">{len(names) - 1} of {n} queries drawn (the slowest by p99) besides (all); the table '
            "has every query</p>")


def _colour(names: list[str], name: str) -> str:
    return PALETTE[names.index(name) % len(PALETTE)] if name in names else PALETTE[-1]


def _stats(doc: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    return doc.get("overall") if name == ALL else (doc.get("queries") or {}).get(name)


def _part(doc: Mapping[str, Any], key: str, name: str) -> Any:
    part = doc.get(key) or {}
    return part.get("overall") if name == ALL else (part.get("queries") or {}).get(name)


def distribution_chart(doc: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> str:
    names = _names(doc, baseline)
    series: list[Series] = []
    x_max = 10.0
    for suffix, run, dashed in _runs(doc, baseline):
        for name in names:
            points = _part(run, "distribution", name) or []
            stats = _stats(run, name) or {}
            count = int((stats.get("latency_ms") or {}).get("count") or 0)
            if not points or not count:
                continue
            # x = 1/(1-p): 1 at p0, 10 at p90, 100 at p99; the max sits at x = count (the rank of the last value)
            xy = [(count if p >= 100.0 else min(1.0 / (1.0 - p / 100.0), count), v) for p, v in points]
            x_max = max(x_max, count)
            series.append(Series(name + suffix, xy, _colour(names, name), dashed, 2.2 if name == ALL else 1.4))
    ticks = [(1.0, "0%")]
    for k in range(1, 9):
        if 10 ** k <= x_max:
            ticks.append((10.0 ** k, f"{100 - 100 / 10 ** k:.{max(k - 2, 0)}f}%"))
    return svg_chart("chart-distribution", series, x_label="percentile (log scale of 1/(1-p); last point: max)",
                     y_label="latency (ms)", x_log=True, x_ticks=ticks, x_max=x_max)


def over_time_chart(doc: Mapping[str, Any], baseline: Mapping[str, Any] | None, what: str) -> str:
    names = _names(doc, baseline)
    series: list[Series] = []
    for suffix, run, dashed in _runs(doc, baseline):
        for name in names:
            rows = _part(run, "timeline", name) or []
            # The last second is partial: scaled to a rate, or left out when too short to say anything.
            total = float(run.get("seconds") or 0.0)
            rows = [r for r in rows if min(1.0, total - r["t"]) >= 0.5]
            if what == "throughput":
                pts = [(r["t"] + 0.5, r["ok"] / min(1.0, total - r["t"])) for r in rows]
                if pts:
                    series.append(Series(name + suffix, pts, _colour(names, name), dashed,
                                         2.2 if name == ALL else 1.4))
                continue
            for label, width in (("p99", 2.0), ("p50", 1.2)):
                if name != ALL and label == "p50":
                    continue  # per query only p99: a chart of 2 x N lines is unreadable
                pts = [(r["t"] + 0.5, float(r[label])) for r in rows if label in r]
                if pts:
                    series.append(Series(f"{name} {label}{suffix}", pts, _colour(names, name),
                                         dashed, width if name == ALL else 1.3))
    if what == "throughput":
        return svg_chart("chart-throughput", series, x_label="seconds since measuring began",
                         y_label="answered requests per second")
    return svg_chart("chart-latency", series, x_label="seconds since measuring began",
                     y_label="latency per second (ms)")


def _fmt(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "–"
    return f"{v:,.3f}" if v < 10 else (f"{v:,.2f}" if v < 100 else f"{v:,.1f}")


def _delta(d: Any, higher_is_better: bool = False) -> str:
    if not isinstance(d, (int, float)) or math.isnan(d):
        return ""
    cls = "better" if (d > 0) == higher_is_better else "worse"
    return f' <span class="delta {cls}">{d:+.1f}%</span>'


def summary_table(doc: Mapping[str, Any], deltas: Mapping[str, Any] | None) -> str:
    labels = list(doc.get("percentiles") or [])
    failed = {(g["query"] or ALL, g["metric"]) for g in doc.get("gates") or [] if not g["passed"]}
    head = ["query", "requests", "errors", "throughput/s", *[f"{lb} ms" for lb in labels], "mean ms"]
    rows = ["<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    names = [ALL, *(doc.get("queries") or {})] if len(doc.get("queries") or {}) > 1 else [ALL]
    for name in names:
        s = _stats(doc, name) or {}
        d = (deltas or {}).get("overall") if name == ALL else ((deltas or {}).get("queries") or {}).get(name)
        d = d or {}
        lat, dl = s.get("latency_ms") or {}, d.get("latency_ms") or {}

        def cell(text: str, column: str, name: str = name) -> str:
            bad = (name, column) in failed
            return f'<td class="num{" fail" if bad else ""}">{text}{" ✗" if bad else ""}</td>'

        errs = sum((s.get("errors") or {}).values())
        cells = [f'<td class="name">{escape(name)}</td>', f'<td class="num">{s.get("requests", 0):,}</td>',
                 cell(f"{errs:,}", "errors"),
                 cell(f"{s.get('throughput', 0):,.1f}{_delta(d.get('throughput'), True)}", "throughput")]
        cells += [cell(_fmt(lat.get(lb)) + _delta(dl.get(lb)), lb) for lb in labels]
        cells.append(cell(_fmt(lat.get("mean")) + _delta(dl.get("mean")), "mean"))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<table class="summary">' + "\n".join(rows) + "</table>"


def gates_table(doc: Mapping[str, Any]) -> str:
    gates = doc.get("gates") or []
    if not gates:
        return ""
    from escli.output.profile_view import breach_line

    rows = ["<tr><th>--fail-if</th><th>result</th><th>measured</th></tr>"]
    for g in gates:
        ok = g["passed"]
        rows.append(f'<tr><td><code>{escape(g["expr"])}</code></td><td class="{"pass" if ok else "fail"}">'
                    f'{"pass" if ok else "FAIL ✗"}</td><td>{escape(breach_line(g).split(": ", 1)[1])}</td></tr>')
    return "<h2>Gates</h2>\n<table>" + "\n".join(rows) + "</table>"


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 24px 32px;
       max-width: 1180px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 26px 0 8px; }
.meta { color: #555; margin: 0 0 12px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; } th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.fail, .fail { color: #b00020; font-weight: 600; } .pass { color: #1a7f37; }
.delta { font-size: 12px; } .delta.worse { color: #b00020; } .delta.better { color: #1a7f37; }
svg.chart { display: block; background: #fff; }
svg text { font: 12px system-ui, sans-serif; fill: #333; } svg text.axis-label { font-size: 13px; fill: #111; }
.legend { margin: 4px 0 0 70px; font-size: 12px; max-width: 820px; }
.key { white-space: nowrap; margin-right: 14px; } .key svg { vertical-align: middle; margin-right: 4px; }
td.name { white-space: nowrap; }
"""


def _meta(doc: Mapping[str, Any]) -> str:
    o = doc["overall"]
    load = (f"open loop at {doc['rate']:g}/s ({doc['schedule']})" if doc.get("mode") == "open"
            else f"closed loop, concurrency {doc.get('concurrency')}")
    return (f"started {escape(str(doc.get('started_at')))} · {load} · {o['requests']:,} requests in "
            f"{doc.get('seconds', 0):.2f} s · {o.get('throughput', 0):,.1f} answered per second")


def render_report(doc: Mapping[str, Any], baseline: Mapping[str, Any] | None = None,
                  deltas: Mapping[str, Any] | None = None) -> str:
    """The whole page as one string: inline CSS and SVG, nothing fetched when it is opened."""
    compare = ""
    if baseline is not None:
        compare = (f'<p class="meta">compared with the baseline started {escape(str(baseline.get("started_at")))}'
                   f" ({_meta(baseline)}); its lines are dashed, changes in % are in the table</p>")
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>escli profile {escape(str(doc.get('started_at')))}</title>", f"<style>{CSS}</style></head><body>",
        "<h1>escli profile</h1>", f'<p class="meta">{_meta(doc)}</p>', compare,
        "<h2>Summary</h2>", summary_table(doc, deltas),
        '<p class="meta">latency in ms from the intended send to the answer; ✗ marks a figure a --fail-if gate '
        "failed on</p>",
        gates_table(doc),
        "<h2>Latency percentile distribution</h2>", _shown_note(doc, _names(doc, baseline)),
        distribution_chart(doc, baseline),
        "<h2>Latency over time</h2>", over_time_chart(doc, baseline, "latency"),
        "<h2>Throughput over time</h2>", over_time_chart(doc, baseline, "throughput"),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
