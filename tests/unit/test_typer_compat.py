"""cli/typer_compat.py: each private Typer part escli uses still exists and behaves on the installed Typer."""

from __future__ import annotations

import tomllib
from pathlib import Path

import typer

from escli.cli import typer_compat
from escli.cli.app import app

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_checked_is_the_version_pinned() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("typer"))
    assert pin == "typer>=0.29,<0.30" and typer.__version__.startswith(typer_compat.SUPPORTED)


def test_completion_resolves_the_command_and_the_parameter() -> None:
    cli = typer.main.get_command(app)
    ctx, found, word = typer_compat.resolve_completion(cli, None, ["search", "--output"], "js")
    assert ctx.info_name == "search" and getattr(found, "name", None) == "output" and word == "js"
    ctx, found, _ = typer_compat.resolve_completion(cli, None, ["search"], "--no-")
    assert typer_compat.is_command(found) and found.name == "search"
    assert typer_compat.resolve_context(cli, None, ["export", "products"]).params["index"] == "products"


def test_the_small_helpers() -> None:
    assert typer_compat.split_arg_string("escli search 'two words' x") == ["escli", "search", "two words", "x"]
    assert typer_compat.make_default_short_help("One line. And more.", 45) == "One line."


def test_the_coercion_hook_is_the_one_installed() -> None:
    from typer.core import _TyperParameter

    assert _TyperParameter.get_runtime_param.__module__ == "escli.cli.typer_compat"


def test_the_builders_of_the_lazy_command_list() -> None:
    from escli.cli.commands import _registration

    assert typer_compat.command_name("import_command") == "import-command"
    kind, info = _registration("search") or ("", None)
    assert kind == "command" and typer_compat.command_from_info(info, None).name == "search"
    kind, info = _registration("cache") or ("", None)
    group = typer_compat.group_from_info(info, None)
    assert kind == "group" and {"stats", "clear", "path"} <= set(group.commands)
    assert typer_compat.group_help(info) == "Inspect or clear the cache levels (memory, disk, shared)."
    assert typer_compat.is_command(typer_compat.click_command(app))


def test_no_other_module_names_typer_main() -> None:
    package = ROOT / "src" / "escli"
    found = [str(p.relative_to(package)) for p in package.rglob("*.py")
             if p.name != "typer_compat.py" and "typer.main" in p.read_text(encoding="utf-8")]
    assert not found, f"typer.main's internals are reached only through cli/typer_compat.py: {found}"
