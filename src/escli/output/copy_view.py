"""`escli copy`'s reports: the --evaluate plan (a table on a terminal, JSON otherwise) and the copy's JSON result."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from escli.core.copy import CopyResult
    from escli.core.copy_meta import CopyPlan, IndexPair


def pair_state(pair: IndexPair) -> str:
    return pair.status  # create, resume, existing, no metadata (core/copy_meta.IndexPair.status)


def plan_dict(plan: CopyPlan) -> dict[str, Any]:
    return {"indices": [{"source": p.source, "dest": p.dest, "kind": p.kind, "exists": p.exists,
                         "state": pair_state(p)} for p in plan.pairs],
            "changes": [{"index": c.index, "what": c.what, "action": c.action, "why": c.why} for c in plan.changes],
            "refused": len(plan.refused)}


def render_plan_table(plan: CopyPlan, color: bool = False) -> str:
    from escli.output.tables import render_table

    text = render_table(["source", "target", "kind", "on the target"],
                        [[p.source, p.dest, p.kind, pair_state(p)] for p in plan.pairs], color=color)
    if plan.changes:
        text += render_table(["source", "what", "action", "why"],
                             [[c.index, c.what, c.action, c.why] for c in plan.changes], color=color)
    return text


def write_plan(out: IO[bytes], plan: CopyPlan, fmt: str, color: bool = False) -> None:
    """--evaluate's plan: a table, or indented JSON."""
    from escli.output.formats import write_json, write_text

    if fmt == "table":
        write_text(out, render_plan_table(plan, color=color))
    else:
        write_json(out, plan_dict(plan), pretty=True)


def write_result(out: IO[bytes], result: CopyResult) -> None:
    """-o json: the copy's result as one JSON line."""
    from escli.output.formats import write_json

    write_json(out, result.as_dict())
