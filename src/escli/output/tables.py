"""Rich rendering lives here so nothing else imports rich."""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence


def render_table(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    buf = io.StringIO()
    width = shutil.get_terminal_size((160, 24)).columns
    Console(file=buf, force_terminal=False, width=width).print(table)
    return buf.getvalue()
