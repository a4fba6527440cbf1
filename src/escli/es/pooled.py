"""PooledTransport: elastic_transport's aiohttp nodes behind the seam, for commands that make many requests.

Connections per node sized to the command's concurrency, dead nodes backed off by the node pool, optional
sniffing. Bodies go in and come out as bytes:
the serializers below pass them through, so a page of hits is parsed once, by the caller, or not at all.
`node_pool` and `headers` are public so that batch can send on a node directly (see core/batch.py Sender).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from escli.es.transport import JSON, Response, Target, refused, request_target, unreachable

if TYPE_CHECKING:
    from elastic_transport import AsyncTransport, NodePool

RETRY_ON_STATUS = (429, 502, 503, 504)


def _raw_serializer() -> Any:
    from elastic_transport import Serializer

    class Raw(Serializer):
        """Bytes in, bytes out: escli encodes and decodes with orjson itself."""

        mimetype = JSON

        def loads(self, data: bytes) -> Any:
            return data

        def dumps(self, data: Any) -> bytes:
            return data if isinstance(data, bytes) else bytes(data)

    return Raw()


def _sniffed(transport: AsyncTransport, options: Any) -> Any:
    """Node configs from `GET /_nodes/_all/http`, keeping the first node's scheme and TLS settings."""

    async def sniff() -> list[Any]:
        import dataclasses

        import orjson
        from elastic_transport import HttpHeaders

        node: Any = transport.node_pool.get()  # an async node; the pool is typed for the sync ones
        resp = await node.perform_request("GET", "/_nodes/_all/http", headers=HttpHeaders({"accept": JSON}),
                                          request_timeout=options.sniff_timeout)
        data = orjson.loads(resp.body)
        out = []
        for info in (data.get("nodes") or {}).values():
            address = ((info.get("http") or {}).get("publish_address")) or ""
            host_port = address.rsplit("/", 1)[-1]
            host, _, port = host_port.rpartition(":")
            if host and port.isdigit():
                out.append(dataclasses.replace(node.config, host=host.strip("[]"), port=int(port)))
        return out

    return sniff()


class PooledTransport:
    def __init__(self, target: Target, *, connections: int, sniff: bool = False, retries: int = 0) -> None:
        import warnings

        from elastic_transport import AiohttpHttpNode, AsyncTransport, HttpHeaders, NodeConfig

        self.target = target
        self.headers = HttpHeaders({**target.headers, "accept": JSON})
        configs = [
            NodeConfig(e.scheme, e.host, e.port, path_prefix=e.prefix, headers=self.headers,
                       connections_per_node=connections, request_timeout=target.timeout,
                       verify_certs=target.verify, ca_certs=target.ca_certs if target.verify else None,
                       ssl_show_warn=False)
            for e in target.endpoints
        ]
        raw = _raw_serializer()
        sniffing: dict[str, Any] = {}
        if sniff:
            sniffing = dict(sniff_on_start=True, sniff_on_node_failure=True, min_delay_between_sniffing=60,
                            sniff_callback=_sniffed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the insecure warning is ours to give, once
            self._transport: AsyncTransport = AsyncTransport(
                configs, node_class=AiohttpHttpNode, serializers={JSON: raw, "application/x-ndjson": raw},
                default_mimetype=JSON, max_retries=retries, retry_on_status=RETRY_ON_STATUS,
                retry_on_timeout=retries > 0, meta_header=False,
                dead_node_backoff_factor=0.5, max_dead_node_backoff=30.0, **sniffing)

    @property
    def node_pool(self) -> NodePool:
        return self._transport.node_pool

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: bytes | None = None, content_type: str = JSON, timeout: float | None = None,
                      ignore: Collection[int] = ()) -> Response:
        from elastic_transport import ConnectionError as TransportConnectionError
        from elastic_transport import ConnectionTimeout, TransportError
        from elastic_transport.client_utils import DEFAULT

        headers: Any = {"content-type": content_type} if body is not None else DEFAULT
        try:
            resp = await self._transport.perform_request(
                method, request_target(path, params), body=body, headers=headers,
                request_timeout=timeout if timeout is not None else self.target.timeout)
        except ConnectionTimeout as exc:
            raise unreachable(_where(self.target), _reason(exc), timed_out=True) from exc
        except (TransportConnectionError, TransportError) as exc:  # after the transport's own retries, if any
            raise unreachable(_where(self.target), _reason(exc)) from exc
        meta = resp.meta
        data = resp.body if isinstance(resp.body, bytes) else str(resp.body or "").encode()
        headers = {k.lower(): v for k, v in meta.headers.items()}
        if meta.status >= 400 and meta.status not in ignore:
            raise refused(meta.status, data, headers)
        return Response(meta.status, headers, data)

    async def close(self) -> None:
        await self._transport.close()


def _where(target: Target) -> str:
    return ", ".join(e.url for e in target.endpoints)


def _reason(exc: BaseException) -> str:
    msg = str(getattr(exc, "message", "") or exc)
    errors = getattr(exc, "errors", ())
    if errors:
        msg = str(errors[-1]) or msg
    return msg.splitlines()[0] if msg else type(exc).__name__
