"""Pure rules for copying index metadata: what is kept, rewritten or dropped for a target product and major.
This module holds what they share (Note, Cleaned, the three verdicts), the settings rules and the aliases';
the mapping rules are core/copy_mappings.py's, the templates' (settings, mappings and aliases together)
core/copy_templates.py's.

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

from collections.abc import Mapping
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


# -- aliases --------------------------------------------------------------------------------------------------------

ALIAS_KEYS = frozenset({"filter", "index_routing", "search_routing", "routing", "is_write_index", "is_hidden"})


def clean_alias(name: str, spec: Mapping[str, Any]) -> Cleaned:
    body = {k: v for k, v in spec.items() if k in ALIAS_KEYS}
    notes = [Note(f"alias {name}.{k}", DROPPED, "not an alias property both engines take")
             for k in sorted(set(spec) - ALIAS_KEYS)]
    return Cleaned(body, notes)
