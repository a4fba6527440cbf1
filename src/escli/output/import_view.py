"""`escli import`'s result: the summary line on stderr (and as JSON with -o json), bad lines as they come, the
planned index body of --dry-run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from escli.output.console import Messages, Screen
from escli.output.formats import write_json

if TYPE_CHECKING:
    from escli.core.importer import ImportResult
    from escli.errors import InputError

SHOWN_BAD_LINES = 20


class BadLines:
    """Each bad input line as a warning, the first SHOWN_BAD_LINES of them; the --errors file has them all."""

    def __init__(self, ui: Messages) -> None:
        self.ui = ui
        self.seen = 0

    def __call__(self, err: InputError) -> None:
        self.seen += 1
        if self.seen <= SHOWN_BAD_LINES:
            self.ui.warn(str(err))
        elif self.seen == SHOWN_BAD_LINES + 1:
            self.ui.warn("more bad lines; see --errors FILE for all of them")


def show_planned(screen: Screen, body: dict[str, Any] | None) -> None:
    write_json(screen.out, body, pretty=True)


def show_result(screen: Screen, index: str, result: ImportResult, as_json: bool) -> None:
    """The summary, and a sample of the rejected documents and bad lines."""
    rate = result.imported / result.seconds if result.seconds else 0.0
    screen.ui.info(f"imported {result.imported} of {result.read} documents into {index} in {result.seconds:.2f}s "
                   f"({rate:,.0f} docs/s); {result.failed} rejected, {result.bad_lines} bad lines")
    if as_json:  # -o json or ndjson, in any case (-o JSON printed nothing)
        write_json(screen.out, result.as_dict())
    if not result.ok:
        for line in result.errors_sample:
            screen.ui.warn(line)


def failure(result: ImportResult, errors: Path | None) -> str:
    """The one line of a run with rejected documents or bad lines (exit 1)."""
    hint = f" (details in {errors})" if errors else " (use --errors FILE to keep them)"
    return f"{result.failed} documents rejected, {result.bad_lines} bad input lines{hint}"
