"""Opening input files: a path, `-` for stdin, gzip by suffix. Lines are streamed, never slurped."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from escli.errors import UsageError


def source_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


@contextmanager
def open_input(path: str, stdin: IO[bytes] | None = None) -> Iterator[IO[bytes]]:
    if path == "-":
        yield stdin if stdin is not None else sys.stdin.buffer
        return
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    if p.is_dir():
        raise UsageError(f"{path}: is a directory")
    try:
        fh: IO[bytes] = gzip.open(p, "rb") if p.suffix == ".gz" else p.open("rb")  # type: ignore[assignment]  # noqa: SIM115
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    try:
        yield fh
    finally:
        fh.close()


def numbered_lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line without its newline) for every line, blank ones included."""
    for number, raw in enumerate(fh, start=1):
        yield number, raw.rstrip(b"\r\n")


def input_size(path: str) -> int | None:
    if path == "-" or path.endswith(".gz"):
        return None
    try:
        return Path(path).stat().st_size
    except OSError:
        return None
