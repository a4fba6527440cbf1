"""Pure rules for copying a mapping to a target product and major (the shared types and the settings rules are
core/copy_rules.py's): a 6.x/7.x type unwrapped, field types one product lacks rewritten (with the settings such a
rewrite needs, e.g. OpenSearch's index.knn), parameters only one product knows dropped or refused; and an existing
target mapping checked field by field against the source's (copy --into-existing).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from escli.core.copy_rules import DROPPED, REFUSED, REWRITTEN, Cleaned, Note, name_of
from escli.es.api import ELASTICSEARCH, OPENSEARCH, ProductInfo

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
