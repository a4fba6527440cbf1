"""The routing policy (es/routing.Router) and the fan-out merge (core/fanout), as pure functions: a clock the
test moves, and sends that are plain functions of the member (no engine is imitated here; tests/integration/
test_clusters.py runs the same paths on two real engines)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.core.fanout import member_body, merge, sort_orders
from escli.errors import UnreachableError, UsageError
from escli.es.routing import Member, Router
from escli.settings import GlobalOptions, resolve


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def router(strategy: str, weights: tuple[float, ...] = (1, 1), clock: Clock | None = None) -> Router:
    members = [Member(chr(ord("a") + i), None, w) for i, w in enumerate(weights)]  # type: ignore[arg-type]
    return Router(members, strategy, clock=clock or Clock())


def picks(r: Router, n: int) -> Counter[str]:
    return Counter(r.order()[0].name for _ in range(n))


def test_failover_round_robin_and_weighted_choices() -> None:
    assert picks(router("failover"), 10) == {"a": 10}
    assert picks(router("round-robin", (1, 1, 1)), 300) == {"a": 100, "b": 100, "c": 100}
    assert picks(router("weighted", (1, 3)), 400) == {"a": 100, "b": 300}
    assert picks(router("weighted", (0.5, 2, 1.5)), 4000) == {"a": 500, "b": 2000, "c": 1500}


def test_smooth_weighted_round_robin_does_not_burst() -> None:
    r = router("weighted", (5, 1, 1))
    seq = "".join(r.order()[0].name for _ in range(7))
    assert seq.count("a") == 5 and "aaaaa" not in seq  # nginx's smooth order: a a b a c a a


def test_a_failed_member_is_avoided_with_a_doubling_backoff_and_back_on_success() -> None:
    clock = Clock()
    r = router("round-robin", clock=clock)
    a = r.members[0]
    r.failed(a, "refused")
    assert picks(r, 20) == {"b": 20}
    r.failed(a, "refused again while down")  # a request that was in flight: the same outage
    assert a.failures == 1 and a.down_until == clock.now + 1
    clock.now += 1.0  # backoff over: a is tried again
    assert "a" in picks(r, 4)
    r.failed(a, "still refused")
    assert a.down_until == clock.now + 2
    for _ in range(10):
        clock.now = a.down_until
        r.failed(a, "x")
    assert a.down_until - clock.now == 60  # capped
    r.succeeded(a)
    assert a.failures == 0 and picks(r, 4) == {"a": 2, "b": 2}


def test_all_down_probes_the_member_whose_backoff_ends_first() -> None:
    clock = Clock()
    r = router("failover", clock=clock)
    a, b = r.members
    r.failed(a, "x")
    clock.now += 0.5
    r.failed(b, "x")
    assert [m.name for m in r.order()] == ["a"]


def test_route_sends_the_same_request_to_the_next_member() -> None:
    r = router("failover", (1, 1, 1))
    tried: list[str] = []

    async def send(m: Member) -> int:
        tried.append(m.name)
        if m.name == "a":
            raise UnreachableError("refused")
        return 503 if m.name == "b" else 200

    m, status = asyncio.run(r.route(send, lambda s: s))
    assert (m.name, status, tried) == ("c", 200, ["a", "b", "c"])
    assert [x.name for x in r.healthy()] == ["c"]

    async def down(m: Member) -> int:
        raise UnreachableError(f"{m.name} refused")

    with pytest.raises(UnreachableError, match="every cluster failed"):
        asyncio.run(r.route(down, lambda s: s))


# -- fan-out merge ------------------------------------------------------------------------------------------------

def answer(hits: list[tuple[str, float]], total: int, took: int = 1) -> dict[str, Any]:
    return {"took": took, "timed_out": False, "_shards": {"total": 1, "successful": 1, "failed": 0},
            "hits": {"total": {"value": total, "relation": "eq"}, "max_score": max((s for _, s in hits), default=None),
                     "hits": [{"_id": i, "_score": s, "sort": [s]} for i, s in hits]}}


def test_member_body_asks_each_cluster_for_from_plus_size() -> None:
    assert member_body({"query": {}, "from": 20, "size": 5}) == {"query": {}, "size": 25}
    assert member_body({"query": {}}) == {"query": {}, "size": 10}


def test_sort_orders() -> None:
    assert sort_orders({}) is None
    assert sort_orders({"sort": ["price", {"rating": "desc"}, {"n": {"order": "asc"}}, "_score"]}) == \
        [False, True, False, True]


def test_merge_by_score_cuts_to_the_window_and_sums() -> None:
    a = answer([("a1", 3.0), ("a2", 1.0)], 10, took=5)
    b = answer([("b1", 2.0), ("b2", 1.0)], 7, took=9)
    out = merge([("a", a), ("b", b)], {"from": 1, "size": 2})
    assert [(h["_id"], h["_cluster"]) for h in out["hits"]["hits"]] == [("b1", "b"), ("a2", "a")]  # tie: a first
    assert out["hits"]["total"] == {"value": 17, "relation": "eq"} and out["took"] == 9
    assert out["_shards"]["total"] == 2 and out["hits"]["max_score"] == 3.0


@given(st.lists(st.lists(st.integers(-50, 50), max_size=12), min_size=1, max_size=4), st.integers(0, 5),
       st.integers(0, 10), st.booleans())
def test_merge_equals_sorting_everything(parts: list[list[int]], start: int, size: int, desc: bool) -> None:
    """Each cluster's own top from+size, merged and cut, is the global top from+size cut (sorted on a field)."""
    body = {"sort": [{"v": "desc" if desc else "asc"}], "from": start, "size": size}
    answers = []
    everything = []
    for k, values in enumerate(parts):
        ordered = sorted(values, reverse=desc)[:start + size]
        answers.append((f"c{k}", {"hits": {"hits": [{"_id": f"{k}-{i}", "sort": [v]} for i, v in
                                                    enumerate(ordered)]}}))
        everything += values
    got = [h["sort"][0] for h in merge(answers, body)["hits"]["hits"]]
    assert got == sorted(everything, reverse=desc)[start:start + size]


# -- settings -----------------------------------------------------------------------------------------------------

def env_with(tmp_path: Path, text: str) -> dict[str, str]:
    cfg = tmp_path / "escli" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text)
    return {"XDG_CONFIG_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}


CONFIG = """
[clusters.a]
urls = ["http://a:9200"]
[clusters.b]
urls = ["http://b:9200"]
weight = 2.5
[groups.g]
clusters = ["b", "a"]
strategy = "weighted"
"""


def test_several_clusters_and_groups_resolve_to_members(tmp_path: Path) -> None:
    env = env_with(tmp_path, CONFIG)
    one = resolve(GlobalOptions(cluster=["a"]), env=env)
    assert one.members == () and one.weight == 1.0
    s = resolve(GlobalOptions(cluster=["a", "b"]), env=env)
    assert [m.cluster for m in s.members] == ["a", "b"] and s.strategy == "failover" and s.urls == ("http://a:9200",)
    assert s.members[1].weight == 2.5
    g = resolve(GlobalOptions(cluster=["g"]), env=env)
    assert [m.cluster for m in g.members] == ["b", "a"] and g.strategy == "weighted"
    assert resolve(GlobalOptions(cluster=["g"], strategy="round-robin"), env=env).strategy == "round-robin"
    assert resolve(GlobalOptions(cluster=["a", "g"]), env=env).members == s.members  # repeats dropped, order kept
    assert resolve(env={**env, "ESCLI_CLUSTER": "a,b"}).strategy == "failover"
    with pytest.raises(UsageError, match="--url and several clusters"):
        resolve(GlobalOptions(cluster=["a", "b"], url=["http://x:1"]), env=env)


def test_the_identity_of_a_set(tmp_path: Path) -> None:
    env = env_with(tmp_path, CONFIG)
    ab = resolve(GlobalOptions(cluster=["a", "b"]), env=env).identity
    # the set, not the order
    assert ab == resolve(GlobalOptions(cluster=["b", "a"], strategy="round-robin"), env=env).identity
    assert ab != resolve(GlobalOptions(cluster=["a"]), env=env).identity
    assert ab != resolve(GlobalOptions(cluster=["a", "b"], strategy="fan-out"), env=env).identity
    assert ab == resolve(GlobalOptions(cluster=["a", "b"]), env=env).identity  # stable
