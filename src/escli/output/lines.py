"""Writing NDJSON lines from asyncio code without stalling the event loop.

A write to a pipe blocks when the reader is slow (`escli batch ... | slow-consumer`). Done on the event loop, that
would freeze every request in flight until their timeouts fire. So a pipe or socket on stdout is written through
an asyncio write transport: `write_lines` returns at once while the transport's buffer is small and waits (without
blocking the loop) once it passes the high-water mark, which is how the caller feels the slow reader and stops
reading its own input. Anything else (a regular file, /dev/null, a terminal, an in-memory buffer) does not block
for long and is written directly: a worker thread per write would cost more than it saves (GIL hand-offs).

    async with AsyncLineWriter(stdout) as writer:
        await writer.write_lines([b'{"id":1}\\n', b'{"id":2}\\n'])

A reader that goes away raises BrokenPipeError from `write_lines`, as a plain write would.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Sequence
from contextlib import suppress
from types import TracebackType
from typing import IO, Any

HIGH_WATER = 256 * 1024


def _pipe_fd(out: IO[bytes]) -> int | None:
    try:
        fd = out.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return None
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None


class _Flow(asyncio.Protocol):
    """Flow control for a write transport: paused above the high-water mark, resumed below the low one."""

    def __init__(self) -> None:
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.error: BaseException | None = None

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = exc if exc is not None else BrokenPipeError("the reader closed the pipe")
        self.can_write.set()


class AsyncLineWriter:
    """Batches of lines to a binary stream; a pipe or socket through the event loop, anything else directly."""

    def __init__(self, out: IO[bytes], flush: bool = True) -> None:
        self.out = out
        self.flush = flush
        self.lines = 0
        self.bytes = 0
        self._transport: Any = None
        self._flow: _Flow | None = None
        self._fd: int | None = None
        self._was_blocking = True

    async def __aenter__(self) -> AsyncLineWriter:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close(drain=et is None)

    async def start(self) -> None:
        fd = _pipe_fd(self.out)
        if fd is None:
            return
        loop = asyncio.get_running_loop()
        self.out.flush()  # whatever was written before goes first
        self._was_blocking = os.get_blocking(fd)
        pipe = os.fdopen(os.dup(fd), "wb", buffering=0)  # a duplicate: closing the transport keeps stdout open
        try:
            transport, flow = await loop.connect_write_pipe(_Flow, pipe)
        except (OSError, ValueError):
            pipe.close()
            return
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self._transport, self._flow, self._fd = transport, flow, fd

    async def write_lines(self, lines: Sequence[bytes]) -> None:
        if not lines:
            return
        data = lines[0] if len(lines) == 1 else b"".join(lines)
        flow = self._flow
        if flow is not None:
            if flow.error is not None:
                raise BrokenPipeError(str(flow.error))
            self._transport.write(data)
            if not flow.can_write.is_set():
                await flow.can_write.wait()
            if flow.error is not None:
                raise BrokenPipeError(str(flow.error))
        else:
            self.out.write(data)
            if self.flush:
                self.out.flush()
        self.lines += len(lines)
        self.bytes += len(data)

    async def close(self, drain: bool = True) -> None:
        """Wait for the buffered lines to go out (unless `drain` is off), then release the pipe."""
        flow, transport = self._flow, self._transport
        if flow is None:
            with suppress(BrokenPipeError, ValueError):
                self.out.flush()
            return
        self._flow = self._transport = None
        try:
            if drain and flow.error is None and transport.get_write_buffer_size():
                flow.can_write.clear()
                transport.set_write_buffer_limits(high=0)  # pauses now, resumes once everything is written
                await flow.can_write.wait()
        finally:
            transport.close()
            if self._fd is not None:
                with suppress(OSError):
                    os.set_blocking(self._fd, self._was_blocking)
        if drain and flow.error is not None:
            raise BrokenPipeError(str(flow.error))
