"""Pure rules for copying index and component templates: the `template` block by the index rules (settings and
aliases, core/copy_rules.py; mappings, core/copy_mappings.py), the parts one product alone takes dropped, a data
stream's options; and a composed template's settings and mappings, as the target would compose them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from escli.core.copy_mappings import clean_mappings
from escli.core.copy_rules import (
    DROPPED,
    REFUSED,
    Cleaned,
    Note,
    clean_alias,
    clean_settings,
    flatten_settings,
    name_of,
)
from escli.es.api import OPENSEARCH, ProductInfo

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
