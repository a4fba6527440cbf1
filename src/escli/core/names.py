"""Names for shell completion: indices, aliases, data streams and mapped fields, from a small on-disk cache.

One JSON file per cluster identity (`Settings.identity`, the search cache's rule: cluster name or URLs, plus the
user) under `<cache dir>/names/`, 0600 in a 0700 directory. An entry younger than `FRESH_S` is used as it is;
an older or missing one is asked again within `budget` seconds (a completion must feel instant: a slow or
unreachable cluster gives the stale names, or none), and the answer is written back. Nothing here prints or
raises for the cluster's sake: completion never shows an error in the shell.

    names = NameCache(settings.cache_dir, settings.identity)
    await names.indices(fetch_es)              # ["logs-2026", "products", "products-alias", ...]
    await names.fields(fetch_es, "products")   # [("category", "keyword"), ("name", "text"), ...]
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from escli.files import write_private

if TYPE_CHECKING:
    from escli.es.api import Es

FRESH_S = 60.0
BUDGET_S = 0.3
# Field types a term filter, a range or a sort works on (doc values): listed first for --sort/--filter/--range.
SORTABLE_TYPES = frozenset({"keyword", "constant_keyword", "wildcard", "long", "integer", "short", "byte", "double",
                            "float", "half_float", "scaled_float", "unsigned_long", "date", "date_nanos", "boolean",
                            "ip", "version"})
OpenEs = Callable[[], AbstractAsyncContextManager["Es"]]


def file_stem(identity: str) -> str:
    """A file name for a cluster identity (never a secret): its hex spelling, hashed only when too long (hashlib
    loads OpenSSL, ~9 ms of a Tab's start-up)."""
    stem = binascii.hexlify(identity.encode()).decode()
    if len(stem) <= 200:
        return stem
    import hashlib

    return hashlib.sha256(identity.encode()).hexdigest()


def walk_mapping(properties: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted name, type) of every mapped field, multi-fields (`name.raw`) included; objects by their leaves."""
    for name, spec in properties.items():
        if not isinstance(spec, Mapping):
            continue
        path = f"{prefix}{name}"
        inner = spec.get("properties")
        if isinstance(inner, Mapping):  # object or nested: its fields, by their dotted names
            yield from walk_mapping(inner, f"{path}.")
            continue
        yield path, str(spec.get("type", "object"))
        sub = spec.get("fields")
        if isinstance(sub, Mapping):
            yield from walk_mapping(sub, f"{path}.")


def fields_of(mappings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The union of the fields of every index in a `GET INDEX/_mapping` answer, sorted by name."""
    seen: dict[str, str] = {}
    for index in mappings.values():
        props = ((index or {}).get("mappings") or {}).get("properties") or {}
        for name, kind in walk_mapping(props):
            seen.setdefault(name, kind)
    return sorted(seen.items())


def names_of(resolved: Mapping[str, Any]) -> list[str]:
    """Index, alias and data stream names from a `GET _resolve/index/*` answer (backing indices left out)."""
    out = {str(i["name"]) for i in resolved.get("indices", []) if not i.get("data_stream")}
    out.update(str(a["name"]) for a in resolved.get("aliases", []))
    out.update(str(d["name"]) for d in resolved.get("data_streams", []))
    return sorted(out)


async def fetch_indices(es: Es) -> list[str]:
    data = await es.json("GET", "/_resolve/index/*", params={"expand_wildcards": "open"}, ignore=(400, 404, 405))
    if isinstance(data, dict) and ("indices" in data or "aliases" in data):
        return names_of(data)
    # an engine without the resolve API: the cat APIs give the same names
    cat = await es.json("GET", "/_cat/indices", params={"format": "json", "h": "index"})
    aliases = await es.json("GET", "/_cat/aliases", params={"format": "json", "h": "alias"})
    return sorted({r["index"] for r in cat} | {r["alias"] for r in aliases})


async def fetch_fields(es: Es, index: str) -> list[tuple[str, str]]:
    return fields_of(await es.mapping(index))


class NameCache:
    def __init__(self, cache_dir: Path, identity: str, *, fresh_s: float = FRESH_S, budget_s: float = BUDGET_S
                 ) -> None:
        self.path = cache_dir / "names" / f"{file_stem(identity)}.json"
        self.fresh_s = fresh_s
        self.budget_s = budget_s

    def _load(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(self.path, orjson.dumps(data))
        except OSError:
            pass  # a read-only cache dir: completion still answers, it just asks again next time

    def fresh(self, slot: str) -> Any:
        """The slot's value while it is fresh, else None: a hit costs no event loop and no client import."""
        entry = self._load().get(slot)
        if isinstance(entry, dict) and time.time() - float(entry.get("at", 0)) < self.fresh_s:
            return entry.get("value")
        return None

    async def _get(self, slot: str, open_es: OpenEs, ask: Callable[[Es], Awaitable[Any]]) -> Any:
        data = self._load()
        entry = data.get(slot)
        now = time.time()
        if isinstance(entry, dict) and now - float(entry.get("at", 0)) < self.fresh_s:
            return entry.get("value")

        async def fetch() -> Any:
            async with open_es() as es:
                return await ask(es)

        import asyncio

        try:
            value = await asyncio.wait_for(fetch(), self.budget_s)
        except Exception:  # unreachable, refused, too slow: the names we had, or none
            return entry.get("value") if isinstance(entry, dict) else None
        data = self._load()  # another completion may have written meanwhile
        data[slot] = {"at": now, "value": value}
        self._save(data)
        return value

    @staticmethod
    def slot_of_fields(index: str) -> str:
        return f"fields:{index}"

    async def indices(self, open_es: OpenEs) -> list[str]:
        value = await self._get("indices", open_es, fetch_indices)
        return [str(v) for v in value] if isinstance(value, list) else []

    async def fields(self, open_es: OpenEs, index: str) -> list[tuple[str, str]]:
        value = await self._get(self.slot_of_fields(index), open_es, lambda es: fetch_fields(es, index))
        return as_fields(value)

    def fresh_indices(self) -> list[str] | None:
        value = self.fresh("indices")
        return [str(v) for v in value] if isinstance(value, list) else None

    def fresh_fields(self, index: str) -> list[tuple[str, str]] | None:
        value = self.fresh(self.slot_of_fields(index))
        return as_fields(value) if isinstance(value, list) else None


def as_fields(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    return [(str(v[0]), str(v[1])) for v in value if isinstance(v, (list, tuple)) and len(v) == 2]
