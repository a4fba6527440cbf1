"""Flattening documents into CSV cells: nested objects with dots, arrays JSON-encoded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

EXCEL_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def cell(value: Any, excel_safe: bool = False) -> str:
    """One CSV cell as text: None is empty, containers are JSON, booleans lower-case like JSON."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
    else:
        text = orjson.dumps(value).decode()
    if excel_safe and text.startswith(EXCEL_TRIGGERS):
        # OWASP's advice: a leading apostrophe makes spreadsheets treat the cell as text.
        text = "'" + text
    return text


def row_cells(flat: Mapping[str, Any], columns: Iterable[str], excel_safe: bool = False) -> list[str]:
    return [cell(flat.get(c), excel_safe) for c in columns]


def mapping_columns(properties: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Leaf field names of an index mapping's `properties`, dotted, in mapping order (sub-fields skipped)."""
    cols: list[str] = []
    for name, spec in properties.items():
        if isinstance(spec, Mapping) and "properties" in spec and spec.get("type") in (None, "object"):
            cols.extend(mapping_columns(spec["properties"], f"{prefix}{name}."))
        else:
            cols.append(f"{prefix}{name}")
    return cols
