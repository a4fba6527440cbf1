"""The root Typer app: global options, the command list, and the one place errors become exit codes."""

# No `from __future__ import annotations`: Typer would evaluate the root callback's string annotations on every run.
import inspect
import os
import sys
from typing import Annotated, Any

import typer

from escli import __version__
from escli.cli import coercion, commands
from escli.cli.common import AppContext, app_context, global_parameters

coercion.install()  # plain conversions for str/int/float/bool/Path options: no pydantic on the way in

app = typer.Typer(
    name="escli",
    help="A fast, dependable command-line search toolkit for Elasticsearch.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Commands are built on first use (commands.LazyGroup), and help is plain text: typer's rich help imports
    # rich.markdown and builds every command, which made `escli --help` 3x slower than importing typer.
    cls=commands.LazyGroup,
    rich_markup_mode=None,
    add_completion=False,  # our own --install-completion/--show-completion (cli/completion_scripts.py)
)


def _version(ctx: typer.Context, value: bool) -> None:
    if value:
        from escli.output.formats import write_text

        write_text(app_context(ctx).stdout, f"escli {__version__}\n")
        raise typer.Exit()


def _completion(install: bool) -> Any:
    def callback(ctx: typer.Context, value: bool) -> None:
        if not value:
            return
        from escli.cli.completion_scripts import detect_shell, install_or_show
        from escli.output.formats import write_text

        write_text(app_context(ctx).stdout, install_or_show(detect_shell(), install=install))
        raise typer.Exit()

    if install:
        return typer.Option("--install-completion", callback=callback, is_eager=True,
                            help="Install completion for the current shell.")
    return typer.Option("--show-completion", callback=callback, is_eager=True,
                        help="Show completion for the current shell, to copy it or customize the installation.")


def root(
    ctx: typer.Context,
    *,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit")] = False,
    install_completion: Annotated[bool, _completion(install=True)] = False,
    show_completion: Annotated[bool, _completion(install=False)] = False,
    **options: Any,
) -> None:
    app_context(ctx).given(options)


# The global options' parameters come from their one declaration (cli/common.GLOBAL_PARAMS), before --version.
_own = list(inspect.signature(root).parameters.values())
root.__signature__ = inspect.Signature([_own[0], *global_parameters(), *_own[1:4]])  # type: ignore[attr-defined]
app.callback()(root)


def run(argv: list[str] | None = None, app_ctx: AppContext | None = None) -> int:
    """Run the CLI; returns (and, from the console script, exits with) the exit code."""
    from escli.errors import ExitCode, Said, exit_code_for, one_line

    if os.environ.get("_ESCLI_COMPLETE"):  # a Tab in the shell (cli/complete.py)
        from escli.cli.complete import respond

        # the app is handed over, not imported back by complete.py: no import circle between the two
        if argv is None:
            sys.exit(respond(app))
        return respond(app)
    ctx_obj = app_ctx or AppContext()
    import gc
    import warnings

    # Process-wide settings a command changes (warnings routed to its stderr, export's gc thresholds) are put
    # back when it ends: in-process callers (CliRunner tests, a Python caller) run many commands in one process.
    saved_showwarning, saved_gc = warnings.showwarning, gc.get_threshold()
    _route_warnings(ctx_obj)
    args = sys.argv[1:] if argv is None else argv
    code: int = ExitCode.OK
    try:
        from escli.cli.typer_compat import click_command

        command = click_command(app)
        rv = command.main(args=args, prog_name="escli", standalone_mode=False, obj=ctx_obj)
        # typer turns Ctrl-C and typer.Exit(n) inside a command into a returned exit code in this mode
        if isinstance(rv, int) and not isinstance(rv, bool):
            code = rv
            if code == ExitCode.INTERRUPTED:
                ctx_obj.messages.error("interrupted")
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        code = ExitCode.INTERRUPTED
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if show is not None:
            show(file=ctx_obj.stderr)
        else:
            ctx_obj.messages.error(exc.format_message())
        code = ExitCode.USAGE
    except BrokenPipeError:
        code = _closed_pipe()
    except BaseException as exc:
        if isinstance(exc, SystemExit) and isinstance(exc.__context__, BrokenPipeError):
            code = _closed_pipe()  # typer's own EPIPE handling exits 1; a closed pipe is not a failure
        elif isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else ExitCode.PARTIAL
        else:
            code = exit_code_for(exc)
            debug = ctx_obj.debug or "--debug" in args
            if isinstance(exc, KeyboardInterrupt):
                ctx_obj.messages.error("interrupted")
            elif code == ExitCode.BROKEN_PIPE:
                code = _closed_pipe()
            elif isinstance(exc, Said):
                debug = False  # an outcome, not a failure: what it had to say was said
            else:
                ctx_obj.messages.error(one_line(exc))
            if debug and not isinstance(exc, KeyboardInterrupt):
                _print_debug(exc, ctx_obj)
    finally:
        warnings.showwarning = saved_showwarning
        gc.set_threshold(*saved_gc)
    if argv is None:
        _flush_quietly()
        _exit_now(code)
        sys.exit(code)
    return code


def _exit_now(code: int) -> None:
    """The console script's exit without the interpreter's teardown, which spends ~18 ms freeing every module's
    objects (here, a tenth of an incremental export's run). Taken only when teardown has nothing left to finish:
    no other thread, no multiprocessing, no file still open beyond the standard streams. atexit functions run as
    they would; otherwise (any doubt) the caller exits the usual way."""
    import threading

    if threading.active_count() > 1 or "multiprocessing" in sys.modules:
        return
    import gc
    import io
    import itertools
    import operator

    std = set()  # the standard streams' own FileIO: below their buffer, or their buffer itself when unbuffered
    for stream in (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__):
        buffer = getattr(stream, "buffer", None)
        std |= {id(buffer), id(getattr(buffer, "raw", None))}
    objects = gc.get_objects()
    # the FileIO objects picked out in C (a generator over every object was ~4 ms of an incremental export)
    files = itertools.compress(objects, map(operator.is_, map(type, objects), itertools.repeat(io.FileIO)))
    if any(not f.closed and id(f) not in std for f in files):
        return
    import atexit
    import contextlib

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _route_warnings(ctx_obj: AppContext) -> None:
    """Python warnings (e.g. Elasticsearch's deprecation headers) become one `escli: warning:` line each."""
    import warnings

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: object = None,
             line: str | None = None) -> None:
        ctx_obj.messages.warn(str(message))

    warnings.showwarning = show


def _closed_pipe() -> int:
    """The reader went away (`escli ... | head`): stop quietly, like other Unix filters."""
    import os

    from escli.errors import ExitCode

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return ExitCode.BROKEN_PIPE


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError):
        _closed_pipe()


def _print_debug(exc: BaseException, ctx_obj: AppContext) -> None:
    import traceback

    body = getattr(exc, "body", None)
    if body is not None:
        import orjson

        ctx_obj.stderr.write("error body: " + orjson.dumps(body).decode() + "\n")
    ctx_obj.stderr.write("".join(traceback.format_exception(exc)))
