"""Output formats, how the default is chosen (a table on a terminal, ndjson when piped), and the one writer of a
JSON document to stdout."""

from __future__ import annotations

from enum import StrEnum
from typing import IO, Any

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


def report_format(requested: str | None, output: str | None, tty: bool, choices: tuple[str, ...],
                  command: str) -> str:
    """A report command's --format (health, profile): explicit choice, else -o table/json, else by terminal."""
    if requested is not None:
        if requested.lower() not in choices:
            raise UsageError(f"--format {requested}: choose one of {', '.join(choices)}")
        return requested.lower()
    if output in ("json", "ndjson"):
        return "json"
    if output == "table":
        return "table"
    if output is not None:
        extra = [c for c in choices if c not in ("table", "json")]
        also = f" (or --format {'|'.join(extra)})" if extra else ""
        raise UsageError(f"--output {output}: {command} writes table or json{also}")
    return "table" if tty else "json"


def summary_wanted(output: str | None) -> bool:
    """A command whose stdout is nothing but its summary (import, cache clear): the summary as JSON with -o json or
    -o ndjson (any case), nothing with -o table or csv or without -o (the summary line is on stderr)."""
    return output is not None and resolve_format(output, False) in (Format.JSON, Format.NDJSON)


def write_json(out: IO[bytes], doc: Any, *, pretty: bool = False) -> None:
    """One JSON document and a newline, flushed: every command's JSON goes out here (indented for a terminal
    where the command asks)."""
    import orjson

    option = orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if pretty else 0)
    out.write(orjson.dumps(doc, option=option))
    out.flush()


def write_text(out: IO[bytes], text: str) -> None:
    """Text a command prints (a rendered table, Nagios lines, a curl command), UTF-8, flushed."""
    out.write(text.encode("utf-8"))
    out.flush()
