"""Rendering `escli profile` results: rich tables, the shard tree, node_exporter textfile format.

Everything here works on the JSON form of a result (ProfileResult.as_dict), so a live run, a saved file and a
comparison render the same way.
"""

from __future__ import annotations

import io
import math
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from escli.output.prometheus import labels as _labels
from escli.output.prometheus import number as _num

ALL = "(all)"
TIMES = (("latency_ms", "latency"), ("service_time_ms", "service"), ("took_ms", "took"),
         ("overhead_ms", "overhead"))


def _console(buf: io.StringIO) -> Any:
    from rich.console import Console

    width = max(shutil.get_terminal_size((140, 24)).columns, 100)
    return Console(file=buf, force_terminal=False, width=width, highlight=False, soft_wrap=False)


def _fmt_ms(v: Any) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    return f"{v:,.3f}" if v < 10 else (f"{v:,.2f}" if v < 100 else f"{v:,.1f}")


def _fmt_delta(d: Any) -> str:
    if not isinstance(d, (int, float)) or math.isnan(d):
        return ""
    return f" ({d:+.1f}%)"


def _title(doc: Mapping[str, Any]) -> str:
    q = doc["overall"]
    if doc["mode"] == "open":
        load = f"open loop at {doc['rate']:g}/s ({doc['schedule']} schedule), at most {doc['concurrency']} in flight"
    else:
        load = f"closed loop, concurrency {doc['concurrency']}"
    if (doc.get("workers") or 1) > 1:
        load += f", {doc['workers']} workers"
    what = f"{q['requests']:,} requests in {doc['seconds']:.2f} s"
    if doc.get("repeat"):
        what += f" over {len(doc.get('runs') or [])} runs"
    if doc.get("merged"):
        what += f", merged from {len(doc['merged'])} saved runs"
    return f"escli profile: {load}; {what}"


def _rows(doc: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    rows: list[tuple[str, Mapping[str, Any]]] = [(ALL, doc["overall"])]
    if len(doc.get("queries", {})) > 1:
        rows += list(doc["queries"].items())
    rows += [(f"cluster {n}", s) for n, s in (doc.get("clusters") or {}).items()]  # several clusters
    return rows


def render_profile(doc: Mapping[str, Any], deltas: Mapping[str, Any] | None = None) -> str:
    """The tables a person reads: requests and throughput, then times in ms, then the notes."""
    from rich.table import Table

    buf = io.StringIO()
    console = _console(buf)
    labels: list[str] = list(doc.get("percentiles") or [])
    rows = _rows(doc)

    def d_for(name: str) -> Mapping[str, Any]:
        if deltas is None:
            return {}
        if name == ALL:
            return deltas.get("overall") or {}
        return (deltas.get("queries") or {}).get(name) or {}

    console.print(_title(doc))
    failed = failed_cells(doc)

    def mark(name: str, column: str, text: str) -> str:
        return f"[bold red]{text} ✗[/]" if (name, column) in failed else text

    counts = Table()
    for col in ("query", "requests", "ok", "errors", "error types", "throughput/s"):
        counts.add_column(col, justify="left" if col in ("query", "error types") else "right")
    for name, s in rows:
        errs = s.get("errors") or {}
        d = d_for(name)
        counts.add_row(name, f"{s['requests']:,}", f"{s['ok']:,}", mark(name, "errors", f"{sum(errs.values()):,}"),
                       ", ".join(f"{k}: {v}" for k, v in errs.items()) or "-",
                       mark(name, "throughput", f"{s['throughput']:,.1f}" + _fmt_delta(d.get("throughput"))))
    console.print(counts)

    times = Table(caption="ms; latency from the intended send, service time to the last byte, took by "
                          "Elasticsearch, overhead = client time around the service time", caption_justify="left")
    times.add_column("query")
    times.add_column("time")
    for label in [*labels, "mean"]:
        times.add_column(label, justify="right")
    hidden: dict[str, dict[str, int]] = {}
    for name, s in rows:
        d = d_for(name)
        for key, title in TIMES:
            fig = s.get(key) or {}
            if not fig.get("count"):
                continue
            fd = d.get(key) or {}
            cells = [_fmt_ms(fig.get(lbl)) + _fmt_delta(fd.get(lbl)) if lbl in fig else "n/a" for lbl in labels]
            mean = _fmt_ms(fig.get("mean")) + _fmt_delta(fd.get("mean"))
            if key == "latency_ms":  # the gates read latency
                cells = [mark(name, lbl, c) for lbl, c in zip(labels, cells, strict=True)]
                mean = mark(name, "mean", mean)
            times.add_row(name if key == "latency_ms" else "", title, *cells, mean)
            for lbl in fig.get("not_shown") or {}:
                hidden.setdefault(lbl, {}).setdefault(name, int(fig.get("count") or 0))
        if name != rows[-1][0]:
            times.add_section()
    console.print(times)

    notes: list[str] = []
    for lbl, have in hidden.items():
        from escli.profiler import min_samples

        need = min_samples(100.0 if lbl == "max" else 0.0 if lbl == "min" else float(lbl[1:]))
        counts_text = ", ".join(f"{n} {c:,}" for n, c in have.items())
        notes.append(f"{lbl} n/a: needs at least {need:,} samples (have {counts_text}); with fewer it would only "
                     "repeat the maximum")
    c = doc.get("client") or {}
    cd = (deltas or {}).get("client") or {}
    if c:
        line = (f"client: CPU {c.get('cpu_seconds', 0):.2f} s ({c.get('cpu_percent') or 0:.1f} % of one core), "
                f"{c.get('cpu_us_per_request') or 0:,.0f} µs per request{_fmt_delta(cd.get('cpu_us_per_request'))}, "
                f"RSS {c.get('rss_bytes', 0) / 2**20:,.1f} MiB{_fmt_delta(cd.get('rss_bytes'))}")
        if doc["mode"] == "open":
            line += (f"; {c.get('late_sends') or 0:,} sends more than 1 ms behind schedule "
                     f"(max {c.get('max_send_lag_ms') or 0:,.1f} ms, counted in latency)")
        notes.append(line)
    cache = doc.get("cache") or {}
    if cache.get("hit_ratio") is None:
        notes.append(f"cache hit ratio: none ({cache.get('note', 'no cache lookups')})")
    else:
        notes.append(f"cache hit ratio: {cache['hit_ratio']:.1%} of {cache.get('lookups', 0):,} lookups")
    w = doc.get("warmup") or {}
    if w.get("sent"):
        notes.append(f"warm-up: {w['sent']:,} requests sent before measuring, not counted")
    if deltas is not None:
        notes.append(f"(±%) change against the baseline of {deltas.get('baseline_started_at')}")
    for n in notes:
        console.print(n)
    gates = doc.get("gates") or []
    if gates:
        from rich.markup import escape

        t = Table(title="--fail-if", title_justify="left")
        for col in ("gate", "result"):
            t.add_column(col)
        for g in gates:
            t.add_row(escape(g["expr"]), "[green]pass[/]" if g["passed"] else f"[bold red]FAIL ✗[/] "
                      f"{escape(breach_line(g).split(': ', 1)[1])}")
        console.print(t)
    if doc.get("spread"):
        console.print(_spread_table(doc))
    if "steps" in doc:
        console.print(_steps_table(doc))
    return buf.getvalue()


def _fmt_cv(cv: Any) -> str:
    return f"{cv:.1%}" if isinstance(cv, (int, float)) else "-"


def _spread_table(doc: Mapping[str, Any]) -> Any:
    """--repeat: per figure, its median and coefficient of variation across the runs, and its range."""
    from rich.table import Table

    sp = doc["spread"]
    t = Table(title=f"--repeat: {sp['runs']} runs, median and cv (standard deviation / mean) of each figure",
              title_justify="left")
    for col in ("query", "figure", "median", "cv", "min", "max"):
        t.add_column(col, justify="left" if col in ("query", "figure") else "right")
    blocks = [(ALL, sp["overall"])] + (list(sp["queries"].items()) if len(sp["queries"]) > 1 else [])
    for name, block in blocks:
        first = True
        for fig, v in block.items():
            items = [(fig, v)] if "median" in v else [(f"{dict(TIMES).get(fig, fig)} {lbl}", x)
                                                      for lbl, x in v.items()]
            for label, x in items:
                t.add_row(name if first else "", label, _fmt_ms(x["median"]), _fmt_cv(x["cv"]),
                          _fmt_ms(min(x["values"])), _fmt_ms(max(x["values"])))
                first = False
        t.add_section()
    return t


def _steps_table(doc: Mapping[str, Any]) -> Any:
    """--find-max: each step's rate, its tries' sample sizes, what its deciding try measured, and the outcome."""
    from rich.table import Table

    best, low = doc.get("max_rate"), doc.get("min_failing_rate")
    title = f"--find-max: max rate {best:g}/s" if best is not None else "--find-max: no rate held the gates"
    if low is not None:
        title += f", lowest failing {low:g}/s"
    cap = doc.get("capacity")
    if cap:
        title += f" (closed-loop capacity {cap['throughput']:g}/s at concurrency {cap['concurrency']})"
    labels: list[str] = list(doc.get("percentiles") or [])
    t = Table(title=title, title_justify="left")
    for col in ("step", "rate/s", "samples", "needed", "throughput/s", "errors", *labels, "outcome"):
        t.add_column(col, justify="left" if col == "outcome" else "right")
    for i, st in enumerate(doc["steps"], start=1):
        lat = st.get("latency_ms") or {}
        failed = [g["expr"] for g in st.get("gates") or [] if not g["passed"]]
        outcome = st.get("outcome") or ("pass" if st["passed"] else "fail")
        shown = {"pass": "[green]pass[/]", "undecided": "[yellow]undecided[/]"}.get(
            outcome, f"[bold red]FAIL[/] {', '.join(failed)}")
        samples = " + ".join(f"{x['requests']:,}" for x in st.get("tries") or []) or f"{st['requests']:,}"
        t.add_row(str(i), f"{st['rate']:g}", samples, f"{st.get('needed', 0):,}", f"{st['throughput']:,.1f}",
                  f"{st['error_rate']:.2%}", *[_fmt_ms(lat.get(lbl)) for lbl in labels], shown)
    return t


def breach_line(g: Mapping[str, Any]) -> str:
    """`p99>200ms: p99 of (all) is 250.3 ms` for one failed gate."""
    where = g["query"] or "(all)"
    v = g["observed"]
    if v is None:
        seen = "not measured"
    elif g["unit"] == "rate":
        seen = f"{v * 100:.3g}%"
    elif g["unit"] == "ms":
        seen = f"{v:,.3f} ms"
    else:
        seen = f"{v:,.6g}{g['unit']}"
    text = f"{g['expr']}: {g['metric']} of {where} is {seen}"
    return text + (f" ({g['note']})" if g.get("note") else "")


def failed_cells(doc: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(row, column) of each figure a failed --fail-if gate read: a percentile label, mean, errors, throughput."""
    out: set[tuple[str, str]] = set()
    for g in doc.get("gates") or []:
        if not g["passed"]:
            out.add((g["query"] or ALL, g["metric"]))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Shard tree


def _ms(nanos: Any) -> str:
    return f"{nanos / 1e6:,.3f} ms" if isinstance(nanos, (int, float)) else "-"


def _short(text: Any, width: int = 90) -> str:
    s = str(text or "")
    return s if len(s) <= width else s[: width - 1] + "…"


def _add_query(node: Any, q: Mapping[str, Any]) -> None:
    from rich.markup import escape

    br = q.get("breakdown") or {}
    top = sorted(((k, v) for k, v in br.items() if not k.endswith("_count") and isinstance(v, int) and v),
                 key=lambda kv: -kv[1])[:3]
    detail = ", ".join(f"{k} {_ms(v)}" for k, v in top)
    child = node.add(f"[bold]{escape(str(q.get('type')))}[/] {_ms(q.get('time_in_nanos'))}  "
                     f"{escape(_short(q.get('description')))}" + (f"  [dim]({escape(detail)})[/]" if detail else ""))
    for sub in q.get("children") or []:
        _add_query(child, sub)


def _add_collector(node: Any, c: Mapping[str, Any]) -> None:
    from rich.markup import escape

    child = node.add(f"collector {escape(str(c.get('name')))} ({escape(str(c.get('reason')))}) "
                     f"{_ms(c.get('time_in_nanos'))}")
    for sub in c.get("children") or []:
        _add_collector(child, sub)


def render_shards(profiles: Sequence[Mapping[str, Any]]) -> str:
    """One tree per query: shard -> searches -> query tree, rewrite, collectors; aggregations; fetch."""
    from rich.markup import escape
    from rich.tree import Tree

    buf = io.StringIO()
    console = _console(buf)
    for p in profiles:
        tree = Tree(f"[bold]{escape(str(p['id']))}[/] on {escape(str(p['index']))}: took {p.get('took_ms')} ms, "
                    f"{len(p.get('shards') or [])} shard(s)")
        for shard in p.get("shards") or []:
            total = 0
            for s in shard.get("searches") or []:
                total += sum(int(q.get("time_in_nanos") or 0) for q in s.get("query") or [])
            branch = tree.add(f"shard {escape(str(shard.get('id')))}  query time {_ms(total)}")
            for s in shard.get("searches") or []:
                search = branch.add(f"search (rewrite {_ms(s.get('rewrite_time'))})")
                for q in s.get("query") or []:
                    _add_query(search, q)
                for c in s.get("collector") or []:
                    _add_collector(search, c)
            for a in shard.get("aggregations") or []:
                branch.add(f"aggregation {escape(str(a.get('type')))} {escape(_short(a.get('description')))} "
                           f"{_ms(a.get('time_in_nanos'))}")
            fetch = shard.get("fetch")
            if isinstance(fetch, dict):
                f = branch.add(f"fetch {_ms(fetch.get('time_in_nanos'))}")
                for sub in fetch.get("children") or []:
                    f.add(f"{escape(str(sub.get('type')))} {_ms(sub.get('time_in_nanos'))}")
        console.print(tree)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# node_exporter textfile


def prometheus_text(doc: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """The node_exporter textfile collector format: summaries in seconds per query id (and `_all`), plus counts."""
    base = dict(labels or {})
    rows = [("_all", doc["overall"]), *doc.get("queries", {}).items()]
    out: list[str] = []

    def lbl(extra: Mapping[str, str]) -> str:
        return _labels({**base, **extra})

    for key, name, help_text in (
        ("latency_ms", "escli_profile_latency_seconds", "Latency from the intended send time to the parsed response"),
        ("service_time_ms", "escli_profile_service_time_seconds", "Send to last byte of the response body"),
        ("took_ms", "escli_profile_took_seconds", "Elasticsearch's own took"),
    ):
        out += [f"# HELP {name} {help_text}.", f"# TYPE {name} summary"]
        for q, s in rows:
            fig = s.get(key) or {}
            for lblname, value in fig.items():
                if lblname in ("count", "mean", "not_shown", "min"):
                    continue
                quantile = 1.0 if lblname == "max" else float(lblname[1:]) / 100.0
                out.append(f"{name}{lbl({'query': q, 'quantile': repr(round(quantile, 9))})} {_num(value / 1000.0)}")
            count = int(fig.get("count") or 0)
            mean = fig.get("mean")
            out.append(f"{name}_sum{lbl({'query': q})} {_num((mean or 0.0) * count / 1000.0)}")
            out.append(f"{name}_count{lbl({'query': q})} {count}")
    out += ["# HELP escli_profile_requests Requests measured (ok and failed).", "# TYPE escli_profile_requests gauge"]
    out += [f"escli_profile_requests{lbl({'query': q})} {s['requests']}" for q, s in rows]
    out += ["# HELP escli_profile_errors Failed requests by error type.", "# TYPE escli_profile_errors gauge"]
    for q, s in rows:
        for etype, n in (s.get("errors") or {}).items():
            out.append(f"escli_profile_errors{lbl({'query': q, 'type': etype})} {n}")
    out += ["# HELP escli_profile_throughput_per_second Successful requests per second.",
            "# TYPE escli_profile_throughput_per_second gauge"]
    out += [f"escli_profile_throughput_per_second{lbl({'query': q})} {_num(s['throughput'])}" for q, s in rows]
    c = doc.get("client") or {}
    out += ["# HELP escli_profile_client_cpu_seconds CPU time escli used while measuring.",
            "# TYPE escli_profile_client_cpu_seconds gauge",
            f"escli_profile_client_cpu_seconds{lbl({})} {_num(c.get('cpu_seconds') or 0)}",
            "# HELP escli_profile_client_rss_bytes Resident memory of escli at the end of the run.",
            "# TYPE escli_profile_client_rss_bytes gauge",
            f"escli_profile_client_rss_bytes{lbl({})} {int(c.get('rss_bytes') or 0)}"]
    from datetime import datetime

    ts = datetime.fromisoformat(str(doc["started_at"])).timestamp()
    out += ["# HELP escli_profile_last_run_timestamp_seconds When the run started (Unix time).",
            "# TYPE escli_profile_last_run_timestamp_seconds gauge",
            f"escli_profile_last_run_timestamp_seconds{lbl({})} {_num(ts)}"]
    return "\n".join(out) + "\n"
