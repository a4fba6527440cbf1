"""`escli export`: not built yet (issue 5)."""

from __future__ import annotations

import typer

from escli.cli.common import register_placeholder


def register(app: typer.Typer) -> None:
    register_placeholder(app, "export", "Export every matching document as ndjson, csv or json", "issue 5")
