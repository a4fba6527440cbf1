"""Rendering `escli health`: a rich table for people, JSON, a Nagios line, Prometheus text exposition.

Each renderer takes the dict form of one or more checks (ClusterHealth.as_dict), so the output layer does not
depend on the core's classes.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from escli.output.prometheus import labels, number

STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
STATUS_CODE = {"green": 0, "yellow": 1, "red": 2}
STATUS_COLOUR = {"green": "green", "yellow": "yellow", "red": "red", "unknown": "magenta"}


def _fmt(v: Any, suffix: str = "", digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}{suffix}"
    return f"{v}{suffix}"


def cluster_label(c: Mapping[str, Any]) -> str:
    """How a check is named: its configured name, else the cluster's own name, else its URL."""
    return str(c.get("label") or c.get("cluster_name") or c.get("url") or "cluster")


UNITS = {"heap": "%", "disk": "%", "cpu": "%", "active_shards_percent": "%", "rtt_ms": " ms", "probe_p50": " ms",
         "probe_p95": " ms", "probe_max": " ms"}


def _breach(b: Mapping[str, Any]) -> str:
    """`node-0 heap 45% (heap>1)`, `probe products laptop probe_p50 1502 ms (probe_p50>500ms)`: where, what was
    seen, and the rule it broke."""
    v = b["value"]
    shown = f"{v:g}" if isinstance(v, float) else str(v)
    where = f"{b['node']} " if b.get("node") else f"probe {b['probe']} " if b.get("probe") else ""
    return f"{where}{b['metric']} {shown}{UNITS.get(b['metric'], '')} ({b['rule']})"


def probe_text(p: Mapping[str, Any]) -> str:
    """`probe products laptop: p50 3.1 ms, p95 4.2 ms, max 4.2 ms, 0 of 5 failed` (and the last error if any)."""
    if p["p50_ms"] is None:
        figures = "no answer"
    else:
        figures = f"p50 {p['p50_ms']:g} ms, p95 {p['p95_ms']:g} ms, max {p['max_ms']:g} ms"
    text = f"probe {p['id']}: {figures}, {p['errors']} of {p['searches']} failed"
    return text + (f" ({p['last_error']})" if p.get("last_error") else "")


def breaches_text(c: Mapping[str, Any]) -> str:
    """`CRITICAL: nodes 1 (nodes<3); WARNING: node-0 heap 45% (heap>1)`, or "" when no threshold broke."""
    parts = []
    for level in ("CRITICAL", "WARNING"):
        items = [_breach(b) for b in c.get("breaches") or [] if b["level"] == level]
        if items:
            parts.append(f"{level}: {', '.join(items)}")
    return "; ".join(parts)


def _summary(c: Mapping[str, Any]) -> str:
    """The one-line description of a check, shared by the table title and the Nagios line.

    What broke comes first (Nagios shows the start of the line in narrow views): thresholds, then the cluster.
    """
    if c.get("error"):
        return f"{cluster_label(c)}: no health answer: {c['error']}"
    n = c["number_of_nodes"]
    what = f"{c['cluster_name']}" + (f" index {c['index']}" if c.get("index") else "")
    if c.get("index_missing"):
        text = f"{what} {c['status']}: no index matches {c['index']}"
    else:
        text = (f"{what} {c['status']}: {n} node{'s' if n != 1 else ''}, "
                f"{c['active_shards_percent']:g}% shards active ({c['unassigned_shards']} unassigned, "
                f"{c['relocating_shards']} relocating, {c['initializing_shards']} initializing), "
                f"{c['pending_tasks']} pending task{'s' if c['pending_tasks'] != 1 else ''}")
    if c.get("label") and c["label"] != c.get("cluster_name"):
        text = f"{c['label']} ({text})"
    if c.get("timed_out") and c.get("wait_for_status"):
        text += f"; timed out waiting for {c['wait_for_status']}"
    for extra in [*(c.get("notes") or []), *(probe_text(p) for p in c.get("probes") or [])]:
        text += f"; {extra}"
    broke = breaches_text(c)
    return f"{broke}; {text}" if broke else text


def render_table(checks: Sequence[Mapping[str, Any]]) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    width = max(shutil.get_terminal_size((120, 24)).columns, 80)
    console = Console(file=buf, force_terminal=False, width=width, highlight=False)
    for c in checks:
        colour = STATUS_COLOUR.get(c["status"], "magenta")
        console.print(f"[bold {colour}]{c['state']}[/] {_escape(_summary(c))}")
        if c.get("error"):
            continue
        t = Table(show_header=True)
        for col in ("node", "roles", "heap %", "CPU %", "load 1m", "disk used %", "round trip ms",
                    "search q/rej", "write q/rej"):
            t.add_column(col, justify="left" if col in ("node", "roles") else "right")
        for n in c["nodes"]:
            t.add_row(n["name"], _roles(n["roles"]), _fmt(n["heap_used_percent"], digits=0),
                      _fmt(n["cpu_percent"], digits=0), _fmt(n["load_1m"], digits=2),
                      _disk(n), _fmt(n["round_trip_ms"], digits=2),
                      *(_pool(n, pool) for pool in ("search", "write")))
        console.print(t)
        if c.get("probes"):
            pt = Table(show_header=True)
            for col in ("probe", "index", "searches", "errors", "p50 ms", "p95 ms", "max ms"):
                pt.add_column(col, justify="left" if col in ("probe", "index") else "right")
            for p in c["probes"]:
                pt.add_row(_escape(p["id"]), _escape(p["index"]), str(p["searches"]), str(p["errors"]),
                           *(_fmt(p[k], digits=2) for k in ("p50_ms", "p95_ms", "max_ms")))
            console.print(pt)
    return buf.getvalue()


def _disk(n: Mapping[str, Any]) -> str:
    """Disk used %, with the cluster's watermark it is beyond (`91.2 (high)`)."""
    text = _fmt(n["disk_used_percent"])
    mark = n.get("disk_watermark")
    return f"{text} ({mark.replace('_', ' ')})" if mark else text


def _pool(n: Mapping[str, Any], pool: str) -> str:
    p = (n.get("thread_pools") or {}).get(pool) or {}
    return f"{_fmt(p.get('queue'))}/{_fmt(p.get('rejected'))}" if p else "-"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _roles(roles: Sequence[str]) -> str:
    """The short role letters of _cat/nodes (d data, m master, i ingest, ...); OpenSearch says cluster_manager."""
    letters = {"data": "d", "master": "m", "cluster_manager": "m", "search": "s", "ingest": "i", "ml": "l",
               "remote_cluster_client": "r",
               "transform": "t", "data_content": "s", "data_hot": "h", "data_warm": "w", "data_cold": "c",
               "data_frozen": "f", "voting_only": "v"}
    return "".join(sorted(letters.get(r, "?") for r in roles)) or "-"


# ---------------------------------------------------------------------------------------------------------------
# Nagios


def _perf_label(text: str) -> str:
    """A perfdata label without the characters that break naive parsers (space, quote, `=`, `|`): `_` instead.

    The plugin guidelines allow quoted labels, but many graphers split perfdata on spaces.
    """
    return re.sub(r"[\s'=|;]", "_", text)


def _perf(label: str, value: Any, uom: str = "", warn: str = "", crit: str = "", lo: str = "", hi: str = "") -> str:
    # An unknown value is `U` without its unit of measure, as the guidelines write it.
    v = "U" if value is None else number(value)
    text = f"{_perf_label(label)}={v}{uom if value is not None else ''};{warn};{crit};{lo};{hi}"
    return text.rstrip(";")


def _perfdata(c: Mapping[str, Any], prefix: str = "") -> list[str]:
    """status first, then cluster figures, then per node; a metric with --warn/--crit carries them as ranges."""
    p = prefix
    out = [_perf(f"{p}status", int(c["code"]), "", "1", "2", "0", "3")]
    if c.get("error"):
        return out
    th: Mapping[str, Mapping[str, str]] = c.get("thresholds") or {}

    def perf(label: str, metric: str | None, value: Any, uom: str = "", hi: str = "") -> str:
        t = th.get(metric or "") or {}
        return _perf(label, value, uom, t.get("warn", ""), t.get("crit", ""), "0", hi)

    out += [
        perf(f"{p}nodes", "nodes", c["number_of_nodes"]),
        perf(f"{p}data_nodes", "data_nodes", c["number_of_data_nodes"]),
        perf(f"{p}active_shards_percent", "active_shards_percent", float(c["active_shards_percent"]), "%", "100"),
        perf(f"{p}active_shards", None, c["active_shards"]),
        perf(f"{p}unassigned_shards", "unassigned", c["unassigned_shards"]),
        perf(f"{p}relocating_shards", "relocating", c["relocating_shards"]),
        perf(f"{p}initializing_shards", "initializing", c["initializing_shards"]),
        perf(f"{p}pending_tasks", "pending_tasks", c["pending_tasks"]),
    ]
    for n in c["nodes"]:
        name = n["name"]
        pools = n.get("thread_pools") or {}
        out += [
            perf(f"{p}{name}_heap", "heap", n["heap_used_percent"], "%", "100"),
            perf(f"{p}{name}_cpu", "cpu", n["cpu_percent"], "%", "100"),
            perf(f"{p}{name}_load1", "load1", n["load_1m"]),
            _disk_perf(f"{p}{name}_disk_used", n, th),
            perf(f"{p}{name}_rtt", "rtt_ms", n["round_trip_ms"], "ms"),
        ]
        for metric, (pool, key) in (("search_queue", ("search", "queue")),
                                    ("search_rejected", ("search", "rejected")),
                                    ("write_rejected", ("write", "rejected"))):
            if key in (pools.get(pool) or {}):
                # rejected counts since the node started: `c`, the guidelines' unit for a continuous counter
                out.append(perf(f"{p}{name}_{metric}", metric, pools[pool][key], "c" if key == "rejected" else ""))
    probes = c.get("probes") or []
    for probe in probes:
        # One probe: the names the issue and the docs give (probe_p50, ...); several: each prefixed with its id.
        q = f"{p}{probe['id']}_" if len(probes) > 1 else p
        out += [perf(f"{q}probe_{k}", f"probe_{k}", probe[f"{k}_ms"], "ms") for k in ("p50", "p95", "max")]
        out.append(perf(f"{q}probe_errors", "probe_errors", probe["errors"], hi=str(probe["searches"])))
    return out


def _disk_perf(label: str, n: Mapping[str, Any], th: Mapping[str, Mapping[str, str]]) -> str:
    """Disk used %, with --warn/--crit disk as its ranges, else the cluster's high and flood-stage watermarks as
    this node's limits (what the state is then computed from)."""
    given = th.get("disk")
    marks: Mapping[str, float] = n.get("disk_watermarks") or {}
    warn = given.get("warn", "") if given else number(marks["high"]) if "high" in marks else ""
    crit = given.get("crit", "") if given else number(marks["flood_stage"]) if "flood_stage" in marks else ""
    return _perf(label, n["disk_used_percent"], "%", warn, crit, "0", "100")


def render_nagios(checks: Sequence[Mapping[str, Any]], overall_code: int) -> str:
    """`ESCLI <STATE> - text | perfdata`; with several clusters a summary line, then one line per cluster."""
    state = STATES[overall_code]
    if len(checks) == 1:
        c = checks[0]
        return f"ESCLI {state} - {_oneline(_summary(c))} | {' '.join(_perfdata(c))}\n"
    counts = {s: sum(1 for c in checks if c["state"] == s) for s in STATES}
    head = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    perf = [p for c in checks for p in _perfdata(c, prefix=f"{cluster_label(c)}_")]
    lines = [f"ESCLI {state} - {len(checks)} clusters: {head} | {' '.join(perf)}"]
    lines += [f"{c['state']} - {_oneline(_summary(c))}" for c in checks]
    return "\n".join(lines) + "\n"


def _oneline(text: str) -> str:
    # `|` starts perfdata in Nagios output; keep it out of the text.
    return " ".join(text.replace("|", "/").split())


# ---------------------------------------------------------------------------------------------------------------
# Prometheus


def _labels(**kv: Any) -> str:
    return labels(kv)


def render_prometheus(checks: Sequence[Mapping[str, Any]]) -> str:
    """Text exposition format, `escli_` names, a `cluster` label on every sample (and `node` per node)."""
    families: list[tuple[str, str, str, list[str]]] = []

    def fam(name: str, help_text: str, kind: str = "gauge") -> list[str]:
        samples: list[str] = []
        families.append((name, help_text, kind, samples))
        return samples

    up = fam("escli_cluster_up", "1 when the cluster answered the health check, 0 otherwise.")
    status = fam("escli_cluster_status", "Cluster status: 0 green, 1 yellow, 2 red, 3 unknown (Nagios codes).")
    state = fam("escli_health_state", "Worst of the cluster status and the --warn/--crit thresholds (Nagios code).")
    breached = fam("escli_health_threshold_breached", "1 for each --warn/--crit threshold crossed, by metric and node.")
    nodes = fam("escli_cluster_nodes", "Nodes in the cluster.")
    data_nodes = fam("escli_cluster_data_nodes", "Data nodes in the cluster.")
    shards = fam("escli_cluster_shards", "Shards by state.")
    active_ratio = fam("escli_cluster_shards_active_ratio", "Active shards as a fraction of all shards.")
    pending = fam("escli_cluster_pending_tasks", "Cluster-level changes not yet executed.")
    task_wait = fam("escli_cluster_pending_task_max_wait_seconds", "Longest time a pending task has waited.")
    heap = fam("escli_node_heap_used_ratio", "JVM heap in use, as a fraction.")
    cpu = fam("escli_node_cpu_ratio", "Host CPU use reported by the node, as a fraction.")
    load = fam("escli_node_load1", "One-minute load average of the node's host.")
    disk = fam("escli_node_disk_used_ratio", "Disk in use on the node's data paths, as a fraction.")
    rtt = fam("escli_node_round_trip_seconds", "Measured round trip from escli to the node, via the cluster.")
    pool_queue = fam("escli_node_thread_pool_queue", "Tasks waiting in the node's thread pool queue.")
    pool_rejected = fam("escli_node_thread_pool_rejected_total",
                        "Tasks the node's thread pool rejected since the node started.", "counter")
    probe_latency = fam("escli_probe_latency_seconds",
                        "Latency of the probe's searches in this check (quantile 1 is the max).", "summary")
    probe_errors = fam("escli_probe_errors_total", "Probe searches that failed in this check.", "counter")
    probe_searches = fam("escli_probe_searches_total", "Probe searches sent in this check.", "counter")
    took = fam("escli_health_check_seconds", "How long the health check took.")

    for c in checks:
        cl = cluster_label(c)
        base = {"cluster": cl, **({"index": c["index"]} if c.get("index") else {})}
        lab = labels(base)
        up.append(f"escli_cluster_up{lab} {0 if c.get('error') else 1}")
        status.append(f"escli_cluster_status{lab} {3 if c.get('error') else STATUS_CODE.get(c['status'], 3)}")
        state.append(f"escli_health_state{lab} {int(c['code'])}")
        for b in c.get("breaches") or []:
            extra = {"node": b["node"]} if b.get("node") else {"probe": b["probe"]} if b.get("probe") else {}
            breached.append(f"escli_health_threshold_breached"
                            f"{_labels(cluster=cl, metric=b['metric'], **extra, level=b['level'].lower())} 1")
        took.append(f"escli_health_check_seconds{lab} {number(float(c['seconds']))}")
        if c.get("error"):
            continue
        nodes.append(f"escli_cluster_nodes{lab} {c['number_of_nodes']}")
        data_nodes.append(f"escli_cluster_data_nodes{lab} {c['number_of_data_nodes']}")
        for kind in ("active", "unassigned", "relocating", "initializing"):
            shards.append(f"escli_cluster_shards{_labels(**base, state=kind)} {c[f'{kind}_shards']}")
        active_ratio.append(f"escli_cluster_shards_active_ratio{lab} {number(c['active_shards_percent'] / 100.0)}")
        pending.append(f"escli_cluster_pending_tasks{lab} {c['pending_tasks']}")
        task_wait.append(f"escli_cluster_pending_task_max_wait_seconds{lab} {number(c['max_task_wait_ms'] / 1000.0)}")
        for n in c["nodes"]:
            nl = _labels(cluster=cl, node=n["name"])
            for samples, name, value, scale in (
                (heap, "escli_node_heap_used_ratio", n["heap_used_percent"], 100.0),
                (cpu, "escli_node_cpu_ratio", n["cpu_percent"], 100.0),
                (load, "escli_node_load1", n["load_1m"], 1.0),
                (disk, "escli_node_disk_used_ratio", n["disk_used_percent"], 100.0),
                (rtt, "escli_node_round_trip_seconds", n["round_trip_ms"], 1000.0),
            ):
                if value is not None:
                    samples.append(f"{name}{nl} {number(value / scale)}")
            for pool, figures in (n.get("thread_pools") or {}).items():
                pl = _labels(cluster=cl, node=n["name"], pool=pool)
                if "queue" in figures:
                    pool_queue.append(f"escli_node_thread_pool_queue{pl} {figures['queue']}")
                if "rejected" in figures:
                    pool_rejected.append(f"escli_node_thread_pool_rejected_total{pl} {figures['rejected']}")
        for p in c.get("probes") or []:
            pl = _labels(cluster=cl, probe=p["id"])
            for quantile, key in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("1", "max_ms")):
                if p[key] is not None:  # no answered search: no quantiles, _count says 0
                    probe_latency.append(f"escli_probe_latency_seconds"
                                         f"{_labels(cluster=cl, probe=p['id'], quantile=quantile)} "
                                         f"{number(p[key] / 1000.0)}")
            probe_latency.append(f"escli_probe_latency_seconds_sum{pl} {number(p['sum_ms'] / 1000.0)}")
            probe_latency.append(f"escli_probe_latency_seconds_count{pl} {p['searches'] - p['errors']}")
            probe_errors.append(f"escli_probe_errors_total{pl} {p['errors']}")
            probe_searches.append(f"escli_probe_searches_total{pl} {p['searches']}")
    out: list[str] = []
    for name, help_text, kind, samples in families:
        if not samples:
            continue
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(out) + "\n"
