"""The error tree and exit codes; `exit_code_for` is the one place exceptions become exit codes.

Elasticsearch client exceptions are recognised without importing the client (it costs ~0.4 s): if the module that
defines them was never imported, the exception cannot be one of them.
"""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    PARTIAL = 1
    USAGE = 2
    UNREACHABLE = 3
    REFUSED = 4
    INTERRUPTED = 130
    BROKEN_PIPE = 141


class EscliError(Exception):
    """Base of every error escli reports itself. `str()` is the one line the user sees."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(EscliError):
    """Bad option or bad input (exit 2)."""

    exit_code = ExitCode.USAGE


class InputError(UsageError):
    """A bad line in an input file; the message starts with FILE:LINE."""

    def __init__(self, source: str, line: int, reason: str, column: int | None = None) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.reason = reason
        where = f"{source}:{line}" + (f":{column}" if column else "")
        super().__init__(f"{where}: {reason}")


class UnreachableError(EscliError):
    """No answer: connection refused or reset, TLS failure, or a timeout (`timed_out`)."""

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class RefusedError(EscliError):
    """Elasticsearch answered with an error status (exit 4)."""

    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, status: int | None = None, body: Any = None,
                 retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after  # the Retry-After header of a 429/503, as sent


class PartialFailure(EscliError):
    """The command ran, but some of its items failed (exit 1)."""

    exit_code = ExitCode.PARTIAL


# What to check, added to the one line for statuses whose cause is on the user's side.
STATUS_HINTS = {
    401: " (check the credentials: ESCLI_API_KEY, ESCLI_USERNAME/ESCLI_PASSWORD, or the cluster's entry in the "
         "config file)",
    403: " (the credentials lack a privilege this request needs)",
}


def _es_error_classes() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(connection-level errors, API errors) of the client, if it was imported at all."""
    conn: list[type[BaseException]] = []
    api: list[type[BaseException]] = []
    et = sys.modules.get("elastic_transport")
    if et is not None:
        # ConnectionError covers refused connections and TLS errors; ConnectionTimeout is a separate class.
        conn.extend((et.ConnectionError, et.ConnectionTimeout))
    es_exc = sys.modules.get("elasticsearch.exceptions")
    if es_exc is not None:
        api.append(es_exc.ApiError)
    return tuple(conn), tuple(api)


def api_error_summary(exc: BaseException) -> tuple[int | None, str, str]:
    """(status, error type, reason) of an elasticsearch ApiError, read defensively."""
    status = (getattr(getattr(exc, "meta", None), "status", None) or getattr(exc, "status_code", None)
              or getattr(exc, "status", None))
    body = getattr(exc, "body", None)
    etype, reason = type(exc).__name__, str(getattr(exc, "message", exc))
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            root = (err.get("root_cause") or [err])[0]
            etype = str(root.get("type") or err.get("type") or etype)
            reason = str(root.get("reason") or err.get("reason") or reason)
            index = root.get("index") or err.get("index")
            if index and str(index) not in reason:
                reason = f"{reason} [index: {index}]"
        elif isinstance(err, str):
            reason = err
    return (int(status) if isinstance(status, int) else None), etype, reason


def translate(exc: BaseException) -> BaseException:
    """Turn a client exception into the matching EscliError (cause kept); others come back unchanged."""
    if isinstance(exc, EscliError):
        return exc
    conn, api = _es_error_classes()
    if conn and isinstance(exc, conn):
        what = "no answer within the timeout" if type(exc).__name__ == "ConnectionTimeout" else "cluster unreachable"
        new: EscliError = UnreachableError(f"{what}: {_connection_reason(exc)}")
    elif api and isinstance(exc, api):
        status, etype, reason = api_error_summary(exc)
        hint = STATUS_HINTS.get(status or 0, "")
        new = RefusedError(f"Elasticsearch refused the request ({status} {etype}): {reason}{hint}", status,
                           getattr(exc, "body", None))
    else:
        return exc
    new.__cause__ = exc
    return new


def _connection_reason(exc: BaseException) -> str:
    if isinstance(exc, UnreachableError):
        return str(exc).removeprefix("cluster unreachable: ")
    msg = str(getattr(exc, "message", "") or exc)
    # elastic_transport wraps the real error; the innermost message is the useful one.
    errors = getattr(exc, "errors", ())
    if errors:
        msg = str(errors[-1]) or msg
    return msg.splitlines()[0] if msg else type(exc).__name__


def exit_code_for(exc: BaseException) -> ExitCode:
    exc = translate(exc)
    if isinstance(exc, EscliError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        return ExitCode.BROKEN_PIPE
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
        return ExitCode.USAGE
    return ExitCode.PARTIAL if isinstance(exc, Exception) else ExitCode.INTERRUPTED


def one_line(exc: BaseException) -> str:
    """The single line shown to the user for an error (never a traceback)."""
    exc = translate(exc)
    if isinstance(exc, EscliError):
        return str(exc)
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
