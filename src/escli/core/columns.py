"""The column order of a CSV file, kept in an index mapping's `_meta` so that export gives the columns back in it.

`escli import` of a CSV file writes `{"_meta": {"escli": {"columns": [...]}}}` into the mapping it creates;
`escli export --format csv` without `--fields` reads it with `csv_header`. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

META_KEY = "escli"


def columns_meta(columns: Sequence[str]) -> dict[str, Any]:
    """The `_meta` block for a mapping: the source file's columns in their order (`_id` is not a field)."""
    return {META_KEY: {"columns": [c for c in columns if c != "_id"]}}


def meta_columns(mappings: Mapping[str, Any]) -> list[str]:
    """The column order stored in one index's `mappings` (empty if it has none or it is malformed)."""
    meta = mappings.get("_meta")
    ours = meta.get(META_KEY) if isinstance(meta, Mapping) else None
    cols = ours.get("columns") if isinstance(ours, Mapping) else None
    if not isinstance(cols, list):
        return []
    return [c for c in cols if isinstance(c, str)]


def csv_header(mapping_response: Mapping[str, Any],
               leaves: Callable[[Mapping[str, Any]], list[str]]) -> list[str]:
    """CSV columns for an export without --fields, from a `GET INDEX/_mapping` answer (one or more indices).

    First the columns of the imported file, in the file's order (from `_meta`); then every leaf field that only
    the mapping knows, in mapping order (`leaves` lists them from `properties`: output.flatten.mapping_columns,
    passed in because core does not import output). Indices are read in name order, so a pattern gives a stable
    header.
    """
    ordered: dict[str, None] = {}
    rest: dict[str, None] = {}
    for name in sorted(mapping_response):
        body = mapping_response[name]
        mappings = body.get("mappings") if isinstance(body, Mapping) else None
        if not isinstance(mappings, Mapping):
            continue
        ordered.update(dict.fromkeys(meta_columns(mappings)))
        props = mappings.get("properties")
        if isinstance(props, Mapping):
            rest.update(dict.fromkeys(leaves(props)))
    return [*ordered, *(c for c in rest if c not in ordered and not _under(c, ordered))]


def _under(column: str, ordered: Mapping[str, None]) -> bool:
    """A mapped leaf inside a column that holds a whole object (a JSON cell), e.g. `specs.ram_gb` under `specs`."""
    parts = column.split(".")
    return any(".".join(parts[:i]) in ordered for i in range(1, len(parts)))


def mapped_types(mapping_response: Mapping[str, Any]) -> dict[str, set[str]]:
    """Every leaf field of a `GET INDEX/_mapping` answer (one or more indices), dotted, with the types the indices
    give it, in mapping order: `{"price": {"double"}, "specs.cpu": {"keyword"}}`. Objects are walked into; a
    `nested` field counts as a leaf of type `nested` (its documents are not flat columns); multi-fields (`fields`)
    are not leaves of `_source`."""
    out: dict[str, set[str]] = {}

    def walk(props: Mapping[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            if not isinstance(spec, Mapping):
                continue
            kind = spec.get("type")
            if "properties" in spec and kind in (None, "object"):
                walk(spec["properties"], f"{prefix}{name}.")
            else:
                out.setdefault(f"{prefix}{name}", set()).add(str(kind or "object"))

    for name in sorted(mapping_response):
        body = mapping_response[name]
        mappings = body.get("mappings") if isinstance(body, Mapping) else None
        props = mappings.get("properties") if isinstance(mappings, Mapping) else None
        if isinstance(props, Mapping):
            walk(props, "")
    return out
