"""`escli copy`'s reports: the --evaluate plan (a table on a terminal, JSON otherwise) and the copy's JSON result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

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


def render_plan_json(plan: CopyPlan) -> bytes:
    return orjson.dumps(plan_dict(plan), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def render_result_json(result: CopyResult) -> bytes:
    return orjson.dumps(result.as_dict(), option=orjson.OPT_APPEND_NEWLINE)
