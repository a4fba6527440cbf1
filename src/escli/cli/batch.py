"""`escli batch`: not built yet (issue 4)."""

from __future__ import annotations

import typer

from escli.cli.common import register_placeholder


def register(app: typer.Typer) -> None:
    register_placeholder(app, "batch", "Run a file of queries concurrently, one NDJSON result per query", "issue 4")
