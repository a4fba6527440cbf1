"""Rich rendering lives here so nothing else imports rich."""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from typing import Any

# A table cell: plain text, or a highlighted fragment as (text, emphasised) segments (output/highlight.py).
Segments = tuple[tuple[str, bool], ...]
Cell = str | Segments
EMPHASIS = "bold reverse"  # the match in a highlighted fragment, on a terminal


def terminal_width() -> int:
    return shutil.get_terminal_size((160, 24)).columns


def render(*renderables: Any, color: bool = False) -> str:
    """Rich renderables as text: ANSI styles only with `color` (stdout is a terminal), plain text otherwise."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=terminal_width(),
                      highlight=False)
    for item in renderables:
        console.print(item)
    return buf.getvalue()


def cell_text(value: Cell, color: bool) -> Any:
    """A cell as rich Text: emphasised segments styled on a terminal, and plain (no markers at all) otherwise."""
    from rich.text import Text

    if isinstance(value, str):
        return Text(value)
    text = Text()
    for part, marked in value:
        text.append(part, style=EMPHASIS if marked and color else None)
    return text


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Cell]], title: str | None = None,
                 color: bool = False) -> str:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(cell_text(c, color) for c in row))
    return render(table, color=color)
