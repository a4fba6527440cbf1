"""`escli warm-cache FILE`: replay a query file into the on-disk cache; cron-safe, one JSON summary line."""

from __future__ import annotations

from typing import Annotated

import typer

from escli.cli.common import app_context, global_options, run_async
from escli.cli.options import concurrency_option

MAX_SHOWN_PROBLEMS = 20


def register(app: typer.Typer) -> None:
    app.command(
        "warm-cache",
        help="Replay a query file into the on-disk cache (cron-safe; one JSON summary line on stdout).\n\n"
             "Exit status: 0 done (or another run of the same job is still going), 1 some queries could not be "
             "refreshed, 3 cluster unreachable.",
    )(warm_cache_command)


@global_options
def warm_cache_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE|-", show_default=False,
                                        help="Query file (NDJSON, as for batch; .gz read transparently), or - "
                                             "for stdin")],
    ttl: Annotated[str | None, typer.Option("--ttl", metavar="SECONDS", show_default=False,
                                            help="How long the entries stay fresh: 300, 90s, 10m, 2h, 1d "
                                                 "[default: the cache's TTL, 300 s]")] = None,
    refresh_ahead: Annotated[str, typer.Option("--refresh-ahead", metavar="SECONDS",
                                               help="Also re-run entries that expire within this window "
                                                    "(0: only missing and expired ones)")] = "0",
    request_cache: Annotated[bool, typer.Option("--request-cache", help="Also warm Elasticsearch's shard request "
                                                                        "cache (request_cache=true)")] = False,
    concurrency: Annotated[int, concurrency_option("Requests in flight")] = 4,
) -> None:

    from escli.core.warm import Problem, WarmLock, WarmOptions, WarmResult, run_failure, warm_file
    from escli.durations import parse_duration
    from escli.errors import InputError, PartialFailure, UsageError
    from escli.inputs import source_name
    from escli.output.formats import write_json

    app = app_context(ctx)
    msgs = app.messages
    settings = app.settings
    if not settings.use_cache:
        raise UsageError("--no-cache: warm-cache fills the on-disk cache; run it without --no-cache")
    ttl_s = parse_duration(ttl, "--ttl") if ttl is not None else settings.cache_ttl
    ahead = parse_duration(refresh_ahead, "--refresh-ahead", allow_zero=True)
    if ahead >= ttl_s:
        msgs.warn(f"--refresh-ahead {refresh_ahead} is not shorter than the TTL ({ttl_s:g}s): every entry is "
                  "refreshed on every run")
    source = source_name(file)
    opts = WarmOptions(ttl=ttl_s, refresh_ahead=ahead, request_cache=request_cache, concurrency=concurrency)
    result = WarmResult()

    def summary(**extra: object) -> None:
        write_json(app.stdout, {**result.as_dict(), **extra})

    lock = WarmLock(settings.cache_dir, source)
    if not lock.acquire():
        if not msgs.quiet:  # an expected outcome under cron: -q keeps it out of the mail (the summary says it)
            msgs.warn(f"warm-cache is already running for {source} ({lock.holder or 'another process'}); "
                      "this run leaves without doing anything")
        summary(already_running=True)
        return

    shown = 0

    def on_problem(problem: Problem | InputError) -> None:
        nonlocal shown
        shown += 1
        if shown <= MAX_SHOWN_PROBLEMS:
            skipped = isinstance(problem, Problem) and problem.reason.startswith("not cached")
            # a query the cache may not hold is the file's business, not a failure: quiet under --quiet
            (msgs.info if skipped else msgs.error)(str(problem))
        elif shown == MAX_SHOWN_PROBLEMS + 1:
            msgs.error("more problems; the summary counts them all")

    try:
        run_async(warm_file(settings, file, opts, msgs, on_problem, result), many_requests=True)
    except UsageError:
        raise  # a missing file or bad option: nothing ran, no summary
    except BaseException as exc:
        summary(**run_failure(exc))
        raise
    finally:
        lock.release()
    summary()
    msgs.detail(f"warm-cache {source}: {result.refreshed} refreshed, {result.fresh} fresh, {result.failed} failed, "
                f"{result.skipped} skipped in {result.seconds:.2f}s")
    if result.failed:
        raise PartialFailure(f"{result.failed} of {result.queries + result.bad_lines} queries could not be "
                             "refreshed" + (f" ({result.bad_lines} bad lines)" if result.bad_lines else ""))
