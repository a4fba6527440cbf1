"""What a use case may say to the person at the terminal, as one object handed down from the command.

A use case (core/) and the request path (es/connect.open_es) take a `UI` instead of loose callbacks, so no command
can forget one of them (the server's deprecation warnings were lost by two commands that way). The real one is
output/console.Messages, built by the command from --quiet/--verbose; `SILENT` says nothing (completion, a worker
process without a terminal of its own). This module is at the bottom: es/ and core/ read it, output/ implements it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol


class Bar(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def __enter__(self) -> Bar: ...

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class UI(Protocol):
    @property
    def verbose(self) -> int: ...

    def error(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def info(self, text: str) -> None: ...

    def detail(self, text: str) -> None:
        """-v only."""

    def server_warning(self, text: str) -> None:
        """A Warning header of the server (a deprecation, usually); the transport hands each text once."""

    def progress(self, description: str, total: int | None = None) -> Bar: ...


class _NoBar:
    def advance(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        pass


class Silent:
    """A UI that says nothing."""

    verbose = 0

    def error(self, text: str) -> None:
        pass

    warn = info = detail = server_warning = error

    def progress(self, description: str, total: int | None = None) -> Bar:
        return _NoBar()


SILENT: UI = Silent()
