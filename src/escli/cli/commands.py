"""The command list. Each command's module is imported here, but none imports the client at module level."""

from __future__ import annotations

import typer


def register_all(app: typer.Typer) -> None:
    from escli.cli import batch, cache, export, health, import_, profile, search, warm_cache

    for module in (search, batch, export, import_, warm_cache, health, profile, cache):
        module.register(app)
