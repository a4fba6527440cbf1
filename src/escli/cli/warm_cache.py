"""`escli warm-cache`: not built yet (issue 4)."""

from __future__ import annotations

import typer

from escli.cli.common import register_placeholder


def register(app: typer.Typer) -> None:
    register_placeholder(app, "warm-cache", "Replay a query file into the on-disk cache", "issue 4")
