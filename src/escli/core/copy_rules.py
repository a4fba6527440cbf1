"""Pure rules for copying index metadata: what is kept, rewritten or dropped for a target product and major.

Nothing here talks to a cluster. Each function takes what the source said (flat settings, a mapping, a template,
an alias) and the two engines, and gives back what to send to the target plus one `Note` per thing that was
rewritten, dropped or refused, with the reason (the copy's --evaluate report and its Change lines).

Settings are handled as flat keys (`index.analysis.analyzer.x.type`), the form `?flat_settings=true` answers
with and every engine takes back. Three kinds are left out:
- the source's own life, always and silently: what `IndexScopedSettings.isPrivateSetting` and the
  `Property.PrivateIndex` settings of Elasticsearch and OpenSearch name (uuid, creation date, `version.*`,
  `provided_name`, history uuid, resize/shrink source, initial recovery, `merge.enabled`) and the markers an
  engine adds by itself (`_tier_preference`, OpenSearch's `replication.type` for another product,
  `verified_before_close`, `index.format`, `shard_limit.group`);
- what would tie the copy to the source cluster or change what it does, said: allocation filters, blocks,
  lifecycle policies (ILM, ISM), ingest pipelines (the documents come already processed), searchable snapshots;
- across products, whatever is not on the list of settings both engines define the same way (PORTABLE), said.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from escli.es.api import ELASTICSEARCH, OPENSEARCH, ProductInfo

REWRITTEN = "rewritten"
DROPPED = "dropped"
REFUSED = "refused"


@dataclass(frozen=True)
class Note:
    what: str    # the setting, field or template part concerned: "index.blocks.write", "price", "template logs"
    action: str  # REWRITTEN | DROPPED | REFUSED
    why: str


@dataclass
class Cleaned:
    """What to send to the target, and what was changed on the way."""
    body: dict[str, Any]
    notes: list[Note] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # settings a mapping rewrite needs (index.knn, ...)
    needed_by: dict[str, list[str]] = field(default_factory=dict)  # such a setting -> the fields that need it


def name_of(p: ProductInfo) -> str:
    pretty = "Elasticsearch" if p.name == ELASTICSEARCH else "OpenSearch"
    return f"{pretty} {p.major}" if p.major is not None else pretty


# -- settings -------------------------------------------------------------------------------------------------------

# The source's own life: never copied, never said (every index has them).
PRIVATE_KEYS = frozenset({
    "index.uuid", "index.creation_date", "index.creation_date_string", "index.provided_name",
    "index.history.uuid", "index.merge.enabled", "index.verified_before_close", "index.verified_read_only",
    "index.format", "index.shard_limit.group", "index.routing.allocation.include._tier_preference",
    "index.mapping.single_type", "index.source_only", "index.data_path",
    "index.lifecycle.indexing_complete", "index.lifecycle.origination_date",
    "index.allocation.existing_shards_allocator",
})
PRIVATE_PREFIXES = ("index.version.", "index.resize.", "index.shrink.", "index.routing.initial_recovery.",
                    "index.downsample.", "index.rollup.", "index.store.snapshot.", "index.ephemeral.",
                    "index.searchable_snapshots.", "index.remote_store.", "index.searchable_snapshot.",
                    "index.context.created_version", "index.context.current_version", "index.tiering.",
                    "archived.")

# Said when dropped: each ties the copy to the source cluster, or would make it behave unlike a copy.
SAID_PREFIXES: tuple[tuple[str, str], ...] = (
    ("index.routing.allocation.", "allocation filters name the source cluster's nodes and tiers"),
    ("index.routing.rebalance.", "allocation filters name the source cluster's nodes and tiers"),
    ("index.blocks.", "a block would stop the copy writing; set it again on the target if it is wanted"),
    ("index.lifecycle.", "the lifecycle policy belongs to the source cluster (ILM); attach one on the target"),
    ("index.plugins.index_state_management.", "the ISM policy belongs to the source cluster"),
    ("index.opendistro.index_state_management.", "the ISM policy belongs to the source cluster"),
    ("opendistro.index_state_management.", "the ISM policy belongs to the source cluster"),
    ("index.default_pipeline", "the documents come already processed: the pipeline would run on them again"),
    ("index.final_pipeline", "the documents come already processed: the pipeline would run on them again"),
    ("index.xpack.ccr.", "cross-cluster replication state belongs to the source cluster"),
    ("index.ccr.", "cross-cluster replication state belongs to the source cluster"),
    ("index.plugins.replication.", "cross-cluster replication state belongs to the source cluster"),
    ("index.ingestion_source.", "pull-based ingestion reads the source's stream: attach one on the target"),
    ("index.default_search_pipeline", "the search pipeline belongs to the source cluster"),
    ("index.frozen", "a frozen index is a source-side storage state"),
    ("index.search.throttled", "a frozen index is a source-side storage state"),
    ("index.time_series.start_time", "the time-series bounds belong to the source's backing index"),
    ("index.time_series.end_time", "the time-series bounds belong to the source's backing index"),
)

# Defined the same way by Elasticsearch and OpenSearch: what crosses between products (prefix match on the key).
PORTABLE = (
    "index.number_of_shards", "index.number_of_replicas", "index.number_of_routing_shards",
    "index.routing_partition_size", "index.auto_expand_replicas", "index.refresh_interval", "index.hidden",
    "index.priority", "index.analysis.", "index.similarity.", "index.sort.", "index.max_result_window",
    "index.max_inner_result_window", "index.max_rescore_window", "index.max_docvalue_fields_search",
    "index.max_script_fields", "index.max_ngram_diff", "index.max_shingle_diff", "index.max_refresh_listeners",
    "index.max_terms_count", "index.max_regex_length", "index.max_slices_per_scroll", "index.analyze.",
    "index.highlight.", "index.query.default_field", "index.query_string.lenient",
    "index.mapping.total_fields.limit", "index.mapping.depth.limit", "index.mapping.nested_fields.limit",
    "index.mapping.nested_objects.limit", "index.mapping.field_name_length.limit", "index.mapping.coerce",
    "index.mapping.ignore_malformed", "index.gc_deletes", "index.translog.durability",
    "index.translog.sync_interval", "index.translog.flush_threshold_size", "index.search.idle.after",
    "index.unassigned.node_left.delayed_timeout", "index.merge.policy.", "index.merge.scheduler.",
    "index.shard.check_on_startup", "index.load_fixed_bitset_filters_eagerly", "index.requests.cache.enable",
    "index.queries.cache.enabled", "index.soft_deletes.", "index.indexing.slowlog.threshold.",
    "index.search.slowlog.threshold.", "index.codec", "index.store.type", "index.store.preload",
    "index.total_shards_per_node", "index.write.wait_for_active_shards", "index.max_adjacency_matrix_filters",
)
PORTABLE_VALUES = {
    "index.codec": {"default", "best_compression"},
    "index.store.type": {"fs", "niofs", "mmapfs", "hybridfs"},
}
# Settings one engine's major no longer accepts, and what happens to them there.
MIN_MAJOR_REMOVED = {
    # key: (product, first major that refuses it, reason)
    "index.mapper.dynamic": (ELASTICSEARCH, 8, "removed in Elasticsearch 8"),
    "index.max_adjacency_matrix_filters": (ELASTICSEARCH, 8, "replaced by a cluster setting in Elasticsearch 8"),
}


def flatten_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested or flat settings (a template's `{index: {...}}` or `{number_of_shards: 1}`) as flat `index.` keys."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_settings(value, f"{path}."))
        else:
            out[path] = value
    if not prefix:
        out = {k if k.startswith(("index.", "archived.")) else f"index.{k}": v for k, v in out.items()}
    return out


def _said(key: str) -> str | None:
    for prefix, why in SAID_PREFIXES:
        if key == prefix or key.startswith(prefix if prefix.endswith(".") else prefix + "."):
            return why
    return None


def _portable(key: str) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) or key.startswith(p + ".") for p in PORTABLE)


def clean_settings(flat: Mapping[str, Any], source: ProductInfo, target: ProductInfo) -> Cleaned:
    """The settings to create the copy with (flat keys), each left-out one said unless it is the source's own."""
    out: dict[str, Any] = {}
    notes: list[Note] = []
    cross = source.name != target.name
    for key, value in flatten_settings(flat).items():
        if key in PRIVATE_KEYS or key.startswith(PRIVATE_PREFIXES):
            continue
        if key == "index.store.type" and str(value) == "snapshot":
            notes.append(Note(key, DROPPED, "a searchable snapshot mount belongs to the source's repository"))
            continue
        if key == "index.replication.type" and target.name != OPENSEARCH:
            continue  # OpenSearch sets it on every index (DOCUMENT by default); Elasticsearch has no such thing
        why = _said(key)
        if why:
            notes.append(Note(key, DROPPED, why))
            continue
        if cross:
            allowed = PORTABLE_VALUES.get(key)
            if not _portable(key) or (allowed is not None and str(value) not in allowed):
                notes.append(Note(key, DROPPED, f"not a setting {name_of(target)} takes"
                                  + (f" with the value {value!r}" if allowed is not None and _portable(key) else "")))
                continue
        removed = MIN_MAJOR_REMOVED.get(key)
        if removed and removed[0] == target.name and (target.major or 0) >= removed[1]:
            notes.append(Note(key, DROPPED, removed[2]))
            continue
        if key == "index.soft_deletes.enabled" and str(value).lower() == "false" and _always_soft_deletes(target):
            notes.append(Note(key, DROPPED, f"{name_of(target)} always keeps soft deletes (false is refused)"))
            continue
        out[key] = value
    return Cleaned(out, notes)


def _always_soft_deletes(target: ProductInfo) -> bool:
    major = target.major or 0
    return major >= 8 if target.name == ELASTICSEARCH else major >= 2


# -- mappings -------------------------------------------------------------------------------------------------------

# Top-level mapping keys (the rest of a top-level key holding `properties` is a 6.x/7.x type name).
MAPPING_KEYS = frozenset({
    "properties", "dynamic", "dynamic_templates", "date_detection", "numeric_detection", "dynamic_date_formats",
    "_source", "_routing", "_meta", "_field_names", "_all", "_size", "runtime", "subobjects", "enabled",
    "_data_stream_timestamp", "derived", "composite", "_doc_count", "_index", "_id", "_tier", "_ignored",
})

# A field type one product has and the other does not: what it becomes there, and why.
ES_TO_OS_TYPES: dict[str, tuple[dict[str, Any] | None, str]] = {
    "flattened": ({"type": "flat_object"}, "OpenSearch's counterpart of flattened is flat_object"),
    "semantic_text": ({"type": "text"}, "semantic_text needs an Elasticsearch inference endpoint; "
                                        "the text is kept, its embeddings are not"),
    "sparse_vector": ({"type": "rank_features"}, "OpenSearch keeps token weights as rank_features"),
    "version": ({"type": "keyword"}, "OpenSearch has no version type; keyword keeps the value (sorted as text)"),
    "counted_keyword": ({"type": "keyword"}, "OpenSearch has no counted_keyword"),
    "shape": ({"type": "xy_shape"}, "OpenSearch's counterpart of shape is xy_shape"),
    "point": ({"type": "xy_point"}, "OpenSearch's counterpart of point is xy_point"),
    "histogram": ({"type": "object", "enabled": False},
                  "OpenSearch has no histogram type: kept in _source, not searchable"),
    "aggregate_metric_double": ({"type": "object", "enabled": False},
                                "OpenSearch has no aggregate_metric_double: kept in _source, not searchable"),
    "passthrough": ({"type": "object"}, "OpenSearch has no passthrough object"),
    "rank_vectors": (None, "OpenSearch has no rank_vectors"),
}
OS_TO_ES_TYPES: dict[str, tuple[dict[str, Any] | None, str]] = {
    "flat_object": ({"type": "flattened"}, "Elasticsearch's counterpart of flat_object is flattened"),
    "xy_shape": ({"type": "shape"}, "Elasticsearch's counterpart of xy_shape is shape"),
    "xy_point": ({"type": "point"}, "Elasticsearch's counterpart of xy_point is point"),
    "semantic": ({"type": "text"}, "OpenSearch's semantic field needs its ML model; the text is kept"),
}
# Mapping parameters only one product knows, by the product that knows them.
ES_ONLY_PARAMS = frozenset({"time_series_dimension", "time_series_metric", "synthetic_source_keep",
                            "store_array_source", "script", "on_script_error", "inference_id",
                            "search_inference_id", "model_settings", "chunking_settings", "subobjects"})
OS_ONLY_PARAMS = frozenset({"derived_source"})
# Mapping parameters an Elasticsearch major refuses for new indices, with the first major that does.
ES_REMOVED_PARAMS = {
    "boost": (8, "index-time boost was removed in Elasticsearch 8"),
    "tree": (8, "geo_shape prefix trees were removed in Elasticsearch 8"),
    "strategy": (8, "geo_shape prefix trees were removed in Elasticsearch 8"),
    "precision": (8, "geo_shape prefix trees were removed in Elasticsearch 8"),
    "tree_levels": (8, "geo_shape prefix trees were removed in Elasticsearch 8"),
    "distance_error_pct": (8, "geo_shape prefix trees were removed in Elasticsearch 8"),
    "points_only": (8, "geo_shape prefix trees were removed in Elasticsearch 8"),
}
ES_SIMILARITY_TO_OS_SPACE = {"cosine": "cosinesimil", "l2_norm": "l2", "dot_product": "innerproduct",
                             "max_inner_product": "innerproduct"}
OS_SPACE_TO_ES_SIMILARITY = {"cosinesimil": "cosine", "l2": "l2_norm", "innerproduct": "max_inner_product"}


def unwrap_type(mappings: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A 6.x/7.x mapping wrapped in a type name (`{"_doc": {"properties": ...}}`): the inner mapping and the name."""
    if len(mappings) == 1:
        (name, inner), = mappings.items()
        if name not in MAPPING_KEYS and isinstance(inner, Mapping) and (
                "properties" in inner or not (set(inner) - MAPPING_KEYS)):
            return dict(inner), name
    return dict(mappings), None


class _MappingRewrite:
    def __init__(self, source: ProductInfo, target: ProductInfo) -> None:
        self.source = source
        self.target = target
        self.notes: list[Note] = []
        self.settings: dict[str, Any] = {}
        self.needed_by: dict[str, list[str]] = {}
        self.to_os = source.name == ELASTICSEARCH and target.name == OPENSEARCH
        self.to_es = source.name == OPENSEARCH and target.name == ELASTICSEARCH

    def note(self, what: str, action: str, why: str) -> None:
        self.notes.append(Note(what, action, why))

    def root(self, mappings: dict[str, Any]) -> dict[str, Any]:
        out = dict(mappings)
        if self.to_os:
            for key, why in (("runtime", "OpenSearch has no runtime fields"),
                             ("subobjects", "OpenSearch has no subobjects setting"),
                             ("_data_stream_timestamp", "OpenSearch marks a data stream's timestamp in its template")):
                if key in out:
                    del out[key]
                    self.note(f"mappings.{key}", DROPPED, why)
            if out.get("dynamic") == "runtime":
                out["dynamic"] = True
                self.note("mappings.dynamic", REWRITTEN, "OpenSearch has no runtime fields: dynamic runtime -> true")
        if self.to_es:
            for key, why in (("derived", "Elasticsearch has no derived fields (runtime fields differ)"),
                             ("composite", "Elasticsearch has no star-tree composite index")):
                if key in out:
                    del out[key]
                    self.note(f"mappings.{key}", DROPPED, why)
        if self.target.name == ELASTICSEARCH and (self.target.major or 0) >= 8:
            fnames = out.get("_field_names")
            if isinstance(fnames, Mapping) and "enabled" in fnames:
                del out["_field_names"]
                self.note("mappings._field_names", DROPPED, "disabling _field_names is refused by Elasticsearch 8+")
        src = out.get("_source")
        if isinstance(src, Mapping) and "mode" in src and (
                self.target.name == OPENSEARCH or (self.target.major or 0) >= 9):
            rest = {k: v for k, v in src.items() if k != "mode"}
            if self.target.name == OPENSEARCH:
                self.note("mappings._source.mode", DROPPED, "OpenSearch has no synthetic _source")
            else:
                self.settings["index.mapping.source.mode"] = src["mode"]
                self.note("mappings._source.mode", REWRITTEN, "moved to index.mapping.source.mode "
                          "(Elasticsearch 9 reads the source mode from the setting)")
            if rest:
                out["_source"] = rest
            else:
                del out["_source"]
        if isinstance(out.get("properties"), Mapping):
            out["properties"] = self.properties(out["properties"], "")
        templates = out.get("dynamic_templates")
        if isinstance(templates, list):
            kept = []
            for entry in templates:
                if isinstance(entry, Mapping) and len(entry) == 1:
                    (tname, spec), = entry.items()
                    if isinstance(spec, Mapping) and isinstance(spec.get("mapping"), Mapping):
                        spec = dict(spec)
                        spec["mapping"] = self.field(dict(spec["mapping"]), f"dynamic_templates.{tname}")
                        if spec["mapping"] is None:
                            continue
                    entry = {tname: spec}
                kept.append(entry)
            out["dynamic_templates"] = kept
        return out

    def properties(self, props: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, spec in props.items():
            if not isinstance(spec, Mapping):
                out[name] = spec
                continue
            done = self.field(dict(spec), f"{prefix}{name}")
            if done is not None:
                out[name] = done
        return out

    def field(self, spec: dict[str, Any], path: str) -> dict[str, Any] | None:
        kind = spec.get("type")
        if self.to_os and kind in ES_TO_OS_TYPES:
            spec = self.retype(spec, path, ES_TO_OS_TYPES)
        elif self.to_es and kind in OS_TO_ES_TYPES:
            spec = self.retype(spec, path, OS_TO_ES_TYPES)
        elif self.to_os and kind == "dense_vector":
            spec = self.dense_to_knn(spec, path)
        elif self.to_es and kind == "knn_vector":
            spec = self.knn_to_dense(spec, path)
        if spec.get("type") is None and kind is not None:  # refused
            return spec
        foreign = ES_ONLY_PARAMS if self.to_os else OS_ONLY_PARAMS if self.to_es else frozenset()
        for param in sorted(foreign & set(spec)):
            del spec[param]
            self.note(f"{path}.{param}", DROPPED, f"not a mapping parameter {name_of(self.target)} takes")
        if self.target.name == ELASTICSEARCH and self.source.name == ELASTICSEARCH:
            for param in sorted(set(spec) & set(ES_REMOVED_PARAMS)):
                major, why = ES_REMOVED_PARAMS[param]
                if (self.target.major or 0) >= major and (param == "boost" or spec.get("type") == "geo_shape"):
                    del spec[param]
                    self.note(f"{path}.{param}", DROPPED, why)
        if isinstance(spec.get("properties"), Mapping):
            spec["properties"] = self.properties(spec["properties"], f"{path}.")
        if isinstance(spec.get("fields"), Mapping):
            spec["fields"] = self.properties(spec["fields"], f"{path}.")
        return spec

    def retype(self, spec: dict[str, Any], path: str, table: Mapping[str, tuple[dict[str, Any] | None, str]]
               ) -> dict[str, Any]:
        kind = str(spec["type"])
        new, why = table[kind]
        if new is None:
            self.note(path, REFUSED, f"{kind}: {why}")
            return {"type": None}
        self.note(path, REWRITTEN, f"{kind} -> {new['type']}: {why}")
        out = dict(new)
        if new["type"] in ("text", "keyword") and "fields" in spec:
            out["fields"] = spec["fields"]
        return out

    def dense_to_knn(self, spec: dict[str, Any], path: str) -> dict[str, Any]:
        dims = spec.get("dims")
        if dims is None:
            self.note(path, REFUSED, "dense_vector without dims: OpenSearch's knn_vector needs its dimension")
            return {"type": None}
        if spec.get("element_type", "float") != "float":
            self.note(path, REFUSED, f"dense_vector of {spec['element_type']}: only float vectors are rewritten "
                      "to OpenSearch's knn_vector")
            return {"type": None}
        out: dict[str, Any] = {"type": "knn_vector", "dimension": dims}
        similarity = spec.get("similarity")
        if spec.get("index", True) is not False and similarity:
            out["method"] = {"name": "hnsw", "engine": "lucene",
                             "space_type": ES_SIMILARITY_TO_OS_SPACE.get(str(similarity), "l2")}
        self.settings["index.knn"] = True
        self.needed_by.setdefault("index.knn", []).append(path)
        self.note(path, REWRITTEN, f"dense_vector -> knn_vector (dimension {dims}"
                  + (f", {similarity} -> {out['method']['space_type']}" if "method" in out else "")
                  + "), and index.knn: true")
        return out

    def knn_to_dense(self, spec: dict[str, Any], path: str) -> dict[str, Any]:
        dims = spec.get("dimension")
        method = spec.get("method")
        method = method if isinstance(method, Mapping) else {}
        space = str(method.get("space_type") or spec.get("space_type") or "l2")
        similarity = OS_SPACE_TO_ES_SIMILARITY.get(space)
        if dims is None or similarity is None:
            self.note(path, REFUSED, f"knn_vector with space_type {space}: Elasticsearch's dense_vector has no "
                      "such similarity" if dims is not None else "knn_vector without a dimension")
            return {"type": None}
        self.note(path, REWRITTEN, f"knn_vector -> dense_vector (dims {dims}, {space} -> {similarity})")
        return {"type": "dense_vector", "dims": dims, "index": True, "similarity": similarity}


def clean_mappings(mappings: Mapping[str, Any], source: ProductInfo, target: ProductInfo) -> Cleaned:
    """The mapping to create the copy with; a refused field is a REFUSED note (the body keeps `type: None`)."""
    inner, type_name = unwrap_type(mappings)
    rewrite = _MappingRewrite(source, target)
    if type_name is not None:
        rewrite.note("mappings", REWRITTEN, f"the mapping type [{type_name}] unwrapped: "
                     f"{name_of(target)} has no mapping types")
    body = rewrite.root(copy.deepcopy(inner))
    return Cleaned(body, rewrite.notes, rewrite.settings, rewrite.needed_by)


# -- an existing target's mapping -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    path: str
    kind: str          # the type; "object" or "nested" for containers
    dynamic: str       # the effective `dynamic` of the object holding it: "true" | "false" | "strict" | "runtime"


def walk_fields(mappings: Mapping[str, Any]) -> Iterator[Field]:
    """Every field of a mapping, objects included, with the `dynamic` in force where it sits."""
    root_dynamic = str(mappings.get("dynamic", True)).lower()

    def walk(props: Mapping[str, Any], prefix: str, dynamic: str) -> Iterator[Field]:
        for name, spec in props.items():
            if not isinstance(spec, Mapping):
                continue
            path = f"{prefix}{name}"
            inner = spec.get("properties")
            kind = str(spec.get("type") or "object")
            yield Field(path, kind, dynamic)
            if isinstance(inner, Mapping):
                yield from walk(inner, f"{path}.", str(spec.get("dynamic", dynamic)).lower())
            sub = spec.get("fields")
            if isinstance(sub, Mapping):
                yield from walk(sub, f"{path}.", "false")

    props = mappings.get("properties")
    yield from walk(props if isinstance(props, Mapping) else {}, "", root_dynamic)


def compare_mappings(source: Mapping[str, Any], target: Mapping[str, Any]) -> list[Note]:
    """Whether an existing target mapping takes the source's documents: a type conflict or a field a strict
    target would reject is REFUSED (naming the field); a field a `dynamic: false` target would not index is
    DROPPED (it stays in _source)."""
    notes: list[Note] = []
    theirs = {f.path: f for f in walk_fields(target)}
    ours = {f.path: f for f in walk_fields(source)}
    inside = _dynamic_map(target)
    for mine in ours.values():
        found = theirs.get(mine.path)
        if found is not None:
            if _base(mine.kind) != _base(found.kind):
                notes.append(Note(mine.path, REFUSED, f"{mine.kind} on the source, {found.kind} on the target"))
            continue
        parent = mine.path.rsplit(".", 1)[0] if "." in mine.path else ""
        if parent and parent not in theirs and parent not in inside:
            continue  # its parent is new too: said once, for the parent
        if parent in theirs and theirs[parent].kind not in CONTAINERS:
            if ours[parent].kind not in CONTAINERS:  # a multi-field: mappings never grow one by themselves
                notes.append(Note(mine.path, DROPPED, f"a multi-field the target's {parent} lacks: not indexed there"))
            continue  # else the parent's own conflict says it
        dynamic = inside.get(parent, inside[""])
        if dynamic == "strict":
            notes.append(Note(mine.path, REFUSED, "not in the target's mapping, which is dynamic: strict"))
        elif dynamic == "false":
            notes.append(Note(mine.path, DROPPED, "not in the target's mapping (dynamic: false): kept in _source, "
                              "not searchable"))
    return notes


CONTAINERS = ("object", "nested")


def _dynamic_map(mappings: Mapping[str, Any]) -> dict[str, str]:
    """Object path ("" for the root) -> the dynamic setting in force inside it."""
    out = {"": str(mappings.get("dynamic", True)).lower()}

    def walk(props: Mapping[str, Any], prefix: str, dynamic: str) -> None:
        for name, spec in props.items():
            if isinstance(spec, Mapping) and (isinstance(spec.get("properties"), Mapping)
                                              or spec.get("type") in ("object", "nested")):
                path = f"{prefix}{name}"
                own = str(spec.get("dynamic", dynamic)).lower()
                out[path] = own
                walk(spec.get("properties") or {}, f"{path}.", own)

    props = mappings.get("properties")
    walk(props if isinstance(props, Mapping) else {}, "", out[""])
    return out


def _base(kind: str) -> str:
    # the same field under each product's name for it: a copy into an existing index may meet either
    return {"flat_object": "flattened", "knn_vector": "dense_vector", "xy_shape": "shape",
            "xy_point": "point"}.get(kind, kind)


# -- aliases and templates ------------------------------------------------------------------------------------------

ALIAS_KEYS = frozenset({"filter", "index_routing", "search_routing", "routing", "is_write_index", "is_hidden"})


def clean_alias(name: str, spec: Mapping[str, Any]) -> Cleaned:
    body = {k: v for k, v in spec.items() if k in ALIAS_KEYS}
    notes = [Note(f"alias {name}.{k}", DROPPED, "not an alias property both engines take")
             for k in sorted(set(spec) - ALIAS_KEYS)]
    return Cleaned(body, notes)


TEMPLATE_READ_ONLY = frozenset({"created_date", "created_date_millis", "modified_date", "modified_date_millis"})
ES_TEMPLATE_KEYS = frozenset({"allow_auto_create", "ignore_missing_component_templates", "deprecated"})


def clean_template_part(part: Mapping[str, Any], where: str, source: ProductInfo, target: ProductInfo) -> Cleaned:
    """A template's `template` block (settings, mappings, aliases), by the same rules as an index's."""
    out: dict[str, Any] = {}
    notes: list[Note] = []
    extra: dict[str, Any] = {}
    settings = part.get("settings")
    if isinstance(settings, Mapping) and settings:
        s = clean_settings(settings, source, target)
        notes += s.notes
        if s.body:
            out["settings"] = s.body
    mappings = part.get("mappings")
    if isinstance(mappings, Mapping) and mappings:
        m = clean_mappings(mappings, source, target)
        notes += m.notes
        extra.update(m.settings)
        out["mappings"] = m.body
    aliases = part.get("aliases")
    if isinstance(aliases, Mapping) and aliases:
        out["aliases"] = {}
        for alias, spec in aliases.items():
            a = clean_alias(alias, spec if isinstance(spec, Mapping) else {})
            notes += a.notes
            out["aliases"][alias] = a.body
    for key in sorted(set(part) - {"settings", "mappings", "aliases"}):
        if source.name == target.name:
            out[key] = part[key]
        else:  # lifecycle (data stream lifecycle), data_stream_options: Elasticsearch's alone
            notes.append(Note(f"template.{key}", DROPPED, f"not a template part {name_of(target)} takes"))
    if extra:
        out.setdefault("settings", {}).update(extra)
    return Cleaned(out, [Note(f"{where}: {n.what}", n.action, n.why) for n in notes])


def clean_template(kind: str, name: str, body: Mapping[str, Any], source: ProductInfo, target: ProductInfo
                   ) -> Cleaned:
    """A composable index template (kind "index") or a component template ("component") for the target."""
    where = f"{kind} template {name}"
    out: dict[str, Any] = {}
    notes: list[Note] = []
    for key, value in body.items():
        if key in TEMPLATE_READ_ONLY:
            continue
        if key == "template" and isinstance(value, Mapping):
            part = clean_template_part(value, where, source, target)
            notes += part.notes
            out["template"] = part.body
        elif key == "data_stream" and isinstance(value, Mapping):
            out["data_stream"] = _data_stream_part(value, where, source, target, notes)
        elif key in ES_TEMPLATE_KEYS and target.name == OPENSEARCH:
            notes.append(Note(f"{where}.{key}", DROPPED, "not a template property OpenSearch takes"))
        else:
            out[key] = value
    return Cleaned(out, notes)


def _data_stream_part(value: Mapping[str, Any], where: str, source: ProductInfo, target: ProductInfo,
                      notes: list[Note]) -> dict[str, Any]:
    if source.name == target.name:
        return dict(value)
    if target.name == OPENSEARCH:
        for key in sorted(value):
            notes.append(Note(f"{where}.data_stream.{key}", DROPPED, "not a data stream option OpenSearch takes"))
        return {"timestamp_field": {"name": "@timestamp"}}
    ts = value.get("timestamp_field")
    ts_name = ts.get("name") if isinstance(ts, Mapping) else None
    if ts_name not in (None, "@timestamp"):
        notes.append(Note(f"{where}.data_stream.timestamp_field", REFUSED,
                          f"Elasticsearch data streams use @timestamp, not {ts_name}"))
    return {}


def merge_mapping(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Two mappings as one, `over` winning leaf by leaf (objects and properties merged)."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        out[key] = merge_mapping(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return out


def compose_template(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Component templates' `template` blocks then the index template's own, composed as the engine composes
    them (later wins): the settings and mappings an index made from them would get."""
    settings: dict[str, Any] = {}
    mappings: dict[str, Any] = {}
    for part in parts:
        settings.update(flatten_settings(part.get("settings") or {}))
        mappings = merge_mapping(mappings, part.get("mappings") or {})
    return {"settings": settings, "mappings": mappings}

