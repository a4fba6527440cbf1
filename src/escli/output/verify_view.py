"""`escli verify`'s report: a table on a terminal, JSON otherwise; the lines naming what differs."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from escli.core.verify import IndexVerdict, PairDigests, VerifyResult


def verdict_word(v: IndexVerdict) -> str:
    if v.target_count is None:
        return "no such index on the target"
    if v.equal:
        return "equal"
    return f"differs ({v.differing_buckets} of {v.buckets} buckets)"


def render_verify_table(result: VerifyResult, color: bool = False) -> str:
    from escli.output.tables import render_table

    rows = [[v.source, v.dest, str(v.source_count), "-" if v.target_count is None else str(v.target_count),
             verdict_word(v)] for v in result.indices]
    text = render_table(["source", "target", "source docs", "target docs", "result"], rows, color=color)
    docs = [[v.dest, d.kind, d.key.id, d.key.routing or ""] for v in result.indices for d in v.differences]
    if docs:
        text += render_table(["target index", "difference", "_id", "_routing"], docs, color=color)
    return text


def write_verify(out: IO[bytes], result: VerifyResult, fmt: str, color: bool = False) -> None:
    """The verdict per index: a table, or indented JSON."""
    from escli.output.formats import write_json, write_text

    if fmt == "table":
        write_text(out, render_verify_table(result, color=color))
    else:
        write_json(out, result.as_dict(), pretty=True)


def difference_lines(result: VerifyResult) -> list[str]:
    """Per index that differs: one line naming it and what differs, then one line per document named."""
    lines: list[str] = []
    for v in result.indices:
        if v.equal:
            continue
        lines.append(v.summary())
        lines += [f"{v.dest}: {d.kind} {d.key}" for d in v.differences]
    return lines


def write_partition(out: IO[bytes], parts: list[PairDigests]) -> None:
    """`--partition K/N`: this partition's digests, one JSON line per index (what --combine reads back)."""
    out.write(b"".join(orjson.dumps(p.as_dict(), option=orjson.OPT_APPEND_NEWLINE) for p in parts))
    out.flush()
