"""`escli profile`: not built yet (issue 6)."""

from __future__ import annotations

import typer

from escli.cli.common import register_placeholder


def register(app: typer.Typer) -> None:
    register_placeholder(app, "profile", "Measure query latency: percentiles, throughput, service time", "issue 6")
