"""The node set of one cluster (es/nodes.py): round robin, backoff of failed nodes, sniffed replacement."""

from __future__ import annotations

from escli.es.nodes import NodeSet, nodes_from_info
from escli.es.target import Endpoint, Target


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def node_set(n: int, clock: Clock) -> NodeSet:
    eps = tuple(Endpoint("http", f"10.0.0.{i}", 9200) for i in range(n))
    return NodeSet(Target(eps, {}), connections=2, clock=clock)


def test_round_robin_over_the_live_nodes_and_back_off_a_failed_one() -> None:
    clock = Clock()
    ns = node_set(3, clock)
    firsts = [ns.order()[0].endpoint.host for _ in range(6)]
    assert firsts == ["10.0.0.0", "10.0.0.1", "10.0.0.2"] * 2
    bad = ns.nodes[1]
    ns.failed(bad)
    assert all(ns.order()[0] is not bad and bad not in ns.order() for _ in range(4))
    clock.now += 1.0  # the first failure keeps it out for 1 s
    assert any(ns.order()[0] is bad for _ in range(3))
    ns.failed(bad)
    ns.failed(bad)  # in flight while down: one outage, one step
    assert bad.failures == 2 and bad.dead_until == clock.now + 2.0
    ns.succeeded(bad)
    assert bad.failures == 0 and bad.dead_until == 0.0


def test_every_node_dead_tries_the_one_whose_backoff_ends_first() -> None:
    clock = Clock()
    ns = node_set(2, clock)
    a, b = ns.nodes
    ns.failed(a)
    ns.failed(a)  # still down: no second step
    clock.now += 0.5
    ns.failed(b)
    assert ns.order() == [a]


def test_sniffed_addresses_replace_the_set_and_keep_known_pools() -> None:
    clock = Clock()
    ns = node_set(1, clock)
    kept = ns.nodes[0]
    info = {"nodes": {"x": {"http": {"publish_address": "10.0.0.0:9200"}},
                      "y": {"http": {"publish_address": "es-2.local/10.0.0.7:9201"}},
                      "z": {"http": {"publish_address": "[::1]:9202"}}, "w": {}}}
    eps = nodes_from_info(info, Endpoint("https", "seed", 443, "/es"))
    assert [(e.host, e.port, e.scheme, e.prefix) for e in eps] == [
        ("10.0.0.0", 9200, "https", "/es"), ("10.0.0.7", 9201, "https", "/es"), ("::1", 9202, "https", "/es")]
    ns.replace([Endpoint("http", "10.0.0.0", 9200), Endpoint("http", "10.0.0.9", 9200)])
    assert ns.nodes[0] is kept and [n.endpoint.host for n in ns.nodes] == ["10.0.0.0", "10.0.0.9"]
    ns.replace([])  # an empty answer keeps what there is
    assert len(ns.nodes) == 2
    ns.close()
