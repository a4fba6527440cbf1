"""Dates as exact integers: ISO-8601 or epoch millis in, epoch milliseconds or nanoseconds out, and back.

Pure and at the bottom of the house: export's --since marks (core/since.py) and its Parquet timestamps
(output/parquet.py) read the engine's dates the same way. Python's datetime stops at microseconds; `date_nanos`
values need all nine digits, so the fraction is read here by hand.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# re.ASCII: \d is [0-9] only (unicode \d takes '٣', and the fraction was read from it as .3 s)
ISO = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
                 re.IGNORECASE | re.ASCII)
MILLIS = 1_000_000  # nanoseconds per unit: `date` fields
NANOS = 1  # `date_nanos` fields


def parse_date(value: Any, unit_ns: int) -> int:
    """ISO-8601 (any offset, up to nanoseconds; no offset is UTC, as the engine reads it) or epoch millis, to an
    integer in the field's unit (floored)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 1_000_000 // unit_ns
    if isinstance(value, float):
        return int(value * 1_000_000) // unit_ns
    text = str(value).strip()
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text) * 1_000_000 // unit_ns
    m = ISO.fullmatch(text)
    if m is None:
        raise ValueError("expected an ISO-8601 date (2024-05-01T12:00:00Z) or epoch milliseconds")
    day, clock, frac, zone = m.groups()
    zone = "+00:00" if zone is None or zone.upper() == "Z" else zone
    at = datetime.fromisoformat(f"{day}T{clock or '00:00'}{zone}")
    seconds = (at - EPOCH) // timedelta(seconds=1)
    nanos = seconds * 1_000_000_000 + int((frac or "").ljust(9, "0") or 0)
    return nanos // unit_ns


def format_date(value: int, unit_ns: int) -> str:
    """An integer in the field's unit as ISO-8601 UTC: milliseconds for `date`, nanoseconds for `date_nanos`."""
    nanos = value * unit_ns
    seconds, rest = divmod(nanos, 1_000_000_000)
    stamp = (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{rest // 1_000_000:03d}" if unit_ns == 1_000_000 else f"{rest:09d}"
    return f"{stamp}.{frac}Z"
