"""The node set of one cluster: round robin over the live nodes, a failed node left alone for a growing backoff.

    nodes = NodeSet(target, connections=8)
    for node in nodes.order():     # the next live node first, then the other live ones
        ...                        # node.pool (es/wire.py keep-alive connections), node.payload(prepared)
    nodes.failed(node) / nodes.succeeded(node)

A node that fails (no connection, a broken answer, a timeout) is marked dead for 1 s, doubling per failure in a
row up to 30 s (elastic-transport's defaults are close: 1 s x 2, max 30 s); nothing goes to it while another node
lives; when every node is dead, the one whose backoff ends first is tried. Sniffing replaces the set with the
nodes `GET /_nodes/_all/http` publishes (`nodes_from_info`), keeping the scheme, path prefix and TLS of the URLs
given, and the pools of the nodes that stay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from escli.es.target import Endpoint, Target, head_prefix, request_bytes, request_target, ssl_context
from escli.es.wire import Pool
from escli.text import is_digits

if TYPE_CHECKING:
    import ssl

DEAD_BASE = 1.0
DEAD_CAP = 30.0


@dataclass(eq=False, slots=True)
class Prepared:
    """A request encoded once per node (line, headers, body): what batch and profile send thousands of times."""

    method: str
    target: str  # path and query string
    body: bytes | None
    content_type: str
    encoded: dict[Node, bytes] = field(default_factory=dict)

    @property
    def head_only(self) -> bool:
        return self.method == "HEAD"


def prepare(method: str, path: str, params: Mapping[str, str] | None, body: bytes | None,
            content_type: str) -> Prepared:
    return Prepared(method, request_target(path, params), body, content_type)


@dataclass(eq=False, slots=True)
class Node:
    endpoint: Endpoint
    pool: Pool
    head: bytes  # the header lines every request to this node carries, encoded once
    dead_until: float = 0.0  # monotonic seconds; 0: alive
    failures: int = 0  # in a row

    def payload(self, p: Prepared) -> bytes:
        data = p.encoded.get(self)
        if data is None:
            data = p.encoded[self] = request_bytes(self.endpoint.prefix.encode(), self.head, p.method, p.target,
                                                   p.body, p.content_type)
        return data

    @property
    def url(self) -> str:
        return self.endpoint.url


class NodeSet:
    def __init__(self, target: Target, connections: int, *, clock: Callable[[], float] = time.monotonic,
                 base: float = DEAD_BASE, cap: float = DEAD_CAP) -> None:
        self.target = target
        self.connections = max(1, connections)
        self.clock = clock
        self.base, self.cap = base, cap
        self._tls: ssl.SSLContext | None = None
        self.nodes: list[Node] = [self._node(e) for e in target.endpoints]
        self._next = 0

    def _node(self, e: Endpoint) -> Node:
        tls = None
        if e.scheme == "https":
            if self._tls is None:
                self._tls = ssl_context(self.target)
            tls = self._tls
        # Idle connections kept: as many as may be open (a load keeps them all busy; a one-shot needs one).
        return Node(e, Pool(e.host, e.port, tls, self.connections, max_answer=self.target.max_answer),
                    head_prefix(self.target, e))

    def order(self) -> list[Node]:
        """The nodes to try for one request: the next live one (round robin), then the other live ones; when none
        lives, the one whose backoff ends first."""
        nodes = self.nodes
        if len(nodes) == 1:
            return nodes
        now = self.clock()
        live = [n for n in nodes if n.dead_until <= now]
        if not live:
            return [min(nodes, key=lambda n: n.dead_until)]
        start = self._next % len(live)
        self._next += 1
        return live[start:] + live[:start]

    def pick(self) -> Node:
        nodes = self.nodes
        if len(nodes) == 1:
            return nodes[0]
        return self.order()[0]

    def failed(self, node: Node) -> None:
        now = self.clock()
        if node.dead_until > now:
            return  # requests already in flight when it went down: one outage, one step of backoff
        node.failures += 1
        node.dead_until = now + min(self.cap, self.base * 2 ** (node.failures - 1))

    def succeeded(self, node: Node) -> None:
        if node.failures:
            node.failures = 0
            node.dead_until = 0.0

    def replace(self, endpoints: Iterable[Endpoint]) -> None:
        """The set after sniffing: nodes that stay keep their pools (and health)."""
        by_endpoint = {n.endpoint: n for n in self.nodes}
        fresh = [by_endpoint.pop(e) if e in by_endpoint else self._node(e) for e in dict.fromkeys(endpoints)]
        if not fresh:
            return
        for gone in by_endpoint.values():
            gone.pool.close()
        self.nodes = fresh

    def close(self) -> None:
        for n in self.nodes:
            n.pool.close()


def nodes_from_info(info: Any, like: Endpoint) -> list[Endpoint]:
    """Endpoints from a `GET /_nodes/_all/http` answer, with the scheme and path prefix of `like`.

    `publish_address` is `host:port`, `hostname/ip:port` or `[v6]:port`; nodes without HTTP are left out."""
    out: list[Endpoint] = []
    nodes = info.get("nodes") if isinstance(info, dict) else None
    for node in (nodes or {}).values():
        address = str(((node or {}).get("http") or {}).get("publish_address") or "")
        host_port = address.rsplit("/", 1)[-1]
        host, _, port = host_port.rpartition(":")
        if host and is_digits(port):
            out.append(Endpoint(like.scheme, host.strip("[]"), int(port), like.prefix))
    return out
