"""The global options, defined once, and the context object every command receives.

Global options are accepted before the command (`escli -o json search ...`) and after it
(`escli search ... -o json`): `global_options` adds them to each command's signature, and a value given after
the command wins. A command that has an option of the same name (search's `--timeout` is Elasticsearch's search
timeout) keeps its own; the global one is still there before the command name.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

from escli.output.console import Messages, Screen
from escli.output.formats import Format, resolve_format
from escli.settings import GlobalOptions, Settings
from escli.strategies import FAILOVER, STRATEGIES

T = TypeVar("T")

UrlOpt = Annotated[
    list[str] | None,
    typer.Option("--url", "-u", help="Elasticsearch URL (repeatable) [env: ESCLI_URL, ELASTICSEARCH_URL]",
                 show_default=False, metavar="URL"),
]
ClusterOpt = Annotated[list[str] | None, typer.Option("--cluster", "-c", help="Named cluster or group from the "
                                                      "config file (repeatable) [env: ESCLI_CLUSTER]",
                                                      show_default=False, metavar="NAME")]
StrategyOpt = Annotated[str | None, typer.Option("--strategy", metavar="STRATEGY", help="Several clusters: "
                                                 f"{'|'.join(STRATEGIES)} [default: {FAILOVER}] "
                                                 "[env: ESCLI_STRATEGY]", show_default=False)]
CaOpt = Annotated[str | None, typer.Option("--ca-certs", metavar="FILE", help="CA bundle for TLS verification",
                                           show_default=False)]
InsecureOpt = Annotated[bool | None, typer.Option("--insecure", help="Skip TLS verification (warns)",
                                                  show_default=False)]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Request timeout in seconds [default: 30]",
                                                  show_default=False, metavar="SECONDS")]
RetriesOpt = Annotated[int | None, typer.Option("--max-retries", help="Retries on 429/502/503/504 and connection "
                                                "errors [default: 3]", show_default=False,
                                                metavar="N")]
ConnOpt = Annotated[int | None, typer.Option("--connections", metavar="N", help="Connections per node [default: 16]",
                                             show_default=False)]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="table|json|ndjson|csv [default: table on a "
                                               "terminal, ndjson when piped]", show_default=False, metavar="FORMAT")]
NoCacheOpt = Annotated[bool | None, typer.Option("--no-cache", help="Bypass the on-disk cache",
                                                 show_default=False)]
CacheDirOpt = Annotated[Path | None, typer.Option("--cache-dir", metavar="DIR", help="Cache directory [default: "
                                                  "$XDG_CACHE_HOME/escli]", show_default=False)]
CacheUrlOpt = Annotated[str | None, typer.Option("--cache-url", metavar="URL", help="Shared cache level: "
                                                 "redis://HOST:PORT/DB or rediss:// (password from the environment "
                                                 "or config, never the URL) [env: ESCLI_CACHE_URL]",
                                                 show_default=False)]
QuietOpt = Annotated[bool | None, typer.Option("--quiet", "-q", help="Only errors on stderr", show_default=False)]
VerboseOpt = Annotated[int | None, typer.Option("--verbose", "-v", count=True, help="More detail on stderr",
                                                show_default=False)]
DebugOpt = Annotated[bool | None, typer.Option("--debug", help="Tracebacks and Elasticsearch error bodies",
                                               show_default=False)]

# The one declaration of the global options: a parameter a field of GlobalOptions (settings.py), in --help's order.
# The root callback (cli/app.py) and every command (`global_options`) take their parameters from here.
GLOBAL_PARAMS: dict[str, Any] = {
    "url": UrlOpt, "cluster": ClusterOpt, "strategy": StrategyOpt, "ca_certs": CaOpt, "insecure": InsecureOpt,
    "timeout": TimeoutOpt,
    "max_retries": RetriesOpt, "connections": ConnOpt, "output": OutputOpt, "no_cache": NoCacheOpt,
    "cache_dir": CacheDirOpt, "cache_url": CacheUrlOpt, "quiet": QuietOpt, "verbose": VerboseOpt, "debug": DebugOpt,
}


@dataclass
class AppContext:
    """Built once per run; commands read settings and streams from it (tests swap the streams)."""

    options: GlobalOptions = field(default_factory=GlobalOptions)
    stdout: IO[bytes] = field(default_factory=lambda: sys.stdout.buffer)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    _settings: Settings | None = None

    @property
    def debug(self) -> bool:
        return bool(self.options.debug)

    @property
    def messages(self) -> Messages:
        return Messages(self.stderr, quiet=bool(self.options.quiet), verbose=int(self.options.verbose or 0))

    @property
    def screen(self) -> Screen:
        """Styles (the emphasised match, bars in colour) only on a terminal, and never with NO_COLOR set."""
        tty = self.stdout_is_tty
        return Screen(self.stdout, self.messages, tty, tty and not self.env.get("NO_COLOR"))

    @property
    def stdout_is_tty(self) -> bool:
        return bool(getattr(self.stdout, "isatty", lambda: False)())

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from escli.settings import resolve

            self._settings = resolve(self.options, env=self.env, warn=self.messages.warn)
            if not self._settings.verify_certs:
                self.messages.warn("TLS certificate verification is off (--insecure)")
        return self._settings

    def one_cluster(self, command: str) -> Settings:
        """The settings of a command that works on one cluster only (import, export): several are refused."""
        settings = self.settings
        if settings.members:
            from escli.errors import UsageError

            raise UsageError(f"--cluster: {command} works on one cluster, not {len(settings.members)} (several "
                             "clusters are for search, batch, warm-cache and profile)")
        return settings

    def target_settings(self, target: str, option: str = "--to") -> Settings:
        """A second cluster's settings (copy's and verify's --to TARGET): a URL, or a cluster name from the config
        file with its own credentials and TLS. Built by the same `resolve` as the source's. A URL takes the global
        options and the environment's credentials, as `escli --url TARGET import` would; a named cluster takes
        only its own table's credentials and CA (the source's from the environment never go to it)."""
        from escli import settings as s
        from escli.errors import UsageError

        o = self.options
        is_url = target.startswith(("http://", "https://"))
        drop = {s.ENV_URL, s.ENV_URL_FALLBACK, s.ENV_CLUSTER}
        if not is_url:
            drop |= {s.ENV_API_KEY, s.ENV_API_KEY_FILE, s.ENV_USERNAME, s.ENV_PASSWORD, s.ENV_PASSWORD_FILE,
                     s.ENV_CLOUD_ID, s.ENV_CA_CERTS}
        env = {k: v for k, v in self.env.items() if k not in drop}
        try:
            found = s.resolve(s.GlobalOptions(
                url=[target] if is_url else None, cluster=None if is_url else [target],
                ca_certs=o.ca_certs if is_url else None, insecure=bool(o.insecure) and is_url, timeout=o.timeout,
                max_retries=o.max_retries, connections=o.connections, no_cache=True, quiet=o.quiet,
                verbose=o.verbose, debug=o.debug), env=env)
        except UsageError as exc:
            text = str(exc)
            if text.startswith(("--cluster ", "--url ")):  # name the option the user gave
                text = text.split(": ", 1)[-1]
            raise UsageError(f"{option} {target}: {text}") from None
        if found.members:
            raise UsageError(f"{option} {target}: a group of {len(found.members)} clusters; name one cluster")
        return found

    def output_format(self, allowed: tuple[Format, ...] = tuple(Format)) -> Format:
        return resolve_format(self.options.output, self.stdout_is_tty, allowed)

    def given(self, values: dict[str, Any]) -> None:
        """Global options given on the line (the root's, then a command's): a value not None was given (0, False
        and "" included: `--max-retries 0` after the command means no retry, as it does before it)."""
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            self.options = self.options.with_(**given)
            self._settings = None


def app_context(ctx: typer.Context) -> AppContext:
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    return root.obj


def global_parameters(skip: Collection[str] = ()) -> list[inspect.Parameter]:
    """The global options as keyword parameters (default None: not given), but those with a flag in `skip`."""
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
            for name, annotation in GLOBAL_PARAMS.items() if not skip or not set(_flags(annotation)) & set(skip)]


def _flags(annotation: Any) -> list[str]:
    """An option's flags; inside Annotated, typer.Option's first argument (`default`) holds the first of them."""
    out: list[str] = []
    for meta in getattr(annotation, "__metadata__", ()):
        first = getattr(meta, "default", None)
        decls = [first] if isinstance(first, str) and first.startswith("-") else []
        out += [d for decl in [*decls, *(getattr(meta, "param_decls", ()) or ())] for d in decl.split("/") if d]
    return out


def global_options(func: Callable[..., T]) -> Callable[..., T]:
    """Add the global options to a command; values given after the command override those before it. A command
    option with one of the same flags (search's --timeout, its --cache/--no-cache) keeps the flag: the global one
    is still there before the command name."""
    sig = inspect.signature(func, eval_str=True)
    if "ctx" not in sig.parameters:
        raise TypeError(f"{func.__name__} needs a `ctx: typer.Context` parameter for the global options")
    # A long flag of the command's own takes the global option's place; a short one only takes the short form
    # (health's -c is --crit: HealthCommand drops -c from the injected --cluster).
    own = [f for p in sig.parameters.values() for f in _flags(p.annotation) if f.startswith("--")]
    extra = global_parameters(skip=own)
    injected = {p.name for p in extra}

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        app_context(kwargs["ctx"]).given({k: kwargs.pop(k) for k in list(kwargs) if k in injected})
        return func(*args, **kwargs)

    params = list(sig.parameters.values()) + extra
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper


def run_async(coro: Coroutine[Any, Any, T], *, many_requests: bool = False) -> T:
    """Run a use case. `many_requests` (batch, export, import, profile, warm-cache): on uvloop when installed,
    which cut an event loop's CPU per request by ~20% here; its import (~50 ms) is not worth it for a command
    that makes one request."""
    import asyncio

    if many_requests:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(coro)
    return asyncio.run(coro)


# ---------------------------------------------------------------------------------------------------------------
# Help that reads like the rest of the shell: INDEX, TEXT, N, FILE, never Typer 0.29's {index}, <str>, <int range>


def default_metavar(param: Any) -> str:
    """A metavar from the parameter's type when none was given: choices a|b, N, NUMBER, FILE or DIR, TEXT.

    Reads the type description Typer keeps on each parameter (`type_descriptor`, what its own `<int range>`
    tags are made from); anything unexpected falls back to the parameter's name in capitals (arguments) or TEXT.
    """
    fallback = str(param.name).upper() if param.param_type_name == "argument" else "TEXT"
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return fallback
    if getattr(desc, "is_choice", False):
        return "|".join(str(c) for c in getattr(desc, "choices", None) or ()) or fallback
    if getattr(desc, "is_path", False):
        return "DIR" if str(getattr(desc, "path_type", "")) == "directory" else "FILE"
    annotation = getattr(desc, "annotation", None)
    element = getattr(annotation, "__args__", None)
    if getattr(desc, "is_list", False) and element:
        annotation = element[0]
    if annotation is int:
        return "N"
    if annotation is float:
        return "NUMBER"
    return fallback


class EscliCommand(TyperCommand):
    """Every escli command: each argument and option shows a metavar, and nothing shows Typer's type tags.

    Options without `metavar=` get one from their type (`default_metavar`); arguments are listed as `INDEX` in
    the usage line (`[TEXT]` when optional) and in the Arguments section, without `{...}` or `<str>`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for p in self.params:
            flag = getattr(p, "is_flag", False) or getattr(p, "count", False)
            if p.metavar is None and not flag:
                p.metavar = default_metavar(p)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if p.param_type_name != "argument":
                pieces.extend(p.get_usage_pieces(ctx))
                continue
            name = str(p.metavar or str(p.name).upper())
            name = name if p.required else f"[{name}]"
            pieces.append(name + ("..." if p.nargs != 1 else ""))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for p in self.get_params(ctx):
            rec = p.get_help_record(ctx)
            if rec is None:
                continue
            if p.param_type_name == "argument":
                tag = getattr(p, "display_type_rich", lambda _: None)(ctx)  # the `<str>` Typer appends
                name = rec[0].removesuffix(f" {tag}") if tag else rec[0]
                args.append((name, rec[1]))
            elif p.param_type_name == "option":
                opts.append(rec)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)


def use_escli_commands(app: typer.Typer) -> None:
    """Make EscliCommand the class of every command registered on `app` (and its groups) without its own."""
    for info in app.registered_commands:
        if info.cls is None or info.cls is TyperCommand:  # app.command() fills in TyperCommand itself
            info.cls = EscliCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_escli_commands(group.typer_instance)
