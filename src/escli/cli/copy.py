"""`escli copy SOURCE --to TARGET`: indices, aliases or data streams onto another cluster, every document exactly
once with its `_id` and `_routing`; resumable, shared between machines with --partition."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from escli.cli.common import app_context, global_options, run_async
from escli.cli.options import (
    dest_option,
    option,
    parse_slices,
    partition_option,
    prefix_option,
    query_option,
    slices_option,
    suffix_option,
    to_option,
)
from escli.files import require_parent

if TYPE_CHECKING:
    from escli.core.copy import CopyResult
    from escli.output.console import Messages


def register(app: typer.Typer) -> None:
    app.command(
        "copy",
        help="Copy indices, aliases or data streams to another cluster (or version): every document once with its "
             "_id and _routing, resumable.\n\n"
             "Exit status: 0 copied, 1 documents rejected (see --errors), 2 bad input, 3 unreachable, 4 refused.",
    )(copy_command)


Source = Annotated[str, typer.Argument(help="Index, alias, data stream or pattern on the source cluster "
                                       "(--url/--cluster)", metavar="SOURCE")]
To = Annotated[str, to_option("Target cluster: a URL, or a cluster name from the config file (its own credentials "
                              "and TLS)")]
Dest = Annotated[str | None, dest_option("Name of the copy (one source index)")]
Prefix = Annotated[str, prefix_option("Name each copy P + its source's name")]
Suffix = Annotated[str, suffix_option("Name each copy its source's name + S")]
Query = Annotated[str | None, query_option("Copy only the documents matching this Lucene query string")]
Body = Annotated[str | None, option("--body", metavar="FILE|-", help="Copy only what this search body FILE (or -) "
                                    "selects (query, runtime_mappings)")]
NoMetadata = Annotated[bool, typer.Option("--no-metadata", help="Documents only: no mappings, settings, aliases or "
                                          "templates")]
IntoExisting = Annotated[bool, typer.Option("--into-existing", help="Add the documents to target indices that "
                                            "exist already (their mapping must take the source's)")]
Evaluate = Annotated[bool, typer.Option("--evaluate", help="Dry run: per index, what would be created, rewritten, "
                                        "dropped or refused (exit 1 if anything would fail)")]
Verify = Annotated[bool, typer.Option("--verify", help="After the copy, compare both sides: counts and a digest of "
                                      "every document (as `escli verify`); exit 1 on a difference")]
Errors = Annotated[Path | None, option("--errors", metavar="FILE", help="Write documents the target rejects here "
                                       "(NDJSON that `escli import` re-imports as it is); exit 1 if any")]
CheckpointOpt = Annotated[Path | None, option("--checkpoint", metavar="FILE", help="Record progress in FILE (a page "
                                              "counts once the target acknowledged it)")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the copy recorded in --checkpoint")]
Partition = Annotated[str | None, partition_option("Copy partition K of N only (N machines or jobs share one "
                                                   "copy)")]
Slices = Annotated[str, slices_option("Parallel readers on the source: N, or auto")]
PageSize = Annotated[int, typer.Option("--page-size", min=1, max=10000, metavar="N", help="Documents per page and "
                                       "per bulk request")]
Concurrency = Annotated[int | None, option("--concurrency", "-j", min=1, max=256, metavar="N", help="Bulk requests "
                                           "in flight on the target, fewer while it refuses [default: the "
                                           "readers]")]


@global_options
def copy_command(
    ctx: typer.Context, source: Source, to: To, dest: Dest = None, prefix: Prefix = "", suffix: Suffix = "",
    query: Query = None, body: Body = None, no_metadata: NoMetadata = False, into_existing: IntoExisting = False,
    evaluate: Evaluate = False, verify: Verify = False, errors: Errors = None, checkpoint: CheckpointOpt = None,
    resume: Resume = False, partition: Partition = None, slices: Slices = "auto", page_size: PageSize = 1000,
    concurrency: Concurrency = None,
) -> None:
    from escli.cli.export import _read_body
    from escli.core.copy import CopyRequest, CopyRun
    from escli.core.copy_meta import Rename
    from escli.core.export_plan import AUTO_READERS, parse_partition

    app = app_context(ctx)
    msgs = app.messages
    _check(dest, prefix, suffix, query, checkpoint, errors, resume, evaluate, verify, no_metadata)
    req = CopyRequest(source=source, rename=Rename(dest, prefix, suffix),
                      query={"query_string": {"query": query}} if query else None,
                      body=_read_body(body) if body else {}, metadata=not no_metadata,
                      into_existing=into_existing, evaluate=evaluate, page_size=page_size,
                      slices=parse_slices(slices), partition=parse_partition(partition))
    settings = app.one_cluster("copy")
    target = app.target_settings(to)
    readers = req.slices or AUTO_READERS
    in_flight = concurrency or readers
    show_progress = msgs.err_is_tty and not msgs.quiet
    where = target.cluster or ",".join(target.urls)

    async def main() -> tuple[CopyResult, Any]:
        import asyncio
        import signal

        from escli.core.copy import run_copy
        from escli.es.connect import open_es

        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGHUP):  # end like Ctrl-C: the checkpoint is saved on the way out
            loop.add_signal_handler(sig, _stop, task, sig)
        async with open_es(settings, msgs, concurrency=readers, paced=True) as src, \
                open_es(target, msgs, concurrency=in_flight, paced=True) as dst:
            total = await _count(src, req) if show_progress else None
            with msgs.progress(f"copy {source}", total=total) as bar:
                run = CopyRun(checkpoint=checkpoint, resume=resume, errors=errors, target_id=target.identity,
                              ahead=in_flight,
                              on_progress=bar.advance, on_warning=msgs.detail,
                              on_start=lambda pairs: msgs.detail("copying " + ", ".join(
                                  f"{p.source} -> {p.dest}" for p in pairs)))
                result = await run_copy(src, dst, req, run)
            if not verify:
                return result, None
            from escli.core.verify import verify_copy

            query_clause = req.export_request(source).search_body().get("query")
            with msgs.progress(f"verify {source}", total=None) as bar:
                return result, await verify_copy(src, dst, result.plan.pairs, query_clause, slices=req.slices,
                                                 on_progress=bar.advance, on_warning=msgs.detail)

    try:
        result, verdict = run_async(main(), many_requests=True)
    except BaseException as exc:
        _interrupted(exc, msgs, checkpoint)
        raise
    if evaluate:
        _evaluated(app, result)
        return
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    _report(app, msgs, result, source, where, errors, verdict)


def _check(dest: str | None, prefix: str, suffix: str, query: str | None, checkpoint: Path | None,
           errors: Path | None, resume: bool, evaluate: bool, verify: bool, no_metadata: bool) -> None:
    """The options that do not go together, or name nothing, or a file that cannot be written."""
    from escli.errors import UsageError

    if dest is not None and (prefix or suffix):
        raise UsageError("--dest with --prefix/--suffix: --dest names one copy, --prefix/--suffix rename many")
    if dest is not None and not dest.strip():
        raise UsageError("--dest: give a name")
    if resume and checkpoint is None:
        raise UsageError("--resume needs --checkpoint FILE")
    if query is not None and not query.strip():
        raise UsageError("--query: give a query string")
    for option_name, path in (("--checkpoint", checkpoint), ("--errors", errors)):
        if path is not None:
            require_parent(option_name, path)
    if checkpoint is not None and checkpoint.exists() and not resume:
        raise UsageError(f"--checkpoint {checkpoint}: holds a copy in progress; --resume continues it (or remove "
                         "the file)")
    if evaluate and (resume or verify):
        raise UsageError(f"--evaluate with {'--resume' if resume else '--verify'}: --evaluate copies nothing")
    if evaluate and no_metadata:
        raise UsageError("--evaluate with --no-metadata: the plan is about metadata; leave one out")


_signal: dict[str, int] = {}


def _stop(task: Any, signum: int) -> None:
    _signal["signum"] = signum
    task.cancel()


def _interrupted(exc: BaseException, msgs: Messages, checkpoint: Path | None) -> None:
    """Ctrl-C, SIGTERM or SIGHUP: say where the checkpoint is, and leave with 130 / 128 + the signal."""
    import asyncio
    import signal

    if not isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return
    signum = _signal.pop("signum", None)
    if checkpoint is not None:
        msgs.error(f"interrupted; checkpoint saved to {checkpoint}: run the same command with --resume to continue")
    elif signum is not None:
        msgs.error(f"stopped by {signal.Signals(signum).name}")
    if signum is not None:
        from escli.errors import Said

        raise Said(128 + signum, f"stopped by {signal.Signals(signum).name}") from None
    raise KeyboardInterrupt from None


async def _count(src: Any, req: Any) -> int | None:
    if req.partition is not None:
        return None  # a partition's share is not known before it is read
    try:
        return int(await src.count(req.source, req.query or req.body.get("query")))
    except Exception:
        return None


def _evaluated(app: Any, result: CopyResult) -> None:
    """--evaluate: the plan on stdout; exit 1 when the copy would be refused."""
    from escli.errors import ExitCode, Said
    from escli.output import copy_view
    from escli.output.formats import report_format

    plan = result.plan
    fmt = report_format(None, app.options.output, app.stdout_is_tty, ("table", "json"), "copy --evaluate")
    copy_view.write_plan(app.stdout, plan, fmt, color=app.stdout_is_tty)
    msgs = app.messages
    for change in plan.refused:
        msgs.error(str(change))
    if plan.refused:
        raise Said(ExitCode.PARTIAL, f"--evaluate: {len(plan.refused)} change(s) would be refused")
    msgs.info(f"{len(plan.pairs)} index(es) would be copied; {len(plan.changes)} change(s) to the metadata")


def _report(app: Any, msgs: Messages, result: CopyResult, source: str, where: str, errors: Path | None,
            verdict: Any) -> None:
    from escli.errors import ExitCode, PartialFailure, Said
    from escli.output import copy_view

    rate = result.copied / result.seconds if result.seconds else 0.0
    dests = ", ".join(p.dest for p in result.pairs[:3]) + (", ..." if len(result.pairs) > 3 else "")
    reopened = sum(p.export.pit_reopened for p in result.pairs if p.export is not None)
    reread = sum(p.export.reread for p in result.pairs if p.export is not None)
    extra = f"; point in time reopened {reopened}x, {reread} unit(s) read again" if reopened or reread else ""
    msgs.info(f"copied {result.copied} documents from {source} to {where} ({dests}) in {result.seconds:.2f}s "
              f"({rate:,.0f} docs/s); {result.rejected} rejected{extra}")
    for change in result.plan.changes:
        msgs.detail(str(change))
    if app.options.output == "json":
        copy_view.write_result(app.stdout, result)
    if verdict is not None:
        from escli.output.verify_view import difference_lines

        if verdict.equal:
            msgs.info(f"verified {sum(v.source_count for v in verdict.indices)} documents: equal "
                      f"({verdict.seconds:.2f}s)")
        else:
            for line in difference_lines(verdict):
                msgs.error(line)
            if not result.rejected:
                raise Said(ExitCode.PARTIAL, "verify: the copy differs from its source")
    if result.rejected:
        for line in result.errors_sample:
            msgs.warn(line)
        hint = f" (written to {errors}: `escli import INDEX {errors}` re-imports them)" if errors else \
            " (use --errors FILE to keep them)"
        raise PartialFailure(f"{result.rejected} documents rejected by the target{hint}")
