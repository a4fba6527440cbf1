"""A copy's metadata: which source indices and data streams go where, and what the target is given for them.

    plan = await plan_copy(source, target, "logs-*", Rename(prefix="v2-"))
    if plan.refused: ...                # --evaluate stops here: plan.pairs and plan.changes are the report
    await apply_plan(target, plan)      # before the documents: indices (refresh off, no replicas), templates
    ...                                 # the documents (core/copy.py)
    await finish_plan(target, plan)     # after them: refresh interval and replicas back, aliases, refresh

What crosses, and what is rewritten or left out on the way, is decided by the pure rules in core/copy_rules.py;
this module asks the two clusters and acts. Nothing is created while planning (an --evaluate run changes
nothing); a refusal at create time is a RefusedError (exit 4) naming the index and the engine's reason, which
names the field.

An index the copy creates carries a hidden alias `escli-copying-<dest>` until finish_plan, so a resumed copy
(`resuming=True`) knows the existing index is its own; a data stream's index template carries the same mark in
its `_meta`. Both are gone once the copy is finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from escli.core.copy_rules import (
    DROPPED,
    REFUSED,
    REWRITTEN,
    Note,
    clean_alias,
    clean_mappings,
    clean_settings,
    clean_template,
    compare_mappings,
    flatten_settings,
)
from escli.errors import RefusedError, UsageError, api_error_summary

if TYPE_CHECKING:
    from escli.es.api import Es, ProductInfo

INDEX = "index"
DATA_STREAM = "data_stream"
MARK_PREFIX = "escli-copying-"
MARK_META = "escli_copy"
# What a bulk load runs with, put back by finish_plan: the engines' own advice for loading an index.
LOAD_SETTINGS = {"index.refresh_interval": "-1", "index.number_of_replicas": 0}


@dataclass(frozen=True)
class Rename:
    """--dest (one index), --prefix, --suffix."""
    dest: str | None = None
    prefix: str = ""
    suffix: str = ""

    def apply(self, source_index: str) -> str:
        return self.dest if self.dest else f"{self.prefix}{source_index}{self.suffix}"

    @property
    def renames(self) -> bool:
        return bool(self.dest or self.prefix or self.suffix)


@dataclass
class Template:
    kind: str  # "component" | "index"
    name: str
    body: dict[str, Any]
    exists: bool = False  # already on the target: left as it is


@dataclass
class IndexPair:
    """One source index (or data stream) and where it goes."""
    source: str
    dest: str
    kind: str     # INDEX | DATA_STREAM
    exists: bool  # the dest already exists on the target
    ours: bool = False  # it exists because an earlier run of this copy made it (resuming)
    create: dict[str, Any] | None = None  # the body to create an index with; None: nothing to create
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)  # added by finish_plan
    restore: dict[str, Any] = field(default_factory=dict)  # the settings the load changed, put back after it
    mapping: dict[str, Any] | None = None  # a data stream's write-index mapping, put after it is created
    templates: list[Template] = field(default_factory=list)  # a data stream's, components first

    @property
    def creates(self) -> bool:
        return not self.exists and (self.create is not None or self.kind == DATA_STREAM)

    @property
    def loads(self) -> bool:
        """Created for this copy (now or by the run it resumes): it runs with the load settings until finished."""
        return bool(self.restore) and (not self.exists or self.ours)


@dataclass
class Change:
    """Something rewritten, dropped or refused, and why (one line each)."""
    index: str
    what: str
    action: str  # "rewritten" | "dropped" | "refused"
    why: str

    def __str__(self) -> str:
        return f"{self.index}: {self.what} {self.action}: {self.why}"


@dataclass
class CopyPlan:
    pairs: list[IndexPair]
    changes: list[Change]
    source_product: ProductInfo | None = None
    target_product: ProductInfo | None = None

    @property
    def refused(self) -> list[Change]:
        """Non-empty: the copy would fail (evaluate exits 1, a copy refuses to start)."""
        return [c for c in self.changes if c.action == REFUSED]

    def changes_of(self, pair: IndexPair) -> list[Change]:
        return [c for c in self.changes if c.index == pair.source]


# -- the source -----------------------------------------------------------------------------------------------------

async def resolve_sources(source: Es, expr: str) -> list[tuple[str, str]]:
    """SOURCE (index, alias, data stream, pattern, or a comma list of them) -> [(name, INDEX | DATA_STREAM)],
    sorted by name: concrete indices and data streams, never a data stream's backing index on its own."""
    data = await source.resolve_index(expr)
    found: dict[str, str] = {}
    streams = {str(d["name"]): d for d in data.get("data_streams", []) if isinstance(d, dict)}
    backing = {str(b) for d in streams.values() for b in d.get("backing_indices", [])}
    _sort_indices(data, found, streams)
    aliases = [a for a in data.get("aliases", []) if isinstance(a, dict)]
    if aliases:  # an alias stands for its indices: resolve them to tell backing indices from plain ones
        members = sorted({str(i) for a in aliases for i in a.get("indices", [])} - backing - set(found))
        if members:
            _sort_indices(await source.resolve_index(",".join(members)), found, streams)
    for name in streams:
        found[name] = DATA_STREAM
    return sorted(found.items())


def _sort_indices(resolved: Mapping[str, Any], found: dict[str, str], streams: dict[str, Any]) -> None:
    """A resolve answer's indices: a backing index stands for its data stream, any other for itself."""
    for item in resolved.get("indices", []):
        if isinstance(item, dict):
            if item.get("data_stream"):
                streams.setdefault(str(item["data_stream"]), {})
            else:
                found[str(item["name"])] = INDEX


# -- planning -------------------------------------------------------------------------------------------------------

async def plan_copy(source: Es, target: Es, expr: str, rename: Rename, *, metadata: bool = True,
                    into_existing: bool = False, resuming: bool = False) -> CopyPlan:
    """Where each source index goes and what is created for it there; nothing is changed on either cluster."""
    sources = await resolve_sources(source, expr)
    if not sources:
        raise UsageError(f"SOURCE {expr}: no index, alias or data stream of that name on the source cluster")
    if rename.dest and len(sources) > 1:
        names = ", ".join(n for n, _ in sources[:3]) + (", ..." if len(sources) > 3 else "")
        raise UsageError(f"--dest {rename.dest}: SOURCE {expr} is {len(sources)} indices ({names}); --dest "
                         "renames one index, --prefix/--suffix rename many")
    dests = [rename.apply(name) for name, _ in sources]
    source_product, target_product = await asyncio.gather(source.version(), target.version())
    existing = await target.existing(dests)
    plan = CopyPlan([], [], source_product, target_product)
    for (name, kind), dest in zip(sources, dests, strict=True):
        if kind == DATA_STREAM:
            streams = await target.data_streams(dest)
            pair = IndexPair(name, dest, kind, exists=bool(streams))
        else:
            pair = IndexPair(name, dest, kind, exists=dest in existing)
        plan.pairs.append(pair)
        if not metadata:
            continue
        notes = await (_plan_stream(source, target, pair, rename, plan, into_existing, resuming) if kind == DATA_STREAM
                       else _plan_index(source, pair, existing.get(dest), plan, into_existing, resuming))
        plan.changes += [Change(name, n.what, n.action, n.why) for n in notes]
    return plan


def _exists_note(pair: IndexPair, into_existing: bool) -> list[Note]:
    if pair.exists and not into_existing and not pair.ours:
        what = "data stream" if pair.kind == DATA_STREAM else "index"
        return [Note(pair.dest, REFUSED, f"the {what} exists on the target (--into-existing copies into it)")]
    return []


async def _plan_index(source: Es, pair: IndexPair, there: Mapping[str, Any] | None, plan: CopyPlan,
                      into_existing: bool, resuming: bool) -> list[Note]:
    assert plan.source_product is not None and plan.target_product is not None
    meta = await source.index_metadata(pair.source)
    settings = clean_settings(meta.get("settings") or {}, plan.source_product, plan.target_product)
    mappings = clean_mappings(meta.get("mappings") or {}, plan.source_product, plan.target_product)
    notes = settings.notes + mappings.notes
    body_settings = {**settings.body, **mappings.settings}
    aliases: dict[str, dict[str, Any]] = {}
    for alias, spec in (meta.get("aliases") or {}).items():
        cleaned = clean_alias(alias, spec if isinstance(spec, Mapping) else {})
        aliases[alias] = cleaned.body
        notes += cleaned.notes
    pair.aliases = aliases
    if there is not None:
        pair.ours = resuming and MARK_PREFIX + pair.dest in (there.get("aliases") or {})
        notes += _exists_note(pair, into_existing)
        if into_existing and not pair.ours:
            notes += compare_mappings(mappings.body, there.get("mappings") or {})
    pair.restore = {key: body_settings.get(key) for key in LOAD_SETTINGS}
    pair.create = {"settings": {**body_settings, **LOAD_SETTINGS}, "mappings": mappings.body,
                   "aliases": {MARK_PREFIX + pair.dest: {"is_hidden": True}}}
    return notes


async def _plan_stream(source: Es, target: Es, pair: IndexPair, rename: Rename, plan: CopyPlan,
                       into_existing: bool, resuming: bool) -> list[Note]:
    src, dst = plan.source_product, plan.target_product
    assert src is not None and dst is not None
    streams = await source.data_streams(pair.source)
    if not streams:
        return [Note(pair.source, REFUSED, "the source lists it as a data stream but GET _data_stream has none")]
    stream = streams[0]
    notes: list[Note] = []
    template_name = str(stream.get("template") or "")
    template = await source.index_template(template_name) if template_name else None
    if template is None:
        return [Note(pair.source, REFUSED, f"its index template {template_name or '(none)'} is gone from the source")]
    renamed = pair.dest != pair.source

    def new_name(name: str) -> str:
        if not renamed:
            return name
        return f"{rename.dest}-{name}" if rename.dest else rename.apply(name)

    components: list[Template] = []
    composed = [str(c) for c in template.get("composed_of", [])]
    for cname in composed:
        body = await source.component_template(cname)
        if body is None:
            if cname in [str(c) for c in template.get("ignore_missing_component_templates", [])]:
                continue
            notes.append(Note(f"component template {cname}", REFUSED, "named by the index template, missing on "
                              "the source"))
            continue
        cleaned = clean_template("component", cname, body, src, dst)
        notes += cleaned.notes
        components.append(Template("component", new_name(cname), cleaned.body))
    index_template = clean_template("index", template_name, template, src, dst)
    notes += index_template.notes
    body = index_template.body
    body["composed_of"] = [new_name(c) for c in composed if any(t.name == new_name(c) for t in components)]
    if renamed:
        priority = int(body.get("priority") or 0) + 1
        body["index_patterns"] = [pair.dest]
        body["priority"] = priority
        notes.append(Note(f"index template {template_name}", REWRITTEN,
                          f"as {new_name(template_name)}, for [{pair.dest}] alone at priority {priority}"
                          + (f", with component templates {', '.join(body['composed_of'])}" if composed else "")))
    for t in components:
        t.exists = await target.component_template(t.name) is not None
    there = await target.index_template(new_name(template_name))
    final = Template("index", new_name(template_name), body, exists=there is not None)
    marked = isinstance(there, dict) and MARK_META in (there.get("_meta") or {})
    pair.ours = pair.exists and resuming and marked
    for t in [*components, final]:
        if t.exists and not into_existing and not (resuming and marked):
            notes.append(Note(f"{t.kind} template {t.name}", REFUSED,
                              "exists on the target (--into-existing uses the target's own)"))
    pair.templates = [*components, final]
    notes += _exists_note(pair, into_existing)
    # The write index's mapping holds what was mapped dynamically since the stream began: put on the copy, it
    # keeps a keyword a keyword instead of letting the target guess again from the documents.
    write_index = str((stream.get("indices") or [{}])[-1].get("index_name") or "")
    if write_index:
        meta = await source.index_metadata(write_index)
        mappings = clean_mappings(meta.get("mappings") or {}, src, dst)
        notes += [n for n in mappings.notes if n.action == REFUSED or not _said_in_template(n, notes)]
        pair.mapping = {k: v for k, v in mappings.body.items() if k in ("properties", "dynamic_templates")}
        flat = flatten_settings(meta.get("settings") or {})
        pair.restore = {key: flat.get(key) for key in LOAD_SETTINGS}
    return notes


def _said_in_template(note: Note, notes: list[Note]) -> bool:
    return any(n.what.endswith(f": {note.what}") and n.action == note.action for n in notes)


# -- acting ---------------------------------------------------------------------------------------------------------

def _refusal(dest: str, what: str, exc: RefusedError) -> RefusedError:
    _, etype, reason = api_error_summary(exc)
    return RefusedError(f"{dest}: the target refused the {what}: {etype}: {reason}", exc.status, exc.body)


async def apply_plan(target: Es, plan: CopyPlan) -> None:
    """Before the documents: each index created (refresh off, no replicas: a bulk load), each data stream's
    component and index templates put and the stream created. Indices that exist are left as they are."""
    if plan.refused:
        first = plan.refused[0]
        raise RefusedError(f"{first.index}: {first.what}: {first.why}"
                           + (f" (and {len(plan.refused) - 1} more refusals)" if len(plan.refused) > 1 else ""))
    for pair in plan.pairs:
        if pair.exists:
            continue
        if pair.kind == INDEX and pair.create is not None:
            try:
                await target.create_index(pair.dest, pair.create)
            except RefusedError as exc:
                raise _refusal(pair.dest, "index", exc) from exc
        elif pair.kind == DATA_STREAM and pair.templates:
            await _create_stream(target, pair)


async def _create_stream(target: Es, pair: IndexPair) -> None:
    for t in pair.templates:
        if t.exists:
            continue
        body = t.body
        if t.kind == "index":
            body = {**body, "_meta": {**(body.get("_meta") or {}), MARK_META: {"dest": pair.dest}}}
        try:
            if t.kind == "component":
                await target.put_component_template(t.name, body)
            else:
                await target.put_index_template(t.name, body)
        except RefusedError as exc:
            raise _refusal(pair.dest, f"{t.kind} template {t.name}", exc) from exc
    try:
        await target.create_data_stream(pair.dest)
        if pair.mapping and pair.mapping.get("properties"):
            await target.put_mapping(pair.dest, pair.mapping)
        await target.put_settings(pair.dest, LOAD_SETTINGS)
    except RefusedError as exc:
        raise _refusal(pair.dest, "data stream", exc) from exc


async def finish_plan(target: Es, plan: CopyPlan) -> None:
    """After the documents: the refresh interval and replicas the source had, the source's aliases, the copy's
    mark removed, and a refresh so that what was copied can be searched."""
    actions: list[dict[str, Any]] = []
    for pair in plan.pairs:
        if not pair.loads:
            continue
        await target.put_settings(pair.dest, {"index": {k.removeprefix("index."): v
                                                        for k, v in pair.restore.items()}})
        if pair.kind == INDEX:
            actions.append({"remove": {"index": pair.dest, "alias": MARK_PREFIX + pair.dest}})
            actions += [{"add": {"index": pair.dest, "alias": alias, **spec}} for alias, spec in pair.aliases.items()]
        else:
            final = pair.templates[-1] if pair.templates else None
            if final is not None and (not final.exists or pair.ours):
                await target.put_index_template(final.name, final.body)  # without the mark
    if actions:
        try:
            await target.update_aliases(actions)
        except RefusedError as exc:
            raise _refusal(", ".join(p.dest for p in plan.pairs), "aliases", exc) from exc
    dests = [p.dest for p in plan.pairs]
    if dests:
        await target.refresh(",".join(dests))


__all__ = ["DATA_STREAM", "DROPPED", "INDEX", "REFUSED", "REWRITTEN", "Change", "CopyPlan", "IndexPair", "Rename",
           "Template", "apply_plan", "finish_plan", "plan_copy", "resolve_sources"]
