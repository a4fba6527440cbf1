"""The error tree and exit codes; `exit_code_for` is the one place exceptions become exit codes.

The request path (es/) raises only these errors; es/answers.py maps answers and failed connections to them.
"""

from __future__ import annotations

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
    """Base of every error escli reports itself. `str()` is the one line the user sees; `exit_code` the status
    run() exits with (an ExitCode, or a Nagios state or 128 + a signal for `Said`)."""

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
        self.kind = "timeout" if timed_out else "connection_error"  # or tls_error (es/transport.failure_kind)
        self.cluster = ""  # several clusters: the member that could not be reached (profile counts per cluster)

    retryable = True  # the retry policy tries again (es/retry.py); an answer escli cannot use is not


class BadAnswerError(UnreachableError):
    """Something answered, but not what escli can use: past the answer bound, not JSON, JSON of another shape,
    a redirect, a broken HTTP framing (es/answers.py says which, `kind` names it for counts). Exit 3 like an
    unreachable cluster: no usable Elasticsearch was reached at that URL, and health's UNKNOWN is the same state.
    Not retried: the same request gets the same answer."""

    retryable = False

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class RefusedError(EscliError):
    """The server answered with an error status (exit 4)."""

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


class Said(EscliError):
    """The command ends with `code` and has already said why (a gate's breach lines, a Nagios state on stdout, the
    signal that stopped it, a reader gone from the pipe): run() turns it into the exit code and prints nothing.
    `str()` is the reason, for --debug and callers."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        # a Nagios state or 128 + a signal: not all are ExitCode members (exit_code_for hands on an int)
        self.exit_code = code  # type: ignore[assignment]


# What to check, added to the one line for statuses whose cause is on the user's side.
STATUS_HINTS = {
    401: " (check the credentials: ESCLI_API_KEY, ESCLI_USERNAME/ESCLI_PASSWORD, or the cluster's entry in the "
         "config file)",
    403: " (the credentials lack a privilege this request needs)",
}


def error_summary(status: int, body: Any) -> tuple[str, str]:
    """(error type, reason) of an error answer, read defensively; the reason names the index when known."""
    etype, reason = f"HTTP {status}", ""
    err = body.get("error") if isinstance(body, dict) else body
    if isinstance(err, dict):
        root = (err.get("root_cause") or [err])[0]
        if not isinstance(root, dict):
            root = err
        etype = str(root.get("type") or err.get("type") or etype)
        reason = str(root.get("reason") or err.get("reason") or "")
        index = root.get("index") or err.get("index")
        if index and str(index) not in reason:
            reason = f"{reason} [index: {index}]"
    elif isinstance(err, str):
        reason = err
    elif isinstance(body, dict) and "result" in body:  # e.g. a 404 from GET /INDEX/_doc/ID
        reason = str(body["result"])
    return etype, (reason or etype)


def api_error_summary(exc: BaseException) -> tuple[int | None, str, str]:
    """(status, error type, reason) of a RefusedError (or anything with `status` and `body`)."""
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    if body is None:
        return (status if isinstance(status, int) else None), type(exc).__name__, str(exc)
    etype, reason = error_summary(status or 0, body)
    return (status if isinstance(status, int) else None), etype, reason


def exit_code_for(exc: BaseException) -> int:
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
    if isinstance(exc, EscliError):
        return str(exc)
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
