"""Messages and progress on stderr. Data never goes through here.

Progress bars appear only when stderr is a terminal and --quiet is off; when stderr is a file or a pipe the
same calls do nothing, so cron mail and CI logs stay clean.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any


class Screen:
    """Where a command's result goes: its stdout, its UI on stderr, whether stdout is a terminal, and whether it
    may be styled (a terminal, and no NO_COLOR). A plain class: a dataclass costs every run its generated code."""

    __slots__ = ("color", "out", "tty", "ui")

    def __init__(self, out: IO[bytes], ui: Messages, tty: bool, color: bool) -> None:
        self.out, self.ui, self.tty, self.color = out, ui, tty, color


@dataclass
class Messages:
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    verbose: int = 0

    @property
    def err_is_tty(self) -> bool:
        return bool(getattr(self.err, "isatty", lambda: False)())

    def _write(self, text: str) -> None:
        try:
            self.err.write(text + "\n")
            self.err.flush()
        except (BrokenPipeError, ValueError):
            pass

    def error(self, text: str) -> None:
        self._write(f"escli: error: {text}")

    def warn(self, text: str) -> None:
        self._write(f"escli: warning: {text}")

    def server_warning(self, text: str) -> None:
        """A Warning header of the server (a deprecation, usually): the transport hands each text once; -q hides."""
        if not self.quiet:
            self._write(f"escli: warning: the server says: {text}")

    def info(self, text: str) -> None:
        if not self.quiet:
            self._write(f"escli: {text}")

    def detail(self, text: str) -> None:
        if self.verbose and not self.quiet:
            self._write(f"escli: {text}")

    def progress(self, description: str, total: int | None = None) -> Progress:
        return Progress(self, description, total, enabled=self.err_is_tty and not self.quiet)


class Progress:
    """A rich progress bar when enabled, otherwise a counter that prints nothing."""

    def __init__(self, messages: Messages, description: str, total: int | None, enabled: bool) -> None:
        self.messages = messages
        self.description = description
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                console=Console(file=self.messages.err), transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, rate="")
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            self._bar.update(self._task, advance=n, rate=f"{self.done / elapsed:,.0f}/s")

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(et, ev, tb)
