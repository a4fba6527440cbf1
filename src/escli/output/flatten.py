"""Flattening documents into CSV cells: nested objects with dots, arrays JSON-encoded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

EXCEL_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


_LEAF_TYPES = (str, int, float, bool, list, type(None))


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    _flatten_into(doc, prefix, out)
    return out


def _flatten_into(doc: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    # JSON gives plain dicts and leaves; test those types first (an ABC isinstance check costs ~10x more, and
    # a CSV export calls this for every field of every document).
    for key, value in doc.items():
        name = f"{prefix}{key}"
        kind = type(value)
        if kind is dict or (kind not in _LEAF_TYPES and isinstance(value, Mapping)):
            if value:
                _flatten_into(value, name + ".", out)
            else:
                out[name] = value
        else:
            out[name] = value


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
    if excel_safe and isinstance(value, str) and text.startswith(EXCEL_TRIGGERS):
        # Only text: a negative number stays a number (-5 is data, not a formula).
        # OWASP's advice: a leading apostrophe makes spreadsheets treat the cell as text.
        text = "'" + text
    return text


def row_cells(flat: Mapping[str, Any], columns: Iterable[str], excel_safe: bool = False,
              original: Mapping[str, Any] | None = None) -> list[str]:
    """Cells for `columns`; a column naming an object (`specs`) shows that object as JSON when `original` is given."""
    cells = []
    for c in columns:
        value = flat.get(c)
        if value is None and original is not None:
            value = _dotted(original, c)
        cells.append(cell(value, excel_safe))
    return cells


def _dotted(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
