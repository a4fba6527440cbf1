"""`escli health`: cluster health for people (table) and monitoring (json, nagios, prometheus).

Exit codes follow Nagios, whatever the format: 0 OK (green), 1 WARNING (yellow), 2 CRITICAL (red),
3 UNKNOWN (unreachable or refused within the timeout); with --all, the worst of them; with --warn/--crit, the
worst of the colour and the thresholds. A bad argument is UNKNOWN too (the plugin guidelines' rule, so a typo in
a monitoring configuration is not paged as CRITICAL); see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from escli.cli.common import EscliCommand, app_context, global_options, run_async
from escli.output.formats import report_format

if TYPE_CHECKING:
    from escli.core.health import Probes

FORMATS = ("table", "json", "nagios", "prometheus")
BAD_ARGUMENT = 3  # Nagios UNKNOWN


class HealthCommand(EscliCommand):
    """health's options parsed as a Nagios plugin's: an unknown or malformed option is UNKNOWN (3), not 2.

    `-c` after `health` is --crit, as the plugin guidelines name it (`-w`/`-c`), so the global `--cluster`
    injected into this command gives up its short form here; before the command (`escli -c prod health`) the
    root callback still reads `-c` as --cluster. See docs/ARCHITECTURE.md.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for p in self.params:
            if p.name == "cluster":
                p.opts = [o for o in p.opts if o != "-c"]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        nagios = wants_nagios(args)  # read first: click's parser consumes the list it is given
        try:
            return list(super().parse_args(ctx, args))
        except typer.TyperException as exc:
            _bad_argument(app_context(ctx), plain_usage_message(exc), nagios)


def wants_nagios(args: list[str]) -> bool:
    """`-F nagios`, `--format nagios`, `-Fnagios` or `--format=nagios` anywhere in the command's arguments."""
    return any(a in ("-Fnagios", "--format=nagios") or (a == "nagios" and i and args[i - 1] in ("-F", "--format"))
               for i, a in enumerate(args))


def plain_usage_message(exc: Any) -> str:
    """click's message, without a suggestion that is no more than a guess (`--bogus`: 'Possible options:
    --verbose'): only a close match (a typo) is suggested."""
    from difflib import get_close_matches

    name, guesses = getattr(exc, "option_name", None), getattr(exc, "possibilities", None)
    if name and guesses:  # click's NoSuchOption (vendored by typer as typer._click)
        exc.possibilities = get_close_matches(name, list(guesses), cutoff=0.8)
    return str(exc.format_message())


def _bad_argument(app: Any, message: str, nagios: bool) -> NoReturn:
    app.messages.error(message)
    if nagios:  # Nagios reads the plugin's stdout: say it there too
        from escli.output.formats import write_text

        write_text(app.stdout, f"ESCLI UNKNOWN - bad argument: {message}\n")
    from escli.errors import Said

    raise Said(BAD_ARGUMENT, message)


def register(app: typer.Typer) -> None:
    app.command("health", cls=HealthCommand,
                help="Cluster health for people and monitoring: table, json, nagios or prometheus; thresholds; "
                     "Nagios exit codes.")(health_command)


@global_options
def health_command(
    ctx: typer.Context,
    format: Annotated[str | None, typer.Option(
        "--format", "-F", metavar="FORMAT", show_default=False,
        help="table|json|nagios|prometheus [default: table on a terminal, json when piped]")] = None,
    wait_for_status: Annotated[str | None, typer.Option(
        "--wait-for-status", metavar="STATUS", show_default=False,
        help="Wait (up to --timeout) for green or yellow before answering")] = None,
    timeout: Annotated[str | None, typer.Option(
        "--timeout", metavar="DURATION", show_default=False,
        help="Give up after this long (10s, 1m): the answer is then UNKNOWN [default: 30s]")] = None,
    all_clusters: Annotated[bool, typer.Option(
        "--all", help="Check every cluster of the config file at once; the exit code is the worst")] = False,
    warn: Annotated[list[str] | None, typer.Option(
        "--warn", "-w", metavar="EXPR", show_default=False,
        help="WARNING when EXPR holds, e.g. heap>85, disk>90, nodes<3 (repeatable; node metrics on every node)")
    ] = None,
    crit: Annotated[list[str] | None, typer.Option(
        "--crit", "-c", "-C", metavar="EXPR", show_default=False,
        help="CRITICAL when EXPR holds (repeatable); metrics: heap disk cpu load1 rtt_ms search_queue "
             "search_rejected write_rejected unassigned pending_tasks active_shards_percent nodes data_nodes "
             "relocating initializing probe_p50 probe_p95 probe_max probe_errors. Without a disk rule, disk is "
             "held against the cluster's own watermarks")] = None,
    index: Annotated[str | None, typer.Option(
        "--index", "-i", metavar="INDEX", show_default=False,
        help="The health of this index or pattern (logs-*) instead of the whole cluster")] = None,
    prometheus_file: Annotated[Path | None, typer.Option(
        "--prometheus-file", metavar="FILE", show_default=False,
        help="Also write the Prometheus text to FILE (atomic rename, 0644), whatever the status")] = None,
    probe: Annotated[list[str] | None, typer.Option(
        "--probe", metavar="'INDEX TEXT'", show_default=False,
        help="After the health calls, time real searches of TEXT in INDEX (repeatable; no TEXT: match_all)")
    ] = None,
    probe_file: Annotated[Path | None, typer.Option(
        "--probe-file", metavar="QUERYFILE", show_default=False,
        help="Probe every query of a query file (the format of batch)")] = None,
    probe_count: Annotated[int, typer.Option(
        "--probe-count", metavar="K", help="Searches per probe")] = 5,
    probe_request_cache: Annotated[bool, typer.Option(
        "--probe-request-cache", help="Let the shard request cache answer probes (off by default: a probe "
                                      "measures the search, not the cache)")] = False,
    curl: Annotated[bool, typer.Option(
        "--curl", help="Print the cluster health request as a curl command and send nothing")] = False,
) -> None:
    from escli.errors import UsageError

    app = app_context(ctx)
    try:
        fmt = report_format(format, app.options.output, app.stdout_is_tty, FORMATS, "health")
        probes = _probes(probe or [], probe_file, probe_count, probe_request_cache)
        _run(app, fmt, wait_for_status, timeout, all_clusters, warn or [], crit or [], index, prometheus_file,
             probes, curl)
    except UsageError as exc:
        # Nagios plugin guidelines: invalid arguments are UNKNOWN (3), not CRITICAL (2, escli's usual usage
        # code), so a typo in a check definition is not paged as an outage.
        from escli.errors import one_line

        _bad_argument(app, one_line(exc), format is not None and format.lower() == "nagios")


def _probes(given: list[str], probe_file: Path | None, count: int, request_cache: bool) -> Probes:
    """--probe 'INDEX TEXT' and --probe-file as one list of queries; ids (the text as given, or the file's ids)
    are unique, because each names its own perfdata and Prometheus series."""
    from dataclasses import replace

    from escli.core.health import Probes
    from escli.errors import UsageError

    if not 1 <= count <= 1000:
        raise UsageError(f"--probe-count {count}: give 1 to 1000 searches per probe")
    if not given and probe_file is None:
        return Probes((), count, request_cache)  # and a check without probes never imports profile's modules
    from escli.core.profile import load_workload, single_query

    queries = []
    for text in given:
        index, _, words = text.strip().partition(" ")
        if not index:
            raise UsageError(f"--probe {text!r}: expected 'INDEX TEXT' (TEXT may be left out for match_all)")
        spec = single_query(index, words.strip() or None, [], None)
        queries.append(replace(spec, id=" ".join(text.split())))
    if probe_file is not None:
        from escli.inputs import numbered_lines, open_input

        with open_input(str(probe_file)) as fh:
            queries += load_workload(numbered_lines(fh), str(probe_file))
    seen: set[str] = set()
    for q in queries:
        if q.id in seen:
            raise UsageError(f"--probe {q.id}: given twice (each probe names its own metrics)")
        seen.add(q.id)
    return Probes(tuple(queries), count, request_cache)


def _run(app: Any, fmt: str, wait_for_status: str | None, timeout: str | None, all_clusters: bool,
         warn: list[str], crit: list[str], index: str | None, prometheus_file: Path | None, probes: Probes,
         curl: bool = False) -> None:
    from escli.core.health import State, apply_thresholds, check_many, parse_thresholds, worst
    from escli.durations import parse_duration
    from escli.errors import UsageError
    from escli.output.formats import write_text
    from escli.output.health_view import render_nagios, render_prometheus, render_table

    if wait_for_status is not None and wait_for_status.lower() not in ("green", "yellow"):
        raise UsageError(f"--wait-for-status {wait_for_status}: choose green or yellow")
    wait = wait_for_status.lower() if wait_for_status else None
    if timeout is not None:
        seconds = parse_duration(timeout, "--timeout")
    else:
        global_timeout = app.options.timeout
        seconds = float(global_timeout) if global_timeout else 30.0
    thresholds = parse_thresholds(warn, crit)
    if thresholds.probe_rules() and not probes.queries:
        raise UsageError(f"{thresholds.probe_rules()[0]}: a probe threshold needs --probe or --probe-file")
    if index is not None and not index.strip():
        raise UsageError("--index: give an index name or pattern")
    if prometheus_file is not None:
        from escli.files import require_parent

        require_parent("--prometheus-file", prometheus_file)

    targets = _targets(app, all_clusters)
    if curl:
        _print_curl(app, targets, wait, seconds, index)
        return
    checks = run_async(check_many(targets, wait, seconds, app.messages, index, probes))
    apply_thresholds(checks, thresholds)
    docs = [c.as_dict() for c in checks]
    if prometheus_file is not None:
        from escli.output.prometheus import write_textfile

        # Written before anything else can fail, and whatever the status: the metrics matter most when red.
        write_textfile(prometheus_file, render_prometheus(docs))
    code = worst([c.state for c in checks])
    if fmt == "json":
        from escli.output.formats import write_json

        several = all_clusters or len(targets) > 1  # --all, or -c a -c b: the same shape
        out: Any = {"state": code.name, "code": int(code), "clusters": docs} if several else docs[0]
        write_json(app.stdout, out)
    elif fmt == "nagios":
        write_text(app.stdout, render_nagios(docs, int(code)))
    elif fmt == "prometheus":
        write_text(app.stdout, render_prometheus(docs))
    else:
        write_text(app.stdout, render_table(docs))
    if fmt in ("table", "json"):
        for c in checks:
            if c.error:
                app.messages.error(f"{c.label or c.url}: {c.error}")
    if code is not State.OK:
        from escli.errors import Said

        raise Said(int(code), f"health: {code.name}")  # the Nagios state is the exit status


def _print_curl(app: Any, targets: list[tuple[str, Any]], wait: str | None, seconds: float,
                index: str | None) -> None:
    """--curl: the cluster health request of each cluster, sent by nothing (node stats and the rest follow it)."""
    from escli.core.health import health_params
    from escli.es.curl import auth_note, curl_command
    from escli.es.target import index_path
    from escli.output.formats import write_text

    path = "/_cluster/health" + (index_path(index, "").rstrip("/") if index else "")
    for label, s in targets:
        if isinstance(s, BaseException):
            raise s
        lines = [f"# {label}"] if len(targets) > 1 else []
        lines += [*auth_note(s), curl_command(s, "GET", path, params=health_params(wait, seconds, index))]
        write_text(app.stdout, "\n".join(lines) + "\n")


def _targets(app: Any, all_clusters: bool) -> list[tuple[str, Any]]:
    """(label, Settings or the error that stopped resolving them) for each cluster to check."""
    from escli.errors import UsageError
    from escli.settings import ENV_CLUSTER, ENV_URL, config_path, load_config, resolve

    if not all_clusters:
        s = app.settings
        if s.members:  # -c a -c b (or a group): each cluster of the set
            return [(m.cluster or ",".join(m.urls), m) for m in s.members]
        return [(s.cluster or "", s)]
    o = app.options
    if o.url or o.cluster:
        raise UsageError("--all checks every configured cluster: drop --url/--cluster")
    path = config_path(app.env)
    clusters = (load_config(path).get("clusters") or {})
    names = [n for n, t in clusters.items() if isinstance(t, dict)]
    if not names:  # UNKNOWN like an unreachable cluster, so --prometheus-file is still written (up 0)
        return [("config", UsageError(f"--all: no [clusters.NAME] tables in {path}"))]
    out: list[tuple[str, Any]] = []
    for name in names:
        try:
            # every global option holds for each cluster (--max-retries, --timeout, the cache's ...)
            s = resolve(o.with_(cluster=(name,)),
                        env={k: v for k, v in app.env.items() if k not in (ENV_URL, ENV_CLUSTER)},
                        prompt_password=False)
            out.append((name, s))
        except UsageError as exc:
            out.append((name, exc))
    return out
