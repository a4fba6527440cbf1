"""Every private part of Typer escli uses, in one place, behind a version check.

Typer 0.29 vendors click as `typer._click` (0.26 onwards) and converts every parameter through pydantic (0.29).
Typer <= 0.25 used the public click package and no pydantic, but it lacks the parameter type descriptors the help
metavars are made from, and would change every help page; so escli stays on 0.29 (pinned <0.30 in pyproject.toml)
and reaches into it only here: click's completion-context resolution (no public equivalent gives the context and
the parameter being completed), its argument splitter and short-help helper, the one hook through which
cli/coercion.py converts simple options without pydantic, and typer.main's builders (the click command of the
app, and of one registered command or group for the lazy command list, cli/commands.py). Nothing else in escli
names typer.main (tests/unit/test_typer_compat.py holds that too). tests/unit/test_typer_compat.py checks each of them
against the installed Typer, so an upgrade fails there, by name, rather than somewhere in completion or help.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer.core import _TyperParameter

if TYPE_CHECKING:
    from typer._click import Command, Context, Parameter

SUPPORTED = "0.29."
if not typer.__version__.startswith(SUPPORTED):
    raise ImportError(f"escli needs Typer {SUPPORTED}x (pyproject.toml pins it), not {typer.__version__}")

__all__ = ["Command", "Context", "Parameter", "RuntimeParam", "TypeDescriptor", "build_runtime_param",
           "click_command", "command_from_info", "command_name", "group_from_info", "group_help",
           "install_runtime_param", "is_command", "make_default_short_help", "resolve_completion", "resolve_context",
           "split_arg_string"]


def click_command(app: typer.Typer) -> Any:
    """The click command of a Typer app (what `app()` runs)."""
    return typer.main.get_command(app)


def command_name(callback_name: str) -> str:
    """The command name Typer derives from a callback's name (`import_command` -> `import-command`)."""
    return str(typer.main.get_command_name(callback_name))


def command_from_info(info: Any, rich_markup_mode: Any) -> Any:
    """The click command of one registered command (app.command(...)), built alone."""
    return typer.main.get_command_from_info(info, pretty_exceptions_short=True, rich_markup_mode=rich_markup_mode)


def group_from_info(info: Any, rich_markup_mode: Any) -> Any:
    """The click group of one registered sub-app (app.add_typer(...)), built alone."""
    return typer.main.get_group_from_info(info, pretty_exceptions_short=True, rich_markup_mode=rich_markup_mode,
                                          suggest_commands=True)


def group_help(info: Any) -> str:
    """A registered sub-app's help text, as Typer resolves it, without building the group."""
    return str(typer.main.solve_typer_info_help(info))


def install_runtime_param(fast: Callable[[TypeDescriptor], RuntimeParam | None]) -> None:
    """Convert each parameter with `fast(descriptor)` when it gives a RuntimeParam, with Typer's own path else."""

    def get_runtime_param(self: Any) -> RuntimeParam:
        if self._runtime_param is None:
            converted = fast(self.type_descriptor)
            self._runtime_param = converted if converted is not None else build_runtime_param(self.type_descriptor)
        runtime: RuntimeParam = self._runtime_param
        return runtime

    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]


def split_arg_string(line: str) -> list[str]:
    from typer._click.shell_completion import split_arg_string as split

    return list(split(line))


def make_default_short_help(text: str, limit: int) -> str:
    from typer._click.utils import make_default_short_help as short

    return str(short(text, limit))


def resolve_completion(cli: Any, obj: Any, args: list[str], incomplete: str
                       ) -> tuple[Context, Command | Parameter, str]:
    """(context, the command or parameter being completed, the incomplete word), as click's completion sees them."""
    from typer._click.shell_completion import _resolve_incomplete

    ctx = resolve_context(cli, obj, args)
    found, word = _resolve_incomplete(ctx, args, incomplete)
    return ctx, found, word


def resolve_context(cli: Any, obj: Any, args: list[str]) -> Context:
    """The context click's completion builds for `args` (resilient parsing, no callbacks' side effects)."""
    from typer._click.shell_completion import _resolve_context

    ctx: Context = _resolve_context(cli, {"obj": obj}, "escli", args)
    return ctx


def is_command(obj: Any) -> bool:
    from typer._click.core import Command as ClickCommand

    return isinstance(obj, ClickCommand)
