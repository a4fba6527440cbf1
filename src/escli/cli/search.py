"""`escli search`: not built yet (issue 3)."""

from __future__ import annotations

import typer

from escli.cli.common import register_placeholder


def register(app: typer.Typer) -> None:
    register_placeholder(app, "search", "Search an index (multi_match, query string or a full body)", "issue 3")
