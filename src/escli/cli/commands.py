"""The command list. Each command's module is imported here, but none imports the client at module level.

Commands are built lazily: `LazyGroup` (the root group's class) turns only the invoked command into a click
command. Typer builds a command by evaluating every parameter annotation of its function (global options
included), which for all commands costs more than importing typer; `escli --help` lists the commands from their
registered help text without building any of them, and `escli search ...` builds only search. Each module keeps
its `register(app)` function: it is called on a small Typer of its own when its command is first needed.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

# name on the command line -> module in escli.cli, in the order `escli --help` lists them
COMMAND_MODULES: dict[str, str] = {
    "search": "search", "batch": "batch", "export": "export", "import": "import_", "copy": "copy",
    "verify": "verify", "warm-cache": "warm_cache", "health": "health", "profile": "profile", "cache": "cache",
}


def register_all(app: typer.Typer) -> None:
    """Register every command eagerly on `app` (for tools that want the whole tree at once)."""
    for module in COMMAND_MODULES.values():
        importlib.import_module(f"escli.cli.{module}").register(app)
    from escli.cli.common import use_escli_commands

    use_escli_commands(app)


def _sub_app(module: str) -> typer.Typer:
    from escli.cli.common import use_escli_commands

    sub = typer.Typer()
    importlib.import_module(f"escli.cli.{module}").register(sub)
    use_escli_commands(sub)  # metavars for every option and argument, no Typer type tags in help
    return sub


def _command_name(info: Any) -> str:
    from escli.cli.typer_compat import command_name

    return str(info.name or command_name(info.callback.__name__))


def _registration(cmd_name: str) -> tuple[str, Any] | None:
    """("command", CommandInfo) or ("group", TyperInfo) as the command's module registers it; None if unknown."""
    module = COMMAND_MODULES.get(cmd_name)
    if module is None:
        return None
    sub = _sub_app(module)
    for info in sub.registered_commands:
        if _command_name(info) == cmd_name:
            return "command", info
    for group in sub.registered_groups:
        if group.name == cmd_name:
            return "group", group
    return None


class LazyGroup(TyperGroup):
    """A TyperGroup whose subcommands are registered and built on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(dict.fromkeys([*COMMAND_MODULES, *self.commands]))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        found = _registration(cmd_name)
        if found is None:
            return None
        from escli.cli.typer_compat import command_from_info, group_from_info

        kind, info = found
        build = command_from_info if kind == "command" else group_from_info
        self.commands[cmd_name] = build(info, self.rich_markup_mode)
        return self.commands[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as exc:  # click's UsageError; Typer suggests from built commands only, these
            # are built lazily
            if args and "Did you mean" not in exc.message:
                from difflib import get_close_matches

                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    exc.message = exc.message.rstrip(".") + ". Did you mean " + ", ".join(map(repr, matches)) + "?"
            raise

    def _short_help(self, cmd_name: str, limit: int) -> str | None:
        """A command's one-line help from its registration, without building it (None: hidden or unknown)."""
        from escli.cli.typer_compat import group_help, make_default_short_help

        if cmd_name in self.commands:
            cmd = self.commands[cmd_name]
            return None if cmd.hidden else str(cmd.get_short_help_str(limit))
        found = _registration(cmd_name)
        if found is None:
            return None
        kind, info = found
        if kind == "group":
            return str(make_default_short_help(group_help(info), limit))
        if info.hidden:
            return None
        text = info.short_help or info.help or (info.callback.__doc__ if info.callback else "") or ""
        return str(make_default_short_help(text, limit))

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        for name in names:
            text = self._short_help(name, limit)
            if text is not None:
                rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
