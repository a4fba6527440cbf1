"""`escli batch FILE|-`: run a query file concurrently, one NDJSON result line per query, a summary on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from escli.cli.common import app_context, global_options, run_async
from escli.cli.options import concurrency_option

if TYPE_CHECKING:
    from escli.core.batch import BatchStats
    from escli.output.console import Messages

MAX_SHOWN_BAD_LINES = 20


def register(app: typer.Typer) -> None:
    app.command(
        "batch",
        help="Run a file of queries concurrently, one NDJSON result line per query (summary on stderr).\n\n"
             "Exit status: 0 all answered, 1 some queries failed, 2 bad lines in the file, 3 cluster unreachable.",
    )(batch_command)


@global_options
def batch_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE|-", show_default=False,
                                        help="Query file (NDJSON, one query a line; .gz read transparently), "
                                             "or - for stdin")],
    concurrency: Annotated[int, concurrency_option("Requests in flight")] = 8,
    msearch: Annotated[int, typer.Option("--msearch", min=0, max=10_000, metavar="N",
                                         help="Group N consecutive queries into one _msearch request (0: off)")] = 0,
    ordered: Annotated[bool, typer.Option("--ordered", help="Write results in input order (default: as they "
                                                            "complete)")] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed query or bad line")] = False,
) -> None:
    from contextlib import aclosing

    from escli.core.batch import BatchOptions, BatchStats, run_batch
    from escli.errors import ExitCode, InputError, PartialFailure, Said, UsageError
    from escli.es.connect import open_es
    from escli.es.queries import aread_queries
    from escli.inputs import anumbered_lines, open_input, source_name
    from escli.output.formats import Format
    from escli.output.lines import AsyncLineWriter

    app = app_context(ctx)
    app.output_format((Format.NDJSON,))  # results are NDJSON whatever stdout is; refuses -o table/csv/json
    msgs = app.messages
    settings = app.settings
    source = source_name(file)
    opts = BatchOptions(concurrency=concurrency, msearch=msearch, ordered=ordered, fail_fast=fail_fast)
    stats = BatchStats()

    def on_bad(err: InputError) -> None:
        if stats.bad_lines <= MAX_SHOWN_BAD_LINES:
            msgs.error(str(err))
        elif stats.bad_lines == MAX_SHOWN_BAD_LINES + 1:
            msgs.error(f"{source}: more bad lines; the summary counts them all")

    memo = None
    if settings.use_cache:  # the memory cache level only: a query repeated in the file is answered from memory
        from escli.cache import MemoryCache
        from escli.core.search import Memo

        memo = Memo(MemoryCache(settings.cache_memory_limit), settings.identity, settings.cache_ttl)

    async def main() -> None:
        with open_input(file) as fh:
            queries = aread_queries(anumbered_lines(fh, source), source)
            async with open_es(settings, msgs, concurrency=concurrency, paced=True) as client, \
                    AsyncLineWriter(app.stdout) as writer:
                with msgs.progress("batch", total=None) as bar:
                    async with aclosing(run_batch(client, queries, opts, stats, on_bad, memo=memo)) as batches:
                        async for lines in batches:
                            await writer.write_lines(lines)
                            bar.advance(len(lines))

    try:
        run_async(main(), many_requests=True)
    except BrokenPipeError:
        # The reader went away (`| head`): end quietly, no summary. Typer turns a BrokenPipeError into exit 1
        # before the app's handler sees it, so it leaves as an outcome that carries the closed-pipe status.
        raise Said(ExitCode.BROKEN_PIPE, "the reader closed the pipe") from None
    except BaseException:
        report(msgs, stats, source)
        raise
    report(msgs, stats, source)
    if stats.bad_lines:
        first = stats.first_bad
        where = f" (the first at line {first.line})" if first is not None else ""
        ran = "the run stopped there" if fail_fast else "the other queries ran"
        raise UsageError(f"{source}: {stats.bad_lines} bad line{'s' if stats.bad_lines != 1 else ''}{where}; {ran}")
    if stats.failed:
        raise PartialFailure(f"{stats.failed} of {stats.queries} queries failed"
                             + (" (--fail-fast stopped the run)" if fail_fast else ""))
    if stats.partial:
        raise PartialFailure(f"fan-out: {stats.partial} of {stats.queries} queries miss some cluster's hits "
                             "(see `clusters` in their lines)")


def summary_text(stats: BatchStats, source: str) -> str:
    """`batch FILE: 60 queries in 0.84s (71.4/s): 58 ok, 2 failed; 3 retries; latency ms p50 ...; errors: ...`"""
    parts = [f"{stats.ok} ok", f"{stats.failed} failed"]
    if stats.bad_lines:
        parts.append(f"{stats.bad_lines} bad line{'s' if stats.bad_lines != 1 else ''}")
    if stats.skipped:
        parts.append(f"{stats.skipped} skipped")
    text = (f"batch {source}: {stats.queries} queries in {stats.seconds:.2f}s ({stats.rate:,.1f}/s): "
            + ", ".join(parts) + f"; {stats.retries} retries, {stats.requests} requests")
    if stats.cache_hits:
        text += f", {stats.cache_hits} from the memory cache"
    if stats.partial:
        text += f", {stats.partial} partial (a fan-out cluster failed)"
    lat = stats.latency_us
    if lat.count:
        p50, p90, p99, top = (v / 1000 for v in lat.values_at([50, 90, 99, 100]))
        text += f"; latency ms p50 {p50:.1f} p90 {p90:.1f} p99 {p99:.1f} max {top:.1f}"
    if stats.error_types:
        text += "; errors: " + ", ".join(f"{k} {v}" for k, v in stats.error_types.most_common(5))
    return text


def report(msgs: Messages, stats: BatchStats, source: str) -> None:
    if stats.queries or stats.bad_lines:
        msgs.info(summary_text(stats, source))
