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
    the mapping knows, in mapping order (`leaves` lists them from `properties`: mapping_columns). Indices are
    read in name order, so a pattern gives a stable header.
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


def mapping_columns(properties: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Leaf field names of an index mapping's `properties`, dotted, in mapping order (sub-fields skipped)."""
    cols: list[str] = []
    for name, spec in properties.items():
        if isinstance(spec, Mapping) and "properties" in spec and spec.get("type") in (None, "object"):
            cols.extend(mapping_columns(spec["properties"], f"{prefix}{name}."))
        else:
            cols.append(f"{prefix}{name}")
    return cols


def expand_fields(fields: list[str], mapped: list[str]) -> list[str]:
    """CSV columns for --fields: an object field or a pattern becomes the mapped leaves under it, in order;
    a field the mapping does not know stays a column of its own."""
    from fnmatch import fnmatchcase

    columns: dict[str, None] = {}
    for f in fields:
        leaves = [c for c in mapped if c == f or c.startswith(f + ".") or ("*" in f and fnmatchcase(c, f))]
        columns.update(dict.fromkeys(leaves or [f]))
    return list(columns)


def choose_columns(mapping_response: Mapping[str, Any], fields: list[str] | None) -> list[str]:
    """The CSV header of export and of search -o csv, chosen in this one place: an imported CSV file's columns
    first, in the file's order (the mapping's `_meta`), then the leaves only the mapping knows, of every index
    named; narrowed by --fields."""
    seen = csv_header(mapping_response, mapping_columns)
    return expand_fields(fields, seen) if fields else seen
