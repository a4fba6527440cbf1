"""`escli health`: not built yet (issue 6)."""

from __future__ import annotations

import typer

from escli.cli.common import register_placeholder


def register(app: typer.Typer) -> None:
    register_placeholder(app, "health", "Cluster health for people and monitoring", "issue 6")
