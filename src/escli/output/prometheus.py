"""The Prometheus text exposition format, shared by health and profile: numbers, labels, the textfile write.

Numbers are written as a person reads them and as they were measured: `0.003361`, not `0.0033610000000000003`
(a millisecond figure divided by 1000 picks up binary noise; rounding to 9 decimals and taking the shortest
repr gives back the decimal that was meant, and still round-trips through float()).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TEXTFILE_MODE = 0o644  # node_exporter usually runs as its own user: a textfile must be readable by it


def number(v: float | int) -> str:
    """A sample value: integers as integers, floats as the shortest repr of the value rounded to 9 decimals."""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    f = float(v)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    r = round(f, 9)
    return repr(r) if r != 0.0 or f == 0.0 else repr(f)  # a tiny value keeps its digits rather than becoming 0


def escape(value: Any) -> str:
    """A label value: backslash, newline and double quote escaped."""
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(items: Mapping[str, Any]) -> str:
    """`{a="1",b="2"}`, or nothing when there are no labels."""
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in items.items()) + "}"


def write_textfile(path: Path, text: str) -> None:
    """node_exporter's textfile collector reads files whole: write a temporary file beside it, then rename.

    The file is 0644 (it holds measurements, not secrets or results: node_exporter runs as another user and
    must read it); the temporary name starts with a dot and does not end in .prom, so the collector skips it.
    """
    from escli.files import write_private

    write_private(path, text.encode("utf-8"), mode=TEXTFILE_MODE)
