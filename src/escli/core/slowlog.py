"""Elasticsearch's JSON search slowlog (8.x, 9.x) as a query set: one query per search, weighted by frequency.

A line (ECS JSON, written by SearchSlowLog.java) per shard and per phase of a search:

    {"@timestamp": "...", "log.logger": "index.search.slowlog.query", "elasticsearch.slowlog.message": "[idx][0]",
     "elasticsearch.slowlog.source": "{\\"size\\":3,...}", "elasticsearch.slowlog.total_shards": 2,
     "elasticsearch.slowlog.id": "<X-Opaque-Id or null>", "elasticsearch.slowlog.search_type": "QUERY_THEN_FETCH",
     "event.dataset": "elasticsearch.index_search_slowlog", ...}

`source` is the search body as JSON text. SearchSlowLog escapes it (JsonStringEncoder) before the ECS layout
escapes it again, so a real file holds it escaped twice (9.5 here: `{\\\"size\\\":3}` on disk); the documented
examples show it once. Both read.

What identifies one search: the per-shard line carries no task or search id (only the X-Opaque-Id header the
client chose, and the shard in the message), and its timestamp is the end of that shard's phase, so the lines of
one search straddle seconds and those of concurrent searches interleave: a time window is a guess. What does hold:
one search runs its query phase exactly once on each shard it targets. So lines are grouped by (body, X-Opaque-Id,
total_shards, search type), and the number of searches of a group is the most query-phase lines any single
[index][shard] has in it; the same body sent to an index twice is two searches, the shards of one search are one.
Lines of every node of a cluster may be concatenated: each shard copy is searched on one node only. The fetch phase
(only on shards holding top hits) counts only for a group none of whose query phases were logged (a threshold set
for fetch alone). With a threshold above 0 some shards are not logged: the count is then what the log shows.
A group whose shards span several indices is one search over all of them when they fit its total_shards, else
one query per index. Parameters that are not in the body (routing, preference) are not in the slowlog either.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from escli.errors import InputError, UsageError
from escli.es.queries import QuerySpec

SOURCE = "elasticsearch.slowlog.source"
MESSAGE = "elasticsearch.slowlog.message"
_SHARD = re.compile(r"^\[(?P<index>.+)\]\[(?P<shard>\d+)\]$", re.ASCII)


@dataclass
class _Group:
    body: dict[str, Any]
    line: int
    search_type: str | None
    total_shards: int
    phases: dict[str, Counter[tuple[str, int]]] = field(
        default_factory=lambda: {"query": Counter(), "fetch": Counter()})


def _body(text: str) -> dict[str, Any] | None:
    """The search body of `source`: JSON text, or JSON text escaped once more (as the engine writes it)."""
    for attempt in (text, None):
        try:
            value = orjson.loads(attempt) if attempt is not None else orjson.loads(orjson.loads(f'"{text}"'))
        except (orjson.JSONDecodeError, TypeError):
            continue
        if isinstance(value, dict):
            return value
    return None


def _is_search_line(obj: dict[str, Any]) -> bool:
    logger = str(obj.get("log.logger") or "")
    return logger.startswith("index.search.slowlog") or obj.get("event.dataset") == "elasticsearch.index_search_slowlog"


def read_slowlog(lines: Iterator[tuple[int, bytes]], source: str) -> list[QuerySpec]:
    """The distinct searches of a slowlog, in order of first appearance, each weighted by how often it ran.

    Lines of other logs (an indexing slowlog, a server log in JSON) are skipped; a line that is not JSON, or a
    search line without a body or a shard, stops with FILE:LINE."""
    groups: dict[tuple[bytes, str | None, int, str | None], _Group] = {}
    for number, raw in lines:
        text = raw.strip()
        if not text:
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(source, number, f"not a JSON slowlog line ({exc.msg})") from None
        if not isinstance(obj, dict) or not _is_search_line(obj):
            continue
        src = obj.get(SOURCE)
        body = _body(src) if isinstance(src, str) else None
        if body is None:
            raise InputError(source, number, f'"{SOURCE}" is not a search body')
        m = _SHARD.match(str(obj.get(MESSAGE) or ""))
        if m is None:
            raise InputError(source, number, f'"{MESSAGE}" is not [index][shard]: {obj.get(MESSAGE)!r}')
        try:
            total = int(obj.get("elasticsearch.slowlog.total_shards") or 0)
        except (TypeError, ValueError):
            total = 0
        opaque = obj.get("elasticsearch.slowlog.id")
        stype = obj.get("elasticsearch.slowlog.search_type")
        key = (orjson.dumps(body, option=orjson.OPT_SORT_KEYS), None if opaque is None else str(opaque), total,
               None if stype is None else str(stype))
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group(body, number, key[3], total)
        phase = "fetch" if str(obj.get("log.logger") or "").endswith(".fetch") else "query"
        g.phases[phase][(m["index"], int(m["shard"]))] += 1
    specs: list[QuerySpec] = []
    for g in groups.values():
        counts = g.phases["query"] or g.phases["fetch"]
        indices = sorted({i for i, _ in counts})
        params = {"search_type": "dfs_query_then_fetch"} if (g.search_type or "").upper().startswith("DFS") else {}
        parts = [indices] if not g.total_shards or len(counts) <= g.total_shards else [[i] for i in indices]
        for part in parts:
            weight = max(n for (i, _), n in counts.items() if i in part)
            specs.append(QuerySpec(id=f"slowlog-{len(specs) + 1}", index=",".join(part), body=g.body,
                                   params=dict(params), weight=float(weight), line=g.line))
    if not specs:
        raise UsageError(f"--slowlog {source}: no search slowlog lines in the file")
    return specs
