"""The "one place" rules of docs/ARCHITECTURE.md, held by reading the source (ast, not text search).

- exit codes are decided in cli/app.run(): no command raises SystemExit (errors carry their code, errors.Said);
- every byte to stdout goes through output/: nothing else writes to a stdout, prints or echoes (the commands hand
  the stream to an output function);
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "escli"


def modules(folder: str = "") -> Iterator[tuple[str, ast.Module]]:
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        yield str(path.relative_to(PACKAGE)), ast.parse(path.read_text(encoding="utf-8"))


def test_no_command_raises_system_exit() -> None:
    found = [f"{name}:{node.lineno}" for name, tree in modules("cli") if name != "cli/app.py"
             for node in ast.walk(tree)
             if isinstance(node, ast.Raise) and node.exc is not None
             and "SystemExit" in ast.unparse(node.exc)]
    assert not found, f"raise errors.Said(code, reason) instead (run() decides the exit code): {found}"


def test_stdout_is_written_only_in_output() -> None:
    found = []
    for name, tree in modules():
        if name.startswith("output/"):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            writes = isinstance(func, ast.Attribute) and func.attr in ("write", "writelines") \
                and "stdout" in ast.unparse(func.value)
            prints = ast.unparse(func) in ("print", "typer.echo", "click.echo", "echo", "sys.stdout.write")
            if writes or prints:
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)[:60]}")
    assert not found, f"write through output/ (formats.write_text, write_json, a view): {found}"


def test_the_global_options_are_declared_once() -> None:
    """GLOBAL_PARAMS (cli/common.py) are the fields of settings.GlobalOptions, the root's parameters come from it,
    and every command takes each one after its name too (but a flag of its own, as search's --timeout)."""
    from dataclasses import fields

    import typer

    from escli.cli.app import app
    from escli.cli.common import GLOBAL_PARAMS
    from escli.settings import GlobalOptions

    assert list(GLOBAL_PARAMS) == [f.name for f in fields(GlobalOptions)]
    root = typer.main.get_command(app)
    assert [p.name for p in root.params][:len(GLOBAL_PARAMS)] == list(GLOBAL_PARAMS)
    ctx = typer.Context(root, info_name="escli")
    for name in ("search", "batch", "export", "import", "warm-cache", "health"):
        cmd = root.get_command(ctx, name)
        own = {p.name for p in cmd.params}
        missing = set(GLOBAL_PARAMS) - own - {"timeout", "no_cache"}  # search and health: their own --timeout
        assert not missing, (name, missing)
