"""Shell completion: the one place escli answers a Tab, for bash, zsh and fish (scripts: cli/completion_scripts.py).

The committed scripts call `escli` with `_ESCLI_COMPLETE=bash|zsh|fish` and `_ESCLI_COMPLETE_LINE` (the command
line up to the cursor); `run()` sends such a call here before anything else. Commands, options and Typer's own
completions come from the click tree as usual; what knows the cluster is chosen here by parameter, so every
command gets it without an edit of its own:
- every INDEX argument or option: index, alias and data stream names;
- options that take fields (`--field`, `--fields`, `--source`, `--sort`, `--filter`, `--range`, `--id-field`,
  `--highlight`, `--stored-fields`, the FIELD of `--agg NAME=TYPE:FIELD`): dotted names from the mapping of the
  INDEX given on the line, keyword/numeric/date ones first for `--sort`, `--filter`, `--range` and `--agg`;
- `--cluster`: cluster and group names from the config file; options with a fixed set of values: those values.
Names come from `core.names.NameCache` (on disk per cluster identity, asked again after a minute, at most ~300 ms
of network). A completion never prompts (no password prompt: settings resolve without one) and never writes an
error: anything that goes wrong answers with no candidates, and the shell falls back to file names.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from escli.strategies import STRATEGIES

if TYPE_CHECKING:
    from escli.cli.typer_compat import Context, Parameter
    from escli.core.names import NameCache
    from escli.settings import Settings

COMPLETE_VAR = "_ESCLI_COMPLETE"
LINE_VAR = "_ESCLI_COMPLETE_LINE"
WORDBREAKS_VAR = "_ESCLI_COMPLETE_WORDBREAKS"
SHELLS = ("bash", "zsh", "fish")
# (command, parameter) -> fixed values; command "*" for any command (the global options).
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("*", "output"): ("table", "json", "ndjson", "csv"),
    ("*", "strategy"): STRATEGIES,
    ("*", "tune"): ("throughput", "latency"),
    ("export", "format"): ("ndjson", "csv", "json"),
    ("export", "method"): ("auto", "pit", "scroll"),
    ("export", "slices"): ("auto",),
    ("copy", "slices"): ("auto",),
    ("verify", "slices"): ("auto",),
    ("import", "format"): ("ndjson", "csv"),
    ("health", "format"): ("table", "json", "nagios", "prometheus"),
    ("health", "wait_for_status"): ("green", "yellow"),
    ("profile", "format"): ("table", "json"),
    ("profile", "schedule"): ("fixed", "poisson"),
    ("search", "track_total_hits"): ("true", "false"),
}
# Parameters that take field names: (sortable fields first, comma-separated list, `-` excludes allowed)
FIELD_PARAMS: dict[str, tuple[bool, bool, bool]] = {
    "field": (False, False, False), "fields": (False, True, False), "source": (False, True, True),
    "sort": (True, True, False), "filter_": (True, False, False), "range_": (True, False, False),
    "id_field": (False, False, False), "highlight": (False, False, False), "stored_fields": (False, True, False),
    "agg": (True, False, False),
}


def respond(app: Any, env: dict[str, str] | None = None) -> int:
    """Answer one Tab on stdout; always exit 0 and never write to stderr."""
    env = dict(os.environ) if env is None else env
    try:
        shell = env.get(COMPLETE_VAR, "")
        if shell not in SHELLS:
            return 0
        items = candidates(app, env.get(LINE_VAR, ""), env)
        out = format_items(shell, items, env)
        if out:
            from escli.output.formats import write_text

            write_text(sys.stdout.buffer, out + "\n")
    except BaseException:  # a completion must never print a traceback into the shell
        pass
    return 0


def split_line(line: str) -> tuple[list[str], str]:
    """(complete words after the program name, the word being completed) of a command line up to the cursor."""
    from escli.cli.typer_compat import split_arg_string

    words = split_arg_string(line)
    if line and not line[-1].isspace() and words:
        return words[1:-1], words[-1]
    return words[1:], ""


def candidates(app: Any, line: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """(value, help) pairs for the word at the end of `line`, in the Typer `app` (escli.cli.app's)."""

    from escli.cli.common import AppContext
    from escli.cli.typer_compat import click_command, is_command, resolve_completion, resolve_context

    args, incomplete = split_line(line)
    cli = click_command(app)
    ctx, obj, incomplete = resolve_completion(cli, AppContext(env=env), args, incomplete)
    if not is_command(obj):
        if args and args[-1].startswith("-"):
            # an option still waiting for its value makes click drop every value parsed on the line (resilient
            # parsing): read the values (the INDEX for field names, --url, --cluster) without it
            ctx = resolve_context(cli, AppContext(env=env), args[:-1])
        own = complete_param(ctx, cast("Parameter", obj), incomplete, env)
        if own is not None:
            return own
    return [(item.value, item.help or "") for item in obj.shell_complete(ctx, incomplete)]


def complete_param(ctx: Context, param: Parameter, incomplete: str, env: dict[str, str]
                   ) -> list[tuple[str, str]] | None:
    """Our own candidates for this parameter, or None to leave it to click (files, Typer's choices)."""
    # a subcommand is its group's command here (`profile run` and `profile merge` are profile's)
    grouped = ctx.parent is not None and ctx.parent.parent is not None and ctx.parent.info_name == "profile"
    command = "profile" if grouped else ctx.info_name or ""
    name = param.name or ""
    fixed = CHOICES.get((command, name)) or CHOICES.get(("*", name))
    if fixed is not None:
        return [(v, "") for v in fixed if v.startswith(incomplete)]
    if name == "cluster" or (name == "to" and command in ("copy", "verify")):  # --to TARGET: a URL or a name
        return [(v, kind) for v, kind in config_names(env) if v.startswith(incomplete)]
    if param.metavar in ("INDEX", "SOURCE"):
        settings = _settings(ctx, env)
        if settings is None:
            return []
        names = _names(settings)
        found = names.fresh_indices()
        if found is None:
            found = _run(names.indices(_opener(settings)))
        return [(v, "") for v in _with_list_prefix(incomplete, found, hidden=True)]
    if name in FIELD_PARAMS and command in ("search", "export", "import", "profile"):
        return complete_fields(ctx, name, incomplete, env)
    return None


def complete_fields(ctx: Context, name: str, incomplete: str, env: dict[str, str]) -> list[tuple[str, str]]:
    sortable_first, listed, excludes = FIELD_PARAMS[name]
    index = ctx.params.get("index")
    settings = _settings(ctx, env)
    if not index or settings is None:
        return []
    names = _names(settings)
    fields = names.fresh_fields(str(index))
    if fields is None:
        fields = _run(names.fields(_opener(settings), str(index)))
    if sortable_first:
        fields = sorted(fields, key=lambda f: (f[1] not in _sortable(), f[0]))
    kinds = dict(fields)
    prefix, word = "", incomplete
    if listed and "," in word:
        prefix, _, word = word.rpartition(",")
        prefix += ","
    if excludes and word[:1] in ("-", "!"):
        prefix, word = prefix + word[0], word[1:]
    if name == "agg":  # NAME=TYPE:FIELD[:ARG]: the type after `=`, then the field after `TYPE:`
        label, eq, rest = word.partition("=")
        if not eq:
            return []
        kind, colon, word = rest.partition(":")
        if not colon:
            from escli.es.query_builder import AGG_TYPES

            return [(f"{label}={t}:", "") for t in AGG_TYPES if t.startswith(kind)]
        prefix = f"{label}={kind}:"
    if name == "sort" and ":" in word:  # FIELD:asc|desc
        field, _, order = word.partition(":")
        return [(f"{prefix}{field}:{o}", "") for o in ("asc", "desc") if field in kinds and o.startswith(order)]
    return [(prefix + f, kinds[f]) for f, _ in fields if f.startswith(word)]


def _sortable() -> frozenset[str]:
    from escli.core.names import SORTABLE_TYPES

    return SORTABLE_TYPES


def _with_list_prefix(incomplete: str, names: Sequence[str], *, hidden: bool) -> list[str]:
    """Names matching the last item of a comma-separated list, with the items before it kept in front."""
    prefix, _, word = incomplete.rpartition(",")
    prefix = prefix + "," if prefix else ""
    out = [n for n in names if n.startswith(word)]
    if hidden and not word.startswith("."):
        out = [n for n in out if not n.startswith(".")]
    return [prefix + n for n in out]


def config_names(env: dict[str, str]) -> list[tuple[str, str]]:
    """Cluster and group names from the config file (a broken config file: none)."""
    from escli.settings import config_path, load_config

    try:
        config = load_config(config_path(env))
    except Exception:
        return []
    out: list[tuple[str, str]] = []
    for table, kind in (("clusters", "cluster"), ("groups", "group")):
        section = config.get(table)
        if isinstance(section, dict):
            out.extend((str(n), kind) for n in section)
    return sorted(out)


def _settings(ctx: Context, env: dict[str, str]) -> Settings | None:
    """Settings from the options on the line (before and after the command), resolved without any prompt."""
    from escli.settings import GlobalOptions, resolve

    options: dict[str, Any] = {}
    for c in reversed(_chain(ctx)):  # root first: a value given after the command wins, as in a real run
        options.update({k: v for k, v in c.params.items() if v not in (None, (), [])})
    # only what names the cluster and the cache: a command's own option may share a global one's name (search's
    # --timeout is a duration text)
    names = ("url", "cluster", "ca_certs", "insecure", "cache_dir")
    try:
        return resolve(GlobalOptions(**{k: options.get(k) for k in names}), env=env, prompt_password=False)
    except Exception:
        return None


def _chain(ctx: Context) -> list[Context]:
    out: list[Context] = []
    c: Context | None = ctx
    while c is not None:
        out.append(c)
        c = c.parent
    return out


def _names(settings: Settings) -> NameCache:
    from escli.core.names import NameCache

    return NameCache(settings.cache_dir, settings.identity)


def _opener(settings: Settings) -> Callable[[], Any]:
    def opener() -> Any:
        from escli.es.connect import open_es
        from escli.ui import SILENT

        return open_es(settings, SILENT)  # a Tab says nothing on the terminal

    return opener


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def format_items(shell: str, items: list[tuple[str, str]], env: dict[str, str]) -> str:
    """The candidates as each committed script reads them (no candidates: the script offers file names)."""
    if shell == "bash":
        # bash replaces only the part of the word after its last COMP_WORDBREAKS character (`=`, `:`): give it
        # that part, as bash-completion's __ltrim_colon_completions does
        values = [v for v, _ in items]
        breaks = set(env.get(WORDBREAKS_VAR, "=:")) & set("=:")
        word = _current_word(env.get(LINE_VAR, ""))
        cut = max((word.rfind(ch) for ch in breaks), default=-1) + 1
        if cut:
            values = [v[cut:] for v in values if v.startswith(word[:cut])]
        return "\n".join(values)
    if shell == "zsh":  # _describe's "value:help", with colons in the value escaped
        return "\n".join(v.replace("\\", "\\\\").replace(":", "\\:") + (f":{h}" if h else "") for v, h in items)
    return "\n".join(v + (f"\t{' '.join(h.split())}" if h else "") for v, h in items)


def _current_word(line: str) -> str:
    return split_line(line)[1]
