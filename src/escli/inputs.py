"""Opening input files: a path, `-` for stdin, gzip by suffix. Lines are streamed, never slurped."""

from __future__ import annotations

import gzip
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
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


# --- asynchronous reading (batch, warm-cache): a pipe or terminal is read without blocking the event loop ---

PIPE_CHUNK = 64 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024


def _pollable_fd(fh: IO[bytes]) -> int | None:
    """The descriptor of a pipe, socket or terminal (what the event loop can watch), else None."""
    import os
    import stat

    try:
        fd = fh.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):  # in-memory buffers have no descriptor
        return None
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd)):
        return fd
    return None


async def anumbered_lines(fh: IO[bytes], source: str = "<stdin>") -> AsyncIterator[tuple[int, bytes]]:
    """`numbered_lines` for asyncio code, in constant memory.

    A pipe or terminal is read through the event loop: nothing blocks while the writer is slow, and reading stops
    (the pipe fills, the writer waits) as soon as the consumer stops asking for lines. Regular files, gzip streams
    and in-memory buffers never block for long and are read directly, yielding to the loop now and then.
    """
    import asyncio

    fd = _pollable_fd(fh)
    if fd is None:
        for number, raw in numbered_lines(fh):
            yield number, raw
            if number % 256 == 0:
                await asyncio.sleep(0)
        return

    import os

    loop = asyncio.get_running_loop()
    was_blocking = os.get_blocking(fd)
    # A duplicate, so closing the transport leaves the caller's stdin open.
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    reader = asyncio.StreamReader(limit=PIPE_CHUNK, loop=loop)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    except (OSError, ValueError):
        pipe.close()
        for number, raw in numbered_lines(fh):
            yield number, raw
        return
    try:
        number = 0
        rest = b""
        while True:
            data = await reader.read(PIPE_CHUNK)
            if not data:
                break
            parts = (rest + data).split(b"\n") if rest else data.split(b"\n")
            rest = parts.pop()
            if len(rest) > MAX_LINE_BYTES:
                raise UsageError(f"{source}:{number + 1}: line longer than {MAX_LINE_BYTES // 2**20} MiB")
            for raw in parts:
                number += 1
                yield number, raw.rstrip(b"\r")
        if rest:
            yield number + 1, rest.rstrip(b"\r")
    finally:
        transport.close()
        with suppress(OSError):
            os.set_blocking(fd, was_blocking)
