"""Output formats and how the default is chosen (a table on a terminal, ndjson when piped)."""

from __future__ import annotations

from enum import StrEnum

from escli.errors import UsageError


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


def resolve_format(requested: str | None, stdout_is_tty: bool, allowed: tuple[Format, ...] = tuple(Format)) -> Format:
    if requested is None:
        fmt = Format.TABLE if stdout_is_tty else Format.NDJSON
        return fmt if fmt in allowed else allowed[0]
    try:
        fmt = Format(requested.lower())
    except ValueError:
        raise UsageError(
            f"--output {requested}: choose one of {', '.join(f.value for f in allowed)}"
        ) from None
    if fmt not in allowed:
        raise UsageError(f"--output {requested}: this command writes {', '.join(f.value for f in allowed)}")
    return fmt
