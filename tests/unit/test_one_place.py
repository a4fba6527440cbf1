"""The "one place" rules of docs/ARCHITECTURE.md, held by reading the source (ast, not text search).

- exit codes are decided in cli/app.run(): no command raises SystemExit (errors carry their code, errors.Said);
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
