"""`escli cache`: not built yet (issue 3)."""

from __future__ import annotations

import typer

from escli.cli.common import register_placeholder


def register(app: typer.Typer) -> None:
    register_placeholder(app, "cache", "Inspect or clear the on-disk cache", "issue 3")
