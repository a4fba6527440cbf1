"""Fan-out: one search sent to every healthy cluster at once, the hits merged into one answer.

    result = await fan_out_search(routed, "/products/_search", body, params)
    result.response        # a search answer: hits merged by score (or by the body's sort), cut to from/size,
                           # each hit tagged "_cluster"; took is the slowest cluster's, totals and shards summed
    result.clusters        # {"a": {"took": 3, "total": 120, "error": None}, "b": {...}}: the `_escli` block's
    result.failed          # names of the clusters that gave no answer (the others' hits are still there)

from/size: each cluster is asked for its first from+size hits (from 0), and the merged list is cut to
[from, from+size), so page two of a fan-out is the same as page two of one search over all the documents.
Ties keep the order of the clusters as given, then each cluster's own order. Aggregations are not merged (their
shapes are per aggregation type); they stay per cluster in `clusters`. When every cluster fails, the search fails:
UnreachableError when none could be reached, else the first refusal. Nothing here prints.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from escli.errors import RefusedError, UnreachableError, error_summary
from escli.es.answers import SEARCH, parsed, refused

if TYPE_CHECKING:
    from escli.es.routing import Member, RoutedTransport
    from escli.es.transport import Response

CLUSTER_FIELD = "_cluster"
DEFAULT_SIZE = 10


@dataclass
class FanOutResult:
    response: dict[str, Any]
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.failed)


def fan_out_warning(meta: Mapping[str, Any]) -> str:
    """One line naming the clusters a fan-out missed and why (from the `_escli` block)."""
    clusters = meta.get("clusters") or {}
    failed = meta.get("failed") or []
    parts = [f"{n} ({((clusters.get(n) or {}).get('error') or {}).get('reason', 'failed')})" for n in failed]
    return (f"fan-out: {len(failed)} of {len(clusters)} clusters failed, the hits are the others' only: "
            + "; ".join(parts))


def window(body: Mapping[str, Any]) -> tuple[int, int]:
    """(from, size) the user asked for."""
    start = body.get("from", 0)
    size = body.get("size", DEFAULT_SIZE)
    return (int(start) if isinstance(start, int) else 0), (int(size) if isinstance(size, int) else DEFAULT_SIZE)


def member_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """What each cluster is asked: its first from+size hits."""
    start, size = window(body)
    out = dict(body)
    out.pop("from", None)
    out["size"] = start + size
    return out


def sort_orders(body: Mapping[str, Any]) -> list[bool] | None:
    """For each sort key of the body, True when descending; None when the body does not sort (by score)."""
    sort = body.get("sort")
    if not sort:
        return None
    items = sort if isinstance(sort, list) else [sort]
    out: list[bool] = []
    for item in items:
        if isinstance(item, str):
            name, _, order = item.partition(":")
            out.append((order or ("desc" if name == "_score" else "asc")) == "desc")
        elif isinstance(item, dict) and item:
            name, spec = next(iter(item.items()))
            default = "desc" if name == "_score" else "asc"
            order = spec if isinstance(spec, str) else (spec.get("order", default) if isinstance(spec, dict)
                                                         else default)
            out.append(order == "desc")
    return out


def _cmp_values(a: Any, b: Any, desc: bool) -> int:
    # A missing value sorts last either way, as Elasticsearch's default `missing: _last` does.
    if a is None or b is None:
        return 0 if a is b else (1 if a is None else -1)
    try:
        c = int(a > b) - int(a < b)
    except TypeError:
        c = int(str(a) > str(b)) - int(str(a) < str(b))
    return -c if desc else c


def merge_hits(answers: Sequence[tuple[str, list[dict[str, Any]]]],
               orders: list[bool] | None) -> list[dict[str, Any]]:
    """Every cluster's hits in one list, tagged with `_cluster`, ordered by score or by the sort values."""
    tagged = [{**h, CLUSTER_FIELD: name} for name, hits in answers for h in hits]
    if orders is None:
        def score(h: dict[str, Any]) -> float:
            s = h.get("_score")
            return -float(s) if isinstance(s, (int, float)) else float("inf")

        return sorted(tagged, key=score)

    def cmp(x: dict[str, Any], y: dict[str, Any]) -> int:
        xs, ys = x.get("sort") or [], y.get("sort") or []
        for i, desc in enumerate(orders):
            c = _cmp_values(xs[i] if i < len(xs) else None, ys[i] if i < len(ys) else None, desc)
            if c:
                return c
        return 0

    return sorted(tagged, key=functools.cmp_to_key(cmp))  # stable: ties keep cluster order, then their own


def merge(answers: Sequence[tuple[str, dict[str, Any]]], body: Mapping[str, Any]) -> dict[str, Any]:
    """One search answer from several clusters' answers to `member_body(body)`."""
    start, size = window(body)
    hits = merge_hits([(n, ((r.get("hits") or {}).get("hits") or [])) for n, r in answers], sort_orders(body))
    out: dict[str, Any] = {
        "took": max((r.get("took") or 0 for _, r in answers), default=0),
        "timed_out": any(bool(r.get("timed_out")) for _, r in answers),
    }
    shards: dict[str, int] = {}
    for _, r in answers:
        for k, v in (r.get("_shards") or {}).items():
            if isinstance(v, int):
                shards[k] = shards.get(k, 0) + v
    if shards:
        out["_shards"] = shards
    hits_obj: dict[str, Any] = {}
    totals = [(r.get("hits") or {}).get("total") for _, r in answers]
    if any(t is not None for t in totals):
        value = sum(t.get("value", 0) if isinstance(t, dict) else int(t or 0) for t in totals)
        gte = any(isinstance(t, dict) and t.get("relation") == "gte" for t in totals)
        hits_obj["total"] = {"value": value, "relation": "gte" if gte else "eq"}
    scores = [s for _, r in answers if isinstance(s := (r.get("hits") or {}).get("max_score"), (int, float))]
    hits_obj["max_score"] = max(scores) if scores else None
    hits_obj["hits"] = hits[start:start + size]
    out["hits"] = hits_obj
    return out


def _total(resp: Mapping[str, Any]) -> int | None:
    t = (resp.get("hits") or {}).get("total")
    return t.get("value") if isinstance(t, dict) else t if isinstance(t, int) else None


async def fan_out_search(routed: RoutedTransport, path: str, body: Mapping[str, Any],
                         params: Mapping[str, str] | None = None, timeout: float | None = None,
                         on_answer: Callable[[Response], None] | None = None) -> FanOutResult:
    """Send the search to every healthy member concurrently (every member when none is healthy) and merge.
    `on_answer` sees each cluster's answer (Es.learn: the product it tells)."""
    members = routed.router.healthy() or list(routed.members)
    skipped = [m for m in routed.members if m not in members]
    payload = orjson.dumps(member_body(body))

    async def ask(m: Member) -> tuple[Member, Any]:
        try:
            resp = await routed.request_on(m, "POST", path, params=params, body=payload, timeout=timeout)
        except UnreachableError as exc:
            return m, exc
        if on_answer is not None:
            on_answer(resp)
        if resp.status >= 400:
            return m, refused(resp.status, resp.body, resp.headers)
        try:
            return m, parsed(resp.status, resp.body, resp.url, SEARCH)
        except UnreachableError as exc:  # an answer that is not a search answer: this cluster failed
            return m, exc

    results = await asyncio.gather(*(ask(m) for m in members))
    clusters: dict[str, dict[str, Any]] = {}
    answers: list[tuple[str, dict[str, Any]]] = []
    errors: list[BaseException] = []
    for m, got in results:
        if isinstance(got, dict):
            answers.append((m.name, got))
            info: dict[str, Any] = {"took": got.get("took"), "total": _total(got), "error": None}
            if "aggregations" in got:
                info["aggregations"] = got["aggregations"]
            clusters[m.name] = info
        else:
            errors.append(got)
            clusters[m.name] = {"took": None, "total": None, "error": _error(got)}
    for m in skipped:
        clusters[m.name] = {"took": None, "total": None,
                            "error": {"type": "cluster_down", "reason": f"marked down after: {m.last_error}",
                                      "status": None}}
    clusters = {m.name: clusters[m.name] for m in routed.members}  # in the order given
    if not answers:
        refusals = [e for e in errors if isinstance(e, RefusedError)]
        if refusals:
            raise refusals[0]
        raise UnreachableError("every cluster failed: " + "; ".join(
            f"{n}: {(c['error'] or {}).get('reason')}" for n, c in clusters.items()))
    return FanOutResult(merge(answers, body), clusters, [n for n, c in clusters.items() if c["error"]])


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, RefusedError):
        etype, reason = error_summary(exc.status or 0, exc.body)
        return {"type": etype, "reason": reason, "status": exc.status}
    kind = "timeout" if getattr(exc, "timed_out", False) else "unreachable"
    return {"type": kind, "reason": str(exc), "status": None}
