"""`escli health`: one health check of a cluster (or of every configured cluster), for people and monitoring.

Data: _cluster/health (optionally waiting for a status), _nodes/stats (jvm, os, fs, process and the search and
write thread pools), _cluster/pending_tasks, the disk watermarks from _cluster/settings, and a measured round trip
per node; then, when asked, probe searches: K real searches per probe, timed, after every health call. A check
that cannot reach the cluster, or that the cluster refuses, is UNKNOWN rather than an exception: monitoring needs
an answer, within the timeout, always; a probe search that fails is counted as a probe error.
Nothing here prints; escli.output.health_view renders a ClusterHealth as a table, JSON, Nagios or Prometheus.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from escli.core.thresholds import Metric, Rule, parse_rule
from escli.core.watermarks import SETTINGS_FILTER, Watermark, crossed, watermarks_from_settings
from escli.errors import BadAnswerError, RefusedError, UnreachableError, api_error_summary, one_line
from escli.es.answers import SEARCH, parsed

if TYPE_CHECKING:
    from escli.es.api import Es
    from escli.es.queries import QuerySpec
    from escli.settings import Settings
    from escli.ui import UI


class State(IntEnum):
    """Nagios states; also health's exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


STATUS_STATE = {"green": State.OK, "yellow": State.WARNING, "red": State.CRITICAL}
THREAD_POOLS = ("search", "write")
# One _nodes/stats request for everything per node, thread pools included (queue and rejected only).
NODE_STATS_METRICS = "jvm,os,fs,process,thread_pool"
NODE_STATS_FILTER = ",".join(f"nodes.*.{p}" for p in (
    "name", "roles", "host", "jvm.mem.heap_used_percent", "os.cpu.percent", "os.cpu.load_average",
    "process.cpu.percent", "fs.total",
    *(f"thread_pool.{pool}.{k}" for pool in THREAD_POOLS for k in ("queue", "rejected"))))
RTT_SAMPLES = 3
PROBE_QUANTILES = (50.0, 95.0, 100.0)  # p50, p95, max


@dataclass
class NodeHealth:
    id: str
    name: str
    roles: list[str] = field(default_factory=list)
    heap_used_percent: float | None = None
    cpu_percent: float | None = None
    process_cpu_percent: float | None = None
    load_1m: float | None = None
    disk_used_percent: float | None = None
    disk_total_bytes: int | None = None
    disk_available_bytes: int | None = None
    round_trip_ms: float | None = None
    # pool -> {"queue": now waiting, "rejected": since the node started (a counter)}
    thread_pools: dict[str, dict[str, int]] = field(default_factory=dict)
    # The cluster's watermarks as disk used % on this node's disk (headroom and byte values make them differ per
    # node), and the highest one its disk is beyond.
    disk_watermarks: dict[str, float] = field(default_factory=dict)
    disk_watermark: str | None = None


@dataclass
class ProbeResult:
    """K timed searches of one probe: latency of the answered ones (ms), the failed ones counted by type."""

    id: str
    index: str
    searches: int = 0
    errors: int = 0
    error_types: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None
    sum_ms: float = 0.0
    request_cache: bool = False


@dataclass
class ClusterHealth:
    label: str
    url: str
    status: str = "unknown"  # green | yellow | red | unknown
    cluster_name: str | None = None
    timed_out: bool = False
    wait_for_status: str | None = None
    index: str | None = None  # --index: the health of these indices (nodes are still the cluster's)
    number_of_nodes: int = 0
    number_of_data_nodes: int = 0
    active_primary_shards: int = 0
    active_shards: int = 0
    relocating_shards: int = 0
    initializing_shards: int = 0
    unassigned_shards: int = 0
    delayed_unassigned_shards: int = 0
    active_shards_percent: float = 0.0
    pending_tasks: int = 0
    max_task_wait_ms: int = 0
    nodes: list[NodeHealth] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    breaches: list[Breach] = field(default_factory=list)
    thresholds: dict[str, dict[str, str]] = field(default_factory=dict)  # metric -> {"warn"|"crit": Nagios range}
    watermarks: dict[str, str] = field(default_factory=dict)  # level -> as the cluster set it ("90%", "500mb")
    probes: list[ProbeResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said in the status line, no effect on the state

    @property
    def index_missing(self) -> bool:
        """`--index` matched nothing (an existing index has at least one shard in some state).

        Elasticsearch's colour is kept: red for a missing name (after its timeout, which escli sets to 0), green
        for a pattern that matches nothing.
        """
        return self.index is not None and self.error is None and not (
            self.active_shards or self.unassigned_shards or self.initializing_shards or self.relocating_shards)

    @property
    def colour_state(self) -> State:
        if self.error is not None:
            return State.UNKNOWN
        return STATUS_STATE.get(self.status, State.UNKNOWN)

    @property
    def state(self) -> State:
        """The worst of the cluster colour and the thresholds; UNKNOWN when there was no answer."""
        colour = self.colour_state
        if colour is State.UNKNOWN:
            return colour
        return max([colour, *(State[b.level] for b in self.breaches)])

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.name
        d["code"] = int(self.state)
        d["index_missing"] = self.index_missing
        return d


def worst(states: list[State]) -> State:
    """The exit code of several checks: the highest Nagios state (UNKNOWN > CRITICAL > WARNING > OK)."""
    return max(states, default=State.UNKNOWN)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _pools(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    pools = data.get("thread_pool") or {}
    out: dict[str, dict[str, int]] = {}
    for name in THREAD_POOLS:
        p = pools.get(name)
        if isinstance(p, dict):
            out[name] = {k: int(p[k]) for k in ("queue", "rejected") if isinstance(p.get(k), int)}
    return out


def node_from_stats(node_id: str, data: dict[str, Any]) -> NodeHealth:
    os_cpu = (data.get("os") or {}).get("cpu") or {}
    fs = (data.get("fs") or {}).get("total") or {}
    total, avail = fs.get("total_in_bytes"), fs.get("available_in_bytes")
    disk = None
    if isinstance(total, int) and isinstance(avail, int) and total > 0:
        disk = round(100.0 * (total - avail) / total, 1)
    return NodeHealth(
        id=node_id,
        name=str(data.get("name", node_id)),
        roles=list(data.get("roles") or []),
        heap_used_percent=_num(((data.get("jvm") or {}).get("mem") or {}).get("heap_used_percent")),
        cpu_percent=_num(os_cpu.get("percent")),
        process_cpu_percent=_num(((data.get("process") or {}).get("cpu") or {}).get("percent")),
        load_1m=_num((os_cpu.get("load_average") or {}).get("1m")),
        disk_used_percent=disk,
        disk_total_bytes=total if isinstance(total, int) else None,
        disk_available_bytes=avail if isinstance(avail, int) else None,
        thread_pools=_pools(data),
    )


def place_on_watermarks(n: NodeHealth, marks: tuple[Watermark, ...]) -> None:
    """The node's disk against the cluster's watermarks (limits as used %, and the highest level crossed)."""
    total = n.disk_total_bytes
    if total:
        n.disk_watermarks = {m.level: m.used_percent_limit(total) for m in marks}
    beyond = crossed(total, n.disk_available_bytes, marks)
    n.disk_watermark = beyond.level if beyond is not None else None


async def round_trip(client: Es, node_id: str) -> float:
    """Median of a few `GET /_nodes/<id>/_none` (the node info API with no metrics), in ms.

    The request goes client -> coordinating node -> that node and back: it works wherever the client can reach
    the cluster (behind a proxy or in the cloud the nodes' own addresses often cannot be reached).
    """
    samples = []
    for _ in range(RTT_SAMPLES):
        started = time.perf_counter()
        await client.request("GET", f"/_nodes/{node_id}/_none")
        samples.append((time.perf_counter() - started) * 1000.0)
    return round(statistics.median(samples), 3)


@dataclass(frozen=True)
class Probes:
    """What to probe: the searches, how many times each, and whether the shard request cache may answer."""

    queries: tuple[QuerySpec, ...] = ()
    count: int = 5
    request_cache: bool = False


async def check(client: Es, label: str, url: str, wait_for_status: str | None = None,
                timeout: float = 30.0, index: str | None = None, probes: Probes | None = None) -> ClusterHealth:
    """One cluster's health. Never raises for the cluster's sake: errors become an UNKNOWN result.

    Probes go after every health call (so a slow probe cannot hide the cluster's state) and share the check's
    deadline: a probe search still running then, or not sent by then, is a probe error.
    """
    result = ClusterHealth(label=label, url=url, wait_for_status=wait_for_status, index=index)
    started = time.perf_counter()
    try:
        await asyncio.wait_for(_fill(client, result, wait_for_status, timeout), timeout=timeout)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        result.error = f"no answer within {timeout:g}s"
    except BadAnswerError as exc:  # it names the URL; the line that shows it starts with the cluster's
        result.error = str(exc).removeprefix(url)
    except UnreachableError as exc:
        result.error = f"cluster unreachable: no answer within {timeout:g}s" if exc.timed_out else one_line(exc)
    except RefusedError as exc:
        status, etype, reason = api_error_summary(exc)
        result.error = f"{status} {etype}: {reason}"
    except Exception as exc:
        result.error = one_line(exc)
    if result.error is not None:
        result.status = "unknown"
    elif probes is not None and probes.queries:
        result.probes = await run_probes(client, probes, started + timeout)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def health_params(wait_for_status: str | None, timeout: float, index: str | None) -> dict[str, str]:
    """The query string of `GET /_cluster/health[/INDEX]` (also what --curl prints)."""
    params: dict[str, str] = {}
    if wait_for_status:
        params["wait_for_status"] = wait_for_status
        # Leave time within our own deadline for node stats, pending tasks and round trips after the wait.
        params["timeout"] = f"{max(int((timeout - min(2.0, timeout / 4)) * 1000), 100)}ms"
    elif index:
        params["timeout"] = "0s"  # an index that does not exist would otherwise be waited for (30 s)
    return params


async def _fill(client: Es, r: ClusterHealth, wait_for_status: str | None, timeout: float) -> None:
    params = health_params(wait_for_status, timeout, r.index)
    # A health wait that times out answers 408 with the health body: that is an answer, not an error.
    health = await client.cluster_health(params, index=r.index, timeout=timeout)
    r.cluster_name = health.get("cluster_name")
    r.status = str(health.get("status", "unknown"))
    r.timed_out = bool(health.get("timed_out", False))
    r.number_of_nodes = int(health.get("number_of_nodes", 0))
    r.number_of_data_nodes = int(health.get("number_of_data_nodes", 0))
    r.active_primary_shards = int(health.get("active_primary_shards", 0))
    r.active_shards = int(health.get("active_shards", 0))
    r.relocating_shards = int(health.get("relocating_shards", 0))
    r.initializing_shards = int(health.get("initializing_shards", 0))
    r.unassigned_shards = int(health.get("unassigned_shards", 0))
    r.delayed_unassigned_shards = int(health.get("delayed_unassigned_shards", 0))
    r.active_shards_percent = round(float(health.get("active_shards_percent_as_number", 0.0)), 2)

    stats_task = client.nodes_stats(NODE_STATS_METRICS, filter_path=NODE_STATS_FILTER)
    tasks_task = client.pending_tasks()
    stats, pending, marks = await asyncio.gather(stats_task, tasks_task, cluster_watermarks(client))
    tasks = pending.get("tasks") or []
    r.pending_tasks = len(tasks)
    r.max_task_wait_ms = max((int(t.get("time_in_queue_millis", 0)) for t in tasks), default=0)
    r.watermarks = {m.level: m.text for m in marks}
    nodes = [node_from_stats(nid, data) for nid, data in (stats.get("nodes") or {}).items()]
    for n in nodes:
        place_on_watermarks(n, marks)
    rtts = await asyncio.gather(*(round_trip(client, n.id) for n in nodes), return_exceptions=True)
    for n, rtt in zip(nodes, rtts, strict=True):
        n.round_trip_ms = rtt if isinstance(rtt, float) else None
    r.nodes = sorted(nodes, key=lambda n: n.name)


async def cluster_watermarks(client: Es) -> tuple[Watermark, ...]:
    """The disk watermarks the cluster enforces; none when it will not say (a user without the right to read
    cluster settings still gets the rest of the check, and disk is then only checked against --warn/--crit)."""
    params = {"include_defaults": "true", "filter_path": SETTINGS_FILTER}
    try:
        body = await client.json("GET", "/_cluster/settings", params=params)
    except RefusedError:
        return ()
    return watermarks_from_settings(body)


# --------------------------------------------------------------------------------------------------------------
# Probes: real searches, timed as users wait for them


async def run_probes(client: Es, probes: Probes, deadline: float) -> list[ProbeResult]:
    """Each probe's searches one after another (a probe measures one user's wait, not a load), on the check's
    own Es (the one request path), never through escli's cache; the shard request cache is off unless asked."""
    import orjson

    from escli.es.queries import param_text
    from escli.profiler import Histogram

    out: list[ProbeResult] = []
    for spec in probes.queries:
        params = {k: param_text(v) for k, v in spec.params.items()}
        if probes.request_cache:
            params["request_cache"] = "true"
        else:
            params.setdefault("request_cache", "false")
        body = orjson.dumps(spec.body)
        res = ProbeResult(id=spec.id, index=spec.index, request_cache=params["request_cache"] == "true")
        hist = Histogram()  # microseconds, as profile records them
        for _ in range(probes.count):
            res.searches += 1
            latency_us, failure = await _probe_once(client, spec.index, body, params, deadline)
            if failure is None and latency_us is not None:
                hist.record(latency_us)
            else:
                kind, message = failure or ("error", "no answer")
                res.errors += 1
                res.error_types[kind] = res.error_types.get(kind, 0) + 1
                res.last_error = message
        if hist.count:
            res.p50_ms, res.p95_ms, res.max_ms = (round(v / 1000.0, 3) for v in hist.values_at(PROBE_QUANTILES))
            res.sum_ms = round(hist.sum / 1000.0, 3)
        out.append(res)
    return out


async def _probe_once(client: Es, index: str, body: bytes, params: dict[str, str], deadline: float
                      ) -> tuple[int | None, tuple[str, str] | None]:
    """(latency in µs, None) for an answer in full, or (latency or None, (error type, one line)) for a failure.

    An answer with failed shards or `timed_out` is a failure too: the user got a partial result.
    """

    left = deadline - time.perf_counter()
    if left <= 0:
        return None, ("timeout", "not sent: the check's --timeout was spent")
    started = time.perf_counter()
    try:
        resp = await asyncio.wait_for(client.search(index, body, params, timeout=left), timeout=left)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        return None, ("timeout", f"no answer within the check's --timeout ({left:.3g}s left)")
    except BadAnswerError as exc:  # not a search answer (es/answers.py): counted by what came back
        return None, (exc.kind, one_line(exc))
    except UnreachableError as exc:
        return None, ("timeout" if exc.timed_out else "unreachable", one_line(exc))
    except RefusedError as exc:
        status, etype, reason = api_error_summary(exc)
        return None, (etype, f"{status} {etype}: {reason}")
    except Exception as exc:
        return None, (type(exc).__name__, one_line(exc))
    latency_us = int((time.perf_counter() - started) * 1_000_000)
    try:
        answer = parsed(resp.status, resp.body, resp.url, SEARCH)
    except BadAnswerError as exc:
        return latency_us, (exc.kind, one_line(exc))
    if answer.get("timed_out"):
        return latency_us, ("search_timed_out", "the search timed out on the server (partial hits)")
    shards = answer.get("_shards")
    if isinstance(shards, dict) and isinstance(shards.get("failed"), int) and shards["failed"] > 0:
        return latency_us, ("shard_failure", f"{shards['failed']} of {shards.get('total')} shards failed")
    return latency_us, None


async def check_settings(settings: Settings, label: str, wait_for_status: str | None, timeout: float,
                         ui: UI, index: str | None = None, probes: Probes | None = None) -> ClusterHealth:
    """A check with its own transport: each request, its retries (the one policy, --max-retries) included, ends
    within the check's timeout."""
    from escli.es.connect import open_es

    s = settings.with_(timeout=timeout)
    url = ",".join(s.urls) if not s.credentials.cloud_id else "cloud"
    try:
        async with open_es(s, ui) as es:
            return await check(es, label, url, wait_for_status, timeout, index, probes)
    except Exception as exc:  # making the client failed (bad CA file, ...): still an answer
        return ClusterHealth(label=label, url=url, error=one_line(exc))


async def check_many(targets: list[tuple[str, Settings | Exception]], wait_for_status: str | None,
                     timeout: float, ui: UI, index: str | None = None,
                     probes: Probes | None = None) -> list[ClusterHealth]:
    """Every target at once (each with its own probes); a target whose settings could not be resolved is UNKNOWN
    with the reason."""

    async def one(label: str, s: Settings | Exception) -> ClusterHealth:
        if isinstance(s, Exception):
            return ClusterHealth(label=label, url="", error=one_line(s))
        return await check_settings(s, label, wait_for_status, timeout, ui, index, probes)

    return list(await asyncio.gather(*(one(label, s) for label, s in targets)))


# --------------------------------------------------------------------------------------------------------------
# Thresholds (--warn / --crit): pure functions over a finished check


_PCT = Metric("%")
_COUNT = Metric("")
_MS = Metric("ms", {"": (1.0, ""), "ms": (1.0, ""), "s": (1000.0, "")})
HEALTH_METRICS: dict[str, Metric] = {
    "heap": _PCT, "disk": _PCT, "cpu": _PCT, "load1": _COUNT, "rtt_ms": _MS,
    "search_queue": _COUNT, "search_rejected": _COUNT, "write_rejected": _COUNT,
    "unassigned": _COUNT, "pending_tasks": _COUNT, "active_shards_percent": _PCT, "nodes": _COUNT,
    "data_nodes": _COUNT, "relocating": _COUNT, "initializing": _COUNT,
    "probe_p50": _MS, "probe_p95": _MS, "probe_max": _MS, "probe_errors": _COUNT,
}
# Metric -> field of NodeHealth (checked on every node), of ProbeResult (on every probe) or of ClusterHealth.
NODE_FIELDS = {"heap": "heap_used_percent", "disk": "disk_used_percent", "cpu": "cpu_percent", "load1": "load_1m",
               "rtt_ms": "round_trip_ms"}
POOL_FIELDS = {"search_queue": ("search", "queue"), "search_rejected": ("search", "rejected"),
               "write_rejected": ("write", "rejected")}
PROBE_FIELDS = {"probe_p50": "p50_ms", "probe_p95": "p95_ms", "probe_max": "max_ms", "probe_errors": "errors"}
CLUSTER_FIELDS = {"unassigned": "unassigned_shards", "pending_tasks": "pending_tasks",
                  "active_shards_percent": "active_shards_percent", "nodes": "number_of_nodes",
                  "data_nodes": "number_of_data_nodes", "relocating": "relocating_shards",
                  "initializing": "initializing_shards"}
# A node's disk beyond the cluster's own watermark, when no --warn/--crit names disk: high is WARNING (shards
# are being moved away), flood stage CRITICAL (its indices are read-only); low only stops new shards: a note.
WATERMARK_STATES = {"high": "WARNING", "flood_stage": "CRITICAL"}


@dataclass(frozen=True)
class Breach:
    """A threshold a check crossed: on which node or probe (neither for the cluster), the value seen and the rule."""

    level: str  # WARNING | CRITICAL
    rule: str
    metric: str
    node: str | None
    value: float
    probe: str | None = None


@dataclass(frozen=True)
class Thresholds:
    warn: tuple[Rule, ...] = ()
    crit: tuple[Rule, ...] = ()

    def ranges(self) -> dict[str, dict[str, str]]:
        """Per metric, the first --warn and --crit rule as Nagios ranges (perfdata carries one of each)."""
        out: dict[str, dict[str, str]] = {}
        for level, rules in (("warn", self.warn), ("crit", self.crit)):
            for r in rules:
                out.setdefault(r.metric, {}).setdefault(level, r.nagios_range())
        return out

    def names(self, metric: str) -> bool:
        return any(r.metric == metric for r in (*self.warn, *self.crit))

    def probe_rules(self) -> list[str]:
        return [r.text for r in (*self.warn, *self.crit) if r.metric in PROBE_FIELDS]


def parse_thresholds(warn: list[str], crit: list[str]) -> Thresholds:
    """--warn/--crit expressions; a bad one is a UsageError naming the option and the expression."""
    return Thresholds(tuple(parse_rule(t, "--warn", HEALTH_METRICS) for t in warn),
                      tuple(parse_rule(t, "--crit", HEALTH_METRICS) for t in crit))


def evaluate(r: ClusterHealth, th: Thresholds) -> list[Breach]:
    """Every rule against the check (node metrics on every node, probe metrics on every probe); a CRITICAL breach
    hides the same metric's WARNING at the same place, so the status line names each problem once, at its worst.
    Without a disk rule, each node's disk is held against the cluster's own high and flood-stage watermarks."""
    if r.error is not None:
        return []
    out: list[Breach] = []
    seen: set[tuple[str, str | None, str | None]] = set()
    for level, rules in (("CRITICAL", th.crit), ("WARNING", th.warn)):
        for rule in rules:
            for node, probe, value in _values(r, rule.metric):
                if value is not None and rule.breached(value) and (rule.metric, node, probe) not in seen:
                    seen.add((rule.metric, node, probe))
                    out.append(Breach(level, rule.text, rule.metric, node, value, probe))
    if not th.names("disk"):
        for n in r.nodes:
            beyond = n.disk_watermark or ""
            state = WATERMARK_STATES.get(beyond)
            if state is not None and n.disk_used_percent is not None:
                text = f"{beyond.replace('_', ' ')} watermark {r.watermarks.get(beyond, '')}"
                out.append(Breach(state, text, "disk", n.name, n.disk_used_percent))
    return sorted(out, key=lambda b: b.level != "CRITICAL")  # stable: CRITICAL first, each in rule order


def watermark_notes(r: ClusterHealth) -> list[str]:
    """Nodes beyond the low watermark only: no new shards go there; worth saying, not worth a WARNING."""
    return [f"{n.name} disk {n.disk_used_percent:g}% above the low watermark {r.watermarks.get('low', '')}"
            for n in r.nodes if n.disk_watermark == "low" and n.disk_used_percent is not None]


def _values(r: ClusterHealth, metric: str) -> list[tuple[str | None, str | None, float | None]]:
    """(node, probe, value) of a metric, at every place it is measured."""
    if metric in NODE_FIELDS:
        return [(n.name, None, getattr(n, NODE_FIELDS[metric])) for n in r.nodes]
    if metric in POOL_FIELDS:
        pool, key = POOL_FIELDS[metric]
        return [(n.name, None, _float((n.thread_pools.get(pool) or {}).get(key))) for n in r.nodes]
    if metric in PROBE_FIELDS:
        return [(None, p.id, _float(getattr(p, PROBE_FIELDS[metric]))) for p in r.probes]
    return [(None, None, float(getattr(r, CLUSTER_FIELDS[metric])))]


def _float(v: float | int | None) -> float | None:
    return None if v is None else float(v)


def apply_thresholds(checks: list[ClusterHealth], th: Thresholds) -> None:
    """Record breaches and the ranges for perfdata on each check (its `state` then includes them)."""
    ranges = th.ranges()
    for c in checks:
        c.breaches = evaluate(c, th)
        c.thresholds = ranges
        c.notes = [] if th.names("disk") else watermark_notes(c)
