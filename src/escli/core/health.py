"""`escli health`: one health check of a cluster (or of every configured cluster), for people and monitoring.

Data: _cluster/health (optionally waiting for a status), _nodes/stats (jvm, os, fs, process),
_cluster/pending_tasks, and a measured round trip per node. A check that cannot reach the cluster, or that the
cluster refuses, is UNKNOWN rather than an exception: monitoring needs an answer, within the timeout, always.
Nothing here prints; escli.output.health_view renders a ClusterHealth as a table, JSON, Nagios or Prometheus.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from escli.core.thresholds import Metric, Rule, parse_rule
from escli.errors import RefusedError, UnreachableError, api_error_summary, one_line

if TYPE_CHECKING:
    from escli.es.api import Es
    from escli.settings import Settings


class State(IntEnum):
    """Nagios states; also health's exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


STATUS_STATE = {"green": State.OK, "yellow": State.WARNING, "red": State.CRITICAL}
NODE_STATS_FILTER = ",".join(f"nodes.*.{p}" for p in (
    "name", "roles", "host", "jvm.mem.heap_used_percent", "os.cpu.percent", "os.cpu.load_average",
    "process.cpu.percent", "fs.total"))
RTT_SAMPLES = 3


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
    )


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


async def check(client: Es, label: str, url: str, wait_for_status: str | None = None,
                timeout: float = 30.0, index: str | None = None) -> ClusterHealth:
    """One cluster's health. Never raises for the cluster's sake: errors become an UNKNOWN result."""
    result = ClusterHealth(label=label, url=url, wait_for_status=wait_for_status, index=index)
    started = time.perf_counter()
    try:
        await asyncio.wait_for(_fill(client, result, wait_for_status, timeout), timeout=timeout)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        result.error = f"no answer within {timeout:g}s"
    except UnreachableError as exc:
        result.error = f"cluster unreachable: no answer within {timeout:g}s" if exc.timed_out else one_line(exc)
    except RefusedError as exc:
        status, etype, reason = api_error_summary(exc)
        result.error = f"{status} {etype}: {reason}"
    except Exception as exc:
        result.error = one_line(exc)
    result.seconds = round(time.perf_counter() - started, 3)
    if result.error is not None:
        result.status = "unknown"
    return result


async def _fill(client: Es, r: ClusterHealth, wait_for_status: str | None, timeout: float) -> None:
    params: dict[str, Any] = {}
    if wait_for_status:
        params["wait_for_status"] = wait_for_status
        # Leave time within our own deadline for node stats, pending tasks and round trips after the wait.
        params["timeout"] = f"{max(int((timeout - min(2.0, timeout / 4)) * 1000), 100)}ms"
    elif r.index:
        params["timeout"] = "0s"  # an index that does not exist would otherwise be waited for (30 s)
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

    stats_task = client.nodes_stats("jvm,os,fs,process", filter_path=NODE_STATS_FILTER)
    tasks_task = client.pending_tasks()
    stats, pending = await asyncio.gather(stats_task, tasks_task)
    tasks = pending.get("tasks") or []
    r.pending_tasks = len(tasks)
    r.max_task_wait_ms = max((int(t.get("time_in_queue_millis", 0)) for t in tasks), default=0)
    nodes = [node_from_stats(nid, data) for nid, data in (stats.get("nodes") or {}).items()]
    rtts = await asyncio.gather(*(round_trip(client, n.id) for n in nodes), return_exceptions=True)
    for n, rtt in zip(nodes, rtts, strict=True):
        n.round_trip_ms = rtt if isinstance(rtt, float) else None
    r.nodes = sorted(nodes, key=lambda n: n.name)


async def check_settings(settings: Settings, label: str, wait_for_status: str | None, timeout: float,
                         index: str | None = None,
                         on_warning: Callable[[str], None] | None = None) -> ClusterHealth:
    """A check with its own transport: each request, its retries (the one policy, --max-retries) included, ends
    within the check's timeout."""
    from escli.es.connect import open_es

    s = settings.with_(timeout=timeout)
    url = ",".join(s.urls) if not s.credentials.cloud_id else "cloud"
    try:
        async with open_es(s, on_warning=on_warning) as es:
            return await check(es, label, url, wait_for_status, timeout, index)
    except Exception as exc:  # making the client failed (bad CA file, ...): still an answer
        return ClusterHealth(label=label, url=url, error=one_line(exc))


async def check_many(targets: list[tuple[str, Settings | Exception]], wait_for_status: str | None,
                     timeout: float, index: str | None = None) -> list[ClusterHealth]:
    """Every target at once; a target whose settings could not be resolved is UNKNOWN with the reason."""

    async def one(label: str, s: Settings | Exception) -> ClusterHealth:
        if isinstance(s, Exception):
            return ClusterHealth(label=label, url="", error=one_line(s))
        return await check_settings(s, label, wait_for_status, timeout, index)

    return list(await asyncio.gather(*(one(label, s) for label, s in targets)))


# --------------------------------------------------------------------------------------------------------------
# Thresholds (--warn / --crit): pure functions over a finished check


_PCT = Metric("%")
_COUNT = Metric("")
HEALTH_METRICS: dict[str, Metric] = {
    "heap": _PCT, "disk": _PCT, "cpu": _PCT, "load1": _COUNT,
    "rtt_ms": Metric("ms", {"": (1.0, ""), "ms": (1.0, ""), "s": (1000.0, "")}),
    "unassigned": _COUNT, "pending_tasks": _COUNT, "active_shards_percent": _PCT, "nodes": _COUNT,
    "data_nodes": _COUNT, "relocating": _COUNT, "initializing": _COUNT,
}
# Metric -> field of NodeHealth (checked on every node) or of ClusterHealth.
NODE_FIELDS = {"heap": "heap_used_percent", "disk": "disk_used_percent", "cpu": "cpu_percent", "load1": "load_1m",
               "rtt_ms": "round_trip_ms"}
CLUSTER_FIELDS = {"unassigned": "unassigned_shards", "pending_tasks": "pending_tasks",
                  "active_shards_percent": "active_shards_percent", "nodes": "number_of_nodes",
                  "data_nodes": "number_of_data_nodes", "relocating": "relocating_shards",
                  "initializing": "initializing_shards"}


@dataclass(frozen=True)
class Breach:
    """A threshold a check crossed: on which node (None for the cluster), the value seen and the rule."""

    level: str  # WARNING | CRITICAL
    rule: str
    metric: str
    node: str | None
    value: float


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


def parse_thresholds(warn: list[str], crit: list[str]) -> Thresholds:
    """--warn/--crit expressions; a bad one is a UsageError naming the option and the expression."""
    return Thresholds(tuple(parse_rule(t, "--warn", HEALTH_METRICS) for t in warn),
                      tuple(parse_rule(t, "--crit", HEALTH_METRICS) for t in crit))


def evaluate(r: ClusterHealth, th: Thresholds) -> list[Breach]:
    """Every rule against the check (node metrics on every node); a CRITICAL breach hides the same metric's
    WARNING on the same node, so the status line names each problem once, at its worst."""
    if r.error is not None:
        return []
    out: list[Breach] = []
    seen: set[tuple[str, str | None]] = set()
    for level, rules in (("CRITICAL", th.crit), ("WARNING", th.warn)):
        for rule in rules:
            for node, value in _values(r, rule.metric):
                if value is not None and rule.breached(value) and (rule.metric, node) not in seen:
                    seen.add((rule.metric, node))
                    out.append(Breach(level, rule.text, rule.metric, node, value))
    return out


def _values(r: ClusterHealth, metric: str) -> list[tuple[str | None, float | None]]:
    if metric in NODE_FIELDS:
        return [(n.name, getattr(n, NODE_FIELDS[metric])) for n in r.nodes]
    return [(None, float(getattr(r, CLUSTER_FIELDS[metric])))]


def apply_thresholds(checks: list[ClusterHealth], th: Thresholds) -> None:
    """Record breaches and the ranges for perfdata on each check (its `state` then includes them)."""
    ranges = th.ranges()
    for c in checks:
        c.breaches = evaluate(c, th)
        c.thresholds = ranges
