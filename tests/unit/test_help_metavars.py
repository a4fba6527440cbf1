"""Help reads like the rest of the shell: every argument and option of every command has a metavar (INDEX, TEXT,
N, FILE, DURATION, ...), and none of Typer 0.29's own tags ({index}, <str>, <int range>, <path>) is left."""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperGroup

from escli.cli.app import app

LEFTOVERS = re.compile(r"\{|<str>|<int|<float|<path>|<text>|<bool>|<list")


def walk(group: Any, ctx: Any, path: list[str]) -> list[tuple[list[str], Any, Any]]:
    """Every command under a group, built the way `escli CMD` builds it (commands.LazyGroup)."""
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        sub_ctx = typer.Context(cmd, info_name=name, parent=ctx)
        out.append(([*path, name], cmd, sub_ctx))
        if isinstance(cmd, TyperGroup):
            out += walk(cmd, sub_ctx, [*path, name])
    return out


def test_every_command_shows_metavars_and_no_type_tags() -> None:
    root = typer.main.get_command(app)
    root_ctx = typer.Context(root, info_name="escli")
    commands = walk(root, root_ctx, [])
    assert {" ".join(p) for p, _, _ in commands} >= {"search", "batch", "export", "import", "warm-cache", "health",
                                                      "profile", "cache", "cache stats", "cache clear", "cache path"}
    texts = {"escli": root.get_help(root_ctx)}
    for path, cmd, ctx in commands:
        text = cmd.get_help(ctx)
        texts[" ".join(path)] = text
        for p in cmd.params:
            if p.param_type_name == "argument" or not (getattr(p, "is_flag", False) or getattr(p, "count", False)):
                assert (p.metavar and p.metavar == p.metavar.upper()) or "|" in str(p.metavar), (path, p.name)
    for where, text in texts.items():
        bad = [ln for ln in text.splitlines() if LEFTOVERS.search(ln)]
        assert not bad, (where, bad)


def test_usage_lines_name_arguments_plainly() -> None:
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="escli")
    search = root.get_command(ctx, "search")
    usage = search.get_usage(typer.Context(search, info_name="search", parent=ctx))
    assert usage.endswith("search [OPTIONS] INDEX [TEXT]")
    imp = root.get_command(ctx, "import")
    assert imp.get_usage(typer.Context(imp, info_name="import", parent=ctx)).endswith("[OPTIONS] INDEX FILE|-")
