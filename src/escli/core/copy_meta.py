"""A copy's metadata: which source indices and data streams go where, and what the target is given for them.

    plan = await plan_copy(source, target, "logs-*", Rename(prefix="v2-"))
    if plan.refused: ...                # --evaluate stops here: plan.pairs and plan.changes are the report
    await apply_plan(target, plan)      # before the documents: indices (refresh off, no replicas), templates
    ...                                 # the documents (core/copy.py)
    await finish_plan(target, plan)     # after them: refresh interval and replicas back, aliases, refresh

What crosses, and what is rewritten or left out on the way, is decided by the pure rules in core/copy_rules.py
(settings, aliases), core/copy_mappings.py and core/copy_templates.py;
this module asks the two clusters and acts. Nothing is created while planning (an --evaluate run changes
nothing); a refusal at create time is a RefusedError (exit 4) naming the index and the engine's reason, which
names the field.

An index the copy creates carries a hidden alias `escli-copying-<dest>` until finish_plan, so a resumed copy
(`resuming=True`) knows the existing index is its own; a data stream's index template carries the same mark in
its `_meta`. Both are gone once the copy is finished.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from escli.core.copy_mappings import clean_mappings, compare_mappings
from escli.core.copy_rules import DROPPED, REFUSED, REWRITTEN, Note, clean_alias, clean_settings, flatten_settings
from escli.core.copy_templates import clean_template, compose_template
from escli.errors import RefusedError, UsageError, api_error_summary
from escli.es.api import name_lists

if TYPE_CHECKING:
    from escli.es.api import Es, ProductInfo

INDEX = "index"
DATA_STREAM = "data_stream"
MARK_PREFIX = "escli-copying-"
MARK_META = "escli_copy"
# What a bulk load runs with, put back by finish_plan: the engines' own advice for loading an index.
# The simulated index always has one shard: a partition size checked against it would be refused wrongly
# (`routing partition size [2] should be ... less than the number of shards [1]`), so the shard arithmetic is
# left to the create, where the real shard count is known.
UNSIMULATED = frozenset({"index.number_of_shards", "index.number_of_routing_shards", "index.routing_partition_size"})
# Indices planned at once (each a metadata request to the source and a simulation on the target).
PLAN_CONCURRENCY = 4
# Above any template a cluster is likely to hold, so the simulated one is the one that applies.
SIMULATE_PRIORITY = 2_000_000_000
LOAD_SETTINGS = {"index.refresh_interval": "-1", "index.number_of_replicas": 0}


@dataclass(frozen=True)
class Rename:
    """--dest (one index), --prefix, --suffix."""
    dest: str | None = None
    prefix: str = ""
    suffix: str = ""

    def apply(self, source_index: str) -> str:
        return self.dest if self.dest else f"{self.prefix}{source_index}{self.suffix}"


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
    def made(self) -> bool:
        """Made by this copy, now or by the run it resumes: it loads with refresh off and no replicas, and
        finish_plan puts the source's back and adds the aliases."""
        return (not self.exists or self.ours) and (self.create is not None or bool(self.templates))

    @property
    def status(self) -> str:
        """For a report: "create", "resume" (made by the run resumed), "existing" (--into-existing, else
        refused), or "no metadata" (--no-metadata: the target makes it from the first documents, if it must)."""
        if self.create is None and not self.templates:
            return "existing" if self.exists else "no metadata"
        if not self.exists:
            return "create"
        return "resume" if self.ours else "existing"


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


# -- the source -----------------------------------------------------------------------------------------------------

async def resolve_sources(source: Es, expr: str, rename: Rename | None = None) -> list[tuple[str, str]]:
    """SOURCE (index, alias, data stream, pattern, or a comma list of them) -> [(name, INDEX | DATA_STREAM)],
    sorted by name: concrete indices and data streams, never a data stream's backing index on its own. Nothing
    found, a closed index, or several for `rename`'s --dest: a UsageError."""
    try:
        data = await source.resolve_index(expr)
    except RefusedError as exc:
        if exc.status != 404:
            raise
        missing = named_in(api_error_summary(exc)[2], _BRACKETED) or expr
        raise UsageError(f"SOURCE {expr}: no index, alias or data stream "
                         + ("of that name" if missing == expr else f"[{missing}]") + " on the source cluster") from exc
    found: dict[str, str] = {}
    streams = {str(d["name"]): d for d in data.get("data_streams", []) if isinstance(d, dict)}
    backing = {str(b) for d in streams.values() for b in d.get("backing_indices", [])}
    closed = _sort_indices(data, found, streams)
    aliases = [a for a in data.get("aliases", []) if isinstance(a, dict)]
    if aliases:  # an alias stands for its indices: resolve them to tell backing indices from plain ones
        members = sorted({str(i) for a in aliases for i in a.get("indices", [])} - backing - set(found))
        if members:
            closed += _sort_indices(await source.resolve_names(members), found, streams)
    if closed:  # its documents cannot be read
        raise UsageError(f"SOURCE {expr}: {closed[0]} is closed on the source cluster; open it to copy it")
    for name in streams:
        found[name] = DATA_STREAM
    if not found:
        raise UsageError(f"SOURCE {expr}: no index, alias or data stream of that name on the source cluster")
    if rename is not None and rename.dest and len(found) > 1:
        names = ", ".join(sorted(found)[:3]) + (", ..." if len(found) > 3 else "")
        raise UsageError(f"--dest {rename.dest}: SOURCE {expr} is {len(found)} indices ({names}); --dest "
                         "renames one index, --prefix/--suffix rename many")
    return sorted(found.items())


def _sort_indices(resolved: Mapping[str, Any], found: dict[str, str], streams: dict[str, Any]) -> list[str]:
    """A resolve answer's indices: a backing index stands for its data stream, any other for itself. Returns
    the closed ones (a pattern leaves them out; a name or an alias does not)."""
    closed = []
    for item in resolved.get("indices", []):
        if isinstance(item, dict):
            if "closed" in (item.get("attributes") or []):
                closed.append(str(item["name"]))
            elif item.get("data_stream"):
                streams.setdefault(str(item["data_stream"]), {})
            else:
                found[str(item["name"])] = INDEX
    return closed


# -- planning -------------------------------------------------------------------------------------------------------

async def plan_copy(source: Es, target: Es, expr: str, rename: Rename, *, metadata: bool = True,
                    into_existing: bool = False, resuming: bool = False) -> CopyPlan:
    """Where each source index goes and what is created for it there; nothing is changed on either cluster."""
    sources = await resolve_sources(source, expr, rename)
    dests = [rename.apply(name) for name, _ in sources]
    same = [name for (name, _), dest in zip(sources, dests, strict=True) if name == dest]
    if same:
        here, there = await asyncio.gather(source.cluster_uuid(), target.cluster_uuid())
        if here and here == there:
            raise UsageError(f"SOURCE {same[0]}: the target is the source cluster and the copy would have the same "
                             "name; rename it with --dest, --prefix or --suffix")
    source_product, target_product = await asyncio.gather(source.version(), target.version())
    existing, taken = await asyncio.gather(target.existing(dests), target.resolve_names(dests))
    other = _other_kinds(taken)
    plan = CopyPlan([], [], source_product, target_product)
    gate = asyncio.Semaphore(PLAN_CONCURRENCY)

    async def one(name: str, kind: str, dest: str) -> tuple[IndexPair, list[Note]]:
        async with gate:
            clash = other.get(dest)
            if metadata and clash is not None and clash != ("index" if kind == INDEX else "data stream"):
                return IndexPair(name, dest, kind, exists=True), [
                    Note(dest, REFUSED, f"the target has {_a(clash)} of that name")]
            if kind == DATA_STREAM:
                streams = await target.data_streams(dest)
                pair = IndexPair(name, dest, kind, exists=bool(streams))
                if metadata and not streams and not await target.has_data_streams():
                    return pair, [Note(dest, REFUSED, "the target has no data streams")]
            else:
                pair = IndexPair(name, dest, kind, exists=dest in existing)
            if not metadata:
                return pair, []
            return pair, await (
                _plan_stream(source, target, pair, rename, plan, into_existing, resuming) if kind == DATA_STREAM
                else _plan_index(source, target, pair, existing.get(dest), plan, into_existing, resuming))

    from escli.core.tasks import together  # every step to its end, the first failure raised once

    planned = await together(*(one(name, kind, dest) for (name, kind), dest in zip(sources, dests, strict=True)))
    for pair, notes in planned:  # in the sources' order, whichever answered first
        plan.pairs.append(pair)
        plan.changes += [Change(pair.source, n.what, n.action, n.why) for n in notes]
    if metadata:
        await _check_aliases(target, plan)
    return plan


def _other_kinds(resolved: Mapping[str, Any]) -> dict[str, str]:
    """Name -> "index" | "alias" | "data stream", from a resolve answer."""
    kinds = {"indices": "index", "aliases": "alias", "data_streams": "data stream"}
    return {str(item["name"]): kind for key, kind in kinds.items() for item in resolved.get(key, [])
            if isinstance(item, dict) and "name" in item}


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


async def _check_aliases(target: Es, plan: CopyPlan) -> None:
    """The aliases finish_plan will add, against what the target holds: a name that is an index or data stream
    there, or an alias whose write index is another one, would fail after every document was copied."""
    wanted = {alias: pair for pair in plan.pairs if pair.made for alias in pair.aliases}
    if not wanted:
        return
    taken, there = await asyncio.gather(target.resolve_names(list(wanted)), target.aliases(list(wanted)))
    dests = {p.dest for p in plan.pairs}
    for name, kind in _other_kinds(taken).items():
        if name in wanted and kind != "alias":
            plan.changes.append(Change(wanted[name].source, f"alias {name}", REFUSED,
                                       f"{_a(kind)} of that name exists on the target"))
    for index, aliases in there.items():
        for alias, spec in aliases.items():
            pair = wanted.get(alias)
            if (pair is not None and index not in dests and spec.get("is_write_index")
                    and pair.aliases[alias].get("is_write_index")):
                plan.changes.append(Change(pair.source, f"alias {alias}", REFUSED,
                                           f"its write index on the target is {index} already"))


def _exists_note(pair: IndexPair, into_existing: bool) -> list[Note]:
    if pair.exists and not into_existing and not pair.ours:
        what = "data stream" if pair.kind == DATA_STREAM else "index"
        return [Note(pair.dest, REFUSED, f"the {what} exists on the target (--into-existing copies into it)")]
    return []


async def _plan_index(source: Es, target: Es, pair: IndexPair, there: Mapping[str, Any] | None, plan: CopyPlan,
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
    if there is None and not any(n.action == REFUSED for n in notes):
        notes += await _ask_target(target, pair.dest, body_settings, mappings.body, mappings.needed_by)
    return notes


# Where an engine's refusal names the field or setting at fault, most precise first.
_NAMED = (re.compile(r"on field \[([^\]]+)\]"), re.compile(r"on mapper \[([^\]]+)\]"),
          re.compile(r"[Mm]apping definition for \[([^\]]+)\]"), re.compile(r"setting \[([^\]]+)\]"),
          re.compile(r"field \[([^\]]+)\]"))


_BRACKETED = (re.compile(r"\[([^\]]+)\]"),)


def named_in(reason: str, patterns: tuple[re.Pattern[str], ...] = _NAMED) -> str | None:
    """The field or setting an engine's refusal names, if it names one."""
    for pattern in patterns:
        found = pattern.search(reason)
        if found:
            return found.group(1)
    return None


async def _ask_target(target: Es, dest: str, settings: Mapping[str, Any], mappings: Mapping[str, Any],
                      needed_by: Mapping[str, list[str]], *, data_stream: Any = None) -> list[Note]:
    """What the rules cannot know (a module the target lacks, a value it does not take): the target validates
    the index as a simulated template, which creates nothing."""
    shown = {k: v for k, v in settings.items() if k not in UNSIMULATED}
    body: dict[str, Any] = {"index_patterns": [dest], "priority": SIMULATE_PRIORITY,
            "template": {"settings": shown, "mappings": dict(mappings)}}
    if data_stream is not None:
        body["data_stream"] = data_stream
    reason = await target.simulate_template(body)
    if reason is None:
        return []
    named = named_in(reason) or dest
    fields = needed_by.get(named)
    if fields:  # a setting the rewrite of these fields added: the fields are what the target cannot take
        return [Note(f, REFUSED, f"needs {named}, which the target refuses: {reason}") for f in fields]
    return [Note(named, REFUSED, f"the target says {reason}")]


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
    merged = compose_template([t.body.get("template") or {} for t in pair.templates])
    pair.restore = {key: merged["settings"].get(key) for key in LOAD_SETTINGS}
    if not pair.exists and not any(n.action == REFUSED for n in notes):
        notes += await _ask_target(target, pair.dest, merged["settings"], merged["mappings"], {},
                                   data_stream=body.get("data_stream"))
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
        if not pair.made:
            continue
        # null puts a setting the source left unset back to the target's default
        await target.put_settings(pair.dest, {"index": {k.removeprefix("index."): pair.restore.get(k)
                                                        for k in LOAD_SETTINGS}})
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
    for dests in name_lists(p.dest for p in plan.pairs):
        await target.refresh(dests, ignore_unavailable=True)  # --no-metadata, no documents: none made


__all__ = ["DATA_STREAM", "DROPPED", "INDEX", "REFUSED", "REWRITTEN", "Change", "CopyPlan", "IndexPair", "Rename",
           "Template", "apply_plan", "finish_plan", "plan_copy", "resolve_sources"]
